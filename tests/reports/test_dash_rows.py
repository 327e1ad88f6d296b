"""The dashboard's first view reads the snapshot without model instances (selectors.dashboard_rows) and writes the
ranking in Python (RankingTable.fast_html): both must give what the ORM's rows and django-tables2 give."""

import re
from decimal import Decimal

import pytest
from django.test import RequestFactory
from django.utils import translation
from django_tables2 import RequestConfig

from reports import engine, selectors
from reports.models import AttainmentTotal
from reports.tables import RankingTable
from tests.factories import DistrictFactory
from tests.reports.conftest import D, enroll


@pytest.fixture
def snapshots(march_enrollments, stock_campaign, province):
    for n in range(4):
        unit = DistrictFactory(province=province, code=f"97{n:02d}", name=f"Huyện <Thử> & {n}")
        enroll(unit=unit, on=D(2024, 3, 15 + n))
    engine.snapshot_rebuild(campaigns=[march_enrollments, stock_campaign], as_of=D(2024, 3, 25))
    return march_enrollments, stock_campaign


def _as_dicts(rows):
    return [
        {
            **{name: getattr(r, name) for name in selectors.TOTAL_COLUMNS},
            "pk": r.pk,
            "unit": (r.unit.pk, r.unit.id, r.unit.code, r.unit.name, str(r.unit)) if r.unit else None,
            "scheme_display": r.get_scheme_display(),
            **{
                name: getattr(r, name)
                for name in dir(AttainmentTotal)
                if name.startswith("change_vs_") and isinstance(getattr(AttainmentTotal, name), property)
            },
        }
        for r in rows
    ]


@pytest.mark.parametrize("who", ["manager_user", "staff_user", "admin_user", "superuser"])
def test_the_dashboard_rows_are_the_scoped_snapshot_rows_in_the_models_order(snapshots, who, request):
    user = request.getfixturevalue(who) if who != "superuser" else None
    if user is None:
        from django.contrib.auth.models import User

        user = User.objects.create_superuser("root-dash", "root@example.com", "x")
    for campaign in snapshots:
        expected = list(selectors.scoped_totals(user, [campaign]).select_related("unit"))
        rows = selectors.dashboard_rows(user, campaign)
        assert len(rows) == len(expected) > 0
        assert _as_dicts(rows) == _as_dicts(expected)


def test_a_staff_member_reads_their_own_units_rows_only(snapshots, staff_user, unit):
    rows = selectors.dashboard_rows(staff_user, snapshots[0])
    assert rows and {r.unit_id for r in rows} == {unit.pk}


def _cells(markup):
    markup = re.sub(r"\s+", " ", str(markup))
    return [re.sub(r"\s*(<|>)\s*", r"\1", c) for c in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", markup)]


@pytest.mark.parametrize("language", ["vi", "en"])
@pytest.mark.parametrize("sort", [None, "-attained_pct", "unit", "-current_daily_pace"])
def test_the_fast_ranking_of_the_dashboard_rows_matches_django_tables2(snapshots, manager_user, language, sort):
    for campaign in snapshots:
        request = RequestFactory().get("/", {"sort": sort} if sort else {})
        request.user = manager_user
        rows = [r for r in selectors.dashboard_rows(manager_user, campaign) if r.unit_id]
        with translation.override(language):
            table = RankingTable(rows, campaign=campaign, show_achieved=campaign.is_stock)
            RequestConfig(request, paginate={"per_page": 100}).configure(table)
            fast, slow = _cells(table.fast_html()), _cells(table.as_html(request))
        assert len(fast) > 60
        assert fast == slow


@pytest.mark.parametrize("language", ["vi", "en"])
def test_figures_with_other_than_two_places_are_written_as_formatting_writes_them(snapshots, manager_user, language):
    """Not what the snapshot stores, but what a row could carry: more places are cut (not rounded) by
    reports.formatting, fewer are padded, and large numbers are grouped."""
    campaign = snapshots[0]
    rows = [r for r in selectors.dashboard_rows(manager_user, campaign) if r.unit_id]
    odd = (Decimal("1.005"), Decimal("2.999"), Decimal("7"), Decimal("1234567.5"), Decimal("-1234.25"), 3)
    for row, value in zip(rows, odd, strict=False):
        row.required_daily_pace = row.current_daily_pace = row.projected_at_end = row.attained_pct = value
    request = RequestFactory().get("/")
    request.user = manager_user
    with translation.override(language):
        table = RankingTable(rows, campaign=campaign)
        RequestConfig(request, paginate={"per_page": 100}).configure(table)
        fast, slow = _cells(table.fast_html()), _cells(table.as_html(request))
    assert fast == slow
    assert ("1,00" if language == "vi" else "1.00") in " ".join(fast)  # 1.005 cut, not rounded to 1,01
    assert ("1.234.567,50" if language == "vi" else "1,234,567.50") in " ".join(fast)


def test_the_cumulative_series_sums_the_units_day_by_day(snapshots, unit):
    campaign = snapshots[0]
    series = selectors.cumulative_series(campaign)
    own = selectors.cumulative_series(campaign, unit_id=unit.pk)
    for points in (*series.values(), *own.values()):
        assert all(isinstance(day, type(D(2024, 1, 1))) for day, _n in points)
        assert [day for day, _n in points] == sorted({day for day, _n in points})
        assert [n for _day, n in points] == sorted(n for _day, n in points)  # running totals
    daily = AttainmentTotal.objects.filter(campaign=campaign, unit__isnull=False)
    for scheme, points in series.items():
        expected = sum(r.enrolled for r in daily.filter(scheme=scheme))
        assert (points[-1][1] if points else 0) == expected


def test_the_attributes_are_written_as_django_tables2_writes_them():
    from django.utils.safestring import mark_safe
    from django_tables2.utils import AttributeDict

    from reports.tables import _attrs_html

    for attrs in (
        {"class": "text-end text-nowrap"},
        {"class": None, "id": "x"},
        {"class": 'a "b" <c> & d', "data-x": lambda: "called", "th": {"class": "no"}, "_ordering": {}},
        {"title": mark_safe("<b>safe</b>"), "data-n": 3},
        {},
    ):
        assert _attrs_html(AttributeDict(attrs)) == AttributeDict(attrs).as_html()
