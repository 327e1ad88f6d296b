"""Celery doors onto the engine: each task takes ids, loads rows and calls a plain function of reports.engine.

Enqueueing goes through `enqueue()`, which never raises and is bounded in time (the broker's retries and socket
timeouts are bounded in settings), so a request that saved an enrollment never hangs or fails on a Redis outage:
the pending units stay recorded in the database and the dashboard says its snapshot is older than the data.
"""

from __future__ import annotations

import datetime
import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError, connection
from django.utils import timezone

from campaigns.models import Campaign
from reports import engine
from reports.models import RecomputeRun

logger = logging.getLogger(__name__)

PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def debounce_seconds() -> int:
    return getattr(settings, "REPORTS_REFRESH_DEBOUNCE_SECONDS", 60)


# One key for every campaign: a refresh takes every pending mark, so one queued refresh is enough.
DEBOUNCE_KEY = "reports:refresh-debounce"


def _debounce_key(campaign_id: int | None = None) -> str:
    return DEBOUNCE_KEY


def _progress_callback(task):
    def report(done, total):
        if task.request.id and not task.request.is_eager:
            task.update_state(state="PROGRESS", meta={"done": done, "total": total})

    return report


def _date(value) -> datetime.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(value)


@shared_task(
    bind=True,
    name="reports.tasks.recompute_all",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def recompute_all(self, as_of: str | None = None, run_id: int | None = None) -> dict:
    """The nightly, authoritative full run over every campaign."""
    run = RecomputeRun.objects.filter(pk=run_id).first() if run_id else None
    run = engine.snapshot_rebuild(as_of=_date(as_of), run=run, on_progress=_progress_callback(self))
    return {"run_id": run.pk, "status": run.status, "total_rows": run.total_rows, "daily_rows": run.daily_rows}


@shared_task(
    bind=True,
    name="reports.tasks.recompute_campaign",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def recompute_campaign(self, campaign_id: int, run_id: int | None = None, as_of: str | None = None) -> dict:
    """A full recompute of one campaign, started by an admin from its dashboard; reports progress."""
    campaign = Campaign.objects.get(pk=campaign_id)
    run = RecomputeRun.objects.filter(pk=run_id).first() if run_id else None
    run = engine.snapshot_rebuild(
        campaigns=[campaign], as_of=_date(as_of), run=run, on_progress=_progress_callback(self)
    )
    return {"run_id": run.pk, "status": run.status, "total_rows": run.total_rows, "daily_rows": run.daily_rows}


@shared_task(
    name="reports.tasks.refresh_pending",
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def refresh_pending(campaign_id: int | None = None) -> dict:
    """The debounced incremental update: one run over every pending mark of every campaign, rewriting only the
    marked units' rows, the province rows and the ranks of the campaigns concerned.

    `campaign_id` is accepted for tasks queued before refreshes were batched; the run takes every mark anyway.
    """
    try:
        cache.delete(DEBOUNCE_KEY)
    except Exception:
        logger.warning("could not clear the refresh debounce key", exc_info=True)
    # Marks made from here on stay for the next run, even for a unit this one rewrites (it may not see them).
    read_at = timezone.now()
    units, since, days, coverage_since = engine.pending_all_days()
    run = engine.pending_refresh(units, since, days, coverage_since, marks_before=read_at)
    if run is None:
        return {"units": 0}
    return {"run_id": run.pk, "units": sum(map(len, units.values())), "campaigns": len(units)}


def enqueue(task, *args, **options) -> bool:
    """Publishes a task; on any broker failure logs it and returns False instead of raising or hanging."""
    # Progress and outcome live in RecomputeRun rows, so no result is stored by default: with a result backend
    # the publish would also wait on the (down) result store.
    options.setdefault("ignore_result", True)
    try:
        task.apply_async(args=args, retry=True, retry_policy=PUBLISH_RETRY_POLICY, **options)
    except Exception:
        logger.exception("could not enqueue %s%r; the broker is unavailable", task.name, args)
        return False
    return True


def refresh_schedule(*, unit_ids, days, coverage_since=None) -> dict[int, set[int]]:
    """Marks the touched campaign units pending (in the database) and enqueues one debounced refresh for all."""
    if connection.vendor == "postgresql":
        touched = engine.pending_mark_touched(unit_ids=unit_ids, days=days, coverage_since=coverage_since)
        if touched:
            _refresh_enqueue()
        return touched
    touched, windows = engine.campaigns_touched_windows(unit_ids=unit_ids, days=days, coverage_since=coverage_since)
    if not touched:
        return touched
    # Coverage-only changes (no entry day) rewrite the units' whole daily series; otherwise only the days listed
    # (the signal lists every entry day whose counts moved, re-derived kinds included).
    engine.pending_mark(
        touched, since=min(days) if days else None, days=days, coverage_since=coverage_since, windows=windows
    )
    _refresh_enqueue()
    return touched


def _refresh_enqueue() -> None:
    """Enqueues one debounced refresh of every pending mark, unless one is queued already."""
    try:
        if not cache.add(DEBOUNCE_KEY, 1, debounce_seconds()):
            return  # a refresh is already queued and will pick these marks up
    except Exception:
        logger.warning("cache unavailable; enqueueing the attainment refresh without debounce")
    if not enqueue(refresh_pending, countdown=debounce_seconds()):
        try:
            cache.delete(DEBOUNCE_KEY)
        except Exception:
            logger.debug("cache unavailable", exc_info=True)


def on_targets_changed(sender, *, campaign_ids, **kwargs) -> None:
    """Receiver of campaigns.signals.targets_changed (sent after commit): every unit of those campaigns is marked
    pending (their rows and the province's are derived again with the new targets) and one refresh is enqueued."""
    try:
        touched = engine._campaign_units(list(Campaign.objects.filter(pk__in=campaign_ids)))
        if not any(touched.values()):
            return
        engine.pending_mark(touched)
        _refresh_enqueue()
    except Exception:
        # The targets are saved; the nightly run will catch up.
        logger.exception("could not schedule the attainment refresh for campaigns %s", sorted(campaign_ids))


def on_enrollments_changed(sender, *, unit_ids, days, coverage_since=None, **kwargs) -> None:
    """Receiver of participants.signals.enrollments_changed (sent after commit)."""
    try:
        refresh_schedule(unit_ids=unit_ids, days=days, coverage_since=coverage_since)
    except Exception:
        # The enrollment is saved; the nightly run will catch up.
        logger.exception("could not schedule the attainment refresh for units %s", sorted(unit_ids))
