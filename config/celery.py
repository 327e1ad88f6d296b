"""The Celery application; tasks are discovered in each app's tasks.py.

A worker catches up on refreshes that could not be queued: saving an enrollment while Redis is down records the
touched units in the database (reports.PendingRefresh) but cannot publish the refresh task. Each time a worker's
consumer connects to the broker (at start, and again after it lost Redis and found it back), it queues one refresh
per campaign that still has pending units, so the dashboards catch up without waiting for the nightly run.
"""

import logging
import os

from celery import Celery, bootsteps

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
