"""The recompute worker killed at random points, ten times: the snapshot is always whole (the one before the run or
the one the run computes, never a mix), the dashboard answers, and a final rerun gives a clean run's figures.

A real `celery worker` (prefork, one child) on a private Redis and the test database, which holds a small national
data set (generate_national: 20,000 enrollments, 126 campaigns). Each round sends reports.tasks.recompute_all for
an as-of date other than the snapshot's, waits until the run has started, waits a random delay (0 to 1.2 times a
whole run) and SIGKILLs the pool child running it; the worker's main process marks the run failed and forks a new
child for the next round.
"""

import datetime
import os
import random
import signal
import time

import pytest
from celery import Celery
from django.core.cache.backends.redis import RedisCache
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from districts.scoping import ROLE_ADMIN
from reports import engine
from reports.models import AttainmentDaily, AttainmentTotal, RecomputeRun
from tests.factories import make_user
from tests.faults.services import Worker, tail, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

KILLS = 10
AS_OF = (datetime.date(2024, 4, 20), datetime.date(2024, 5, 10))


def _rows(model) -> list[tuple]:
    fields = [f.attname for f in model._meta.concrete_fields if f.name not in ("id", "run", "computed_at")]
    return sorted(model.objects.values_list(*fields), key=repr)


def snapshot_state() -> tuple[list, list]:
    """Both snapshot tables, read in one snapshot of the database (figures only: not ids, run or computation time)."""
    if connection.in_atomic_block:
        return _read_state()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _read_state()


def _read_state() -> tuple[list, list]:
    state = (_rows(AttainmentTotal), _rows(AttainmentDaily))
    computed = AttainmentTotal.objects.values("computed_at").distinct().count()
    assert computed == 1, f"the totals come from {computed} different runs"
    return state


def clean_run_state(as_of: datetime.date) -> tuple[list, list]:
    """What a full run in this process computes for `as_of`, rolled back afterwards."""
    with transaction.atomic():
        engine.snapshot_rebuild(as_of=as_of)
        state = snapshot_state()
        transaction.set_rollback(True)
    return state


def engine_locks_held() -> int:
    """Advisory locks of the engine held in this database (a killed child's session until it notices)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            [engine.ADVISORY_LOCK_NAMESPACE],
        )
        return cursor.fetchone()[0]


def test_killing_the_recompute_worker_never_leaves_half_a_snapshot(redis_server, test_database_url, app_env, tmp_path):
    call_command("generate_national", enrollments=20_000, seed=1, verbosity=0)
    campaign = Campaign.objects.order_by("pk").first()
    admin = make_user(ROLE_ADMIN, province=campaign.province, username="kill-admin")
    browser = Client()
    browser.force_login(admin)
    dashboard = reverse("reports:campaign_dashboard", kwargs={"slug": campaign.slug})

    engine.snapshot_rebuild(as_of=AS_OF[0])
    reference = {AS_OF[0]: snapshot_state(), AS_OF[1]: clean_run_state(AS_OF[1])}
    assert reference[AS_OF[0]] != reference[AS_OF[1]]
    current = AS_OF[0]

    env = app_env(database_url=test_database_url, redis_url=redis_server.url(0))
    worker = Worker(env, tmp_path / "worker.log", pool="prefork", concurrency=1).start()
    sender = Celery("faults", broker=redis_server.url(0))
    progress = RedisCache(redis_server.url(0), {})
    rng = random.Random()  # a new draw each run; the points are printed

    def send(as_of) -> RecomputeRun:
        run = RecomputeRun.objects.create()
        sender.send_task("reports.tasks.recompute_all", args=[as_of.isoformat(), run.pk], ignore_result=True)
        return run

    def started(run) -> bool:
        run.refresh_from_db()
        return run.status != RecomputeRun.Status.QUEUED

    try:
        # One whole run through the worker: its length sets the range of the kill delays.
        target = AS_OF[1]
        run = send(target)
        wait_until(lambda: started(run) and run.is_finished, 60, 0.05, "a whole run in the worker")
        assert run.status == RecomputeRun.Status.SUCCEEDED, tail(worker.log)
        whole_run = run.duration_seconds
        assert snapshot_state() == reference[target]
        current = target

        points = []
        for _ in range(KILLS):
            target = AS_OF[1] if current == AS_OF[0] else AS_OF[0]
            run = send(target)
            wait_until(lambda run=run: started(run), 60, 0.02, "the run to start")
            delay = rng.uniform(0, 1.2 * whole_run)
            time.sleep(delay)
            done, total = progress.get(engine._progress_key(run.pk)) or (None, None)
            (child,) = worker.pool_children()
            os.kill(child, signal.SIGKILL)
            wait_until(lambda: engine_locks_held() == 0, 30, 0.05, "the killed run's session to end")
            state = snapshot_state()
            assert state in (reference[current], reference[target]), "half a snapshot after a kill"
            outcome = "new" if state == reference[target] else "old"
            current = target if outcome == "new" else current
            assert browser.get(dashboard).status_code == 200
            # The run's row does not stay "running": the worker's main process marks a lost run failed.
            wait_until(lambda run=run: started(run) and run.is_finished, 30, 0.05, "the killed run to be closed")
            assert run.status == (RecomputeRun.Status.FAILED if outcome == "old" else run.status), run.status
            if run.status == RecomputeRun.Status.FAILED:
                assert run.error and run.finished_at
            points.append(f"{delay:.2f}s/{done}of{total}:{outcome}")
            wait_until(lambda child=child: worker.pool_children() not in ([], [child]), 30, 0.05, "a new child")

        # A final run to the end gives a clean run's figures.
        target = AS_OF[1] if current == AS_OF[0] else AS_OF[0]
        run = send(target)
        wait_until(lambda: started(run) and run.is_finished, 60, 0.05, "the final run")
        assert run.status == RecomputeRun.Status.SUCCEEDED, tail(worker.log)
        assert snapshot_state() == reference[target]
        print(f"\nWorker kills (delay/steps done of total:snapshot after; whole run {whole_run:.2f} s): {points}")
    finally:
        worker.stop()
