"""The audit trail: who did what to which record, from where and when."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from districts.models import Province


class AuditEvent(models.Model):
    """One thing that happened and must be answerable later: a sign-in failure, a refusal, a view of personal data.

    Rows are only ever added. The SI number and the person's name are never written here: objects are named by
    type and primary key, and free text passes through the same mask as the logs.
    """

    class Action(models.TextChoices):
        LOGIN = "login", _("Signed in")
        LOGIN_FAILED = "login_failed", _("Failed sign-in")
        LOCKED_OUT = "locked_out", _("Locked out after repeated failures")
        LOGOUT = "logout", _("Signed out")
        OTP_FAILED = "otp_failed", _("Wrong two-factor code")
        OTP_ENROLLED = "otp_enrolled", _("Two-factor authentication set up")
        SESSION_ENDED = "session_ended", _("Session ended by the system")
        ACCESS_DENIED = "access_denied", _("Access refused")
        RECORD_VIEWED = "record_viewed", _("Personal record viewed")
        EXPORTED = "exported", _("Personal data exported")
        IMPORTED = "imported", _("Data imported")
        CHANGED = "changed", _("Record changed")
        DELETED = "deleted", _("Record deleted")

    at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("user"),
    )
    username = models.CharField(_("user name"), max_length=150, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    action = models.CharField(_("action"), max_length=24, choices=Action.choices, db_index=True)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    province = models.ForeignKey(
        Province, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("province")
    )
    method = models.CharField(_("method"), max_length=8, blank=True)
    path = models.CharField(_("address in the application"), max_length=300, blank=True)
    status = models.PositiveSmallIntegerField(_("status"), null=True, blank=True)
    detail = models.TextField(_("detail"), blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [models.Index(fields=["province", "-at"], name="audit_province_at")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S%z} {self.action} {self.username}"
