"""A target changed after the snapshot reaches the dashboards without waiting for the nightly run: the change marks
the campaign's units pending after its commit and enqueues the same refresh an entry does."""

import contextlib
import datetime

import pytest
from django.core.cache import cache

from campaigns.models import Target
from campaigns.services import target_clear, target_set, targets_bulk_set
from participants.models import Scheme
from reports import engine
from reports.models import AttainmentTotal, PendingRefresh
from reports.tasks import DEBOUNCE_KEY
from tests.reports.conftest import snapshot_state

AS_OF = datetime.date(2024, 3, 25)


@pytest.fixture
def snapshot(march_enrollments, celery_eager):
    with contextlib.suppress(Exception):
        cache.delete(DEBOUNCE_KEY)
    engine.snapshot_rebuild(campaigns=[march_enrollments], as_of=AS_OF)
    return march_enrollments


def _row(campaign, unit, scheme=Scheme.VSI):
    return AttainmentTotal.objects.get(campaign=campaign, unit=unit, scheme=scheme)


def _equals_full(campaign):
    refreshed = snapshot_state(campaign)
    engine.snapshot_rebuild(campaigns=[campaign], as_of=AS_OF)
    assert snapshot_state(campaign) == refreshed


def test_a_bulk_target_change_refreshes_the_units_and_the_province(
    snapshot, unit, other_unit, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(engine, "default_as_of", lambda campaign, today=None: AS_OF)
    assert (_row(snapshot, unit).target, str(_row(snapshot, unit).attained_pct)) == (10, "20.00")
    with django_capture_on_commit_callbacks(execute=True):
        targets_bulk_set(campaign=snapshot, values=[(unit, Scheme.VSI, 4), (other_unit, Scheme.VSI, 8)])
    row = _row(snapshot, unit)
    assert (row.target, str(row.attained_pct), row.remaining) == (4, "50.00", 2)
    assert _row(snapshot, other_unit).target == 8
    assert not PendingRefresh.objects.exists()
    _equals_full(snapshot)


def test_a_province_target_set_and_cleared_one_at_a_time(snapshot, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(engine, "default_as_of", lambda campaign, today=None: AS_OF)
    province_row = AttainmentTotal.objects.get(campaign=snapshot, unit=None, scheme=Scheme.VSI)
    assert province_row.target == 25
    with django_capture_on_commit_callbacks(execute=True):
        target_set(campaign=snapshot, unit=None, scheme=Scheme.VSI, value=40)
    assert AttainmentTotal.objects.get(campaign=snapshot, unit=None, scheme=Scheme.VSI).target == 40
    _equals_full(snapshot)
    with django_capture_on_commit_callbacks(execute=True):
        target_clear(campaign=snapshot, unit=None, scheme=Scheme.VSI)
    # Without its own target the province's is the sum of its units' (10 + 0).
    assert AttainmentTotal.objects.get(campaign=snapshot, unit=None, scheme=Scheme.VSI).target == 10
    assert not Target.objects.filter(campaign=snapshot, unit=None, scheme=Scheme.VSI).exists()
    _equals_full(snapshot)


def test_an_unchanged_target_schedules_nothing(snapshot, unit, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        targets_bulk_set(campaign=snapshot, values=[(unit, Scheme.VSI, 10)])
    assert callbacks == []
