"""The engine rewrites any number of campaigns in one run, with a fixed number of statements, and the paths it
takes (a whole-table build and swap for every campaign, a rewrite of some campaigns, an incremental refresh of the
marks of many campaigns) all give the same snapshot."""

import pytest
from django.db import IntegrityError, connection, transaction

from campaigns.models import Campaign
from participants.models import Enrollment, EnrollmentKind, Scheme
from reports import engine
from reports.models import AttainmentDaily, AttainmentTotal, PendingRefresh, RecomputeRun
from reports.tasks import refresh_pending
from tests.factories import CampaignFactory, TargetFactory
from tests.reports.conftest import D, enroll

FIGURES = (
    "unit_id",
    "scheme",
    "as_of",
    "target",
    "enrolled",
    "new",
    "resumed",
    "achieved",
    "attained_pct",
    "remaining",
    "required_daily_pace",
    "current_daily_pace",
    "projected_at_end",
    "on_track",
    "rank_enrolled",
    "rank_attained",
    "active",
    "active_prev_month_end",
    "active_prev_year_end",
    "active_same_day_last_year",
    "active_before_start",
)


def _snapshot(campaigns):
    state = {}
    for campaign in campaigns:
        totals = sorted(AttainmentTotal.objects.filter(campaign=campaign).values_list(*FIGURES), key=str)
        daily = sorted(
            AttainmentDaily.objects.filter(campaign=campaign).values_list("unit_id", "scheme", "day", "count", "new"),
            key=str,
        )
        state[campaign.pk] = (totals, daily)
    return state


def _campaigns(province, foreign_unit, unit, other_unit):
    """Two window campaigns and an annual plan on the stock in one province, one window campaign in another."""
    spring = CampaignFactory(province=province, slug="spring", start_date=D(2024, 3, 1), end_date=D(2024, 4, 30))
    may = CampaignFactory(province=province, slug="may", start_date=D(2024, 5, 1), end_date=D(2024, 5, 31))
    plan = CampaignFactory(
        province=province,
        slug="plan",
        start_date=D(2024, 1, 1),
        end_date=D(2024, 12, 31),
        measure=Campaign.Measure.STOCK,
    )
    abroad = CampaignFactory(
        province=foreign_unit.province, slug="abroad", start_date=D(2024, 3, 1), end_date=D(2024, 5, 31)
    )
    for campaign, value in ((spring, 4), (may, 3), (plan, 6)):
        TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=value)
        TargetFactory(campaign=campaign, unit=other_unit, scheme=Scheme.HI_FAMILY, value=value)
    TargetFactory(campaign=abroad, unit=foreign_unit, scheme=Scheme.VSI, value=2)
    days = [D(2023, 11, 20), D(2024, 3, 1), D(2024, 3, 15), D(2024, 4, 30), D(2024, 5, 1), D(2024, 5, 20)]
    for n, day in enumerate(days):
        enroll(unit=unit, on=day, months=1 + n)
        enroll(unit=other_unit, on=day, scheme=Scheme.HI_FAMILY, kind=EnrollmentKind.RESUMED if n % 2 else "new")
        enroll(unit=foreign_unit, on=day, months=12)
    enroll(unit=unit, on=D(2024, 3, 15), kind=EnrollmentKind.RENEWAL)
    return [spring, may, plan, abroad]


def test_a_run_over_every_campaign_equals_runs_over_each_campaign_alone(province, foreign_unit, unit, other_unit):
    campaigns = _campaigns(province, foreign_unit, unit, other_unit)
    for campaign in campaigns:
        engine.snapshot_rebuild(campaigns=[campaign], as_of=D(2024, 6, 10))
    alone = _snapshot(campaigns)
    run = engine.snapshot_rebuild(as_of=D(2024, 6, 10))  # on PostgreSQL: the daily table built and swapped
    assert run.status == RecomputeRun.Status.SUCCEEDED
    assert _snapshot(campaigns) == alone
    assert run.daily_rows == AttainmentDaily.objects.count()
    # Each campaign's figures are those computed live for it.
    for campaign in campaigns:
        live = {(r.unit_id, r.scheme): r for r in engine.figures_compute(campaign, D(2024, 6, 10))}
        for row in AttainmentTotal.objects.filter(campaign=campaign):
            assert (row.enrolled, row.achieved, row.active) == (
                live[(row.unit_id, row.scheme)].enrolled,
                live[(row.unit_id, row.scheme)].achieved,
                live[(row.unit_id, row.scheme)].active,
            )


def test_the_daily_table_swapped_in_by_a_full_run_keeps_its_constraints_and_ids(
    province, foreign_unit, unit, other_unit
):
    campaigns = _campaigns(province, foreign_unit, unit, other_unit)
    engine.snapshot_rebuild(as_of=D(2024, 6, 10))
    engine.snapshot_rebuild(as_of=D(2024, 6, 10))
    # New rows get fresh ids after the swapped-in rows, and the unique constraint still holds.
    top = max(AttainmentDaily.objects.values_list("pk", flat=True))
    row = AttainmentDaily.objects.create(
        campaign=campaigns[0], unit=unit, scheme=Scheme.VSI, day=D(2024, 3, 2), count=1, new=1
    )
    assert row.pk > top
    with transaction.atomic(), pytest.raises(IntegrityError):
        AttainmentDaily.objects.create(
            campaign=campaigns[0], unit=unit, scheme=Scheme.VSI, day=D(2024, 3, 2), count=1, new=1
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'reports_attainmentdaily'::regclass")
            constraints = {name for (name,) in cursor.fetchall()}
            # The unique constraint's index carries the count (the dashboard's series is read from it alone).
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'reports_attainmentdaily' "
                "AND indexdef LIKE 'CREATE UNIQUE INDEX%%INCLUDE (count)'"
            )
            unique = {name for (name,) in cursor.fetchall()}
        assert unique == {"attainment_daily_unique"}
        assert {"attainment_daily_unique", "reports_attainmentdaily_pkey"} <= constraints
        assert {"reports_attainmentdaily_count_check", "reports_attainmentdaily_new_check"} <= constraints


def test_the_number_of_statements_does_not_grow_with_the_number_of_campaigns(
    province, foreign_unit, unit, other_unit, django_assert_max_num_queries
):
    campaigns = _campaigns(province, foreign_unit, unit, other_unit)
    with django_assert_max_num_queries(40) as two:
        # One of each measure: a window campaign and the plan on the stock.
        engine.snapshot_rebuild(campaigns=[campaigns[0], campaigns[2]], as_of=D(2024, 6, 10))
    with django_assert_max_num_queries(40) as four:
        engine.snapshot_rebuild(campaigns=campaigns, as_of=D(2024, 6, 10))
    # The same statements for four campaigns as for two (the stock counts: one per set of comparison days; the
    # growth: one from the stored series of the window campaigns, one from the enrollments for those on the stock).
    assert len(four.captured_queries) == len(two.captured_queries)


def test_one_refresh_takes_the_marks_of_every_campaign_and_agrees_with_a_full_run(
    province, foreign_unit, unit, other_unit
):
    campaigns = _campaigns(province, foreign_unit, unit, other_unit)
    engine.snapshot_rebuild(campaigns=campaigns)
    runs_before = RecomputeRun.objects.count()
    # Late entries and a deletion in both provinces, marked as the after-commit receiver marks them.
    enroll(unit=unit, on=D(2024, 3, 20))
    enroll(unit=other_unit, on=D(2024, 5, 20), scheme=Scheme.HI_FAMILY, months=12)
    enroll(unit=foreign_unit, on=D(2024, 4, 2))
    Enrollment.objects.filter(unit=unit, enrolled_on=D(2024, 4, 30)).delete()
    touched = engine.campaigns_touched(
        unit_ids=[unit.pk, other_unit.pk, foreign_unit.pk],
        days=[D(2024, 3, 20), D(2024, 4, 2), D(2024, 4, 30), D(2024, 5, 20)],
    )
    assert set(touched) == {c.pk for c in campaigns}
    engine.pending_mark(touched, since=D(2024, 3, 20))
    outcome = refresh_pending()
    assert outcome["campaigns"] == len(campaigns)
    assert RecomputeRun.objects.count() == runs_before + 1  # one run for all of them
    assert RecomputeRun.objects.order_by("-pk").first().kind == RecomputeRun.Kind.INCREMENTAL
    assert not PendingRefresh.objects.exists()
    incremental = _snapshot(campaigns)
    engine.snapshot_rebuild(campaigns=campaigns)
    assert _snapshot(campaigns) == incremental
    # The deleted enrollment's day has no row any more.
    assert not AttainmentDaily.objects.filter(unit=unit, scheme=Scheme.VSI, day=D(2024, 4, 30)).exists()


def test_a_refresh_with_nothing_pending_does_nothing(db):
    assert refresh_pending() == {"units": 0}
    assert not RecomputeRun.objects.exists()


def test_a_refresh_rebuilds_whole_a_campaign_whose_snapshot_is_for_another_day(
    province, unit, foreign_unit, other_unit
):
    campaigns = _campaigns(province, foreign_unit, unit, other_unit)
    engine.snapshot_rebuild(campaigns=campaigns, as_of=D(2024, 4, 1))  # not the default day
    enroll(unit=unit, on=D(2024, 3, 21))
    engine.pending_mark({campaigns[0].pk: {unit.pk}}, since=D(2024, 3, 21))
    refresh_pending()
    refreshed = _snapshot(campaigns[:1])
    engine.snapshot_rebuild(campaigns=campaigns[:1])
    assert _snapshot(campaigns[:1]) == refreshed
    assert AttainmentTotal.objects.filter(campaign=campaigns[0]).first().as_of == engine.default_as_of(campaigns[0])
