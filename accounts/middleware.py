"""Session security: idle timeout, absolute lifetime, deactivated users, and the second factor when it is due."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, resolve_url
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from districts.scoping import has_confirmed_device

AUTH_AT = "_auth_at"
LAST_SEEN = "_last_seen"
# Writing the session on every request would cost a database write per page; a minute of slack is harmless.
LAST_SEEN_RESOLUTION = 60

# Elements that poll the server on a timer (hx-trigger="every ..."); htmx names the element in the HX-Trigger header.
# Their requests are not the user's activity: they must not keep an unattended session alive past its idle timeout.
# tests/accounts/test_polling.py checks that every polling element of the templates is listed here.
POLLING_ELEMENT_IDS = frozenset({"upload-status", "recompute-status"})

# Pages a signed-in user can reach before the second factor: the sign-in itself and the two-factor pages.
SECOND_FACTOR_EXEMPT = {"login", "logout", "set_language", "accounts:otp_verify", "accounts:otp_setup"}


def is_api(request) -> bool:
    return request.path.startswith("/api/")


def is_polling(request) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Trigger") in POLLING_ELEMENT_IDS


def needs_second_factor(user) -> bool:
    """A user with a confirmed authenticator always uses it; REQUIRE_2FA makes it compulsory for every role.

    Whether the user has one is read with their role and scope (districts.scoping.access_queryset), not asked again.
    """
    return bool(settings.REQUIRE_2FA) or has_confirmed_device(user)


class SessionSecurityMiddleware:
    """Ends sessions that have been idle or alive too long, or whose user was deactivated; asks for the second factor.

    Placed after AuthenticationMiddleware, OTPMiddleware and MessageMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated:
            ended = self._ended(request, user)
            if ended:
                from audit.services import Action, audit_record

                audit_record(request=request, action=Action.SESSION_ENDED, user=user, detail=ended)
                logout(request)
                if is_api(request):
                    return JsonResponse({"detail": ended}, status=401)
                messages.info(request, ended)
                if request.headers.get("HX-Request") == "true":
                    # A fragment request: send the whole page to the sign-in, not the sign-in into the fragment.
                    return HttpResponse(headers={"HX-Redirect": resolve_url(settings.LOGIN_URL)})
                return redirect_to_login(request.get_full_path())
        elif SESSION_KEY in request.session:
            # The session names a user Django would not load (deactivated or deleted): end it for good, so that
            # reactivating the account does not bring an old session back to life.
            request.session.flush()
        return self.get_response(request)

    def _ended(self, request, user) -> str | None:
        if not user.is_active:
            return _("Your account has been deactivated.")
        session, now = request.session, int(time.time())
        started, last_seen = session.get(AUTH_AT), session.get(LAST_SEEN)
        if started is None:
            session[AUTH_AT] = started = now
        if now - started > settings.SESSION_COOKIE_AGE:
            return _("Your session has reached its maximum length. Please sign in again.")
        if last_seen is not None and now - last_seen > settings.SESSION_IDLE_SECONDS:
            return _("You were signed out after a period of inactivity. Please sign in again.")
        if last_seen is None or (not is_polling(request) and now - last_seen >= LAST_SEEN_RESOLUTION):
            session[LAST_SEEN] = now
        return None

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified() or not needs_second_factor(user):
            return None
        match = request.resolver_match
        if match is not None and match.view_name in SECOND_FACTOR_EXEMPT:
            return None
        if is_api(request):
            return JsonResponse({"detail": _("Two-factor verification is required.")}, status=403)
        name = "accounts:otp_verify" if has_confirmed_device(user) else "accounts:otp_setup"
        from django.urls import reverse

        return redirect(f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}")
