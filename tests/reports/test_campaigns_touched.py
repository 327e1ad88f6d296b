import datetime

import pytest

from campaigns.models import Campaign
from reports.engine import campaigns_touched
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def test_a_change_spanning_thousands_of_days_finds_its_campaigns_without_a_huge_query(province, unit, foreign_unit):
    march = CampaignFactory(
        province=province, start_date=datetime.date(2024, 3, 14), end_date=datetime.date(2024, 3, 31)
    )
    between = CampaignFactory(
        province=province, start_date=datetime.date(2024, 6, 1), end_date=datetime.date(2024, 6, 30)
    )
    CampaignFactory(
        province=foreign_unit.province, start_date=datetime.date(2024, 3, 1), end_date=datetime.date(2024, 3, 31)
    )
    first = datetime.date(2020, 1, 1)
    # Every day from 2020 to mid-2025 except June 2024: SQLite once refused this with "Expression tree is too large".
    days = [
        first + datetime.timedelta(n)
        for n in range(2000)
        if (first + datetime.timedelta(n)).strftime("%Y-%m") != "2024-06"
    ]
    touched = campaigns_touched(unit_ids=[unit.pk], days=days)
    assert touched == {march.pk: {unit.pk}}
    assert between.pk not in touched


def test_stock_campaigns_are_touched_whatever_the_day_unless_coverage_starts_after_them(province, unit):
    plan = CampaignFactory(
        province=province,
        measure=Campaign.Measure.STOCK,
        start_date=datetime.date(2024, 1, 1),
        end_date=datetime.date(2024, 12, 31),
    )
    assert campaigns_touched(unit_ids=[unit.pk], days=[datetime.date(2026, 1, 5)]) == {plan.pk: {unit.pk}}
    assert (
        campaigns_touched(
            unit_ids=[unit.pk], days=[datetime.date(2026, 1, 5)], coverage_since=datetime.date(2025, 2, 1)
        )
        == {}
    )
