"""Retention: old uploads lose their personal data, unsaved ones go, expired sessions go; recent ones stay."""

import datetime

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from participants.housekeeping import audit_purge, housekeeping_nightly, sessions_purge, uploads_purge
from participants.models import EnrollmentUpload

pytestmark = pytest.mark.django_db

REPORT = {
    "counts": {"rows": 1, "create": 1, "duplicate": 0, "error": 0},
    "errors": [],
    "duplicates": [],
    "create_sample": [{"number": 2, "values": {"si_number": "0123456789", "full_name": "Nguyễn Văn Một"}}],
}


def _upload(user, status, age_days, name="list.csv"):
    upload = EnrollmentUpload.objects.create(
        uploaded_by=user,
        original_name=name,
        size=40,
        sha256="0" * 64,
        content=b"si_number,full_name\n0123456789,Nguyen Van Mot\n",
        status=status,
        report=REPORT,
        created_count=1 if status == EnrollmentUpload.Status.DONE else 0,
    )
    EnrollmentUpload.objects.filter(pk=upload.pk).update(created_at=timezone.now() - datetime.timedelta(days=age_days))
    return upload


def test_an_old_saved_upload_keeps_its_counts_and_loses_its_bytes_and_rows(staff_user, settings):
    settings.UPLOAD_RETENTION_DAYS = 30
    old = _upload(staff_user, EnrollmentUpload.Status.DONE, 31)
    recent = _upload(staff_user, EnrollmentUpload.Status.DONE, 29)

    assert uploads_purge() == {"deleted": 0, "erased": 1}

    old.refresh_from_db()
    assert bytes(old.content) == b""
    assert old.report["counts"] == REPORT["counts"]
    assert "create_sample" not in old.report and "0123456789" not in str(old.report)
    assert old.original_name == "list.csv" and old.created_count == 1
    recent.refresh_from_db()
    assert bytes(recent.content) != b"" and recent.report == REPORT


def test_a_second_run_changes_nothing(staff_user):
    _upload(staff_user, EnrollmentUpload.Status.DONE, 90)
    uploads_purge(days=30)
    assert uploads_purge(days=30) == {"deleted": 0, "erased": 0}


@pytest.mark.parametrize(
    "status", [EnrollmentUpload.Status.READY, EnrollmentUpload.Status.INVALID, EnrollmentUpload.Status.FAILED]
)
def test_an_old_upload_that_was_never_saved_is_deleted(staff_user, status):
    _upload(staff_user, status, 40)
    kept = _upload(staff_user, status, 1)
    assert uploads_purge(days=30)["deleted"] == 1
    assert list(EnrollmentUpload.objects.values_list("pk", flat=True)) == [kept.pk]


def test_an_upload_being_saved_is_never_touched(staff_user):
    busy = _upload(staff_user, EnrollmentUpload.Status.IMPORTING, 40)
    assert uploads_purge(days=30) == {"deleted": 0, "erased": 0}
    busy.refresh_from_db()
    assert bytes(busy.content) != b""


def test_the_page_of_a_purged_upload_still_opens_for_its_uploader(client, staff_user):
    upload = _upload(staff_user, EnrollmentUpload.Status.DONE, 60)
    uploads_purge(days=30)
    client.force_login(staff_user)
    response = client.get(reverse("participants:enrollment_upload_detail", args=[upload.pk]))
    assert response.status_code == 200
    assert "0123456789" not in response.content.decode()
    assert 'id="purged"' in response.content.decode()


def test_expired_sessions_are_deleted_and_live_ones_kept(db):
    live = SessionStore()
    live["x"] = 1
    live.create()
    expired = SessionStore()
    expired["x"] = 2
    expired.create()
    Session.objects.filter(session_key=expired.session_key).update(
        expire_date=timezone.now() - datetime.timedelta(minutes=1)
    )
    assert sessions_purge() == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]


def _event(age_days, action=AuditEvent.Action.LOGIN):
    return AuditEvent.objects.create(
        at=timezone.now() - datetime.timedelta(days=age_days), action=action, username="canbo"
    ).pk


def test_the_audit_trail_is_kept_for_ever_unless_the_agency_sets_a_retention(settings):
    old, recent = _event(4000), _event(1)
    settings.AUDIT_RETENTION_DAYS = 0
    assert audit_purge() == 0
    assert AuditEvent.objects.count() == 2
    settings.AUDIT_RETENTION_DAYS = 3650
    assert audit_purge() == 1
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [recent]
    assert not AuditEvent.objects.filter(pk=old).exists()


def test_an_audit_event_is_deleted_only_once_older_than_the_retention():
    now = timezone.now()
    kept = AuditEvent.objects.create(at=now - datetime.timedelta(days=30), action=AuditEvent.Action.LOGOUT).pk
    AuditEvent.objects.create(at=now - datetime.timedelta(days=30, seconds=1), action=AuditEvent.Action.LOGOUT)
    assert audit_purge(now=now, days=30) == 1
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [kept]


def test_the_nightly_task_runs_through_celery_and_is_scheduled(staff_user, settings, celery_eager):
    _upload(staff_user, EnrollmentUpload.Status.DONE, 400)
    settings.AUDIT_RETENTION_DAYS = 365
    _event(400)
    result = housekeeping_nightly.delay().get(timeout=10)
    assert result["uploads"] == {"deleted": 0, "erased": 1}
    assert result["audit"] == 1
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "participants.housekeeping.housekeeping_nightly" in tasks
