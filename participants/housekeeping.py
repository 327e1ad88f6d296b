"""Retention: what the product holds only for a while is removed by a nightly task (`housekeeping_nightly`).

- Uploaded enrollment lists: the file's bytes and its row-by-row report (names, SI numbers, dates of birth) are
  needed for the preview and the confirmation only. After UPLOAD_RETENTION_DAYS an upload that was saved keeps its
  name, size, SHA-256, counts and dates (an enrollment's history names the file it came from) and loses the bytes and
  the rows; one that was never saved (refused, abandoned, failed) is deleted.
- Expired sessions are deleted (what `manage.py clearsessions` does).
- Audit events older than AUDIT_RETENTION_DAYS are deleted when the agency sets it (0, the default, keeps them).
"""

from __future__ import annotations

import datetime
import logging

from celery import shared_task
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from participants.models import EnrollmentUpload

logger = logging.getLogger(__name__)

PURGED = "purged"


def uploads_purge(*, now: datetime.datetime | None = None, days: int | None = None) -> dict:
    """Erases or deletes the uploads older than `days` (default UPLOAD_RETENTION_DAYS); returns the counts."""
    now = now or timezone.now()
    days = settings.UPLOAD_RETENTION_DAYS if days is None else days
    cutoff = now - datetime.timedelta(days=days)
    old = EnrollmentUpload.objects.filter(created_at__lt=cutoff)
    with transaction.atomic():
        # Never touch an upload a worker is still checking or saving.
        unsaved = old.exclude(status__in=[EnrollmentUpload.Status.DONE, EnrollmentUpload.Status.IMPORTING])
        unsaved = unsaved.exclude(
            status=EnrollmentUpload.Status.CHECKING, created_at__gte=now - datetime.timedelta(days=1)
        )
        deleted, _ = unsaved.delete()
        erased = 0
        saved = old.filter(status=EnrollmentUpload.Status.DONE).exclude(report__has_key=PURGED)
        for upload in saved.only("pk", "report").iterator(chunk_size=500):
            counts = (upload.report or {}).get("counts", {})
            EnrollmentUpload.objects.filter(pk=upload.pk).update(
                content=b"", report={"counts": counts, PURGED: now.isoformat()}
            )
            erased += 1
    return {"deleted": deleted, "erased": erased}


def sessions_purge(*, now: datetime.datetime | None = None) -> int:
    deleted, _ = Session.objects.filter(expire_date__lt=now or timezone.now()).delete()
    return deleted


def audit_purge(*, now: datetime.datetime | None = None, days: int | None = None) -> int:
    """Deletes the audit events older than `days` (default AUDIT_RETENTION_DAYS; 0 or less keeps every event)."""
    days = settings.AUDIT_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    deleted, _ = AuditEvent.objects.filter(at__lt=cutoff).delete()
    return deleted


@shared_task(name="participants.housekeeping.housekeeping_nightly")
def housekeeping_nightly() -> dict:
    result = {"uploads": uploads_purge(), "sessions": sessions_purge(), "audit": audit_purge()}
    logger.info("housekeeping: %s", result)
    return result
