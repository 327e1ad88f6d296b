"""django-axes locks an account after repeated failures, keyed on the username and on username + client address,
and the client's address comes only from where the deployment says it may."""

import pytest
from axes.models import AccessAttempt
from django.urls import reverse

from audit.models import AuditEvent

PASSWORD = "correct-horse-battery"


def _fail(client, username, times, **extra):
    for _ in range(times):
        client.post(reverse("login"), {"username": username, "password": "wrong-password"}, **extra)


def test_an_account_is_locked_after_the_failure_limit_even_with_the_right_password(client, staff_user, settings):
    _fail(client, "staff1", settings.AXES_FAILURE_LIMIT)
    response = client.post(reverse("login"), {"username": "staff1", "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert "accounts/locked_out.html" in [t.name for t in response.templates]
    assert "Đăng nhập bị khóa" in response.content.decode()  # in Vietnamese, the default language


def test_one_failure_fewer_than_the_limit_still_lets_the_right_password_in(client, staff_user, settings):
    _fail(client, "staff1", settings.AXES_FAILURE_LIMIT - 1)
    response = client.post(reverse("login"), {"username": "staff1", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff_user.pk)


def test_the_lock_follows_the_username_to_another_address(client, staff_user, settings):
    _fail(client, "staff1", settings.AXES_FAILURE_LIMIT, REMOTE_ADDR="10.0.0.1")
    response = client.post(reverse("login"), {"username": "staff1", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2")
    assert response.status_code == 429


def test_failures_on_one_username_do_not_lock_another_user_at_the_same_address(
    client, staff_user, manager_user, settings
):
    _fail(client, "staff1", settings.AXES_FAILURE_LIMIT)
    response = client.post(reverse("login"), {"username": "manager1", "password": PASSWORD})
    assert response.status_code == 302


def test_a_forwarded_header_cannot_choose_the_address_when_no_proxy_is_configured(client, staff_user):
    client.post(
        reverse("login"),
        {"username": "staff1", "password": "wrong-password"},
        REMOTE_ADDR="198.51.100.7",
        HTTP_X_FORWARDED_FOR="203.0.113.99",
        HTTP_X_REAL_IP="203.0.113.98",
    )
    attempt = AccessAttempt.objects.get(username="staff1")
    assert attempt.ip_address == "198.51.100.7"
    event = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_FAILED)
    assert event.ip == "198.51.100.7"


def test_behind_a_proxy_the_configured_header_gives_the_address(client, staff_user, settings):
    settings.CLIENT_IP_HEADERS = ["HTTP_X_REAL_IP", "REMOTE_ADDR"]
    _fail(client, "staff1", 1, REMOTE_ADDR="10.9.9.9", HTTP_X_REAL_IP="203.0.113.5")
    assert AccessAttempt.objects.get(username="staff1").ip_address == "203.0.113.5"


def test_only_the_right_most_forwarded_for_entry_is_believed(client, staff_user, settings):
    settings.CLIENT_IP_HEADERS = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
    # The client wrote "1.2.3.4" itself; the proxy appended the address it really saw.
    _fail(client, "staff1", 1, REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.6")
    assert AccessAttempt.objects.get(username="staff1").ip_address == "203.0.113.6"


@pytest.mark.parametrize("forged", ["not-an-ip", "203.0.113.5<script>", "", "999.1.1.1", "1.2.3.4 , "])
def test_a_malformed_proxy_header_falls_back_to_the_socket_address(client, staff_user, settings, forged):
    settings.CLIENT_IP_HEADERS = ["HTTP_X_REAL_IP"]
    _fail(client, "staff1", 1, REMOTE_ADDR="10.9.9.9", HTTP_X_REAL_IP=forged)
    assert AccessAttempt.objects.get(username="staff1").ip_address == "10.9.9.9"


def test_rotating_a_forged_header_does_not_escape_the_username_lock(client, staff_user, settings):
    # Even behind a proxy that passes client headers through, the username alone is a lock-out key.
    settings.CLIENT_IP_HEADERS = ["HTTP_X_REAL_IP", "REMOTE_ADDR"]
    for i in range(settings.AXES_FAILURE_LIMIT):
        _fail(client, "staff1", 1, HTTP_X_REAL_IP=f"203.0.113.{i + 1}")
    response = client.post(
        reverse("login"), {"username": "staff1", "password": PASSWORD}, HTTP_X_REAL_IP="203.0.113.200"
    )
    assert response.status_code == 429


def test_failed_sign_ins_and_the_lock_out_are_in_the_audit_trail(client, staff_user, settings):
    _fail(client, "staff1", settings.AXES_FAILURE_LIMIT + 1)
    actions = list(AuditEvent.objects.filter(username="staff1").values_list("action", flat=True))
    assert actions.count(AuditEvent.Action.LOGIN_FAILED) == settings.AXES_FAILURE_LIMIT + 1
    assert AuditEvent.Action.LOCKED_OUT in actions
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED, user=staff_user).exists()
