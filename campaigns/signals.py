"""The hook other apps listen on when targets change.

`targets_changed` is sent after the transaction that created, changed or removed targets commits (never for one that
rolled back), once per write function, with ``campaign_ids``: the frozenset of the campaigns whose targets moved.
The reports app marks those campaigns' units pending and enqueues the dashboards' refresh. A receiver must be quick
and must not raise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

targets_changed = Signal()


def targets_changed_on_commit(campaign_ids: Iterable[int]) -> None:
    """Sends `targets_changed` for these campaigns once the current transaction commits (now, outside one)."""
    ids = frozenset(campaign_ids)
    if not ids:
        return

    def send():
        for receiver, result in targets_changed.send_robust(sender=None, campaign_ids=ids):
            if isinstance(result, Exception):
                logger.error("targets_changed receiver %r failed: %r", receiver, result)

    transaction.on_commit(send)
