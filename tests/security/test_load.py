"""Load on the entry form through HTTP (PostgreSQL, the threaded live server): nothing lost, nothing stored twice.

CI runs 20 writers x 25 enrollments (500 POSTs). LOAD_FULL=1 runs the issue's 20 x 250 (5,000 POSTs);
LOAD_WRITERS and LOAD_PER_WRITER override either size.
"""

import os
import re
import threading
import time
from collections import Counter

import pytest
from django.conf import settings as django_settings
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.urls import reverse

from districts.scoping import ROLE_STAFF
from participants.models import Enrollment, Participant
from tests.factories import make_user
from tests.participants.conftest import entry_data
from tests.security.load import HttpSession

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="load tests run on PostgreSQL"),
]

SAVED = re.compile(r"[?&]saved=(\d+)$")
DUPLICATE = "already has Voluntary social insurance coverage"


def load_size() -> tuple[int, int]:
    full = os.environ.get("LOAD_FULL") == "1"
    writers = int(os.environ.get("LOAD_WRITERS", 20))
    per_writer = int(os.environ.get("LOAD_PER_WRITER", 250 if full else 25))
    return writers, per_writer


@pytest.fixture
def plain_http(settings, celery_eager):
    """The live server speaks plain HTTP: cookies marked Secure would never come back. Tasks run in process."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    return settings


def signed_in(live_server, user) -> HttpSession:
    """An HTTP session of its own for `user`, signed in (the session row is created the way a sign-in does)."""
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return HttpSession(live_server.url, cookies={name: client.cookies[name].value})


def staff_sessions(live_server, count, units_and_communes):
    """`count` staff users spread over the given units, each with their own session, and their commune."""
    sessions = []
    for i in range(count):
        unit, commune = units_and_communes[i % len(units_and_communes)]
        user = make_user(ROLE_STAFF, province=unit.province, unit=unit, username=f"load{i:02d}")
        sessions.append((signed_in(live_server, user), commune))
    return sessions


def test_the_live_server_answers_requests_in_parallel_threads(live_server):
    assert isinstance(live_server.thread.httpd, ThreadedWSGIServer)
    assert live_server.thread.httpd.daemon_threads


def test_concurrent_writers_lose_nothing_and_store_nothing_twice(
    live_server, plain_http, unit, commune, other_unit, other_commune
):
    """Every acknowledged enrollment (the redirect to ?saved=<pk>) is stored exactly once; 0 server errors."""
    writers, per_writer = load_size()
    url = reverse("participants:enrollment_create")
    sessions = staff_sessions(live_server, writers, [(unit, commune), (other_unit, other_commune)])
    acknowledged, refused, errors = {}, Counter(), []
    lock = threading.Lock()
    barrier = threading.Barrier(writers)

    def writer(index, session, writer_commune):
        try:
            token = session.csrf_token(url)
            barrier.wait(timeout=60)
            for n in range(per_writer):
                si_number = f"24{index:02d}{n:06d}"
                data = entry_data(writer_commune, si_number=si_number, full_name=f"Người Thử {index} {n}")
                status, headers, _text = session.request("POST", url, {**data, "csrfmiddlewaretoken": token})
                saved = SAVED.search(headers.get("Location", "")) if status == 302 else None
                with lock:
                    if saved:
                        acknowledged[si_number] = int(saved.group(1))
                    else:
                        refused[status] += 1
        except Exception as exc:  # noqa: BLE001 (reported by the main thread)
            with lock:
                errors.append(repr(exc))

    threads = [
        threading.Thread(target=writer, args=(i, session, writer_commune))
        for i, (session, writer_commune) in enumerate(sessions)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    elapsed = time.monotonic() - started

    assert not errors, errors[:5]
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert refused == Counter(), f"responses other than a saved redirect: {dict(refused)}"
    assert len(acknowledged) == writers * per_writer
    stored = dict(
        Enrollment.objects.values_list("participant__si_number")
        .annotate(n=Count("pk"))
        .values_list("participant__si_number", "n")
    )
    assert set(stored) == set(acknowledged), "acknowledged and stored SI numbers differ"
    assert set(stored.values()) == {1}, "an SI number was stored more than once"
    assert Enrollment.objects.count() == len(acknowledged)
    assert set(Enrollment.objects.values_list("pk", flat=True)) == set(acknowledged.values())
    assert Participant.objects.count() == len(acknowledged)
    print(
        f"\nload: {writers} writers x {per_writer} enrollments = {len(acknowledged)} saved in {elapsed:.1f} s "
        f"({len(acknowledged) / elapsed:.0f} POSTs/s), 0 lost, 0 duplicated, 0 server errors"
    )


def test_twenty_simultaneous_enrollments_of_one_person_store_one_and_tell_nineteen(
    live_server, plain_http, unit, commune
):
    """Same person, scheme and coverage from 20 officers at once: 1 saved, 19 forms with the duplicate message."""
    url = reverse("participants:enrollment_create")
    sessions = staff_sessions(live_server, 20, [(unit, commune)])
    data = entry_data(commune, si_number="2409999999")
    results, errors = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(len(sessions))

    def officer(session):
        try:
            token = session.csrf_token(url)
            barrier.wait(timeout=60)
            status, headers, text = session.request("POST", url, {**data, "csrfmiddlewaretoken": token})
            with lock:
                results.append((status, headers.get("Location", ""), DUPLICATE in text))
        except Exception as exc:  # noqa: BLE001 (reported by the main thread)
            with lock:
                errors.append(repr(exc))

    threads = [threading.Thread(target=officer, args=(session,)) for session, _commune in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors[:5]
    assert len(results) == 20
    saved = [r for r in results if r[0] == 302 and SAVED.search(r[1])]
    told = [r for r in results if r[0] == 200 and r[2]]
    assert len(saved) == 1, results
    assert len(told) == 19, results
    assert not [r for r in results if r[0] >= 500]
    assert Enrollment.objects.filter(participant__si_number="2409999999").count() == 1
    assert Participant.objects.filter(si_number="2409999999").count() == 1
    assert Enrollment.objects.get().pk == int(SAVED.search(saved[0][1]).group(1))
