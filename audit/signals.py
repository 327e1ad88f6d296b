"""Sign-in events, lock-outs and the history of changed and deleted records, mirrored into the audit trail."""

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from simple_history.models import HistoricalRecords
from simple_history.signals import post_create_historical_record

from audit.services import Action, audit_record


def _known_user(username):
    if not username:
        return None
    return get_user_model().objects.filter(username=username).first()


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def record_failed_sign_in(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username") or "")
    user = _known_user(username)
    audit_record(
        request=request,
        action=Action.LOGIN_FAILED,
        user=user,
        username=username,
        object_type="auth.user" if user else "",
        object_id=user.pk if user else "",
    )


@receiver(user_locked_out, dispatch_uid="audit_locked_out")
def record_lock_out(sender, request, username=None, ip_address=None, **kwargs):
    user = _known_user(username)
    audit_record(request=request, action=Action.LOCKED_OUT, user=user, username=username or "", status=429)


@receiver(user_logged_in, dispatch_uid="audit_logged_in")
def record_sign_in(sender, request, user, **kwargs):
    audit_record(request=request, action=Action.LOGIN, user=user)


@receiver(user_logged_out, dispatch_uid="audit_logged_out")
def record_sign_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(request=request, action=Action.LOGOUT, user=user)


# simple-history keeps the full before/after of every tracked model; the audit trail lists that a change or a
# deletion happened, by whom, and points at the history row (creations are the daily work and stay in history only).
_HISTORY_ACTIONS = {"~": Action.CHANGED, "-": Action.DELETED}


@receiver(post_create_historical_record, dispatch_uid="audit_history")
def record_change(sender, instance, history_instance, history_user=None, **kwargs):
    action = _HISTORY_ACTIONS.get(history_instance.history_type)
    if action is None:
        return
    request = getattr(HistoricalRecords.context, "request", None)
    audit_record(
        request=request,
        action=action,
        obj=instance,
        user=history_user if history_user is not None else None,
        detail=f"history #{history_instance.history_id}",
    )
