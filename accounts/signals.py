import time

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from accounts.middleware import AUTH_AT, LAST_SEEN


@receiver(user_logged_in, dispatch_uid="accounts_session_clock")
def start_session_clock(sender, request, user, **kwargs):
    """Every sign-in starts the absolute lifetime and the idle clock of its (already rotated) session."""
    if request is not None and hasattr(request, "session"):
        now = int(time.time())
        request.session[AUTH_AT] = now
        request.session[LAST_SEEN] = now
