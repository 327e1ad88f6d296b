"""PostgreSQL's enrollment change journal: triggers record every change per campaign it can move, an incremental
refresh adds exactly those changes to the stored figures (in SQL, in place), and the result equals a full run,
whatever wrote the rows and whenever they committed."""

import datetime
import random

import psycopg
import pytest
from django.db import connection

from campaigns.models import Campaign
from participants.models import Enrollment, EnrollmentKind, Scheme, add_months
from reports import engine
from reports.models import AttainmentTotal, EnrollmentChange
from tests.factories import CampaignFactory, ParticipantFactory, TargetFactory
from tests.reports.conftest import enroll, snapshot_state

D = datetime.date
pytestmark = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the journal is PostgreSQL's")


@pytest.fixture
def two_campaigns(province, unit, other_unit, foreign_unit):
    """A window campaign (1–30 June 2024) and an annual plan on the stock (2024), as of 20 June 2024."""
    window = CampaignFactory(province=province, slug="j-window", start_date=D(2024, 6, 1), end_date=D(2024, 6, 30))
    stock = CampaignFactory(
        province=province,
        slug="j-stock",
        measure=Campaign.Measure.STOCK,
        start_date=D(2024, 1, 1),
        end_date=D(2024, 12, 31),
    )
    for campaign in (window, stock):
        TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=7)
        TargetFactory(campaign=campaign, unit=other_unit, scheme=Scheme.HI_FAMILY, value=5)
    TargetFactory(campaign=window, unit=None, scheme=Scheme.VSI, value=20)
    # Another province's campaign: its journal never gets this province's changes.
    CampaignFactory(province=foreign_unit.province, slug="j-foreign", start_date=D(2024, 6, 1), end_date=D(2024, 6, 30))
    return [window, stock]


AS_OF = D(2024, 6, 20)


def _journal(campaign):
    return sorted(
        EnrollmentChange.objects.filter(campaign_id=campaign.pk).values_list("unit_id", "enrolled_on", "kind", "sign")
    )


def _refresh(campaigns):
    """An incremental run with no marked unit: the journal alone says what moved."""
    return engine.snapshot_rebuild(campaigns=campaigns, as_of=AS_OF, unit_ids={c.pk: set() for c in campaigns})


def _assert_equals_full(campaigns):
    incremental = [snapshot_state(c) for c in campaigns]
    engine.snapshot_rebuild(campaigns=campaigns, as_of=AS_OF)
    full = [snapshot_state(c) for c in campaigns]
    for c, mine, theirs in zip(campaigns, incremental, full, strict=True):
        for part, a, b in zip(("totals", "daily"), mine, theirs, strict=True):
            assert a == b, (c.slug, part, "incremental only", set(a) - set(b), "full only", set(b) - set(a))


def test_every_write_is_journaled_per_campaign_it_can_move(two_campaigns, unit, other_unit, foreign_unit):
    window, stock = two_campaigns
    e = enroll(unit=unit, on=D(2024, 6, 10))
    enroll(unit=foreign_unit, on=D(2024, 6, 10))  # another province
    late = enroll(unit=unit, on=D(2025, 2, 1))  # after both campaigns, coverage starting after the plan ended
    assert _journal(window) == [(unit.pk, D(2024, 6, 10), "new", 1)]
    assert _journal(stock) == [(unit.pk, D(2024, 6, 10), "new", 1)]
    assert not EnrollmentChange.objects.filter(campaign_id__in=[window.pk, stock.pk], enrolled_on=late.enrolled_on)
    EnrollmentChange.objects.all().delete()

    # An edit of what no figure counts writes nothing; an edit of the day writes -1 for the old row, +1 for the new.
    Enrollment.objects.filter(pk=e.pk).update(months=e.months)
    assert not EnrollmentChange.objects.exists()
    Enrollment.objects.filter(pk=e.pk).update(enrolled_on=D(2024, 6, 12), unit=other_unit)
    assert _journal(window) == sorted([(other_unit.pk, D(2024, 6, 12), "new", 1), (unit.pk, D(2024, 6, 10), "new", -1)])
    EnrollmentChange.objects.all().delete()
    Enrollment.objects.filter(pk=e.pk).delete()
    assert _journal(window) == [(other_unit.pk, D(2024, 6, 12), "new", -1)]


def test_one_statement_of_many_rows_writes_one_journal_row_per_distinct_change(two_campaigns, unit, commune):
    window, _stock = two_campaigns
    participants = [ParticipantFactory() for _ in range(30)]
    Enrollment.objects.bulk_create(
        Enrollment(
            participant=p,
            scheme=Scheme.VSI,
            kind=EnrollmentKind.NEW,
            enrolled_on=D(2024, 6, 10),
            coverage_start=D(2024, 6, 10),
            coverage_end=add_months(D(2024, 6, 10), 12),
            months=12,
            unit=unit,
            commune=commune,
        )
        for p in participants
    )
    assert _journal(window) == [(unit.pk, D(2024, 6, 10), "new", 30)]


def test_a_refresh_takes_its_campaigns_changes_out_of_the_journal_and_moves_the_rows_in_place(
    two_campaigns, unit, other_unit, monkeypatch
):
    window, stock = two_campaigns
    enroll(unit=unit, on=D(2024, 6, 3))
    engine.snapshot_rebuild(campaigns=two_campaigns, as_of=AS_OF)
    assert not EnrollmentChange.objects.filter(campaign_id__in=[window.pk, stock.pk]).exists()
    ids_before = set(AttainmentTotal.objects.filter(campaign=window).values_list("pk", flat=True))

    applied = []
    original = engine._totals_apply
    monkeypatch.setattr(engine, "_totals_apply", lambda *a, **k: applied.append(1) or original(*a, **k))
    enroll(unit=unit, on=D(2024, 6, 15))
    enroll(unit=other_unit, on=D(2024, 6, 15), scheme=Scheme.HI_FAMILY, kind=EnrollmentKind.RESUMED)
    _refresh(two_campaigns)
    assert applied == [1]
    assert not EnrollmentChange.objects.filter(campaign_id__in=[window.pk, stock.pk]).exists()
    # The rows were updated, not replaced.
    assert set(AttainmentTotal.objects.filter(campaign=window).values_list("pk", flat=True)) == ids_before
    row = AttainmentTotal.objects.get(campaign=window, unit=unit, scheme=Scheme.VSI)
    assert (row.enrolled, row.target, str(row.attained_pct)) == (2, 7, "28.57")
    province = AttainmentTotal.objects.get(campaign=window, unit=None, scheme=Scheme.VSI)
    assert (province.enrolled, province.target) == (2, 20)
    assert AttainmentTotal.objects.get(campaign=stock, unit=other_unit, scheme=Scheme.HI_FAMILY).active == 1
    _assert_equals_full(two_campaigns)


def test_random_inserts_edits_and_deletes_refreshed_incrementally_equal_a_full_run(two_campaigns, unit, other_unit):
    rng = random.Random(20241125)
    units = [unit, other_unit]
    engine.snapshot_rebuild(campaigns=two_campaigns, as_of=AS_OF)
    people = [ParticipantFactory() for _ in range(12)]
    used: dict[tuple[int, str], set] = {}

    def free_start(person, scheme):
        # Coverage of one person and scheme never overlaps (PostgreSQL's exclusion constraint): months apart.
        taken = used.setdefault((person.pk, scheme), set())
        slot = rng.choice([s for s in range(-8, 6) if s not in taken])
        taken.add(slot)
        return add_months(D(2024, 6, 1), slot * 2), slot

    rows = []
    for _round in range(4):
        for _op in range(12):
            action = rng.random()
            if action < 0.55 or not rows:
                person, scheme = rng.choice(people), rng.choice(Scheme.values)
                start, slot = free_start(person, scheme)
                e = enroll(
                    unit=rng.choice(units),
                    participant=person,
                    scheme=scheme,
                    kind=rng.choice(EnrollmentKind.values),
                    on=D(2024, 5, 20) + datetime.timedelta(days=rng.randrange(45)),
                    coverage_start=start,
                    months=1,
                )
                rows.append((e.pk, person.pk, scheme, slot))
            elif action < 0.85:
                pk = rng.choice(rows)[0]
                Enrollment.objects.filter(pk=pk).update(
                    enrolled_on=D(2024, 5, 20) + datetime.timedelta(days=rng.randrange(45)),
                    kind=rng.choice(EnrollmentKind.values),
                    unit=rng.choice(units),
                )
            else:
                row = rows.pop(rng.randrange(len(rows)))
                Enrollment.objects.filter(pk=row[0]).delete()
                used[(row[1], row[2])].discard(row[3])
        _refresh(two_campaigns)
        _assert_equals_full(two_campaigns)


def test_an_edited_campaign_window_is_rebuilt_whole(two_campaigns, unit):
    window, _stock = two_campaigns
    enroll(unit=unit, on=D(2024, 5, 25))  # before the window: not journaled for it
    engine.snapshot_rebuild(campaigns=[window], as_of=AS_OF)
    Campaign.objects.filter(pk=window.pk).update(start_date=D(2024, 5, 20))
    window.refresh_from_db()
    _refresh([window])
    assert AttainmentTotal.objects.get(campaign=window, unit=unit, scheme=Scheme.VSI).enrolled == 1
    _assert_equals_full([window])


@pytest.mark.django_db(transaction=True)
def test_a_change_committing_after_a_refresh_started_is_counted_once_by_the_next(province, unit, commune):
    """Outside any transaction the run reads one REPEATABLE READ snapshot: another session's change that is not
    committed yet stays in the journal for the next run, and is then added exactly once."""
    window = CampaignFactory(province=province, slug="j-tx", start_date=D(2024, 6, 1), end_date=D(2024, 6, 30))
    enroll(unit=unit, on=D(2024, 6, 2), commune=commune)
    engine.snapshot_rebuild(campaigns=[window], as_of=AS_OF)
    person = ParticipantFactory()
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    )
    try:
        other.execute(
            "INSERT INTO participants_enrollment (participant_id, scheme, kind, enrolled_on, coverage_start, "
            "coverage_end, months, unit_id, commune_id, created_at, updated_at) VALUES "
            "(%s, 'vsi', 'new', '2024-06-05', '2024-06-05', '2025-06-05', 12, %s, %s, now(), now())",
            [person.pk, unit.pk, commune.pk],
        )
        enroll(unit=unit, on=D(2024, 6, 6), commune=commune)  # committed (autocommit)
        assert not connection.in_atomic_block
        _refresh([window])
        assert AttainmentTotal.objects.get(campaign=window, unit=unit, scheme=Scheme.VSI).enrolled == 2
        other.commit()
    finally:
        other.close()
    _refresh([window])
    assert AttainmentTotal.objects.get(campaign=window, unit=unit, scheme=Scheme.VSI).enrolled == 3
    assert not EnrollmentChange.objects.filter(campaign_id=window.pk).exists()
    _assert_equals_full([window])


def test_a_unit_new_to_the_snapshot_is_counted_whole_and_equals_a_full_run(two_campaigns, province, unit, monkeypatch):
    """A unit that had no row (it ceased before the campaigns and had no enrollment in them) gets one: the refresh
    builds the rows in Python from its counts instead of moving rows that do not exist."""
    from tests.factories import DistrictFactory

    ceased = DistrictFactory(province=province, code="9229", name="Huyện Cũ Thử", ceased_on=D(2023, 12, 1))
    enroll(unit=ceased, on=D(2023, 6, 1), months=24)  # covered through the plan's comparison days
    engine.snapshot_rebuild(campaigns=two_campaigns, as_of=AS_OF)
    assert not AttainmentTotal.objects.filter(unit=ceased).exists()
    python_path = []
    original = engine._delta_sums
    monkeypatch.setattr(engine, "_delta_sums", lambda *a, **k: python_path.append(1) or original(*a, **k))
    enroll(unit=ceased, on=D(2024, 6, 11))  # a late correction recorded at the old unit
    enroll(unit=unit, on=D(2024, 6, 11))
    _refresh(two_campaigns)
    # The Python path: the in-place UPDATE found a row missing and was undone (its savepoint rolled back).
    assert python_path == [1]
    assert AttainmentTotal.objects.get(campaign=two_campaigns[1], unit=ceased, scheme=Scheme.VSI).active == 2
    _assert_equals_full(two_campaigns)


def test_a_change_whose_mark_was_lost_is_refreshed_by_the_next_refresh_task(two_campaigns, unit):
    """The marks are advisory on PostgreSQL: the refresh task takes its campaigns from the journal too, so a change
    whose after-commit mark never arrived is not left waiting for the nightly run."""
    from reports.models import PendingRefresh
    from reports.tasks import refresh_pending

    window, stock = two_campaigns
    engine.snapshot_rebuild(campaigns=two_campaigns, as_of=AS_OF)
    enroll(unit=unit, on=D(2024, 6, 12))
    PendingRefresh.objects.all().delete()  # the mark lost (its after-commit step failed, or a crash)
    assert EnrollmentChange.objects.filter(campaign_id=window.pk).exists()
    refresh_pending()
    assert AttainmentTotal.objects.get(campaign=window, unit=unit, scheme=Scheme.VSI).enrolled == 1
    assert not EnrollmentChange.objects.filter(campaign_id__in=[window.pk, stock.pk]).exists()


def test_a_large_journal_is_analyzed_and_refreshed_the_same(two_campaigns, unit, other_unit, monkeypatch):
    """Above ANALYZE_DELTA_ABOVE changes (an import) the refresh gathers statistics on them first; the figures are
    the same either way."""
    monkeypatch.setattr(engine, "ANALYZE_DELTA_ABOVE", 0)
    engine.snapshot_rebuild(campaigns=two_campaigns, as_of=AS_OF)
    for day in (D(2024, 6, 3), D(2024, 6, 4), D(2024, 6, 18)):
        enroll(unit=unit, on=day)
        enroll(unit=other_unit, on=day, scheme=Scheme.HI_FAMILY, kind=EnrollmentKind.RESUMED)
    _refresh(two_campaigns)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'engine_delta'")
        assert cursor.fetchone()[0] > 0  # analyzed (the table lives until this test's transaction ends)
    assert AttainmentTotal.objects.get(campaign=two_campaigns[0], unit=unit, scheme=Scheme.VSI).enrolled == 3
    _assert_equals_full(two_campaigns)
