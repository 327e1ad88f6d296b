"""The Celery application; tasks are discovered in each app's tasks.py.

A worker catches up on refreshes that could not be queued: saving an enrollment while Redis is down records the
touched units in the database (reports.PendingRefresh) but cannot publish the refresh task. Each time a worker's
consumer connects to the broker (at start, and again after it lost Redis and found it back), it queues one refresh
per campaign that still has pending units, so the dashboards catch up without waiting for the nightly run.

A recompute whose worker process dies (killed, out of memory) leaves its snapshot as it was — the run's transaction
never commits — but its RecomputeRun row would stay "running", and an admin's progress bar would poll it for an hour.
The worker's main process learns of the loss (WorkerLostError) and marks that run failed, with the reason.
"""

import logging
import os

from celery import Celery, bootsteps
from celery.exceptions import WorkerLostError
from celery.signals import task_failure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger(__name__)

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def pending_refresh_catch_up() -> list[int]:
    """Queues a refresh of every campaign with pending units; returns their ids. Never raises."""
    from django.db import connection

    from reports.models import PendingRefresh
    from reports.tasks import enqueue, refresh_pending

    try:
        campaign_ids = sorted(set(PendingRefresh.objects.values_list("campaign_id", flat=True).distinct()))
    except Exception:
        logger.exception("could not read the pending refreshes")
        return []
    finally:
        # The consumer runs in the worker's main process: a connection left open here would be inherited by the
        # pool's next forked child.
        connection.close()
    queued = [campaign_id for campaign_id in campaign_ids if enqueue(refresh_pending, campaign_id)]
    if queued:
        logger.info("queued the pending refresh of %d campaign(s) on connecting to the broker", len(queued))
    return queued


class PendingRefreshCatchUp(bootsteps.StartStopStep):
    """A consumer step: its start() runs whenever the consumer (re)connects to the broker."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, c):
        pending_refresh_catch_up()


app.steps["consumer"].add(PendingRefreshCatchUp)


# Tasks that carry the id of their RecomputeRun row, and its position among their arguments.
RUN_ID_ARGUMENT = {"reports.tasks.recompute_all": 1, "reports.tasks.recompute_campaign": 1}


@task_failure.connect
def recompute_run_interrupted(sender=None, exception=None, args=None, kwargs=None, **extra):
    """Marks the run of a recompute whose pool process was lost as failed (sent in the worker's main process)."""
    if not isinstance(exception, WorkerLostError) or getattr(sender, "name", None) not in RUN_ID_ARGUMENT:
        return
    position = RUN_ID_ARGUMENT[sender.name]
    run_id = (kwargs or {}).get("run_id") or (args[position] if args and len(args) > position else None)
    if not run_id:
        return  # a nightly run started by beat: its row names no task
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone, translation
    from django.utils.translation import gettext

    from reports.models import RecomputeRun

    with translation.override(settings.LANGUAGE_CODE):
        reason = gettext("The worker running this recompute stopped before it finished; start it again.")
    try:
        RecomputeRun.objects.filter(
            pk=run_id, status__in=[RecomputeRun.Status.QUEUED, RecomputeRun.Status.RUNNING]
        ).update(status=RecomputeRun.Status.FAILED, error=reason, finished_at=timezone.now())
    except Exception:
        logger.exception("could not mark the interrupted recompute run %s as failed", run_id)
    finally:
        connection.close()
