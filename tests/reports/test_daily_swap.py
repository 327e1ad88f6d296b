"""A full run on PostgreSQL builds the daily table beside the live one and swaps it in: the swapped-in table must
carry exactly the indexes and constraints the migrations gave the live one."""

import datetime

import pytest
from django.db import connection

from reports import engine
from tests.reports.conftest import enroll

pytestmark = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the swap is PostgreSQL's")


def _structure():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'reports_attainmentdaily' ORDER BY 1"
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'reports_attainmentdaily'::regclass ORDER BY 1"
        )
        constraints = cursor.fetchall()
    return indexes, constraints


def test_the_swapped_daily_table_has_the_migrations_indexes_and_constraints(march_enrollments, unit):
    before = _structure()
    # The unique index carries the count (the dashboard's series is read from it alone).
    assert any(name == "attainment_daily_unique" and "INCLUDE (count)" in d for name, d in before[0])
    enroll(unit=unit, on=datetime.date(2024, 3, 21))
    run = engine.snapshot_rebuild(as_of=datetime.date(2024, 3, 25))  # every campaign: built and swapped
    assert run.daily_rows
    assert _structure() == before


@pytest.mark.django_db(transaction=True)
def test_a_full_run_outside_a_transaction_vacuums_the_new_daily_table(march_enrollments):
    """The dashboard's series is read from the covering index alone only once the new table's pages are known to
    be all visible: the run vacuums it after its commit instead of waiting for autovacuum."""
    assert not connection.in_atomic_block
    engine.snapshot_rebuild(as_of=datetime.date(2024, 3, 25))
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpages, relallvisible FROM pg_class WHERE relname = 'reports_attainmentdaily'")
        pages, all_visible = cursor.fetchone()
    assert pages >= 1 and all_visible == pages
