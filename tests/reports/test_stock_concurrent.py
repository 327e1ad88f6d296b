"""A full run on PostgreSQL counts the stock (active participants on the comparison days) on a second connection,
in the run's own snapshot, while it builds the daily series: the figures must be exactly those of the one-connection
count, a change committed after the run's snapshot must not be counted, and a failure there fails the run."""

import datetime

import psycopg
import pytest
from django.db import connection, transaction

from participants.models import Scheme
from reports import engine
from reports.models import AttainmentTotal, RecomputeRun
from tests.factories import ParticipantFactory
from tests.reports.conftest import enroll, snapshot_state

D = datetime.date
AS_OF = D(2024, 10, 15)
pytestmark = [
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the exported snapshot is PostgreSQL's"),
    pytest.mark.django_db(transaction=True),
]


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _other_connection():
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    )


@pytest.fixture
def concurrent_calls(monkeypatch):
    """The stock sums each run took from the second connection (spying on the engine's own class)."""
    calls = []
    result = engine._StockConcurrent.result

    def spy(self):
        out = result(self)
        calls.append(out)
        return out

    monkeypatch.setattr(engine._StockConcurrent, "result", spy)
    return calls


def test_the_stock_counted_beside_the_daily_build_equals_the_count_on_one_connection(
    stock_campaign, unit, concurrent_calls
):
    backends = _backends()
    assert not connection.in_atomic_block
    engine.snapshot_rebuild(as_of=AS_OF)
    assert len(concurrent_calls) == 1 and concurrent_calls[0]  # the second connection counted it
    beside = snapshot_state(stock_campaign)
    row = AttainmentTotal.objects.get(campaign=stock_campaign, unit=unit, scheme=Scheme.VSI)
    # The fixture's hand-computed stock (tests/reports/test_engine.py): 4 covered on 15/10/2024, 1 a year before.
    assert (row.active, row.active_same_day_last_year) == (4, 1)

    with transaction.atomic():  # inside a transaction: one connection, the stock counted after the daily series
        engine.snapshot_rebuild(as_of=AS_OF)
    assert len(concurrent_calls) == 1
    assert snapshot_state(stock_campaign) == beside
    assert _backends() == backends  # the second connection was closed


def test_the_second_connection_counts_the_runs_snapshot_not_a_later_commit(stock_campaign, unit, commune):
    job = engine._Job(stock_campaign, AS_OF)
    person = ParticipantFactory()
    other = _other_connection()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT 1")  # the run's snapshot is taken here
            # Committed by another session after the snapshot: covers 15/10/2024 in the unit.
            other.execute(
                "INSERT INTO participants_enrollment (participant_id, scheme, kind, enrolled_on, coverage_start, "
                "coverage_end, months, unit_id, commune_id, created_at, updated_at) VALUES "
                "(%s, 'vsi', 'new', '2024-10-01', '2024-10-01', '2025-10-01', 12, %s, %s, now(), now())",
                [person.pk, unit.pk, commune.pk],
            )
            other.commit()
            counted = engine._StockConcurrent(engine._stock_plan([job])).result()
            here = engine._stock_sums([job])
    finally:
        other.close()
    key = (stock_campaign.pk, unit.pk, Scheme.VSI)
    assert counted == here
    assert counted[key]["active"] == 4  # not 5: the later commit is not in the run's snapshot
    assert engine._stock_sums([job])[key]["active"] == 5  # a new snapshot sees it


def test_a_failing_stock_count_fails_the_run_and_keeps_the_previous_snapshot(stock_campaign, unit, monkeypatch):
    engine.snapshot_rebuild(as_of=AS_OF)
    before = snapshot_state(stock_campaign)
    backends = _backends()
    enroll(unit=unit, on=D(2024, 10, 2), months=1)

    def broken(jobs):
        return [("SELECT no_such_column FROM participants_enrollment", [], (), [])]

    monkeypatch.setattr(engine, "_stock_plan", broken)
    with pytest.raises(Exception, match="no_such_column"):
        engine.snapshot_rebuild(as_of=AS_OF)
    assert RecomputeRun.objects.order_by("-pk").first().status == RecomputeRun.Status.FAILED
    assert snapshot_state(stock_campaign) == before
    assert _backends() == backends
