"""The dashboard's breakdown by age band, gender and occupation, checked by hand on exact data."""

from participants.models import EnrollmentKind, Participant, Scheme
from reports import selectors
from tests.factories import ParticipantFactory
from tests.reports.conftest import D, enroll


def test_the_breakdown_counts_each_group_per_scheme_from_one_grouped_query(
    march_campaign, unit, other_unit, foreign_unit, manager_user, django_assert_num_queries
):
    young_male_farmer = ParticipantFactory(
        date_of_birth=D(2000, 1, 1), gender=Participant.Gender.MALE, occupation=Participant.Occupation.FARMER
    )
    # 25 on the window's first day exactly (14/3/1999): in 25_34, not under_25.
    boundary_female_trader = ParticipantFactory(
        date_of_birth=D(1999, 3, 14), gender=Participant.Gender.FEMALE, occupation=Participant.Occupation.TRADER
    )
    old_female_farmer = ParticipantFactory(
        date_of_birth=D(1960, 5, 5), gender=Participant.Gender.FEMALE, occupation=Participant.Occupation.FARMER
    )
    enroll(unit=unit, on=D(2024, 3, 14), participant=young_male_farmer)
    enroll(unit=unit, on=D(2024, 3, 20), participant=young_male_farmer, scheme=Scheme.HI_FAMILY)
    enroll(unit=other_unit, on=D(2024, 3, 31), participant=boundary_female_trader, kind=EnrollmentKind.RESUMED)
    enroll(unit=unit, on=D(2024, 3, 15), participant=old_female_farmer, scheme=Scheme.HI_FAMILY)
    # Not counted: a renewal, a day after the window, another province.
    enroll(unit=unit, on=D(2024, 3, 16), kind=EnrollmentKind.RENEWAL, coverage_start=D(2025, 1, 1))
    enroll(unit=unit, on=D(2024, 4, 1), participant=old_female_farmer)
    enroll(unit=foreign_unit, on=D(2024, 3, 20))

    with django_assert_num_queries(2):  # the user's scope, then one grouped query
        data = selectors.breakdown(manager_user, march_campaign, D(2024, 4, 30))

    def g(group, total, vsi, hi_family):
        return {"group": group, "total": total, Scheme.VSI: vsi, Scheme.HI_FAMILY: hi_family}

    assert data["age"] == [g("under_25", 2, 1, 1), g("25_34", 1, 1, 0), g("55_plus", 1, 0, 1)]
    assert data["gender"] == [g("female", 2, 1, 1), g("male", 2, 1, 1)]
    assert data["occupation"] == [g("farmer", 3, 1, 2), g("trader", 1, 1, 0)]

    only_other_unit = selectors.breakdown(manager_user, march_campaign, D(2024, 4, 30), unit=other_unit)
    assert only_other_unit["gender"] == [g("female", 1, 1, 0)]
