"""The incremental refresh recounts only the (unit, day) groups a change can move, re-derived kinds included, and
still equals a full run (a window campaign and a campaign on the stock, both over the same days)."""

import contextlib
import datetime

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from participants.models import EnrollmentKind, Scheme
from participants.services import enrollment_delete, enrollment_record, enrollment_update
from participants.signals import enrollments_changed
from reports import engine
from reports.models import AttainmentDaily, AttainmentTotal, PendingRefresh, PendingRefreshDay, RecomputeRun
from reports.tasks import DEBOUNCE_KEY
from tests.factories import CampaignFactory, ParticipantFactory, TargetFactory
from tests.reports.conftest import enroll, snapshot_state

D = datetime.timedelta


@pytest.fixture
def campaigns(province, unit, other_unit, commune, other_commune, today):
    window = CampaignFactory(
        province=province, slug="days-window", start_date=today - D(days=10), end_date=today + D(days=20)
    )
    stock = CampaignFactory(
        province=province,
        slug="days-stock",
        measure=Campaign.Measure.STOCK,
        start_date=today - D(days=10),
        end_date=today + D(days=20),
    )
    for campaign in (window, stock):
        TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=40)
        TargetFactory(campaign=campaign, unit=other_unit, scheme=Scheme.VSI, value=30)
    with contextlib.suppress(Exception):
        cache.delete(DEBOUNCE_KEY)
    for n in range(3):
        enroll(unit=unit, on=today - D(days=n), commune=commune)
    enroll(unit=other_unit, on=today - D(days=2), commune=other_commune)
    return [window, stock]


@pytest.fixture
def signals():
    sent = []

    def receiver(sender, **kwargs):
        sent.append(kwargs)

    enrollments_changed.connect(receiver, dispatch_uid="test-incremental-days")
    yield sent
    enrollments_changed.disconnect(dispatch_uid="test-incremental-days")


def _assert_incremental_equals_full(campaigns):
    assert RecomputeRun.objects.filter(kind=RecomputeRun.Kind.INCREMENTAL, status="succeeded").exists()
    assert not PendingRefresh.objects.exists()
    assert not PendingRefreshDay.objects.exists()
    incremental = [snapshot_state(c) for c in campaigns]
    engine.snapshot_rebuild(campaigns=campaigns)
    assert [snapshot_state(c) for c in campaigns] == incremental


def _record(participant, unit, commune, day, coverage_start=None):
    return enrollment_record(
        participant=participant,
        scheme=Scheme.VSI,
        enrolled_on=day,
        coverage_start=coverage_start or day,
        months=12,
        unit=unit,
        commune=commune,
    )


def _year_before(day):
    return engine.same_day_years_ago(day, 1)


def test_a_back_dated_entry_whose_re_derivation_moves_another_days_count(
    campaigns,
    unit,
    other_unit,
    commune,
    other_commune,
    today,
    celery_eager,
    signals,
    django_capture_on_commit_callbacks,
):
    person = ParticipantFactory()
    later_day = today - D(days=2)
    later = _record(person, other_unit, other_commune, later_day)
    assert later.kind == EnrollmentKind.NEW
    engine.snapshot_rebuild(campaigns=campaigns)
    window_row = AttainmentDaily.objects.get(campaign=campaigns[0], unit=other_unit, scheme=Scheme.VSI, day=later_day)
    assert (window_row.count, window_row.new) == (2, 2)
    signals.clear()
    with django_capture_on_commit_callbacks(execute=True):
        # Entered on another day, in another unit: its coverage ends the day the later one starts, which becomes a
        # renewal (no longer growth) on its own day, in its own unit.
        _record(person, unit, commune, today - D(days=9), coverage_start=_year_before(later_day))
    later.refresh_from_db()
    assert later.kind == EnrollmentKind.RENEWAL
    (payload,) = signals
    assert later_day in payload["days"] and other_unit.pk in payload["unit_ids"]
    # SQLite rewrites the recounted day rows, PostgreSQL updates them in place: read the row again.
    window_row = AttainmentDaily.objects.get(campaign=campaigns[0], unit=other_unit, scheme=Scheme.VSI, day=later_day)
    assert (window_row.count, window_row.new) == (1, 1)
    _assert_incremental_equals_full(campaigns)


def test_an_edit_moving_an_enrollment_to_another_day_and_unit(
    campaigns, unit, other_unit, commune, other_commune, today, celery_eager, django_capture_on_commit_callbacks
):
    person = ParticipantFactory()
    first = _record(person, unit, commune, today - D(days=8), coverage_start=_year_before(today - D(days=4)))
    second = _record(person, unit, commune, today - D(days=4))
    assert second.kind == EnrollmentKind.RENEWAL
    engine.snapshot_rebuild(campaigns=campaigns)
    with django_capture_on_commit_callbacks(execute=True):
        # The first moves to another unit and day, and its coverage a year earlier: the second becomes resumed.
        enrollment_update(
            enrollment=first,
            scheme=Scheme.VSI,
            enrolled_on=today - D(days=6),
            coverage_start=_year_before(today - D(days=40)),
            months=12,
            unit=other_unit,
            commune=other_commune,
        )
    second.refresh_from_db()
    assert second.kind == EnrollmentKind.RESUMED
    assert AttainmentDaily.objects.filter(
        campaign=campaigns[0], unit=unit, scheme=Scheme.VSI, day=today - D(days=4), count=1
    ).exists()
    assert not AttainmentDaily.objects.filter(campaign=campaigns[0], unit=unit, day=today - D(days=8)).exists()
    _assert_incremental_equals_full(campaigns)


def test_a_delete_that_makes_a_later_enrollment_new_again(
    campaigns,
    unit,
    other_unit,
    commune,
    other_commune,
    today,
    celery_eager,
    signals,
    django_capture_on_commit_callbacks,
):
    person = ParticipantFactory()
    first = _record(person, unit, commune, today - D(days=7), coverage_start=_year_before(today - D(days=3)))
    later = _record(person, other_unit, other_commune, today - D(days=3))
    assert later.kind == EnrollmentKind.RENEWAL
    engine.snapshot_rebuild(campaigns=campaigns)
    signals.clear()
    with django_capture_on_commit_callbacks(execute=True):
        enrollment_delete(enrollment=first)
    later.refresh_from_db()
    assert later.kind == EnrollmentKind.NEW
    (payload,) = signals
    assert today - D(days=3) in payload["days"] and other_unit.pk in payload["unit_ids"]
    assert AttainmentDaily.objects.filter(
        campaign=campaigns[0], unit=other_unit, day=today - D(days=3), count=1, new=1
    ).exists()
    _assert_incremental_equals_full(campaigns)


@pytest.mark.skipif("connection.vendor == 'postgresql'", reason="PostgreSQL's refresh reads the change journal")
def test_marks_list_their_days_and_a_mark_without_days_recounts_the_whole_series(campaigns, unit, today):
    window = campaigns[0]
    engine.pending_mark({window.pk: {unit.pk}}, days=[today - D(days=1), today - D(days=400)])
    (mark,) = PendingRefresh.objects.all()
    assert mark.days_only and mark.since == today - D(days=400)
    # Only the days inside the campaign's window are listed.
    assert list(PendingRefreshDay.objects.values_list("day", flat=True)) == [today - D(days=1)]
    units, _since, days, _coverage = engine.pending_all_days()
    assert units == {window.pk: {unit.pk}} and days == {window.pk: {unit.pk: {today - D(days=1)}}}
    # A coverage-only change (no day) widens the mark to the whole series.
    engine.pending_mark({window.pk: {unit.pk}})
    mark.refresh_from_db()
    assert not mark.days_only and mark.since is None
    assert engine.pending_all_days()[2] == {}


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's marks only")
def test_on_postgresql_a_mark_lists_no_days_as_the_journal_has_the_changes(campaigns, unit, today):
    engine.pending_mark({campaigns[0].pk: {unit.pk}}, days=[today - D(days=1)])
    (mark,) = PendingRefresh.objects.all()
    assert not mark.days_only and mark.since == today - D(days=1)
    assert not PendingRefreshDay.objects.exists()


@pytest.mark.parametrize("with_coverage", [False, True])
def test_a_day_only_refresh_equals_a_full_run_after_direct_writes(campaigns, unit, commune, today, with_coverage):
    # Coverage over every comparison day of the stock campaign (last year, month ends, before the start).
    enroll(unit=unit, on=today - D(days=400), commune=commune, months=24)
    engine.snapshot_rebuild(campaigns=campaigns)
    enroll(unit=unit, on=today - D(days=1), commune=commune)
    enroll(unit=unit, on=today - D(days=6), commune=commune, kind=EnrollmentKind.RESUMED)
    days = [today - D(days=1), today - D(days=6)]
    touched = engine.campaigns_touched(unit_ids=[unit.pk], days=days)
    # With the coverage start, the stock counts of the comparison days before it are kept, not recounted.
    engine.pending_mark(touched, days=days, coverage_since=min(days) if with_coverage else None)
    assert engine.pending_all_days()[3] == dict.fromkeys(touched, min(days) if with_coverage else None)
    engine.pending_refresh()
    stock_row = AttainmentTotal.objects.get(campaign=campaigns[1], unit=unit, scheme=Scheme.VSI)
    assert (stock_row.active, stock_row.active_before_start, stock_row.active_prev_year_end) == (6, 1, 1)
    _assert_incremental_equals_full(campaigns)


def test_a_mark_made_after_the_marks_were_read_stays_for_the_next_run(campaigns, unit, today):
    engine.snapshot_rebuild(campaigns=campaigns)
    engine.pending_mark({campaigns[0].pk: {unit.pk}}, days=[today - D(days=1)])
    read_at = timezone.now()
    units, since, days, coverage = engine.pending_all_days()
    # The unit is marked again (another day) after the read, before the run starts.
    PendingRefresh.objects.update(marked_at=read_at + D(microseconds=1))
    engine.pending_refresh(units, since, days, coverage, marks_before=read_at)
    assert PendingRefresh.objects.filter(campaign=campaigns[0], unit=unit).exists()
    # The days are listed where the refresh recounts them (SQLite); PostgreSQL's reads the change journal.
    listed = PendingRefreshDay.objects.filter(campaign=campaigns[0], unit=unit).exists()
    assert listed == (connection.vendor != "postgresql")
    engine.pending_refresh()
    assert not PendingRefresh.objects.exists() and not PendingRefreshDay.objects.exists()
