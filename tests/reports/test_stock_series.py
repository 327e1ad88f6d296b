"""The daily series is stored for window campaigns only (the pages of an annual plan on the stock draw none): a plan's
enrolled, new and resumed are counted from the enrollments instead, on every path a run can take."""

import pytest

from campaigns.models import Campaign
from participants.models import EnrollmentKind, Scheme
from reports import engine
from reports.models import AttainmentDaily, AttainmentTotal
from reports.tasks import refresh_pending
from tests.factories import CampaignFactory
from tests.reports.conftest import D, enroll
from tests.reports.test_engine_batched import _campaigns

pytestmark = pytest.mark.django_db
AS_OF = D(2024, 6, 10)
VSI, HI = Scheme.VSI, Scheme.HI_FAMILY


def _growth(campaign):
    return {
        (r.unit_id, r.scheme): (r.enrolled, r.new, r.resumed) for r in AttainmentTotal.objects.filter(campaign=campaign)
    }


@pytest.mark.parametrize("every", [True, False], ids=["every campaign (build and swap)", "some campaigns"])
def test_a_plan_on_the_stock_keeps_no_daily_series_and_counts_its_growth_from_the_enrollments(
    every, province, foreign_unit, unit, other_unit
):
    spring, may, plan, abroad = _campaigns(province, foreign_unit, unit, other_unit)
    engine.snapshot_rebuild(campaigns=None if every else [spring, plan], as_of=AS_OF)

    assert not AttainmentDaily.objects.filter(campaign=plan).exists()
    assert AttainmentDaily.objects.filter(campaign=spring).exists()
    # By hand (tests/reports/test_engine_batched._campaigns): in 2024 up to 10/6 the unit has five new VSI entries
    # (1/3, 15/3, 30/4, 1/5, 20/5; the renewal of 15/3 and the entry of 20/11/2023 do not count); the other unit
    # five family health insurance entries, new on 15/3 and 1/5, resumed on 1/3, 30/4 and 20/5.
    growth = _growth(plan)
    assert growth[(unit.pk, VSI)] == (5, 5, 0)
    assert growth[(other_unit.pk, HI)] == (5, 2, 3)
    assert growth[(other_unit.pk, VSI)] == (0, 0, 0)
    assert growth[(None, VSI)] == (5, 5, 0)
    assert growth[(None, HI)] == (5, 2, 3)


def test_a_refresh_moves_a_plans_growth_without_writing_it_a_daily_series(province, foreign_unit, unit, other_unit):
    spring, may, plan, abroad = _campaigns(province, foreign_unit, unit, other_unit)
    # The default as-of date (the campaigns ended in 2024: the day after their end), as the refresh takes it.
    engine.snapshot_rebuild(campaigns=[spring, may, plan, abroad])
    enroll(unit=unit, on=D(2024, 6, 3))
    enroll(unit=other_unit, on=D(2024, 6, 4), scheme=HI, kind=EnrollmentKind.RESUMED)
    enroll(unit=unit, on=D(2024, 6, 4), kind=EnrollmentKind.RENEWAL)
    touched = engine.campaigns_touched(unit_ids=[unit.pk, other_unit.pk], days=[D(2024, 6, 3), D(2024, 6, 4)])
    assert plan.pk in touched
    engine.pending_mark(touched, since=D(2024, 6, 3))
    assert refresh_pending()["campaigns"] == len(touched)
    assert AttainmentTotal.objects.filter(campaign=plan, run__kind="incremental").exists()

    assert not AttainmentDaily.objects.filter(campaign=plan).exists()
    growth = _growth(plan)
    assert growth[(unit.pk, VSI)] == (6, 6, 0)
    assert growth[(other_unit.pk, HI)] == (6, 2, 4)
    assert growth[(None, VSI)] == (6, 6, 0)


def test_a_window_campaign_turned_into_a_plan_on_the_stock_loses_its_daily_series(province, unit, other_unit):
    campaign = CampaignFactory(province=province, slug="turned", start_date=D(2024, 3, 1), end_date=D(2024, 5, 31))
    enroll(unit=unit, on=D(2024, 3, 5))
    engine.snapshot_rebuild(campaigns=[campaign], as_of=AS_OF)
    assert AttainmentDaily.objects.filter(campaign=campaign).exists()
    Campaign.objects.filter(pk=campaign.pk).update(measure=Campaign.Measure.STOCK)
    campaign.refresh_from_db()
    engine.snapshot_rebuild(campaigns=[campaign], as_of=AS_OF)
    assert not AttainmentDaily.objects.filter(campaign=campaign).exists()
    assert _growth(campaign)[(unit.pk, VSI)] == (1, 1, 0)
