from django.conf import settings

from reports import tasks
from reports.models import AttainmentTotal, RecomputeRun
from tests.reports.conftest import D


def test_the_nightly_schedule_names_the_full_recompute_task():
    from config.celery import app

    app.loader.import_default_modules()
    (entry,) = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "reports.tasks.recompute_all"]
    assert entry["task"] in app.tasks
    assert (entry["schedule"].hour, entry["schedule"].minute) == (
        {settings.RECOMPUTE_HOUR},
        {settings.RECOMPUTE_MINUTE},
    )
    assert settings.CELERY_TIMEZONE == "Asia/Ho_Chi_Minh"


def test_the_tasks_run_eagerly_in_process(celery_eager, march_enrollments, unit):
    outcome = tasks.recompute_all.delay("2024-03-20").get()
    assert outcome["status"] == RecomputeRun.Status.SUCCEEDED
    assert AttainmentTotal.objects.get(campaign=march_enrollments, unit=unit, scheme="vsi").as_of == D(2024, 3, 20)
    run = RecomputeRun.objects.create(campaign=march_enrollments)
    assert tasks.enqueue(tasks.recompute_campaign, march_enrollments.pk, run.pk, "2024-03-21") is True
    run.refresh_from_db()
    assert (run.status, run.as_of) == (RecomputeRun.Status.SUCCEEDED, D(2024, 3, 21))
