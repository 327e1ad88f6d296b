import pytest
from django.contrib.auth.models import User
from django.urls import NoReverseMatch, reverse

from districts.scoping import role_of, visible_communes, visible_units
from districts.views import ROLE_HOME
from tests.factories import CommuneFactory

pytestmark = pytest.mark.django_db


def expected_home(role):
    for name in ROLE_HOME[role]:
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return None


def test_signing_in_with_the_right_password_leads_home(client, staff_user):
    response = client.post(reverse("login"), {"username": "staff1", "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_signing_in_with_a_wrong_password_says_so_and_signs_nobody_in(client, staff_user):
    response = client.post(reverse("login"), {"username": "staff1", "password": "wrong"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert response.context["form"].errors


@pytest.mark.parametrize(
    "fixture, role", [("staff_user", "staff"), ("manager_user", "manager"), ("admin_user", "admin")]
)
def test_the_home_page_takes_each_role_to_its_work(client, request, fixture, role):
    user = request.getfixturevalue(fixture)
    assert role_of(user) == role
    client.force_login(user)
    response = client.get(reverse("home"))
    target = expected_home(role)
    if target:
        assert response.status_code == 302 and response["Location"] == target
    else:
        assert response.status_code == 200


def test_a_user_without_a_role_is_told_to_ask_for_one(client):
    user = User.objects.create_user("nobody", password="correct-horse-battery")
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "chưa được phân vai trò" in response.content.decode()


def test_signing_out_ends_the_session(client, staff_user):
    client.force_login(staff_user)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_staff_of_a_unit_see_only_that_unit_and_its_communes(
    staff_user, unit, other_unit, foreign_unit, commune, other_commune
):
    CommuneFactory(district=foreign_unit)
    assert list(visible_units(staff_user)) == [unit]
    assert list(visible_communes(staff_user)) == [commune]


def test_a_manager_sees_the_whole_province_but_not_another(manager_user, unit, other_unit, foreign_unit):
    assert set(visible_units(manager_user)) == {unit, other_unit}


def test_a_user_without_a_scope_sees_nothing(unit):
    user = User.objects.create_user("loose", password="correct-horse-battery")
    assert list(visible_units(user)) == []


def test_the_page_speaks_english_when_asked(client, staff_user):
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    response = client.get(reverse("login"))
    assert "Sign in" in response.content.decode()
