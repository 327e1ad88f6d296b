from decimal import Decimal

import pytest

from participants.models import EnrollmentKind, Scheme
from reports import engine, selectors
from reports.models import AttainmentDaily, AttainmentTotal, RecomputeRun
from tests.factories import DistrictFactory, TargetFactory
from tests.reports.conftest import D, enroll, figures, snapshot_state


def test_it_counts_new_and_resumed_in_the_window_and_leaves_out_renewals_and_days_outside(march_enrollments, unit):
    rows = engine.figures_compute(march_enrollments, D(2024, 4, 10))
    row = figures(rows, unit)
    # 14/3 (first day), 20/3 resumed, 31/3 (last day); not 13/3, 1/4 nor the renewal.
    assert (row.enrolled, row.new, row.resumed) == (3, 2, 1)


def test_it_computes_every_figure_inside_the_window_by_hand(march_enrollments, unit, other_unit):
    rows = engine.figures_compute(march_enrollments, D(2024, 3, 20))
    row = figures(rows, unit)
    assert (row.enrolled, row.new, row.resumed, row.target) == (2, 1, 1, 10)
    assert row.days_elapsed == 7  # 14..20 March
    assert row.days_left == 12  # 20..31 March, both inclusive
    assert row.attained_pct == Decimal("20.00")
    assert row.remaining == 8
    assert row.required_daily_pace == Decimal("0.67")  # 8 / 12
    assert row.current_daily_pace == Decimal("0.29")  # 2 / 7
    assert row.projected_at_end == Decimal("5.14")  # 2 / 7 × 18
    assert row.on_track is False


def test_a_unit_with_target_zero_has_no_attained_pct_and_is_on_track(march_enrollments, other_unit):
    row = figures(engine.figures_compute(march_enrollments, D(2024, 3, 20)), other_unit)
    assert (row.target, row.has_target, row.enrolled) == (0, True, 2)
    assert row.attained_pct is None
    assert row.remaining == 0
    assert row.required_daily_pace == Decimal("0.00")
    assert row.on_track is True
    assert row.rank_attained is None


def test_the_province_uses_its_own_target_not_the_sum_of_the_units(march_enrollments):
    row = figures(engine.figures_compute(march_enrollments, D(2024, 3, 20)), None)
    assert (row.enrolled, row.target) == (4, 25)
    assert row.attained_pct == Decimal("16.00")
    assert row.required_daily_pace == Decimal("1.75")  # 21 / 12
    assert row.projected_at_end == Decimal("10.29")  # 4 / 7 × 18
    # Family HI has no province-level row: the units' sum (30).
    assert figures(engine.figures_compute(march_enrollments, D(2024, 3, 20)), None, Scheme.HI_FAMILY).target == 30


def test_as_of_before_the_window_counts_nothing_and_leaves_every_day(march_enrollments, unit):
    row = figures(engine.figures_compute(march_enrollments, D(2024, 3, 10)), unit)
    assert (row.enrolled, row.days_elapsed, row.days_left) == (0, 0, 18)
    assert row.required_daily_pace == Decimal("0.56")  # 10 / 18
    assert row.current_daily_pace == Decimal("0.00")
    assert row.on_track is False


def test_as_of_the_first_and_last_day_count_those_days(march_enrollments, unit):
    first = figures(engine.figures_compute(march_enrollments, D(2024, 3, 14)), unit)
    assert (first.enrolled, first.days_elapsed, first.days_left) == (1, 1, 18)
    last = figures(engine.figures_compute(march_enrollments, D(2024, 3, 31)), unit)
    assert (last.enrolled, last.days_elapsed, last.days_left) == (3, 18, 1)
    assert last.required_daily_pace == Decimal("7.00")


def test_as_of_after_the_window_stops_at_the_end(march_enrollments, unit):
    row = figures(engine.figures_compute(march_enrollments, D(2024, 4, 10)), unit)
    assert (row.enrolled, row.days_elapsed, row.days_left) == (3, 18, 0)
    assert row.required_daily_pace is None
    assert row.projected_at_end == Decimal("3.00")
    assert row.attained_pct == Decimal("30.00")


def test_ranks_share_a_place_on_ties_and_skip_the_next(march_enrollments, province, unit, other_unit):
    third = DistrictFactory(province=province, code="9299", name="Huyện Ba Thử")
    enroll(unit=third, on=D(2024, 3, 18))
    engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 20))
    ranks = dict(
        AttainmentTotal.objects.filter(campaign=march_enrollments, scheme=Scheme.VSI, unit__isnull=False).values_list(
            "unit_id", "rank_enrolled"
        )
    )
    assert ranks == {unit.pk: 1, other_unit.pk: 1, third.pk: 3}
    live = {
        r.unit_id: r.rank_enrolled
        for r in engine.figures_compute(march_enrollments, D(2024, 3, 20))
        if r.scheme == "vsi" and r.unit_id
    }
    assert live == ranks


def test_the_snapshot_ranks_by_attained_pct_like_the_live_figures_and_leaves_units_without_one_unranked(
    march_enrollments, province, unit, other_unit
):
    third = DistrictFactory(province=province, code="9298", name="Huyện Ba Hai")
    enroll(unit=third, on=D(2024, 3, 18))
    TargetFactory(campaign=march_enrollments, unit=third, scheme=Scheme.VSI, value=5)  # 20,00%, tied with unit
    engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 20))
    stored = dict(
        AttainmentTotal.objects.filter(campaign=march_enrollments, scheme=Scheme.VSI, unit__isnull=False).values_list(
            "unit_id", "rank_attained"
        )
    )
    # unit 2/10 and third 1/5: 20,00% both, rank 1; other_unit has target 0, so no attained % and no rank.
    assert (stored[unit.pk], stored[third.pk], stored[other_unit.pk]) == (1, 1, None)
    live = {
        (r.unit_id, r.scheme): r.rank_attained
        for r in engine.figures_compute(march_enrollments, D(2024, 3, 20))
        if r.unit_id
    }
    assert live == {
        (u, s): r
        for u, s, r in AttainmentTotal.objects.filter(campaign=march_enrollments, unit__isnull=False).values_list(
            "unit_id", "scheme", "rank_attained"
        )
    }


def test_stock_comparisons_across_a_month_end_and_a_year_end(stock_campaign, unit):
    row = figures(engine.figures_compute(stock_campaign, D(2024, 10, 15)), unit)
    # 15/10/2024: p1, p2, October-only, 5/10 + 3 months; 30/09: p1, p2, September-only; 31/12/2023: p1, p2,
    # the December one; 15/10/2023: p1 only (p2 starts the next day).
    assert (row.active, row.active_prev_month_end, row.active_prev_year_end, row.active_same_day_last_year) == (
        4,
        3,
        3,
        1,
    )
    assert row.attained_pct == Decimal("80.00")
    assert row.remaining == 1


def test_stock_province_changes_as_counts_and_percentages(stock_campaign):
    engine.snapshot_rebuild(campaigns=[stock_campaign], as_of=D(2024, 10, 15))
    row = AttainmentTotal.objects.get(campaign=stock_campaign, unit=None, scheme=Scheme.VSI)
    assert row.active == 5
    assert (row.change_vs_prev_month, row.change_vs_prev_month_pct) == (1, Decimal("25.00"))
    assert (row.change_vs_year_end, row.change_vs_year_end_pct) == (2, Decimal("66.67"))
    assert (row.change_vs_same_day_last_year, row.change_vs_same_day_last_year_pct) == (4, Decimal("400.00"))
    assert row.target == 5  # the unit's, as no province-level target is set
    assert row.attained_pct == Decimal("100.00")


def test_the_annual_plan_report_figures_round_as_the_news_wrote_them():
    row = AttainmentTotal(active=36421, active_prev_month_end=36293, active_prev_year_end=34833)
    assert (row.change_vs_prev_month, row.change_vs_prev_month_pct) == (128, Decimal("0.35"))
    assert row.change_vs_year_end == 1588
    plan = engine.FigureRow(unit_id=None, scheme="vsi", target=40500, active=36421)
    assert plan.active * 100 / plan.target == pytest.approx(89.928, abs=1e-3)
    assert engine._ratio(36421 * 100, 40500) == Decimal("89.93")


def test_the_snapshot_holds_the_daily_series_with_running_totals(march_enrollments, unit):
    run = engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 4, 10))
    series = list(
        AttainmentDaily.objects.filter(campaign=march_enrollments, unit=unit, scheme=Scheme.VSI)
        .order_by("day")
        .values_list("day", "count")
    )
    assert series == [(D(2024, 3, 14), 1), (D(2024, 3, 20), 1), (D(2024, 3, 31), 1)]
    assert selectors.cumulative_series(march_enrollments, unit_id=unit.pk)[Scheme.VSI] == [
        (D(2024, 3, 14), 1),
        (D(2024, 3, 20), 2),
        (D(2024, 3, 31), 3),
    ]
    assert run.status == RecomputeRun.Status.SUCCEEDED
    assert run.daily_rows == 5 and run.total_rows == AttainmentTotal.objects.filter(campaign=march_enrollments).count()
    assert run.duration_seconds is not None and run.finished_at >= run.started_at


def test_running_twice_gives_the_same_snapshot(march_enrollments):
    engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 25))
    first = snapshot_state(march_enrollments)
    engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 25))
    assert snapshot_state(march_enrollments) == first
    assert first[0]


def test_a_failing_run_leaves_the_previous_snapshot_whole(march_enrollments, unit, monkeypatch):
    engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 25))
    before = snapshot_state(march_enrollments)
    enroll(unit=unit, on=D(2024, 3, 22))

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    # The failure comes after the old rows were deleted and the new daily rows inserted.
    monkeypatch.setattr(engine, "_insert_totals", explode)
    monkeypatch.setattr(engine, "_copy_totals", explode)  # PostgreSQL's way of writing them
    with pytest.raises(RuntimeError):
        engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 25))
    assert snapshot_state(march_enrollments) == before
    failed = RecomputeRun.objects.order_by("-pk").first()
    assert failed.status == RecomputeRun.Status.FAILED
    assert "disk full" in failed.error


def test_the_dashboard_says_when_the_last_run_failed(client, manager_user, march_enrollments, monkeypatch):
    from django.urls import reverse

    engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 25))
    monkeypatch.setattr(engine, "_rank_in_database", lambda campaign: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=D(2024, 3, 25))
    client.force_login(manager_user)
    body = client.get(reverse("reports:campaign_dashboard", kwargs={"slug": march_enrollments.slug})).content.decode()
    assert 'data-testid="failed-run"' in body
    assert "16,00%" in body or "20,00%" in body  # the previous snapshot is still shown


def test_the_recompute_command_writes_the_snapshot_and_refuses_a_bad_date(march_enrollments, unit):
    from django.core.management import CommandError, call_command

    call_command("recompute_attainment", "--campaign", "march-2024", "--as-of", "2024-03-20")
    row = AttainmentTotal.objects.get(campaign=march_enrollments, unit=unit, scheme=Scheme.VSI)
    assert (row.as_of, row.enrolled) == (D(2024, 3, 20), 2)
    with pytest.raises(CommandError):
        call_command("recompute_attainment", "--as-of", "20/03/2024")
    with pytest.raises(CommandError):
        call_command("recompute_attainment", "--campaign", "no-such-campaign")


def test_renewals_only_still_produce_zero_rows_for_every_unit(march_campaign, unit, other_unit):
    enroll(unit=unit, on=D(2024, 3, 20), kind=EnrollmentKind.RENEWAL)
    rows = engine.figures_compute(march_campaign, D(2024, 3, 25))
    assert {(r.unit_id, r.scheme) for r in rows} == {
        (u, s) for u in (unit.pk, other_unit.pk, None) for s in Scheme.values
    }
    assert all(r.enrolled == 0 for r in rows)
