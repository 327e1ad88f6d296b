import threading
import time

import pytest
from django.db import connection, connections

from reports import engine
from reports.models import AttainmentTotal, RecomputeRun

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks are PostgreSQL's")


@pytest.mark.postgres
@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_second_run_waits_for_the_first_to_finish(march_enrollments):
    import psycopg

    settings = connection.settings_dict
    holder = psycopg.connect(
        dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"], port=settings["PORT"] or 5432
    )
    # Hold the campaign's lock as a run in progress would.
    holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", [engine.ADVISORY_LOCK_NAMESPACE, march_enrollments.pk])
    outcome = {}

    def second_run():
        try:
            outcome["run"] = engine.snapshot_rebuild(campaigns=[march_enrollments])
        finally:
            connections.close_all()

    thread = threading.Thread(target=second_run)
    thread.start()
    time.sleep(1.0)
    try:
        assert thread.is_alive(), "the second run did not wait for the lock"
        assert not AttainmentTotal.objects.exists()
    finally:
        holder.rollback()  # the first run ends: its lock goes with its transaction
        holder.close()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert outcome["run"].status == RecomputeRun.Status.SUCCEEDED
    assert AttainmentTotal.objects.filter(campaign=march_enrollments).exists()
