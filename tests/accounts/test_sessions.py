"""Sessions: rotated at sign-in, no open redirect, idle and absolute limits, and ended by deactivation or a new
password."""

import time

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.urls import reverse

from accounts.middleware import AUTH_AT, LAST_SEEN

PASSWORD = "correct-horse-battery"
SESSION = django_settings.SESSION_COOKIE_NAME
CSRF = django_settings.CSRF_COOKIE_NAME


def _signed_in(user):
    client = Client()
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, "the sign-in itself failed"
    return client


def _age_session(client, **offsets):
    session = client.session
    now = int(time.time())
    for key, seconds_ago in offsets.items():
        session[key] = now - seconds_ago
    session.save()


def test_signing_in_gives_a_new_session_key_and_a_new_csrf_token(db, staff_user):
    client = Client(enforce_csrf_checks=True)
    session = client.session  # an anonymous session exists before sign-in
    session["probe"] = 1
    session.save()
    client.cookies[SESSION] = session.session_key
    client.get(reverse("login"))
    key_before, csrf_before = client.cookies[SESSION].value, client.cookies[CSRF].value

    response = client.post(
        reverse("login"),
        {"username": "staff1", "password": PASSWORD, "csrfmiddlewaretoken": csrf_before},
    )

    assert response.status_code == 302
    assert client.cookies[SESSION].value != key_before
    assert not SessionStore().exists(key_before)
    assert client.cookies[CSRF].value != csrf_before


def test_a_login_post_without_the_csrf_token_is_refused(db, staff_user):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "staff1", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


HOSTILE_NEXT = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example/",
    "///evil.example/",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "https:evil.example",
    "https:/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    " //evil.example",
    "\t//evil.example",
    "//evil.example%2F..",
    "http://testserver@evil.example/",
    "https://testserver.evil.example/",
    "//%65vil.example",
    "http:\\\\evil.example",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_signing_in_never_redirects_off_site(client, staff_user, target):
    response = client.post(reverse("login"), {"username": "staff1", "password": PASSWORD, "next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


@pytest.mark.parametrize("target", HOSTILE_NEXT[:8])
def test_an_already_signed_in_user_is_not_redirected_off_site(client, staff_user, target):
    client.force_login(staff_user)
    response = client.get(reverse("login"), {"next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


@pytest.mark.parametrize("target", HOSTILE_NEXT[:8])
def test_signing_out_and_changing_language_never_redirect_off_site(client, staff_user, target):
    client.force_login(staff_user)
    response = client.post(reverse("set_language"), {"language": "en", "next": target})
    assert "evil" not in response.get("Location", "")
    response = client.post(reverse("logout"), {"next": target})
    assert response.status_code == 302
    assert "evil" not in response["Location"]


def test_a_next_on_this_site_is_followed(client, staff_user):
    target = reverse("accounts:password_change") + "?x=1"
    response = client.post(reverse("login"), {"username": "staff1", "password": PASSWORD, "next": target})
    assert response["Location"] == target


def test_an_idle_session_is_ended(db, staff_user, settings):
    client = _signed_in(staff_user)
    _age_session(client, **{LAST_SEEN: settings.SESSION_IDLE_SECONDS + 5})
    response = client.get(reverse("accounts:password_change"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    # Ended for good: the next request is anonymous too.
    assert "_auth_user_id" not in client.session


def test_activity_within_the_idle_window_keeps_the_session(db, staff_user, settings):
    client = _signed_in(staff_user)
    _age_session(client, **{LAST_SEEN: settings.SESSION_IDLE_SECONDS - 120})
    assert client.get(reverse("accounts:password_change")).status_code == 200
    # The request refreshed the idle clock.
    assert int(time.time()) - client.session[LAST_SEEN] < 5


def test_a_session_is_ended_at_its_absolute_lifetime_however_active(db, staff_user, settings):
    client = _signed_in(staff_user)
    _age_session(client, **{AUTH_AT: settings.SESSION_COOKIE_AGE + 5, LAST_SEEN: 1})
    response = client.get(reverse("accounts:password_change"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_idle_limit_comes_from_the_setting(db, staff_user, settings):
    settings.SESSION_IDLE_SECONDS = 60
    client = _signed_in(staff_user)
    _age_session(client, **{LAST_SEEN: 90})
    assert client.get(reverse("accounts:password_change")).status_code == 302


def test_an_expired_session_on_the_api_answers_401_in_json(db, staff_user, settings):
    client = _signed_in(staff_user)
    _age_session(client, **{LAST_SEEN: settings.SESSION_IDLE_SECONDS + 5})
    response = client.get("/api/v1/campaigns/")
    assert response.status_code == 401
    assert "detail" in response.json()


def test_deactivating_a_user_ends_their_sessions(db, staff_user):
    client = _signed_in(staff_user)
    assert client.get(reverse("accounts:password_change")).status_code == 200
    staff_user.is_active = False
    staff_user.save()
    response = client.get(reverse("accounts:password_change"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    staff_user.is_active = True
    staff_user.save()
    # The session itself is gone: reactivation does not bring it back.
    assert client.get(reverse("accounts:password_change")).status_code == 302


def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(db, staff_user):
    here, elsewhere = _signed_in(staff_user), _signed_in(staff_user)
    response = here.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": "a-new-Passphrase-42", "new_password2": "a-new-Passphrase-42"},
    )
    assert response.status_code == 302
    assert here.get(reverse("accounts:password_change")).status_code == 200
    response = elsewhere.get(reverse("accounts:password_change"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_password_reset_by_an_administrator_ends_every_session(db, staff_user):
    client = _signed_in(staff_user)
    staff_user.set_password("reset-by-admin-77")
    staff_user.save()
    assert client.get(reverse("accounts:password_change")).status_code == 302


def test_a_wrong_old_password_changes_nothing(db, staff_user):
    client = _signed_in(staff_user)
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": "wrong", "new_password1": "a-new-Passphrase-42", "new_password2": "a-new-Passphrase-42"},
    )
    assert response.status_code == 200
    staff_user.refresh_from_db()
    assert staff_user.check_password(PASSWORD)


def test_an_ended_session_is_in_the_audit_trail(db, staff_user, settings):
    from audit.models import AuditEvent

    client = _signed_in(staff_user)
    _age_session(client, **{LAST_SEEN: settings.SESSION_IDLE_SECONDS + 5})
    client.get(reverse("accounts:password_change"))
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SESSION_ENDED, user=staff_user).count() == 1
