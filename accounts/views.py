"""The second sign-in step (TOTP) and its enrolment page."""

import base64

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.services import Action, audit_record

SETUP_DEVICE_NAME = "authenticator"


def safe_next(request) -> str:
    """The ?next= target if it stays on this site, else the home page (no open redirect)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


def _complete(request, device):
    otp_login(request, device)
    # A new session key once the second factor is in: a key seen before this point is worth nothing now.
    request.session.cycle_key()
    return redirect(safe_next(request))


def _check_token(request, device, token) -> str | None:
    """None if the code is right; otherwise the message to show (throttled devices say so)."""
    allowed, _data = device.verify_is_allowed()
    if not allowed:
        return _("Too many wrong codes. Wait a minute and try again.")
    if device.verify_token(token):
        return None
    audit_record(request=request, action=Action.OTP_FAILED, obj=request.user)
    return _("That code is not right, or has expired. Enter the code your app shows now.")


@never_cache
@sensitive_post_parameters("token")
@login_required
def otp_verify(request):
    devices = list(TOTPDevice.objects.devices_for_user(request.user, confirmed=True))
    if not devices:
        return redirect(f"{reverse('accounts:otp_setup')}?{request.GET.urlencode()}")
    if request.user.is_verified():
        return redirect(safe_next(request))
    from accounts.forms import TokenForm

    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        error = None
        for device in devices:
            error = _check_token(request, device, form.cleaned_data["token"])
            if error is None:
                return _complete(request, device)
        form.add_error("token", error)
    return render(request, "accounts/otp_verify.html", {"form": form, "next": safe_next(request)})


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@never_cache
@sensitive_post_parameters("token")
@login_required
def otp_setup(request):
    if TOTPDevice.objects.devices_for_user(request.user, confirmed=True).exists():
        if not request.user.is_verified():
            return redirect(f"{reverse('accounts:otp_verify')}?{request.GET.urlencode()}")
        messages.info(request, _("Two-factor sign-in is already set up for your account."))
        return redirect(safe_next(request))
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=request.user, name=SETUP_DEVICE_NAME, confirmed=False)
    from accounts.forms import TokenForm

    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        error = _check_token(request, device, form.cleaned_data["token"])
        if error is None:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            audit_record(request=request, action=Action.OTP_ENROLLED, obj=request.user)
            messages.success(request, _("Two-factor sign-in is set up. You will be asked for a code at each sign-in."))
            return _complete(request, device)
        form.add_error("token", error)
    secret = base64.b32encode(device.bin_key).decode()
    context = {"form": form, "secret": _grouped(secret), "otpauth_uri": device.config_url, "next": safe_next(request)}
    return render(request, "accounts/otp_setup.html", context)
