"""The hook other apps listen on when enrollments change.

`enrollments_changed` is sent once per committed write (an entry, an edit, a delete, a whole import), after the
transaction commits, never for a write that rolled back. Receivers get keyword arguments:

- ``unit_ids``: frozenset of District ids whose figures may have moved (old and new unit of an edit);
- ``days``: frozenset of ``datetime.date`` values of ``enrolled_on`` touched (old and new values of an edit);
- ``schemes``: frozenset of scheme codes ("vsi", "hi_family");
- ``coverage_since``: the earliest ``coverage_start`` touched (a ``datetime.date``) or None: stock figures
  (active participants on a day) may have changed from that day on, and kinds are re-derived from there.

Connect a receiver (the reports app enqueues an incremental recompute)::

    from participants.signals import enrollments_changed

    @receiver(enrollments_changed)
    def _recompute(sender, *, unit_ids, days, schemes, coverage_since, **kwargs): ...

A receiver must be quick and must not raise: enqueue work, do not do it in the request.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
from collections.abc import Iterable

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

enrollments_changed = Signal()

_batch = threading.local()


@contextlib.contextmanager
def enrollments_changed_batch():
    """Within this block, every change is merged into one signal sent at commit (an import of 5,000 rows sends one)."""
    if getattr(_batch, "payload", None) is not None:
        yield
        return
    _batch.payload = {"unit_ids": set(), "days": set(), "schemes": set(), "coverage_since": None}
    try:
        yield
        payload = _batch.payload
    finally:
        _batch.payload = None
    enrollments_changed_on_commit(**payload)


def enrollments_changed_on_commit(
    *,
    unit_ids: Iterable[int],
    days: Iterable[datetime.date],
    schemes: Iterable[str],
    coverage_since: datetime.date | None = None,
) -> None:
    """Sends `enrollments_changed` when the current transaction commits (at once when there is none)."""
    batch = getattr(_batch, "payload", None)
    if batch is not None:
        batch["unit_ids"].update(u for u in unit_ids if u is not None)
        batch["days"].update(days)
        batch["schemes"].update(schemes)
        if coverage_since is not None:
            batch["coverage_since"] = min(filter(None, (batch["coverage_since"], coverage_since)))
        return
    payload = {
        "unit_ids": frozenset(u for u in unit_ids if u is not None),
        "days": frozenset(days),
        "schemes": frozenset(schemes),
        "coverage_since": coverage_since,
    }
    if not payload["unit_ids"]:
        return

    def send():
        from participants.models import Enrollment

        # A failing receiver must not turn a saved enrollment into an error page: the data is committed already.
        for receiver, result in enrollments_changed.send_robust(sender=Enrollment, **payload):
            if isinstance(result, Exception):
                logger.error("enrollments_changed receiver %r failed: %r", receiver, result)

    transaction.on_commit(send)
