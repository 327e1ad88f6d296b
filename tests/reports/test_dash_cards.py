"""The dashboard's headline cards are written in Python (views.cards_html) for its first view: the same markup as
the template reports/inc/cards.html, which the unit page still includes."""

import copy
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.utils import translation

from reports import engine, selectors
from reports.models import AttainmentTotal
from reports.views import cards_html
from tests.reports.conftest import D


@pytest.fixture
def snapshots(march_enrollments, stock_campaign):
    engine.snapshot_rebuild(campaigns=[march_enrollments, stock_campaign], as_of=D(2024, 3, 25))
    return march_enrollments, stock_campaign


def _variants(rows):
    """The rows as stored, and as they could be: no target, behind or on track, no figures, odd decimals."""
    yield rows
    yield rows[:1]
    yield []
    changed = []
    for n, row in enumerate(rows):
        row = copy.copy(row)
        row.has_target = n % 2 == 0
        row.on_track = n % 3 == 0
        row.attained_pct = (None, Decimal("99.50"), Decimal("100.49"), Decimal("1234.5"), Decimal("0.004"))[n % 5]
        row.required_daily_pace = None if n % 2 else Decimal("12345.678")
        row.rank_enrolled = None if n % 4 == 1 else n + 1
        row.active_prev_month_end = None if n % 3 == 1 else 0 if n % 3 == 2 else row.active_prev_month_end
        row.achieved, row.target = 36421 + n, 1_000_000
        changed.append(row)
    yield changed


@pytest.mark.parametrize("language", ["vi", "en"])
@pytest.mark.parametrize("who", ["manager_user", "staff_user"])
def test_the_cards_written_directly_match_the_template(snapshots, language, who, request):
    user = request.getfixturevalue(who)
    for campaign in snapshots:
        light = selectors.dashboard_rows(user, campaign)
        models = list(selectors.scoped_totals(user, [campaign]).select_related("unit"))
        for rows in (light, models, [r for r in light if r.unit_id], [r for r in light if r.unit_id is None]):
            for variant in _variants(rows):
                with translation.override(language):
                    expected = render_to_string("reports/inc/cards.html", {"rows": variant, "campaign": campaign})
                    assert cards_html(variant, campaign) == expected


def test_the_cards_show_the_stock_comparisons_only_on_a_stock_campaign(snapshots, manager_user):
    window, stock = snapshots
    with translation.override("en"):
        assert "Against the end of last year" not in cards_html(selectors.dashboard_rows(manager_user, window), window)
        assert "Against the end of last year" in cards_html(selectors.dashboard_rows(manager_user, stock), stock)
        assert "New / resumed" in cards_html(selectors.dashboard_rows(manager_user, window), window)
        assert "No figures have been computed" in cards_html([], window)
    assert AttainmentTotal.objects.filter(campaign=stock).exists()


@pytest.mark.parametrize("language", ["vi", "en"])
def test_the_breakdown_written_directly_matches_the_template(snapshots, manager_user, unit, language):
    from reports.views import _breakdown_context, breakdown_html

    campaign = snapshots[0]
    with translation.override(language):
        for own in (None, unit):
            context = _breakdown_context(manager_user, campaign, D(2024, 3, 25), unit=own)
            variants = [
                context,
                {**context, "breakdown_live": True, "breakdown_pending": True, "breakdown_chart": None},
                {**context, "breakdown": [{**s, "groups": []} for s in context["breakdown"]]},
                {
                    **context,
                    "breakdown": [
                        {
                            "title": 'Theo <nhóm> & "tuổi"',
                            "groups": [
                                {"label": "<b>&", "vsi_text": "1.234", "hi_family_text": "–", "total_text": "0"}
                            ],
                        }
                    ],
                },
                {**context, "breakdown": []},
            ]
            for variant in variants:
                expected = render_to_string("reports/inc/breakdown.html", variant)
                assert breakdown_html(variant) == expected
