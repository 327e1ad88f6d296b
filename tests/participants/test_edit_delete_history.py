import datetime

import pytest
from django.urls import reverse

from participants.models import Enrollment
from tests.factories import ParticipantFactory, make_user
from tests.participants.conftest import entry_data, login, record

pytestmark = pytest.mark.django_db
D = datetime.date


@pytest.fixture
def mine(unit, commune, staff_user):
    person = ParticipantFactory(si_number="2401234567", full_name="Nguyễn Thị Hoa", date_of_birth=D(1985, 6, 1))
    return record(person, unit=unit, commune=commune, start=D(2024, 3, 1), enrolled_on=D(2024, 3, 14), user=staff_user)


def edit_data(commune, **overrides):
    data = entry_data(commune, **overrides)
    data.pop("si_number")
    return data


def test_the_recorder_can_change_their_enrollment_and_the_history_shows_old_and_new(staff_client, mine, commune):
    response = staff_client.post(
        reverse("participants:enrollment_edit", args=[mine.pk]), edit_data(commune, months="6")
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.months == 6 and mine.coverage_end == D(2024, 9, 1)
    page = staff_client.get(reverse("participants:enrollment_detail", args=[mine.pk])).content.decode()
    history = page.split('id="history"')[1]
    assert "Months paid: 12 → 6" in history
    assert "Coverage end: 01/03/2025 → 01/09/2024" in history
    assert "staff1" in history and "Recorded" in history


def test_another_officer_of_the_same_unit_may_read_but_not_change(client, province, unit, mine, commune):
    colleague = make_user("staff", province=province, unit=unit, username="colleague")
    login(client, colleague)
    assert client.get(reverse("participants:enrollment_detail", args=[mine.pk])).status_code == 200
    assert client.get(reverse("participants:enrollment_edit", args=[mine.pk])).status_code == 403
    assert (
        client.post(reverse("participants:enrollment_edit", args=[mine.pk]), edit_data(commune, months="6")).status_code
        == 403
    )
    assert client.post(reverse("participants:enrollment_delete", args=[mine.pk])).status_code == 403
    mine.refresh_from_db()
    assert mine.months == 12


def test_a_manager_can_neither_change_nor_delete(client, manager_user, mine):
    login(client, manager_user)
    assert client.get(reverse("participants:enrollment_detail", args=[mine.pk])).status_code == 200
    assert client.post(reverse("participants:enrollment_delete", args=[mine.pk])).status_code == 403
    assert Enrollment.objects.filter(pk=mine.pk).exists()


def test_an_admin_of_the_province_can_change_any_enrollment(client, admin_user, mine, commune, unit):
    login(client, admin_user)
    response = client.post(
        reverse("participants:enrollment_edit", args=[mine.pk]), edit_data(commune, unit=unit.pk, scheme="hi_family")
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.scheme == "hi_family"
    assert mine.history.first().history_user == admin_user


def test_an_edit_that_would_overlap_another_coverage_is_refused(staff_client, mine, unit, commune, staff_user):
    later = record(mine.participant, unit=unit, commune=commune, start=D(2025, 3, 1), user=staff_user)
    response = staff_client.post(
        reverse("participants:enrollment_edit", args=[mine.pk]), edit_data(commune, months="24")
    )
    assert response.status_code == 200
    assert f"record no. {later.pk}" in response.content.decode()
    mine.refresh_from_db()
    assert mine.months == 12


def test_an_edit_goes_through_the_same_validations(staff_client, mine, commune):
    response = staff_client.post(
        reverse("participants:enrollment_edit", args=[mine.pk]), edit_data(commune, months="5")
    )
    assert response.status_code == 200
    mine.refresh_from_db()
    assert mine.months == 12


def test_an_edit_cannot_change_the_si_number(staff_client, mine, commune):
    staff_client.post(
        reverse("participants:enrollment_edit", args=[mine.pk]), entry_data(commune, si_number="2409999999", months="6")
    )
    mine.refresh_from_db()
    assert mine.participant.si_number == "2401234567"


def test_deleting_keeps_the_history_and_re_derives_the_next_kind(staff_client, mine, unit, commune, staff_user):
    later = record(mine.participant, unit=unit, commune=commune, start=D(2025, 3, 1), user=staff_user)
    assert later.kind == "renewal"
    response = staff_client.post(reverse("participants:enrollment_delete", args=[mine.pk]))
    assert response.status_code == 302
    assert not Enrollment.objects.filter(pk=mine.pk).exists()
    deleted = Enrollment.history.filter(id=mine.pk, history_type="-").get()
    assert deleted.history_user.username == "staff1"
    later.refresh_from_db()
    assert later.kind == "new"


def test_the_delete_page_asks_first(staff_client, mine):
    response = staff_client.get(reverse("participants:enrollment_delete", args=[mine.pk]))
    assert response.status_code == 200
    assert Enrollment.objects.filter(pk=mine.pk).exists()
