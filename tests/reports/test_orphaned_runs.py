"""A run whose worker died without anyone noticing (a nightly run started by beat carries no run id) is marked
failed by the next run, so that no progress bar waits for it forever; a run that may still be working is left alone."""

import datetime

import pytest
from django.utils import timezone

from reports import engine
from reports.models import RecomputeRun

pytestmark = pytest.mark.django_db


def _running(minutes_ago):
    return RecomputeRun.objects.create(
        status=RecomputeRun.Status.RUNNING, started_at=timezone.now() - datetime.timedelta(minutes=minutes_ago)
    )


def test_the_next_run_fails_a_run_that_stopped_long_ago_and_leaves_a_recent_one(province):
    orphan, recent = _running(120), _running(5)
    done = RecomputeRun.objects.create(
        status=RecomputeRun.Status.SUCCEEDED, started_at=timezone.now() - datetime.timedelta(days=1)
    )

    run = engine.snapshot_rebuild()

    assert run.status == RecomputeRun.Status.SUCCEEDED
    orphan.refresh_from_db()
    assert orphan.status == RecomputeRun.Status.FAILED and orphan.finished_at is not None
    assert orphan.error
    recent.refresh_from_db()
    done.refresh_from_db()
    assert recent.status == RecomputeRun.Status.RUNNING
    assert done.status == RecomputeRun.Status.SUCCEEDED


def test_marking_is_idempotent(db):
    _running(45)
    assert engine.runs_orphaned_fail() == 1
    assert engine.runs_orphaned_fail() == 0
