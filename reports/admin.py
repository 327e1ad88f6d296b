from django.contrib import admin

from reports.models import RecomputeRun


@admin.register(RecomputeRun)
class RecomputeRunAdmin(admin.ModelAdmin):
    """The engine's log: read-only (runs are written by the engine, started from a dashboard or the command)."""

    list_display = [
        "pk",
        "kind",
        "campaign",
        "status",
        "as_of",
        "started_at",
        "duration_seconds",
        "total_rows",
        "daily_rows",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["campaign"]
    date_hierarchy = "queued_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
