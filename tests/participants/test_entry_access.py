"""The request's user is read once with their role, scope and second-factor device (accounts.backends,
districts.scoping.access_queryset): what that one query says must be what the separate questions said."""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.backends import ScopedModelBackend
from districts.scoping import has_confirmed_device, role_of, scope_of
from tests.factories import make_user
from tests.participants.conftest import entry_data

pytestmark = pytest.mark.django_db
URL = "participants:enrollment_create"


@pytest.mark.parametrize(
    "groups, role",
    [
        (["staff", "manager", "admin"], "admin"),
        (["staff", "manager"], "manager"),
        (["manager", "staff"], "manager"),
        (["staff"], "staff"),
        (["other"], None),
        ([], None),
    ],
)
def test_the_strongest_group_is_the_users_role_when_read_with_the_user(province, unit, groups, role):
    user = make_user("staff", province=province, unit=unit, username="nhieu_nhom")
    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in groups])
    loaded = ScopedModelBackend().get_user(user.pk)
    assert role_of(loaded) == role
    assert scope_of(loaded).unit == unit and scope_of(loaded).province == province
    # The same answer when the caches are filled by the separate load (a user object not read by the backend).
    assert role_of(User.objects.get(pk=user.pk)) == role


def test_the_device_flag_counts_only_confirmed_devices(province, unit):
    user = make_user("staff", province=province, unit=unit, username="thiet_bi")
    assert has_confirmed_device(ScopedModelBackend().get_user(user.pk)) is False
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=False)
    assert has_confirmed_device(ScopedModelBackend().get_user(user.pk)) is False
    device.confirmed = True
    device.save()
    assert has_confirmed_device(ScopedModelBackend().get_user(user.pk)) is True
    assert has_confirmed_device(User.objects.get(pk=user.pk)) is True


def test_a_deactivated_user_is_not_loaded_and_their_session_ends(client, staff_user, commune):
    client.force_login(staff_user)
    User.objects.filter(pk=staff_user.pk).update(is_active=False)
    assert ScopedModelBackend().get_user(staff_user.pk) is None
    response = client.post(reverse(URL), entry_data(commune))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert "_auth_user_id" not in client.session


def test_a_role_taken_away_counts_from_the_next_request(client, staff_user, commune):
    client.force_login(staff_user)
    assert client.get(reverse(URL)).status_code == 200
    staff_user.groups.clear()
    assert client.post(reverse(URL), entry_data(commune)).status_code == 403


def test_a_confirmed_device_added_since_the_sign_in_is_asked_for_on_the_next_request(client, staff_user):
    client.force_login(staff_user)
    assert client.get(reverse(URL)).status_code == 200
    TOTPDevice.objects.create(user=staff_user, name="phone", confirmed=True)
    response = client.get(reverse(URL))
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:otp_verify"))
