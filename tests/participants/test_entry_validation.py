import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from participants.models import Enrollment, Participant
from participants.services import si_number_normalise
from tests.factories import CommuneFactory, make_user
from tests.participants.conftest import entry_data, login

pytestmark = pytest.mark.django_db
URL = "participants:enrollment_create"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2401234567", "2401234567"),
        ("240 123 4567", "2401234567"),
        ("24.0123.4567", "2401234567"),
        ("２４０１２３４５６７", "2401234567"),
        (" 2401234567 ", "2401234567"),
        ("2401\u00a0234567", "2401234567"),
    ],
)
def test_si_number_normalisation_accepts_spaces_dots_and_full_width_digits(typed, expected):
    assert si_number_normalise(typed) == expected


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [
        ("240123456", "exactly 10 digits"),
        ("24012345678", "exactly 10 digits"),
        ("24O1234567", "only digits"),
        ("", "Enter the social insurance number"),
    ],
)
def test_si_number_normalisation_rejects_wrong_numbers_with_a_message(typed, fragment):
    with pytest.raises(ValidationError) as info:
        si_number_normalise(typed)
    assert fragment in info.value.messages[0]


def test_the_entry_page_saves_a_normalised_si_number_and_shows_the_kind(staff_client, commune):
    response = staff_client.post(reverse(URL), entry_data(commune, si_number="２４０.１２３ ４５６７"))
    assert response.status_code == 302
    assert Participant.objects.get().si_number == "2401234567"
    page = staff_client.get(response["Location"]).content.decode()
    assert "Saved." in page and "kind-new" in page and ">New<" in page


def test_the_entry_page_refuses_a_short_si_number_and_saves_nothing(staff_client, commune):
    response = staff_client.post(reverse(URL), entry_data(commune, si_number="12345"))
    assert response.status_code == 200
    assert "exactly 10 digits" in response.content.decode()
    assert not Enrollment.objects.exists() and not Participant.objects.exists()


def test_it_speaks_vietnamese_by_default(client, staff_user, commune):
    client.force_login(staff_user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "vi"
    response = client.post(reverse(URL), entry_data(commune, si_number="12345"))
    assert "đúng 10 chữ số" in response.content.decode()


def test_it_rejects_a_date_of_birth_in_the_future(staff_client, commune):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    response = staff_client.post(reverse(URL), entry_data(commune, date_of_birth=tomorrow.strftime("%d/%m/%Y")))
    assert "cannot be in the future" in response.content.decode()
    assert not Enrollment.objects.exists()


def test_it_rejects_a_vsi_participant_under_15_but_accepts_one_who_is_15(staff_client, commune):
    response = staff_client.post(
        reverse(URL), entry_data(commune, date_of_birth="15/03/2009", enrolled_on="14/03/2024")
    )
    assert "aged 15 or over" in response.content.decode()
    assert not Enrollment.objects.exists()
    response = staff_client.post(
        reverse(URL), entry_data(commune, date_of_birth="14/03/2009", enrolled_on="14/03/2024")
    )
    assert response.status_code == 302


def test_a_child_may_have_family_health_insurance(staff_client, commune):
    response = staff_client.post(reverse(URL), entry_data(commune, scheme="hi_family", date_of_birth="01/01/2020"))
    assert response.status_code == 302
    assert Enrollment.objects.get().scheme == "hi_family"


def test_it_rejects_a_date_recorded_tomorrow(staff_client, commune):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    response = staff_client.post(reverse(URL), entry_data(commune, enrolled_on=tomorrow.strftime("%d/%m/%Y")))
    assert "date recorded cannot be in the future" in response.content.decode()
    assert not Enrollment.objects.exists()


def test_date_recorded_defaults_to_today_in_ho_chi_minh_city(staff_client):
    response = staff_client.get(reverse(URL))
    today = timezone.localdate()  # TIME_ZONE is Asia/Ho_Chi_Minh
    assert f'value="{today:%d/%m/%Y}"' in response.content.decode()


def test_it_rejects_an_impossible_date_with_a_clear_message(staff_client, commune):
    response = staff_client.post(reverse(URL), entry_data(commune, date_of_birth="31/02/1985"))
    assert "Write the date as DD/MM/YYYY" in response.content.decode()


@pytest.mark.parametrize(
    ("scheme", "months", "ok"),
    [
        ("vsi", 1, True),
        ("vsi", 24, True),
        ("vsi", 60, True),
        ("vsi", 2, False),
        ("vsi", 13, False),
        ("hi_family", 12, True),
        ("hi_family", 6, False),
    ],
)
def test_months_paid_follow_the_scheme(staff_client, commune, scheme, months, ok):
    response = staff_client.post(reverse(URL), entry_data(commune, scheme=scheme, months=str(months)))
    assert (response.status_code == 302) is ok
    assert Enrollment.objects.exists() is ok
    if not ok:
        assert "months paid must be one of" in response.content.decode() or "valid choice" in response.content.decode()


def test_a_staff_member_cannot_record_in_a_commune_of_another_unit(staff_client, commune, other_commune):
    page = staff_client.get(reverse(URL)).content.decode()
    assert other_commune.name not in page and commune.name in page
    response = staff_client.post(reverse(URL), entry_data(other_commune))
    assert response.status_code == 200
    assert not Enrollment.objects.exists()


def test_a_province_wide_officer_picks_the_unit_first_and_only_its_communes_count(
    client, province, unit, other_unit, commune, other_commune
):
    officer = make_user("staff", province=province, unit=None, username="prov_staff")
    login(client, officer)
    page = client.get(reverse(URL)).content.decode()
    assert 'name="unit"' in page
    options = client.get(reverse("participants:unit_communes"), {"unit": other_unit.pk}).content.decode()
    assert other_commune.name in options and commune.name not in options
    response = client.post(reverse(URL), entry_data(other_commune, unit=unit.pk))
    assert response.status_code == 200 and not Enrollment.objects.exists()
    response = client.post(reverse(URL), entry_data(other_commune, unit=other_unit.pk))
    assert response.status_code == 302
    assert Enrollment.objects.get().unit == other_unit


def test_a_province_wide_officer_cannot_pick_a_unit_of_another_province(client, province, foreign_unit):
    officer = make_user("staff", province=province, unit=None, username="prov_staff")
    login(client, officer)
    foreign_commune = CommuneFactory(district=foreign_unit, code="98001")
    options = client.get(reverse("participants:unit_communes"), {"unit": foreign_unit.pk}).content.decode()
    assert foreign_commune.name not in options
    response = client.post(reverse(URL), entry_data(foreign_commune, unit=foreign_unit.pk))
    assert response.status_code == 200 and not Enrollment.objects.exists()


def test_an_agent_of_another_unit_is_refused(staff_client, province, commune, other_unit):
    from tests.factories import AgentFactory, OrganisationFactory

    elsewhere = AgentFactory(organisation=OrganisationFactory(province=province, unit=other_unit))
    response = staff_client.post(reverse(URL), entry_data(commune, agent=elsewhere.pk))
    assert response.status_code == 200 and not Enrollment.objects.exists()


def test_an_agent_of_the_unit_is_recorded_with_its_organisation(staff_client, commune, agent):
    response = staff_client.post(reverse(URL), entry_data(commune, agent=agent.pk))
    assert response.status_code == 302
    enrollment = Enrollment.objects.get()
    assert enrollment.agent == agent and enrollment.organisation == agent.organisation


def test_a_manager_cannot_open_the_entry_page(client, manager_user, commune):
    login(client, manager_user)
    assert client.get(reverse(URL)).status_code == 403
    assert client.post(reverse(URL), entry_data(commune)).status_code == 403
    assert not Enrollment.objects.exists()


def test_an_admin_can_record_for_a_unit_of_their_province(client, admin_user, unit, commune):
    login(client, admin_user)
    response = client.post(reverse(URL), entry_data(commune, unit=unit.pk))
    assert response.status_code == 302
    assert Enrollment.objects.get().recorded_by == admin_user


def test_staff_home_leads_to_the_entry_page_in_one_click(staff_client):
    response = staff_client.get("/")
    assert response["Location"] == reverse(URL)
    page = staff_client.get(reverse(URL)).content.decode()
    assert "autofocus" in page.split('name="si_number"')[1].split(">")[0]


def test_a_known_si_number_fills_in_the_person_from_the_users_unit(staff_client, unit, commune):
    from tests.factories import ParticipantFactory
    from tests.participants.conftest import record

    person = ParticipantFactory(si_number="2409999999", full_name="Phạm Văn Đông")
    record(person, unit=unit, commune=commune)
    fragment = staff_client.post(reverse("participants:participant_lookup"), {"si_number": "240 999 9999"})
    assert "Phạm Văn Đông" in fragment.content.decode()
    assert "01/06/1985" in fragment.content.decode()


def test_the_person_lookup_does_not_reveal_someone_known_only_elsewhere(staff_client, other_unit, other_commune):
    from tests.factories import ParticipantFactory
    from tests.participants.conftest import record

    person = ParticipantFactory(si_number="2409999998", full_name="Hoàng Thị Bí Mật")
    record(person, unit=other_unit, commune=other_commune)
    fragment = staff_client.post(reverse("participants:participant_lookup"), {"si_number": "2409999998"})
    assert "Bí Mật" not in fragment.content.decode()
    assert "No record of this person in your area" in fragment.content.decode()
    # and the inputs are left as the officer is typing them (nothing to swap in)
    assert 'name="full_name"' not in fragment.content.decode()


def test_a_known_number_with_another_date_of_birth_is_refused(staff_client, unit, commune):
    from tests.factories import ParticipantFactory

    ParticipantFactory(si_number="2401234567", date_of_birth=datetime.date(1970, 1, 1))
    response = staff_client.post(reverse(URL), entry_data(commune))
    assert "another date of birth" in response.content.decode()
    assert not Enrollment.objects.exists()
