import django_tables2 as tables
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent


def with_offset(value) -> str:
    """25/11/2026 15:47:01 UTC+07:00: the local time with its offset spelled out, so it is never ambiguous."""
    local = timezone.localtime(value)
    offset = local.strftime("%z")
    return f"{local:%d/%m/%Y %H:%M:%S} UTC{offset[:3]}:{offset[3:]}"


class AuditEventTable(tables.Table):
    at = tables.Column(verbose_name=_("Time"))
    username = tables.Column(verbose_name=_("User"))
    ip = tables.Column(verbose_name=_("IP address"))
    action = tables.Column(verbose_name=_("Action"))
    object_type = tables.Column(verbose_name=_("Object type"))
    object_id = tables.Column(verbose_name=_("Object id"))
    path = tables.Column(verbose_name=_("Page"), orderable=False)
    status = tables.Column(verbose_name=_("Status"))
    detail = tables.Column(verbose_name=_("Detail"), orderable=False)

    class Meta:
        model = AuditEvent
        fields = ["at", "username", "ip", "action", "object_type", "object_id", "path", "status", "detail"]
        attrs = {"class": "table table-sm table-striped align-middle"}
        empty_text = _("No events match these filters.")

    def render_at(self, value):
        return with_offset(value)

    def render_path(self, record):
        return f"{record.method} {record.path}".strip()
