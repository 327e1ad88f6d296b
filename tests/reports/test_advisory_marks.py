"""The marks and the totals' run carry no database constraint (reports 0014): deleting what they point to must
still take them along (Django's collector), as the constraints did."""

import datetime

from reports import engine
from reports.models import AttainmentTotal, PendingRefresh, RecomputeRun


def test_deleting_a_campaign_deletes_its_marks_and_deleting_a_run_clears_the_rows_it_wrote(march_enrollments, unit):
    run = engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=datetime.date(2024, 3, 25))
    run_id = run.pk
    assert AttainmentTotal.objects.filter(run_id=run_id).exists()
    run.delete()
    assert not AttainmentTotal.objects.filter(run_id=run_id).exists()
    assert AttainmentTotal.objects.filter(campaign=march_enrollments, run__isnull=True).exists()

    engine.pending_mark({march_enrollments.pk: {unit.pk}})
    assert PendingRefresh.objects.filter(campaign=march_enrollments, unit=unit).exists()
    march_enrollments.delete()
    assert not PendingRefresh.objects.exists()
    assert not RecomputeRun.objects.filter(pk=run_id).exists()
