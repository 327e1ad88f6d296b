"""Redis stopped under a running app: entries still save, no request hangs, dashboards show their last snapshot, and
Celery catches up when Redis is back.

A private redis-server, gunicorn and a real `celery worker` (subprocesses) on the test database. Redis is killed
(SIGKILL, an in-memory instance: whatever it held is lost), 100 enrollments are posted through HTTP, Redis is
started again on the same port, and the worker — which kept running through the outage — reconnects, queues the
refresh of the pending units (config.celery.PendingRefreshCatchUp) and brings the dashboard up to date.
"""

import datetime
import re
import threading
import time

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from districts.scoping import ROLE_MANAGER, ROLE_STAFF
from participants.models import Enrollment, Scheme
from reports import engine
from reports.models import AttainmentTotal, PendingRefresh
from tests.factories import CampaignFactory, TargetFactory, make_user
from tests.faults.conftest import signed_in
from tests.faults.services import WebServer, Worker, tail, wait_until
from tests.participants.conftest import entry_data
from tests.reports.conftest import enroll

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ENTRIES = 100
WRITERS = 10
REQUEST_BOUND_SECONDS = 5.0
SAVED = re.compile(r"[?&]saved=(\d+)$")


def _figure(body: str) -> int:
    """The headline figure of the voluntary social insurance card."""
    with translation.override("en"):
        card = re.escape(f'aria-label="{Scheme.VSI.label}"')
    match = re.search(card + r'.*?<span class="card-figure">([\d.,]+)</span>', body, re.DOTALL)
    assert match, "no headline figure on the dashboard"
    return int(re.sub(r"\D", "", match.group(1)))


def _province_enrolled(campaign) -> int:
    return AttainmentTotal.objects.get(campaign=campaign, unit__isnull=True, scheme=Scheme.VSI).enrolled


def test_entries_save_while_redis_is_down_and_the_dashboard_catches_up_when_it_is_back(
    redis_server, test_database_url, app_env, tmp_path, province, unit, commune
):
    today = timezone.localdate()
    campaign = CampaignFactory(
        province=province,
        slug="redis-outage",
        start_date=today - datetime.timedelta(days=10),
        end_date=today + datetime.timedelta(days=20),
    )
    TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=500)
    TargetFactory(campaign=campaign, unit=None, scheme=Scheme.VSI, value=500)
    for n in range(5):
        enroll(unit=unit, on=today - datetime.timedelta(days=n), commune=commune)
    engine.snapshot_rebuild(campaigns=[campaign])
    snapshot = AttainmentTotal.objects.filter(campaign=campaign, unit__isnull=True, scheme=Scheme.VSI).get()
    assert snapshot.enrolled == 5

    env = app_env(database_url=test_database_url, redis_url=redis_server.url(0), REPORTS_REFRESH_DEBOUNCE_SECONDS=1)
    web = WebServer(env, tmp_path / "gunicorn.log", workers=2, threads=8).start()
    worker = Worker(env, tmp_path / "worker.log", pool="solo").start()
    try:
        staff = make_user(ROLE_STAFF, province=province, unit=unit, username="redis-staff")
        manager = make_user(ROLE_MANAGER, province=province, username="redis-manager")
        url = reverse("participants:enrollment_create")
        dashboard = reverse("reports:campaign_dashboard", kwargs={"slug": campaign.slug})
        sessions = [signed_in(web.url, staff) for _ in range(WRITERS)]
        tokens = [session.csrf_token(url) for session in sessions]
        viewer = signed_in(web.url, manager)

        redis_server.kill()
        outage_started = time.monotonic()

        timings, acknowledged, other = [], {}, []
        lock = threading.Lock()

        def writer(index):
            for n in range(ENTRIES // WRITERS):
                si_number = f"79{index:02d}{n:06d}"
                data = entry_data(
                    commune,
                    si_number=si_number,
                    full_name=f"Người Thử Redis {index} {n}",
                    enrolled_on=today.strftime("%d/%m/%Y"),
                    coverage_start=today.replace(day=1).strftime("%d/%m/%Y"),
                )
                started = time.monotonic()
                try:
                    status, headers, _ = sessions[index].request(
                        "POST", url, {**data, "csrfmiddlewaretoken": tokens[index]}, timeout=30
                    )
                except Exception as exc:  # noqa: BLE001 - a hang or reset is counted, not raised
                    status, headers = repr(exc), {}
                elapsed = time.monotonic() - started
                saved = SAVED.search(headers.get("Location", "")) if status == 302 else None
                with lock:
                    timings.append(elapsed)
                    if saved:
                        acknowledged[si_number] = int(saved.group(1))
                    else:
                        other.append(status)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a request hung"

        assert other == [], f"responses other than a saved redirect while Redis was down: {other[:5]}"
        assert len(acknowledged) == ENTRIES
        stored = dict(
            Enrollment.objects.filter(pk__in=acknowledged.values()).values_list("participant__si_number", "pk")
        )
        assert stored == acknowledged, "an acknowledged enrollment is missing"
        slowest = max(timings)
        assert slowest < REQUEST_BOUND_SECONDS, f"the slowest save took {slowest:.2f} s"
        assert PendingRefresh.objects.filter(campaign=campaign, unit=unit).exists()

        # The dashboard still answers, with the last snapshot, its time, and a warning that the data is newer; so do
        # the province overview and the API, all within the bound.
        reads = {}
        for page in (
            dashboard,
            reverse("reports:province_overview"),
            reverse("api:campaign_attainment", args=[campaign.slug]),
        ):
            started = time.monotonic()
            status, _, body = viewer.request("GET", page, timeout=30)
            reads[page] = time.monotonic() - started
            assert status == 200, page
            assert reads[page] < REQUEST_BOUND_SECONDS, f"{page} took {reads[page]:.2f} s"
        status, _, body = viewer.request("GET", dashboard, timeout=30)
        assert status == 200
        assert 'data-testid="stale-warning"' in body
        computed = timezone.localtime(snapshot.computed_at).strftime("%d/%m/%Y %H:%M")
        assert f"computed at {computed}" in body
        assert _figure(body) == 5
        assert _province_enrolled(campaign) == 5
        outage = time.monotonic() - outage_started

        # Redis comes back on the same port: the worker reconnects by itself and catches up.
        redis_server.start()
        back = time.monotonic()
        try:
            wait_until(
                lambda: (
                    not PendingRefresh.objects.filter(campaign=campaign).exists()
                    and _province_enrolled(campaign) == 5 + ENTRIES
                ),
                60,
                0.5,
                "the worker to refresh the dashboard after Redis came back",
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n--- worker log:\n{tail(worker.log, 40)}") from exc
        caught_up = time.monotonic() - back
        status, _, body = viewer.request("GET", dashboard, timeout=30)
        assert status == 200
        assert 'data-testid="stale-warning"' not in body
        assert _figure(body) == 5 + ENTRIES
        print(
            f"\nRedis down: {len(acknowledged)}/{ENTRIES} saved, slowest save {slowest:.2f} s, "
            f"median {sorted(timings)[len(timings) // 2]:.2f} s, outage {outage:.1f} s; "
            f"reads during the outage (dashboard, overview, API) {max(reads.values()):.2f} s at most; "
            f"dashboard caught up {caught_up:.1f} s after Redis came back"
        )
    finally:
        worker.stop()
        web.stop()
