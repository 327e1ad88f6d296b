"""The database itself refuses data that breaks a rule one row can state."""

import datetime

import pytest
from django.db import DataError, IntegrityError, connection, transaction

from campaigns.models import Target
from participants.models import Enrollment, EnrollmentKind, Scheme
from tests.factories import CampaignFactory, CommuneFactory, DistrictFactory, ParticipantFactory, ProvinceFactory

pytestmark = pytest.mark.django_db


def refused(make):
    # PostgreSQL reports a value too long for its column as a DataError; both mean "refused by the database".
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        make()


def test_it_refuses_a_second_participant_with_the_same_si_number():
    ParticipantFactory(si_number="2412345678")
    refused(lambda: ParticipantFactory(si_number="2412345678"))


@pytest.mark.parametrize("bad", ["241234567", "24123456789", "24123A5678", "２４１２３４５６７８"])
def test_it_refuses_an_si_number_that_is_not_ten_ascii_digits(bad):
    refused(lambda: ParticipantFactory(si_number=bad))


def test_it_refuses_a_campaign_that_ends_before_it_starts():
    refused(lambda: CampaignFactory(start_date=datetime.date(2024, 3, 31), end_date=datetime.date(2024, 3, 14)))


def test_a_one_day_campaign_is_allowed():
    campaign = CampaignFactory(start_date=datetime.date(2024, 3, 14), end_date=datetime.date(2024, 3, 14))
    assert campaign.days_in_window == 1


def test_it_refuses_an_unknown_campaign_status():
    refused(lambda: CampaignFactory(status="paused"))


def test_it_refuses_two_targets_for_the_same_campaign_unit_and_scheme():
    campaign = CampaignFactory()
    unit = DistrictFactory(province=campaign.province)
    Target.objects.create(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=20)
    refused(lambda: Target.objects.create(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=30))


def test_it_refuses_two_province_level_targets_for_one_scheme():
    campaign = CampaignFactory()
    Target.objects.create(campaign=campaign, unit=None, scheme=Scheme.HI_FAMILY, value=390)
    refused(lambda: Target.objects.create(campaign=campaign, unit=None, scheme=Scheme.HI_FAMILY, value=400))


def test_a_unit_and_the_province_may_each_have_a_target_for_the_same_scheme():
    campaign = CampaignFactory()
    unit = DistrictFactory(province=campaign.province)
    Target.objects.create(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=20)
    Target.objects.create(campaign=campaign, unit=None, scheme=Scheme.VSI, value=260)
    assert campaign.targets.count() == 2


def test_it_refuses_a_negative_target():
    campaign = CampaignFactory()
    with connection.cursor() as cursor, pytest.raises(IntegrityError), transaction.atomic():
        cursor.execute(
            "INSERT INTO campaigns_target (campaign_id, unit_id, scheme, value) VALUES (%s, NULL, 'vsi', -1)",
            [campaign.pk],
        )


def test_it_refuses_an_unknown_scheme_on_a_target():
    campaign = CampaignFactory()
    refused(lambda: Target.objects.create(campaign=campaign, unit=None, scheme="pension", value=1))


def _enrollment(**overrides):
    unit = overrides.pop("unit", None) or DistrictFactory()
    values = dict(
        participant=overrides.pop("participant", None) or ParticipantFactory(),
        scheme=Scheme.VSI,
        kind=EnrollmentKind.NEW,
        enrolled_on=datetime.date(2024, 3, 15),
        coverage_start=datetime.date(2024, 3, 1),
        coverage_end=datetime.date(2024, 4, 1),
        months=1,
        unit=unit,
        commune=CommuneFactory(district=unit),
    )
    values.update(overrides)
    return Enrollment.objects.create(**values)


def test_it_refuses_an_enrollment_whose_coverage_ends_before_it_starts():
    refused(lambda: _enrollment(coverage_end=datetime.date(2024, 2, 1)))


@pytest.mark.parametrize("months", [0, 61])
def test_it_refuses_months_paid_outside_1_to_60(months):
    refused(lambda: _enrollment(months=months))


def test_it_refuses_an_unknown_enrollment_kind():
    refused(lambda: _enrollment(kind="transfer"))


def test_it_refuses_two_enrollments_of_one_person_starting_the_same_day_in_one_scheme():
    person = ParticipantFactory()
    _enrollment(participant=person)
    refused(lambda: _enrollment(participant=person))


def test_on_postgresql_it_refuses_overlapping_coverage_even_with_different_starts():
    if connection.vendor != "postgresql":
        pytest.skip("exclusion constraints exist on PostgreSQL only")
    person = ParticipantFactory()
    _enrollment(
        participant=person, coverage_start=datetime.date(2024, 1, 1), coverage_end=datetime.date(2024, 7, 1), months=6
    )
    refused(
        lambda: _enrollment(
            participant=person, coverage_start=datetime.date(2024, 6, 1), coverage_end=datetime.date(2024, 7, 1)
        )
    )


def test_on_postgresql_back_to_back_coverage_is_allowed():
    person = ParticipantFactory()
    _enrollment(participant=person, coverage_start=datetime.date(2024, 1, 1), coverage_end=datetime.date(2024, 2, 1))
    _enrollment(participant=person, coverage_start=datetime.date(2024, 2, 1), coverage_end=datetime.date(2024, 3, 1))
    assert Enrollment.objects.filter(participant=person).count() == 2


def test_a_unit_cannot_be_deleted_once_it_has_communes():
    unit = DistrictFactory()
    CommuneFactory(district=unit)
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        unit.delete()


def test_a_province_cannot_be_deleted_while_a_campaign_uses_it():
    province = ProvinceFactory()
    CampaignFactory(province=province)
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        province.delete()
