"""PostgreSQL restarted under writers: requests during the outage fail cleanly and quickly, the app reconnects by
itself (persistent connections with CONN_HEALTH_CHECKS), and every acknowledged enrollment is in the database after.

A private PostgreSQL 15 cluster (a copy of the test database: schema, reference rows, users and their sessions), a
private Redis and gunicorn with persistent connections (CONN_MAX_AGE=60). Writers post enrollments through HTTP
without pause; the cluster is stopped in `immediate` mode (a crash: no shutdown checkpoint, recovery on start),
left down, and started again on the same port.
"""

import re
import threading
import time

import pytest
from django.urls import reverse

from districts.scoping import ROLE_STAFF
from tests.factories import make_user
from tests.faults.conftest import signed_in
from tests.faults.services import PrivatePostgres, WebServer, tail
from tests.participants.conftest import entry_data

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITERS = 8
BEFORE_SECONDS = 3.0
DOWN_SECONDS = 3.0
AFTER_SECONDS = 4.0
REQUEST_BOUND_SECONDS = 10.0
# 500: the database is unreachable; 400: Django's session middleware could not save the session after the view
# (SessionInterrupted) — quick, and not an acknowledgement.
CLEAN_FAILURES = (400, 500, 502, 503)
SAVED = re.compile(r"[?&]saved=(\d+)$")


def _restart_while_idle(cluster, sessions, tokens, url, commune, results):
    """Restarts the database with no request in flight, then posts from every session at once, three rounds.

    Every gunicorn thread holds a persistent connection that died with the server; without connection health checks
    the first request on each would fail. Returns the rounds' results (also appended to `results`).
    """
    cluster.stop("immediate")
    cluster.start()
    quiet = []
    lock = threading.Lock()

    def post(index, n):
        si_number = f"78{index:02d}{900000 + n:06d}"
        data = entry_data(commune, si_number=si_number, full_name=f"Người Thử Sau Khởi Động {index} {n}")
        started = time.monotonic()
        status, headers, _ = sessions[index].request("POST", url, {**data, "csrfmiddlewaretoken": tokens[index]})
        saved = SAVED.search(headers.get("Location", "")) if status == 302 else None
        with lock:
            quiet.append(
                (started, time.monotonic() - started, status, si_number, int(saved.group(1)) if saved else None)
            )

    for n in range(3):
        round_threads = [threading.Thread(target=post, args=(i, n)) for i in range(len(sessions))]
        for thread in round_threads:
            thread.start()
        for thread in round_threads:
            thread.join(timeout=60)
    results.extend(quiet)
    return quiet


@pytest.fixture
def private_postgres():
    cluster = PrivatePostgres()
    try:
        yield cluster.init()
    finally:
        cluster.destroy()


def test_writers_lose_no_acknowledged_enrollment_when_postgres_restarts(
    private_postgres, redis_server, test_database_url, app_env, tmp_path, province, unit, commune
):
    from django.db import connection

    staff = make_user(ROLE_STAFF, province=province, unit=unit, username="pg-staff")
    sessions = [signed_in("http://127.0.0.1", staff) for _ in range(WRITERS)]  # rows in the test database
    private_postgres.load_from(connection.settings_dict)  # ... copied with everything else to the private cluster

    env = app_env(database_url=private_postgres.url, redis_url=redis_server.url(0), CONN_MAX_AGE=60)
    web = WebServer(env, tmp_path / "gunicorn.log", workers=2, threads=4).start()
    url = reverse("participants:enrollment_create")
    for session in sessions:
        session.host, session.port = "127.0.0.1", web.port
    tokens = [session.csrf_token(url) for session in sessions]

    results = []  # (started, elapsed, status, si_number, pk or None)
    lock = threading.Lock()
    stop = threading.Event()

    def writer(index):
        n = 0
        while not stop.is_set():
            si_number = f"78{index:02d}{n:06d}"
            n += 1
            data = entry_data(commune, si_number=si_number, full_name=f"Người Thử Khởi Động {index} {n}")
            started = time.monotonic()
            try:
                status, headers, _ = sessions[index].request(
                    "POST", url, {**data, "csrfmiddlewaretoken": tokens[index]}, timeout=30
                )
            except Exception as exc:  # noqa: BLE001 - counted and reported
                status, headers = type(exc).__name__, {}
            elapsed = time.monotonic() - started
            saved = SAVED.search(headers.get("Location", "")) if status == 302 else None
            with lock:
                results.append((started, elapsed, status, si_number, int(saved.group(1)) if saved else None))
            if saved is None:
                time.sleep(0.05)  # a failing writer retries a little later, as a person would

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(BEFORE_SECONDS)
        down_at = time.monotonic()
        stop_seconds = private_postgres.stop("immediate")
        time.sleep(DOWN_SECONDS)
        start_seconds = private_postgres.start()
        up_at = time.monotonic()
        time.sleep(AFTER_SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    try:
        quiet = _restart_while_idle(private_postgres, sessions, tokens, url, commune, results)
    finally:
        web.stop()

    acknowledged = {si: pk for _s, _e, _st, si, pk in results if pk is not None}
    statuses = {}
    for _s, _e, status, _si, _pk in results:
        statuses[status] = statuses.get(status, 0) + 1
    slowest = max(elapsed for _s, elapsed, *_ in results)
    during = [r for r in results if down_at <= r[0] < up_at]
    after = [r for r in results if r[0] >= up_at]
    context = f"statuses {statuses}\n--- gunicorn log:\n{tail(web.process.log, 30)}"

    # Writes went through before, failed cleanly during, and went through again after the restart.
    assert acknowledged, context
    assert any(r[4] is not None and r[0] < down_at for r in results), context
    assert during and all(r[2] in CLEAN_FAILURES for r in during if r[4] is None), context
    assert set(statuses) <= {302, *CLEAN_FAILURES}, context
    assert slowest < REQUEST_BOUND_SECONDS, f"the slowest request took {slowest:.1f} s; {context}"
    # Health-checked connections: once the database accepts connections again, no request fails on a dead one.
    assert after and all(r[4] is not None for r in after), context

    # 0 acknowledged writes lost, none stored twice.
    rows = private_postgres.psql(
        "SELECT p.si_number, e.id FROM participants_enrollment e "
        "JOIN participants_participant p ON p.id = e.participant_id WHERE p.si_number LIKE '78%'"
    )
    stored = {}
    for line in rows.splitlines():
        si_number, pk = line.split("|")
        assert si_number not in stored, f"{si_number} stored twice"
        stored[si_number] = int(pk)
    lost = {si: pk for si, pk in acknowledged.items() if stored.get(si) != pk}
    assert not lost, f"{len(lost)} acknowledged enrollments are not in the database: {list(lost)[:5]}"
    assert all(r[4] is not None for r in quiet), f"a request failed after a restart with no traffic: {context}"
    failed_during = sum(1 for r in during if r[4] is None)
    print(
        f"\nPostgreSQL restart: {len(results)} requests, {len(acknowledged)} acknowledged, "
        f"{len(stored)} stored, 0 lost; statuses {statuses}; {failed_during} refused during the outage "
        f"(stop {stop_seconds:.1f} s + {DOWN_SECONDS:.0f} s down + start {start_seconds:.1f} s); "
        f"{len(after)} of {len(after)} after it succeeded; slowest request {slowest:.2f} s; "
        f"after an idle restart {len(quiet)} of {len(quiet)} succeeded"
    )
