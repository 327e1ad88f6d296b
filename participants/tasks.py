"""Background work for enrollment uploads: each task takes an id, loads the row and calls the plain function."""

import logging

from celery import shared_task

from participants import importing
from participants.models import EnrollmentUpload

logger = logging.getLogger(__name__)


def _reporter(task):
    def progress(done: int, total: int) -> None:
        try:
            task.update_state(state="PROGRESS", meta={"done": done, "total": total})
        except Exception:  # progress is a courtesy; a result backend hiccup must not fail the import
            logger.warning("could not report upload progress", exc_info=True)

    return progress


@shared_task(bind=True, acks_late=True)
def enrollment_upload_check(self, upload_id: str) -> str:
    upload = EnrollmentUpload.objects.select_related("uploaded_by").get(pk=upload_id)
    importing.upload_check(upload=upload)
    return upload.status


@shared_task(bind=True, acks_late=True)
def enrollment_upload_confirm(self, upload_id: str) -> str:
    upload = EnrollmentUpload.objects.select_related("uploaded_by").get(pk=upload_id)
    if upload.status != EnrollmentUpload.Status.IMPORTING:
        return upload.status  # already finished (a redelivered task)
    importing.upload_confirm(upload=upload, progress=_reporter(self), claimed=True)
    return upload.status
