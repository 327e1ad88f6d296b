"""On PostgreSQL an entry's after-commit step finds and marks the touched campaign units in one statement: the same
campaigns `campaigns_touched` finds, the same mark rules as `pending_mark`."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Campaign
from reports import engine
from reports.models import PendingRefresh
from tests.factories import CampaignFactory

D = datetime.date
pytestmark = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's one statement")


@pytest.fixture
def campaigns(province, foreign_unit):
    return {
        "march": CampaignFactory(province=province, start_date=D(2024, 3, 1), end_date=D(2024, 3, 31)),
        "may": CampaignFactory(province=province, start_date=D(2024, 5, 1), end_date=D(2024, 5, 31)),
        "plan": CampaignFactory(
            province=province, measure=Campaign.Measure.STOCK, start_date=D(2024, 1, 1), end_date=D(2024, 12, 31)
        ),
        "old_plan": CampaignFactory(
            province=province, measure=Campaign.Measure.STOCK, start_date=D(2023, 1, 1), end_date=D(2023, 12, 31)
        ),
        "foreign": CampaignFactory(province=foreign_unit.province, start_date=D(2024, 3, 1), end_date=D(2024, 3, 31)),
    }


@pytest.mark.parametrize(
    ("days", "coverage_since"),
    [
        ([D(2024, 3, 20)], D(2024, 3, 20)),
        ([D(2024, 3, 20), D(2024, 5, 2)], D(2023, 6, 1)),
        ([D(2024, 4, 15)], None),
        ([], D(2024, 2, 1)),
    ],
)
def test_one_statement_finds_what_campaigns_touched_finds(campaigns, unit, other_unit, days, coverage_since):
    expected = engine.campaigns_touched(unit_ids=[unit.pk, other_unit.pk], days=days, coverage_since=coverage_since)
    with CaptureQueriesContext(connection) as queries:
        touched = engine.pending_mark_touched(
            unit_ids=[unit.pk, other_unit.pk], days=days, coverage_since=coverage_since
        )
    assert len(queries) == 1
    assert touched == expected
    marks = {(c, u) for c, u in PendingRefresh.objects.values_list("campaign_id", "unit_id")}
    assert marks == {(c, u) for c, units in expected.items() for u in units}


def test_marking_again_keeps_the_earliest_day_and_coverage(campaigns, unit):
    plan = campaigns["plan"]
    engine.pending_mark_touched(unit_ids=[unit.pk], days=[D(2024, 3, 20)], coverage_since=D(2024, 3, 20))
    engine.pending_mark_touched(unit_ids=[unit.pk], days=[D(2024, 3, 25)], coverage_since=D(2024, 2, 1))
    mark = PendingRefresh.objects.get(campaign=plan, unit=unit)
    assert (mark.since, mark.coverage_since, mark.days_only) == (D(2024, 3, 20), D(2024, 2, 1), False)
    # A change without a coverage start (unknown) widens it to every comparison day.
    engine.pending_mark_touched(unit_ids=[unit.pk], days=[D(2024, 3, 25)], coverage_since=None)
    mark.refresh_from_db()
    assert mark.coverage_since is None
