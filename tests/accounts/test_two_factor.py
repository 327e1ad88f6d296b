"""TOTP two-factor sign-in (django-otp): used by whoever set it up, compulsory for all when REQUIRE_2FA is on."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent

PASSWORD = "correct-horse-battery"
PAGE = "accounts:password_change"


def code_for(device, offset_steps=0):
    return f"{totp(device.bin_key, step=device.step, t0=device.t0 - offset_steps * device.step, digits=6):06d}"


def _password_only(user):
    client = Client()
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


@pytest.fixture
def device(staff_user):
    return TOTPDevice.objects.create(user=staff_user, name="phone", confirmed=True)


def test_a_user_with_an_authenticator_must_give_a_code_before_any_page(db, staff_user, device):
    client = _password_only(staff_user)
    response = client.get(reverse(PAGE))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:otp_verify"))
    assert "next=" in response["Location"]


def test_the_right_code_lets_the_user_in_and_rotates_the_session(db, staff_user, device):
    client = _password_only(staff_user)
    key_before = client.session.session_key
    response = client.post(reverse("accounts:otp_verify"), {"token": code_for(device), "next": reverse(PAGE)})
    assert response.status_code == 302
    assert response["Location"] == reverse(PAGE)
    assert client.session.session_key != key_before
    assert client.get(reverse(PAGE)).status_code == 200


def test_a_wrong_code_is_refused_with_a_message_and_recorded(db, staff_user, device):
    client = _password_only(staff_user)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"
    response = client.post(reverse("accounts:otp_verify"), {"token": wrong})
    assert response.status_code == 200
    assert response.context["form"].errors["token"]
    assert client.get(reverse(PAGE)).status_code == 302
    assert AuditEvent.objects.filter(action=AuditEvent.Action.OTP_FAILED, user=staff_user).count() == 1


@pytest.mark.parametrize(
    "token", ["", "12345", "1234567", "abcdef", "１２３４５６", "12 34 56", "123456\x00", "' OR 1=1"]
)
def test_malformed_codes_are_refused(db, staff_user, device, token):
    client = _password_only(staff_user)
    response = client.post(reverse("accounts:otp_verify"), {"token": token})
    assert response.status_code == 200
    assert client.get(reverse(PAGE)).status_code == 302


def test_codes_are_throttled_after_repeated_failures(db, staff_user, device):
    device.throttling_failure_count = 6
    device.throttling_failure_timestamp = timezone.now()
    device.save()
    client = _password_only(staff_user)
    response = client.post(reverse("accounts:otp_verify"), {"token": code_for(device)})
    assert response.status_code == 200
    assert client.get(reverse(PAGE)).status_code == 302


def test_a_code_cannot_be_used_twice(db, staff_user, device):
    first, second = _password_only(staff_user), _password_only(staff_user)
    token = code_for(device)
    assert first.post(reverse("accounts:otp_verify"), {"token": token}).status_code == 302
    response = second.post(reverse("accounts:otp_verify"), {"token": token})
    assert response.status_code == 200
    assert second.get(reverse(PAGE)).status_code == 302


def test_without_the_requirement_a_user_without_an_authenticator_signs_in_with_the_password(db, staff_user):
    client = _password_only(staff_user)
    assert client.get(reverse(PAGE)).status_code == 200


def test_when_required_a_user_without_an_authenticator_is_sent_to_set_one_up(db, staff_user, settings):
    settings.REQUIRE_2FA = True
    client = _password_only(staff_user)
    response = client.get(reverse(PAGE))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:otp_setup"))


def test_setting_up_shows_a_manual_key_and_an_otpauth_link_and_a_code_confirms_it(db, staff_user, settings):
    settings.REQUIRE_2FA = True
    client = _password_only(staff_user)
    response = client.get(reverse("accounts:otp_setup"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "otpauth://totp/" in body
    device = TOTPDevice.objects.get(user=staff_user, confirmed=False)
    assert response.context["secret"].replace(" ", "") in body.replace(" ", "")

    response = client.post(reverse("accounts:otp_setup"), {"token": code_for(device)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse(PAGE)).status_code == 200
    assert AuditEvent.objects.filter(action=AuditEvent.Action.OTP_ENROLLED, user=staff_user).exists()


def test_a_wrong_code_does_not_confirm_the_setup(db, staff_user, settings):
    settings.REQUIRE_2FA = True
    client = _password_only(staff_user)
    client.get(reverse("accounts:otp_setup"))
    device = TOTPDevice.objects.get(user=staff_user)
    wrong = f"{(int(code_for(device)) + 7) % 1_000_000:06d}"
    client.post(reverse("accounts:otp_setup"), {"token": wrong})
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get(reverse(PAGE)).status_code == 302


def test_the_setup_page_cannot_replace_a_confirmed_authenticator_before_verification(db, staff_user, device):
    client = _password_only(staff_user)
    response = client.get(reverse("accounts:otp_setup"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:otp_verify"))
    assert TOTPDevice.objects.filter(user=staff_user).count() == 1


def test_the_api_answers_403_to_a_session_that_lacks_the_second_factor(db, staff_user, device):
    client = _password_only(staff_user)
    response = client.get("/api/v1/campaigns/")
    assert response.status_code == 403


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil.example"])
def test_the_second_step_never_redirects_off_site(db, staff_user, device, target):
    client = _password_only(staff_user)
    response = client.post(reverse("accounts:otp_verify"), {"token": code_for(device), "next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_the_requirement_applies_to_every_role(db, staff_user, manager_user, admin_user, settings):
    settings.REQUIRE_2FA = True
    for user in (staff_user, manager_user, admin_user):
        client = _password_only(user)
        for page in (reverse(PAGE), reverse("home")):
            response = client.get(page)
            assert response.status_code == 302, user.username
            assert response["Location"].startswith(reverse("accounts:otp_setup")), user.username


def test_signing_in_through_the_admin_site_does_not_skip_the_second_factor(db, province):
    from django.contrib.auth.models import User

    boss = User.objects.create_superuser("boss", password=PASSWORD)
    device = TOTPDevice.objects.create(user=boss, name="phone", confirmed=True)
    client = Client()
    response = client.post(reverse("admin:login"), {"username": "boss", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:otp_verify"))
    client.post(reverse("accounts:otp_verify"), {"token": code_for(device)})
    assert client.get("/admin/").status_code == 200
