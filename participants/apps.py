from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ParticipantsConfig(AppConfig):
    name = "participants"
    verbose_name = _("Participants and enrollments")

    def ready(self):
        # Registers the nightly retention task with Celery (it is not in tasks.py, which autodiscovery reads).
        from participants import housekeeping  # noqa: F401
