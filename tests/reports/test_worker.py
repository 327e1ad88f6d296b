"""Each task once through a real Celery worker on the real Redis (CI provides it; skipped when it is absent)."""

import os
import socket
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker

from participants.models import Scheme
from reports import engine
from reports.models import AttainmentTotal, PendingRefresh, RecomputeRun
from tests.reports.conftest import D, enroll

REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/14")


def _redis_up() -> bool:
    host, port = "127.0.0.1", 6379
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not _redis_up(), reason="Redis is not running on 127.0.0.1:6379"),
]


@pytest.fixture
def queue(broker_at):
    """A queue of this test's own: other suites' workers on the same Redis database must not take its tasks."""
    app = broker_at(REDIS_TEST_URL)
    name = f"reports-test-{uuid.uuid4().hex[:12]}"
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING", queues=[name]
    ):
        yield name


def test_recompute_campaign_runs_in_a_worker_and_reports_success(queue, march_enrollments, unit):
    from reports.tasks import recompute_campaign

    run = RecomputeRun.objects.create(campaign=march_enrollments)
    result = recompute_campaign.apply_async((march_enrollments.pk, run.pk, "2024-03-20"), queue=queue)
    outcome = result.get(timeout=30)
    assert outcome["status"] == "succeeded" and outcome["run_id"] == run.pk
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.SUCCEEDED and run.steps_done == run.steps_total
    assert AttainmentTotal.objects.get(campaign=march_enrollments, unit=unit, scheme=Scheme.VSI).enrolled == 2


def test_recompute_all_runs_in_a_worker(queue, march_enrollments, stock_campaign):
    from reports.tasks import recompute_all

    outcome = recompute_all.apply_async(("2024-03-20",), queue=queue).get(timeout=30)
    assert outcome["status"] == "succeeded"
    assert set(AttainmentTotal.objects.values_list("campaign_id", flat=True)) == {
        march_enrollments.pk,
        stock_campaign.pk,
    }


def test_refresh_pending_runs_in_a_worker(queue, march_enrollments, unit):
    from reports.tasks import refresh_pending

    engine.snapshot_rebuild(campaigns=[march_enrollments])
    enroll(unit=unit, on=D(2024, 3, 21))
    engine.pending_mark({march_enrollments.pk: {unit.pk}})
    refresh_pending.apply_async((march_enrollments.pk,), queue=queue)
    deadline = time.monotonic() + 30
    while PendingRefresh.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not PendingRefresh.objects.exists()
    assert AttainmentTotal.objects.get(campaign=march_enrollments, unit=unit, scheme=Scheme.VSI).enrolled == 4
