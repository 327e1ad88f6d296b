"""The provincial office is a unit of its own with no communes: it enrols people from any commune of its province."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from districts.models import District
from districts.scoping import ROLE_STAFF, visible_communes
from participants.models import Scheme
from participants.services import validate_enrollment_fields
from tests.factories import CommuneFactory, DistrictFactory, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def office(province):
    return DistrictFactory(
        province=province, code="VP924", name="Văn phòng BHXH tỉnh Bắc Thử", kind=District.Kind.PROVINCIAL_OFFICE
    )


@pytest.fixture
def office_staff(province, office):
    return make_user(ROLE_STAFF, province=province, unit=office, username="office1")


def test_the_office_may_enrol_someone_from_any_commune_of_its_province(office, commune, other_commune):
    for c in (commune, other_commune):
        validate_enrollment_fields(scheme=Scheme.VSI, months=1, unit=office, commune=c)


def test_the_office_may_not_enrol_someone_from_another_province(office, foreign_unit):
    foreign_commune = CommuneFactory(district=foreign_unit)
    with pytest.raises(ValidationError) as caught:
        validate_enrollment_fields(scheme=Scheme.VSI, months=1, unit=office, commune=foreign_commune)
    assert "commune" in caught.value.message_dict


def test_a_district_unit_still_may_not_use_another_districts_commune(unit, other_commune):
    with pytest.raises(ValidationError):
        validate_enrollment_fields(scheme=Scheme.VSI, months=1, unit=unit, commune=other_commune)


def test_office_staff_see_the_communes_of_the_whole_province_and_no_other(
    office_staff, commune, other_commune, foreign_unit
):
    CommuneFactory(district=foreign_unit)
    assert set(visible_communes(office_staff)) == {commune, other_commune}


def test_office_staff_record_an_enrollment_from_a_district_commune_in_the_browser_form(
    client, office_staff, office, other_commune
):
    client.force_login(office_staff)
    response = client.post(
        "/enrollments/new/",
        {
            "si_number": "2400000999",
            "full_name": "Nguyễn Văn Tỉnh",
            "date_of_birth": "01/02/1980",
            "gender": "male",
            "unit": office.pk,
            "commune": other_commune.pk,
            "scheme": "vsi",
            "enrolled_on": datetime.date.today().strftime("%d/%m/%Y"),
            "coverage_start": datetime.date.today().strftime("%d/%m/%Y"),
            "months": 1,
        },
    )
    assert response.status_code in (200, 302)
    from participants.models import Enrollment

    enrollment = Enrollment.objects.get(participant__si_number="2400000999")
    assert enrollment.unit == office and enrollment.commune == other_commune


def test_a_list_uploaded_by_office_staff_is_recorded_as_the_offices_enrollments(
    office_staff, office, commune, other_commune
):
    from participants.importing import import_apply
    from participants.models import Enrollment

    rows = [
        {
            "si_number": si,
            "full_name": "Lê Thị Tỉnh",
            "date_of_birth": "1975-05-05",
            "gender": "female",
            "commune_code": c.code,
            "scheme": "hi_family",
            "enrolled_on": "2024-03-20",
            "coverage_start": "2024-04-01",
            "months": "12",
            "collection_agent_code": "",
            "_row": row,
        }
        for row, (si, c) in enumerate((("2400000777", commune), ("2400000778", other_commune)), start=2)
    ]
    plan = import_apply(rows=rows, user=office_staff)
    assert not plan.errors
    assert set(Enrollment.objects.values_list("unit__code", flat=True)) == {"VP924"}
