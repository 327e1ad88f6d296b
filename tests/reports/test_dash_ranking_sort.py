"""The ranking's rows sort as django-tables2's own list data sorts them (reports.tables.RankingData), for every
column, both ways, several columns at once, with empty figures and ties."""

import copy
from decimal import Decimal

import pytest
from django.test import RequestFactory
from django_tables2 import RequestConfig
from django_tables2.data import TableListData

from reports import engine, selectors
from reports.tables import RankingData, RankingTable
from tests.factories import DistrictFactory
from tests.reports.conftest import D, enroll


@pytest.fixture
def rows(march_enrollments, province):
    for n in range(5):
        unit = DistrictFactory(province=province, code=f"98{n:02d}", name=f"Huyện {'AB'[n % 2]} {n}")
        enroll(unit=unit, on=D(2024, 3, 15 + n % 2))
    engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 25))
    return march_enrollments


def _with_gaps(rows):
    """Copies of the rows with some figures empty and some equal, so that the None handling and ties count."""
    out = []
    for n, row in enumerate(rows):
        row = copy.copy(row)
        if n % 3 == 0:
            row.attained_pct = row.required_daily_pace = row.rank_enrolled = None
        if n % 4 == 1:
            row.target, row.current_daily_pace = 7, Decimal("1.50")
        out.append(row)
    return out


def _order(data_class, rows, campaign, sort, user):
    request = RequestFactory().get("/", {"sort": sort} if sort is not None else {})
    request.user = user
    table = RankingTable(data_class(list(rows)), campaign=campaign)
    RequestConfig(request, paginate={"per_page": 100}).configure(table)
    return [r.id for r in table.data.data], list(table.order_by)


def test_the_ranking_sorts_its_rows_as_django_tables2_does(rows, manager_user):
    campaign = rows
    light = selectors.dashboard_rows(manager_user, campaign)
    models = list(selectors.scoped_totals(manager_user, [campaign]).select_related("unit"))
    names = [c.name for c in RankingTable([], campaign=campaign, show_achieved=True).columns if c.orderable]
    sorts = [None, "", "bogus", "-attained_pct,unit", *names, *(f"-{name}" for name in names)]
    checked = 0
    for data in (light, models, _with_gaps(light), _with_gaps([r for r in light if r.unit_id])):
        data = [r for r in data if r.unit_id]
        for sort in sorts:
            expected = _order(TableListData, data, campaign, sort, manager_user)
            assert _order(RankingData, data, campaign, sort, manager_user) == expected, sort
            checked += 1
    assert checked > 100


def test_several_columns_at_once_sort_as_django_tables2_does(rows, manager_user):
    campaign = rows
    data = _with_gaps([r for r in selectors.dashboard_rows(manager_user, campaign) if r.unit_id])
    for order_by in (("-target", "unit"), ("scheme", "-attained_pct"), ("on_track", "-required_daily_pace", "unit")):
        orders = []
        for data_class in (TableListData, RankingData):
            table = RankingTable(data_class(list(data)), campaign=campaign, order_by=order_by)
            orders.append([r.id for r in table.data.data])
        assert orders[0] == orders[1], order_by


def test_a_list_given_to_the_ranking_is_sorted_by_the_fast_data(rows, manager_user):
    table = RankingTable(selectors.dashboard_rows(manager_user, rows), campaign=rows)
    assert isinstance(table.data, RankingData)
