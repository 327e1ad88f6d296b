from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = _("Reports")

    def ready(self):
        from campaigns.signals import targets_changed
        from participants.signals import enrollments_changed
        from reports.breakdowns import on_snapshot_written
        from reports.signals import snapshot_written
        from reports.tasks import on_enrollments_changed, on_targets_changed

        enrollments_changed.connect(on_enrollments_changed, dispatch_uid="reports.refresh_on_enrollment_change")
        targets_changed.connect(on_targets_changed, dispatch_uid="reports.refresh_on_target_change")
        snapshot_written.connect(on_snapshot_written, dispatch_uid="reports.breakdowns_follow_the_snapshot")
