#!/usr/bin/env python
"""The national-scale benchmark: the product's own code paths against PostgreSQL's bare-SQL limit, in one run.

    make bench                                  # N = 10,000,000 enrollments (generates them when missing)
    make bench BENCH_ARGS="--quick"             # N = 200,000, smaller samples: a few minutes
    .venv/bin/python bench/run.py --enrollments 1000000 --requests 50 --import-rows 5000

DATABASE_URL selects the database (default postgres://postgres@127.0.0.1:5432/bhxh_bench; created when missing);
PostgreSQL only. Every measurement runs the product's real code (the engine, the views through Django's test
client, the import services and commands) and, in the same run, the bare SQL that does the same work, so that the
ratio says how far the product is from what the database itself can do on this machine.

The data set is made by `manage.py generate_national` and reused by the next run when its size matches; the rows
this run adds (one day's enrollments, entries, imports) are deleted at the end. Results: bench/results/<time>.json
and the table in README.md between the `bench:begin` / `bench:end` markers.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import gzip
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bhxh_bench"
RESULTS_DIR = ROOT / "bench" / "results"
README = ROOT / "README.md"
README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"

# The speed to pass (seconds unless said otherwise).
THRESHOLDS = {
    "full_recompute": {"max_s": 5.0, "max_ratio": 2.0},
    "incremental_day": {"max_s": 0.150},
    "incremental_week": {"max_s": 0.500},
    "dashboard": {"median_ms": 15, "p95_ms": 30, "max_queries": 8},
    "entry_save": {"median_ms": 15, "p95_ms": 30},
    "target_import": {"max_s": 0.300},
    "list_import": {"max_s": 45.0, "max_ratio": 1.5},
}

DAY = datetime.date(2024, 5, 31)  # "one day's new enrollments": the peak campaign's last day, inside the annual plan


# ------------------------------------------------------------------------------------------------ measuring


def _peak_reset() -> None:
    """Resets the process's peak RSS (Linux: clear_refs 5), so that each step reports its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Timer:
    """Wall time and peak RSS of a block."""

    def __enter__(self):
        _peak_reset()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        self.peak_mb = _peak_mb()
        return False


def _quantiles(samples_s: list[float]) -> dict:
    ordered = sorted(samples_s)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "n": len(ordered),
    }


def _sql_timed(sql: str, params=None, *, repeat: int = 1) -> list[float]:
    from django.db import connection

    samples = []
    with connection.cursor() as cursor:
        for _ in range(repeat):
            started = time.perf_counter()
            cursor.execute(sql, params)
            if cursor.description:
                cursor.fetchall()
            samples.append(time.perf_counter() - started)
    return samples


def _scalar(sql: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        return row[0] if row else None


def _execute(sql: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# ------------------------------------------------------------------------------------------------ the data set


def ensure_database(url: str) -> None:
    """Creates the benchmark database when it does not exist (a real database, not a test one)."""
    import psycopg
    from psycopg import sql

    try:
        psycopg.connect(url, connect_timeout=5).close()
        return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    import environ

    config = environ.Env.db_url_config(url)
    admin = psycopg.connect(
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
    print(f"created database {config['NAME']}")


def data_ensure(n: int, seed: int, regenerate: bool) -> dict:
    from django.core.management import call_command

    from campaigns.models import Campaign
    from participants.models import Enrollment

    have = Enrollment.objects.count()
    generated = Campaign.objects.filter(slug__startswith="nat-").count()
    if not regenerate and have == n and generated:
        print(f"data: reusing the {have:,} enrollments already generated")
        return {"reused": True, "rows": have}
    print(f"data: generating {n:,} enrollments (seed {seed}) …", flush=True)
    out = io.StringIO()
    with Timer() as t:
        call_command("generate_national", enrollments=n, seed=seed, reset=True, stdout=out)
    print(out.getvalue().rstrip())
    return {"reused": False, "rows": n, "seconds": round(t.seconds, 1), "rows_per_s": round(n / t.seconds)}


# The tables the steps write and roll back (a million-row import leaves a million dead rows each time).
WRITTEN_TABLES = (
    "participants_enrollment",
    "participants_participant",
    "participants_historicalenrollment",
    "participants_historicalparticipant",
)


def vacuum_if_autovacuum_off() -> list[str]:
    """With autovacuum off (`SHOW autovacuum`; seen on the bench machine), the dead rows of every earlier run's
    rolled-back imports stay in the enrollment table and slow every scan of it (the full recompute's bare reference
    went from 2.2 s to 3.1 s after one run). VACUUM (ANALYZE) the written tables first, as autovacuum would have;
    not timed. Returns the tables vacuumed."""
    if _scalar("SHOW autovacuum") == "on":
        return []
    for table in WRITTEN_TABLES:
        _execute(f"VACUUM (ANALYZE) {table}")
    return list(WRITTEN_TABLES)


def machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    memory_gb = None
    try:
        with open("/proc/meminfo") as fh:
            memory_gb = round(int(fh.readline().split()[1]) / 1048576, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": _scalar("SHOW server_version"),
        "shared_buffers": _scalar("SHOW shared_buffers"),
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
    }


def counts() -> dict:
    return {
        "enrollments": _scalar("SELECT count(*) FROM participants_enrollment"),
        "participants": _scalar("SELECT count(*) FROM participants_participant"),
        "campaigns": _scalar("SELECT count(*) FROM campaigns_campaign"),
        "targets": _scalar("SELECT count(*) FROM campaigns_target"),
        "units": _scalar("SELECT count(*) FROM districts_district"),
        "communes": _scalar("SELECT count(*) FROM districts_commune"),
        "enrollment_table_mb": round(_scalar("SELECT pg_total_relation_size('participants_enrollment')") / 2**20),
    }


# ------------------------------------------------------------------------------------------------ bare SQL

# The reference: one GROUP BY campaign, unit, scheme, day with the cumulative window over the same rows.
BARE_DAILY = """
    SELECT c.id AS campaign_id, e.unit_id, e.scheme, e.enrolled_on AS day, count(*) AS n,
           sum(count(*)) OVER (PARTITION BY c.id, e.unit_id, e.scheme ORDER BY e.enrolled_on) AS cumulative
    FROM participants_enrollment e
    JOIN districts_district d ON d.id = e.unit_id
    JOIN campaigns_campaign c ON c.province_id = d.province_id
         AND e.enrolled_on BETWEEN c.start_date AND LEAST(c.end_date, %s)
    WHERE e.kind IN ('new', 'resumed') {where}
    GROUP BY c.id, e.unit_id, e.scheme, e.enrolled_on
"""


def bare_full_recompute(as_of: datetime.date) -> tuple[float, int]:
    """Build-then-swap of the scratch table, as a snapshot would be."""
    from django.db import transaction

    with Timer() as t, transaction.atomic():
        _execute("DROP TABLE IF EXISTS bench_scratch_new")
        _execute(
            "CREATE TABLE bench_scratch_new AS " + BARE_DAILY.format(where=""),  # noqa: S608 (constant text)
            [as_of],
        )
        _execute("DROP TABLE IF EXISTS bench_scratch")
        _execute("ALTER TABLE bench_scratch_new RENAME TO bench_scratch")
    _execute("CREATE UNIQUE INDEX bench_scratch_group ON bench_scratch (campaign_id, unit_id, scheme, day)")
    return t.seconds, _scalar("SELECT count(*) FROM bench_scratch")


def bare_incremental(as_of: datetime.date, unit_ids: list[int], days: list[datetime.date]) -> float:
    """The same SQL restricted to the touched groups: the GROUP BY campaign, unit, scheme, day over the enrollments of
    the touched units and days, with the cumulative window over those groups only, upserted (INSERT … ON CONFLICT DO
    UPDATE) into the scratch table.

    The window runs over the touched groups, not over the rest of each unit's series: bringing every later running
    total up to date (an UPDATE of ~230,000 rows for one day's entries at 10M, ~2 s) is a cost of storing running
    totals, which the product does not (its charts sum the day counts)."""
    from django.db import transaction

    with Timer() as t, transaction.atomic():
        _execute("SET LOCAL jit = off")  # as the product's runs: compiling costs more than it saves at this size
        _execute(
            """
            INSERT INTO bench_scratch (campaign_id, unit_id, scheme, day, n, cumulative)
            SELECT c.id, e.unit_id, e.scheme, e.enrolled_on, count(*),
                   sum(count(*)) OVER (PARTITION BY c.id, e.unit_id, e.scheme ORDER BY e.enrolled_on)
            FROM participants_enrollment e
            JOIN districts_district d ON d.id = e.unit_id
            JOIN campaigns_campaign c ON c.province_id = d.province_id
                 AND e.enrolled_on BETWEEN c.start_date AND LEAST(c.end_date, %s)
            WHERE e.kind IN ('new', 'resumed') AND e.unit_id = ANY(%s) AND e.enrolled_on = ANY(%s)
            GROUP BY c.id, e.unit_id, e.scheme, e.enrolled_on
            ON CONFLICT (campaign_id, unit_id, scheme, day) DO UPDATE SET n = EXCLUDED.n, cumulative = EXCLUDED.cumulative
            """,
            [as_of, unit_ids, days],
        )
    return t.seconds


# ------------------------------------------------------------------------------------------------ rows added


def rows_insert(days: list[datetime.date], rows: int, prefix: str) -> list[int]:
    """`rows` new people enrolling on `days` (round robin), in communes drawn like the data set's last 60 days (every
    k-th row); inserted with plain SQL (the set-up, not the measurement). Returns the touched unit ids."""
    base = _scalar("SELECT COALESCE(max(id), 0) FROM participants_participant")
    since, last = min(days) - datetime.timedelta(days=60), max(days)
    recent = _scalar("SELECT count(*) FROM participants_enrollment WHERE enrolled_on BETWEEN %s AND %s", [since, last])
    step = max(1, recent // max(rows, 1))
    _execute(
        """
        INSERT INTO participants_participant (id, si_number, full_name, date_of_birth, gender, commune_id,
                                              occupation, income_bracket, created_at)
        SELECT %s + e.i, %s || lpad(e.i::text, 10 - length(%s), '0'), 'Người tham gia ' || e.i, DATE '1980-01-01',
               'female', e.commune_id, 'other', 'unknown', now()
        FROM (SELECT row_number() OVER (ORDER BY id) AS i, commune_id FROM (
                SELECT id, commune_id FROM participants_enrollment
                WHERE enrolled_on BETWEEN %s AND %s AND id %% %s = 0 ORDER BY id LIMIT %s) s) e
        """,
        [base, prefix, prefix, since, last, step, rows],
    )
    _execute("SELECT setval(pg_get_serial_sequence('participants_participant', 'id'), %s)", [base + rows])
    _execute(
        """
        INSERT INTO participants_enrollment (participant_id, scheme, kind, enrolled_on, coverage_start,
            coverage_end, months, unit_id, commune_id, created_at, updated_at)
        SELECT p.id, CASE WHEN p.id %% 3 = 0 THEN 'vsi' ELSE 'hi_family' END, 'new', d.day, d.day,
               (d.day + CASE WHEN p.id %% 3 = 0 THEN interval '1 month' ELSE interval '12 months' END)::date,
               CASE WHEN p.id %% 3 = 0 THEN 1 ELSE 12 END, c.district_id, p.commune_id, now(), now()
        FROM participants_participant p JOIN districts_commune c ON c.id = p.commune_id
        CROSS JOIN LATERAL (SELECT (%s::date[])[1 + p.id %% %s] AS day) d
        WHERE p.id > %s
        """,
        [list(days), len(days), base],
    )
    return [
        u
        for (u,) in _fetch(
            "SELECT DISTINCT e.unit_id FROM participants_enrollment e WHERE e.participant_id > %s", [base]
        )
    ]


def _add_months(day, months):
    from participants.models import add_months

    return add_months(day, months)


def _fetch(sql, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def added_rows_delete(marks: dict) -> None:
    """Removes what this run added, so that the next run can reuse the data set."""
    from django.db import transaction

    with transaction.atomic():
        _execute("SET CONSTRAINTS ALL IMMEDIATE")
        _execute("DELETE FROM participants_enrollment WHERE id > %s", [marks["enrollment"]])
        _execute("DELETE FROM participants_historicalenrollment WHERE id > %s", [marks["enrollment"]])
        _execute("DELETE FROM participants_participant WHERE id > %s", [marks["participant"]])
        _execute("DELETE FROM participants_historicalparticipant WHERE id > %s", [marks["participant"]])
        _execute("DELETE FROM participants_enrollmentupload")
        _execute("DELETE FROM reports_pendingrefresh")
    for table in ("participants_enrollment", "participants_participant"):
        _execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT COALESCE(max(id), 1) FROM {table}))",  # noqa: S608
            [table],
        )


# ------------------------------------------------------------------------------------------------ users


def bench_users(province, unit):
    from django.contrib.auth.models import Group, User

    from districts.models import UserScope
    from districts.scoping import ROLE_ADMIN, ROLE_MANAGER, ROLE_STAFF

    users = {}
    for username, role, scope_unit in (
        ("bench_manager", ROLE_MANAGER, None),
        ("bench_staff", ROLE_STAFF, unit),
        ("bench_admin", ROLE_ADMIN, None),
    ):
        user, _ = User.objects.get_or_create(username=username)
        user.groups.set([Group.objects.get_or_create(name=role)[0]])
        UserScope.objects.update_or_create(user=user, defaults={"province": province, "unit": scope_unit})
        users[role] = user
    return users


# ------------------------------------------------------------------------------------------------ measurements


def row(name, product, reference=None, *, unit="s", threshold=None, verdict=None, peak_mb=None, rows=None, note=""):
    ratio = None
    if isinstance(product, int | float) and isinstance(reference, int | float) and reference > 0:
        ratio = round(product / reference, 2)
    return {
        "name": name,
        "product": product,
        "reference": reference,
        "unit": unit,
        "ratio": ratio,
        "threshold": threshold,
        "verdict": verdict,
        "peak_mb": peak_mb,
        "rows": rows,
        "note": note,
    }


def _verdict(ok: bool | None) -> str | None:
    return None if ok is None else ("pass" if ok else "MISS")


def measure_full(results: list, as_of: datetime.date) -> None:
    from reports import engine

    _scalar("SELECT count(*) FROM participants_enrollment WHERE kind IN ('new', 'resumed')")  # warm the cache
    ref_s, ref_rows = bare_full_recompute(as_of)
    with Timer() as t:
        run = engine.snapshot_rebuild()
    limit = THRESHOLDS["full_recompute"]
    ok = t.seconds < limit["max_s"] and t.seconds <= limit["max_ratio"] * ref_s
    results.append(
        row(
            "full recompute (all campaigns)",
            round(t.seconds, 3),
            round(ref_s, 3),
            threshold=f"< {limit['max_s']} s and ≤ {limit['max_ratio']}× bare",
            verdict=_verdict(ok),
            peak_mb=t.peak_mb,
            rows=f"{run.total_rows:,} totals + {run.daily_rows:,} daily (bare: {ref_rows:,})",
            note=f"engine.snapshot_rebuild(); run {run.pk} {run.status}",
        )
    )


VACUUMED = (
    "reports_attainmentbreakdown",
    "reports_attainmenttotal",
    "reports_attainmentdaily",
    "reports_enrollmentchange",
    "reports_pendingrefresh",
    "reports_pendingrefreshday",
)


def measure_incremental(results: list, rows: int, rounds: int = 3) -> None:
    """One day's new rows, then late entries spread over the 7 days before it: the after-commit receiver's work
    (`refresh_schedule`) and what the Celery worker then runs (`refresh_pending`: one run for every pending mark).

    Each is measured `rounds` times, every round with its own new rows (a refresh of ~130 ms varies by ±20 ms from
    one round to the next on a shared 2-core machine): the row gives the median round, the note every round."""
    import statistics

    from reports import tasks

    if not _scalar("SELECT to_regclass('bench_scratch') IS NOT NULL"):
        bare_full_recompute(datetime.date(2024, 12, 31))
    week = [DAY - datetime.timedelta(days=d) for d in range(1, 8)]
    # SI numbers of the rows added start with 90, which no generated number does (no province 90; 91–96 exist):
    # 9000–9003 for the day's rounds, 9004–9007 for the week's, 9008 / 9009 for the warm-ups (the entry save takes
    # 901 and 902, the list import 903 and 904).
    rounds = max(1, min(rounds, 4))
    for label, days, first, warm_prefix, limit in (
        (f"one day's {rows:,} rows", [DAY], 0, "9008", THRESHOLDS["incremental_day"]),
        (f"{rows:,} late entries over 7 days", week, 4, "9009", THRESHOLDS["incremental_week"]),
    ):
        # The worker that runs the refresh has refreshed before, and the web process that publishes it has
        # published before: one small refresh of the same kind (20 rows on the same days), untimed, pays this
        # process's first publish (~100 ms) and first refresh (~50-60 ms more than the next: Redis, psycopg and
        # the ORM's first use of each path), as the dashboard's measurement pays its first request.
        warm = rows_insert(days, 20, warm_prefix)
        tasks.refresh_schedule(unit_ids=warm, days=set(days), coverage_since=min(days))
        tasks.refresh_pending()
        samples, references, peak = [], [], 0.0
        for n in range(rounds):
            unit_ids = rows_insert(days, rows, f"900{first + n}")
            # The engine's small, busy tables as autovacuum keeps them in production (it may be off on a bench
            # machine: `SHOW autovacuum`), so that a run does not pay for every earlier run's dead rows.
            for table in VACUUMED:
                _execute(f"VACUUM ANALYZE {table}")
            # A day's entries come in over hours, and the background writer writes their pages back meanwhile;
            # added here in one statement, they would leave shared_buffers full of dirty pages that the timed
            # refresh (and the bare reference after it) would have to write back before reading its own.
            _execute("CHECKPOINT")
            with Timer() as t:
                touched = tasks.refresh_schedule(unit_ids=unit_ids, days=set(days), coverage_since=min(days))
                tasks.refresh_pending()
            samples.append(t.seconds)
            peak = max(peak, t.peak_mb)
            _execute("CHECKPOINT")
            references.append(bare_incremental(datetime.date(2024, 12, 31), unit_ids, days))
        median = statistics.median(samples)
        results.append(
            row(
                f"incremental recompute after {label}",
                round(median, 3),
                round(statistics.median(references), 3),
                threshold=f"< {limit['max_s'] * 1000:.0f} ms",
                verdict=_verdict(median < limit["max_s"]),
                peak_mb=peak,
                rows=f"{len(unit_ids)} units, {len(touched)} campaigns",
                note="refresh_schedule + refresh_pending: one batched run for every touched campaign; median of "
                f"{rounds} rounds of new rows: {', '.join(f'{x * 1000:.0f}' for x in samples)} ms "
                f"(bare: {', '.join(f'{x * 1000:.0f}' for x in references)} ms)",
            )
        )


def _client_times(client, url, requests: int, budget_s: float, before=None) -> tuple[list[float], int, bytes]:
    """Times `requests` GETs (fewer when they take longer than `budget_s` in all; the count is reported).
    `before`, when given, runs before each request, untimed (e.g. to forget the page's kept fragments)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    before = before or (lambda: None)
    for _ in range(3):
        before()
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    before()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    query_count = len(queries)  # now: the next request clears the connection's query log
    body = response.content
    samples = []
    deadline = time.perf_counter() + budget_s
    for _ in range(requests):
        before()
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        if started > deadline and len(samples) >= 10:
            break
    return samples, query_count, body


def measure_pages(results: list, users: dict, campaigns, requests: int, budget_s: float) -> None:
    from django.db import transaction
    from django.test import Client
    from django.urls import NoReverseMatch, reverse

    from campaigns.models import Campaign
    from reports import breakdowns
    from reports.models import AttainmentBreakdown

    # The stored breakdowns the dashboards read: their full build (the task a full recompute, or an incremental one
    # over many units, leaves for after its commit — the in-process broker here never runs it), so that the pages
    # below read current ones.
    with Timer() as t, transaction.atomic():
        built = breakdowns.rebuild(Campaign.objects.values_list("pk", flat=True))
    results.append(
        row(
            "stored breakdowns, full build (a task after the full recompute)",
            round(t.seconds, 3),
            peak_mb=t.peak_mb,
            rows=f"{built:,} rows ({AttainmentBreakdown.objects.count():,} with the markers)",
            note="reports.breakdowns.rebuild(every campaign): enrollments x participants grouped once, summed per "
            "dimension",
        )
    )
    from reports.views import _FRAGMENTS

    forget = _FRAGMENTS.clear
    client = Client()
    client.force_login(users["manager"])
    limit = THRESHOLDS["dashboard"]
    for campaign in campaigns:
        snapshot_samples = []
        for _ in range(requests):
            snapshot_samples += _sql_timed(
                "SELECT * FROM reports_attainmenttotal WHERE campaign_id = %s ORDER BY scheme, unit_id",
                [campaign.pk],
            )
        snapshot = _quantiles(snapshot_samples)
        for label, variant, name, kwargs, before in (
            # The dashboard keeps what it draws from a snapshot per process (reports.views._FRAGMENTS) until the
            # next run: timed both as the first view of a snapshot (kept fragments forgotten before each request)
            # and as the views after it.
            ("dashboard", " (first view of a snapshot)", "reports:campaign_dashboard", {"slug": campaign.slug}, forget),
            ("dashboard", " (later views)", "reports:campaign_dashboard", {"slug": campaign.slug}, None),
            ("attainment API", "", "api:campaign_attainment", {"slug": campaign.slug}, None),
        ):
            try:
                url = reverse(name, kwargs=kwargs)
            except NoReverseMatch:
                results.append(row(f"{label} {campaign.slug}", "not available", note=f"no URL {name}"))
                continue
            with Timer() as t:
                samples, query_count, body = _client_times(client, url, requests, budget_s, before)
            size, gz = len(body), len(gzip.compress(body))
            q = _quantiles(samples)
            ok = q["median_ms"] < limit["median_ms"] and q["p95_ms"] < limit["p95_ms"]
            ok = ok and query_count <= limit["max_queries"]
            results.append(
                row(
                    f"{label}, {campaign.measure} campaign{variant}, median / p95",
                    f"{q['median_ms']} / {q['p95_ms']}",
                    f"{snapshot['median_ms']} / {snapshot['p95_ms']}",
                    unit="ms",
                    threshold=f"< {limit['median_ms']} / {limit['p95_ms']} ms, ≤ {limit['max_queries']} queries",
                    verdict=_verdict(ok),
                    peak_mb=t.peak_mb,
                    rows=f"{query_count} queries, {size / 1024:.0f} kB ({gz / 1024:.0f} kB gzip)",
                    note=f"{url}, {q['n']} requests; reference: the bare snapshot SELECT",
                )
                | {
                    "product_median_ms": q["median_ms"],
                    "product_p95_ms": q["p95_ms"],
                    "reference_median_ms": snapshot["median_ms"],
                    "ratio": round(q["median_ms"] / snapshot["median_ms"], 1) if snapshot["median_ms"] else None,
                }
            )
            if label == "dashboard" and before is not None and campaign == campaigns[0]:
                results.append(page_transfer(url, body))
    # The enrollment list a province's manager opens (no threshold in the issue; measured so that it cannot slide):
    # its first page as it opens, and the records behind a peak campaign's figures.
    window = next((c for c in campaigns if not c.is_stock), campaigns[0])
    for variant, params in (
        ("first page", ""),
        (
            "behind a campaign's figures",
            f"?enrolled_from={window.start_date}&enrolled_to={window.end_date}&kind=growth",
        ),
    ):
        url = reverse("participants:enrollment_list") + params
        with Timer() as t:
            samples, query_count, body = _client_times(client, url, min(requests, 20), budget_s)
        q = _quantiles(samples)
        results.append(
            row(
                f"enrollment list, {variant}, median / p95",
                f"{q['median_ms']} / {q['p95_ms']}",
                unit="ms",
                peak_mb=t.peak_mb,
                rows=f"{query_count} queries, {len(body) / 1024:.0f} kB",
                note=f"{url}, {q['n']} requests as the province's manager (50 rows a page, the total counted)",
            )
        )


def page_transfer(url: str, body: bytes) -> dict:
    """What a first and a repeat visit of the page transfer, compressed: the HTML, and the static files it links
    (hashed names with far-future caching in production, so a repeat visit fetches only the HTML)."""
    import re

    from django.conf import settings
    from django.contrib.staticfiles import finders

    assets = {}
    for path in sorted(set(re.findall(rb'(?:src|href)="([^"?#]+)', body))):
        path = path.decode()
        if not path.startswith(settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/static/"):
            continue
        found = finders.find(path.split("/static/", 1)[-1])
        if found:
            data = Path(found).read_bytes()
            assets[path] = len(gzip.compress(data, 9))
    html = len(gzip.compress(body, 9))
    first = html + sum(assets.values())
    return row(
        "dashboard transfer, first / repeat visit (gzip)",
        f"{first / 1024:.0f} / {html / 1024:.0f}",
        unit="kB",
        threshold="HTML and data < 200 kB compressed",
        verdict=_verdict(html < 200 * 1024),
        rows=f"HTML {html / 1024:.0f} kB + {len(assets)} static files {sum(assets.values()) / 1024:.0f} kB",
        note=f"{url}: " + ", ".join(f"{p.rsplit('/', 1)[-1]} {n / 1024:.0f} kB" for p, n in assets.items()),
    )


def measure_entry(results: list, users: dict, unit, requests: int) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import NoReverseMatch, reverse
    from django.utils import timezone

    from campaigns.models import Campaign
    from districts.models import Commune

    try:
        url = reverse("participants:enrollment_create")
    except NoReverseMatch:
        results.append(row("entry save", "not available", note="no participants:enrollment_create"))
        return
    client = Client()
    client.force_login(users["staff"])
    commune = Commune.objects.filter(district=unit).order_by("code").first()
    # Entered on a day of a running window campaign of the unit's province (its last day, or today if it runs
    # still), so that what a save does after its commit for the dashboards (the pending mark, the Celery enqueue)
    # is measured too: an entry outside every campaign skips it.
    campaign = (
        Campaign.objects.filter(province_id=unit.province_id, measure=Campaign.Measure.WINDOW)
        .order_by("-end_date")
        .first()
    )
    today = timezone.localdate() if campaign is None else min(timezone.localdate(), campaign.end_date)
    base = 9_010_000_000  # "901…": no generated SI number starts with 90 (no province 90)

    def post(i):
        return client.post(
            url,
            {
                "si_number": f"{base + i:010d}",
                "full_name": f"Nguyễn Thị Bench {i}",
                "date_of_birth": "01/06/1985",
                "gender": "female",
                "commune": commune.pk,
                "scheme": "hi_family",
                "enrolled_on": today.strftime("%d/%m/%Y"),
                "coverage_start": today.strftime("%d/%m/%Y"),
                "months": 12,
            },
        )

    client.get(url)
    for i in range(3):
        response = post(i)
        if response.status_code != 302:
            results.append(row("entry save", "failed", note=f"the form answered {response.status_code}"))
            return
    with CaptureQueriesContext(connection) as queries:
        post(3)
    query_count = len(queries)
    samples = []
    with Timer() as t:
        for i in range(4, 4 + requests):
            started = time.perf_counter()
            response = post(i)
            samples.append(time.perf_counter() - started)
            assert response.status_code == 302, response.status_code
    q = _quantiles(samples)
    # Reference: the two INSERTs of a person and an enrollment in one transaction, nothing else.
    ref = []
    for i in range(requests):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(
                "INSERT INTO participants_participant (si_number, full_name, date_of_birth, gender, commune_id, "
                "occupation, income_bracket, created_at) VALUES (%s, 'Bench', '1985-06-01', 'female', %s, "
                "'other', 'unknown', now()) RETURNING id",
                [f"{base + 10_000_000 + i:010d}", commune.pk],
            )
            person = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO participants_enrollment (participant_id, scheme, kind, enrolled_on, coverage_start, "
                "coverage_end, months, unit_id, commune_id, created_at, updated_at) VALUES "
                "(%s, 'hi_family', 'new', %s, %s, %s, 12, %s, %s, now(), now())",
                [person, today, today, _add_months(today, 12), unit.pk, commune.pk],
            )
            cursor.execute("COMMIT")
        ref.append(time.perf_counter() - started)
    r = _quantiles(ref)
    limit = THRESHOLDS["entry_save"]
    results.append(
        row(
            "entry save through the view, median / p95",
            f"{q['median_ms']} / {q['p95_ms']}",
            f"{r['median_ms']} / {r['p95_ms']}",
            unit="ms",
            threshold=f"< {limit['median_ms']} / {limit['p95_ms']} ms",
            verdict=_verdict(q["median_ms"] < limit["median_ms"] and q["p95_ms"] < limit["p95_ms"]),
            peak_mb=t.peak_mb,
            rows=f"{query_count} queries per save",
            note=(
                "POST participants:enrollment_create dated "
                f"{today:%Y-%m-%d}{f' (in {campaign.slug})' if campaign else ''}: after the commit the touched "
                "campaign units are marked pending and their refresh enqueued to Celery; reference: 2 bare INSERTs"
            ),
        )
        | {"ratio": round(q["median_ms"] / r["median_ms"], 1) if r["median_ms"] else None}
    )


def measure_target_import(results: list, workdir: Path, limit_files: int | None = None) -> None:
    from django.core.management import call_command
    from django.db import connection, transaction

    from campaigns.models import Campaign, Target

    campaigns = list(Campaign.objects.filter(slug__endswith="-peak-2024", slug__startswith="nat-").order_by("slug"))
    campaigns = campaigns[:limit_files] if limit_files else campaigns
    if not campaigns:
        results.append(row("target import", "not available", note="no generated peak campaigns"))
        return

    def province_files(folder: Path) -> tuple[list, int]:
        # One CSV per province's peak campaign, every unit's targets raised by one: the commit changes them all.
        folder.mkdir(exist_ok=True)
        files, unit_rows = [], 0
        for campaign in campaigns:
            targets = {}
            for code, name, scheme, value in Target.objects.filter(campaign=campaign, unit__isnull=False).values_list(
                "unit__code", "unit__name", "scheme", "value"
            ):
                targets.setdefault((code, name), {})[scheme] = value
            path = folder / f"targets-{campaign.slug}.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["unit_code", "unit_name", "vsi_target", "hi_target"])
                for (code, name), values in sorted(targets.items()):
                    writer.writerow([code, name, values.get("vsi", 0) + 1, values.get("hi_family", 0) + 1])
                    unit_rows += 1
            files.append((campaign, path))
        return files, unit_rows

    files, unit_rows = province_files(workdir / "targets")
    out = io.StringIO()
    # Set-up, not measured: every run rewrites every peak target (and the comparison below does it again); where
    # autovacuum is off, as on the machine of the README's figures, each run would otherwise meet the dead rows of
    # all the runs before it, where production's autovacuum keeps these small tables clean. Python's own leftovers
    # of the set-up are collected before the clock starts, too.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE campaigns_target, campaigns_historicaltarget")
    gc.collect()
    # The national office's job: every province's file previewed in one import_targets run, then imported in one
    # (all or nothing), the multi-file form of the command (FILE … --campaign SLUG … in the same order).
    arguments = [str(path) for _c, path in files] + [f"--campaign={campaign.slug}" for campaign, _p in files]
    with Timer() as preview:
        call_command("import_targets", *arguments, "--dry-run", stdout=out)
    with Timer() as commit:
        call_command("import_targets", *arguments, "--user=bench_admin", stdout=out)
    # For comparison, the same job one file per run (as 63 provincial admins would), on files made again from the
    # targets just written, so that it too changes every target.
    single_files, _rows = province_files(workdir / "targets-single")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE campaigns_target, campaigns_historicaltarget")
    gc.collect()
    with Timer() as single:
        for campaign, path in single_files:
            call_command("import_targets", str(path), campaign=campaign.slug, dry_run=True, stdout=out)
        for campaign, path in single_files:
            call_command("import_targets", str(path), campaign=campaign.slug, user="bench_admin", stdout=out)
    # Reference: parse the same files with csv and upsert every value in one statement (rolled back).
    with Timer() as ref:
        values = []
        for campaign, path in files:
            with path.open(encoding="utf-8") as fh:
                for record in csv.DictReader(fh):
                    values.append((campaign.pk, record["unit_code"], "vsi", int(record["vsi_target"]) + 1))
                    values.append((campaign.pk, record["unit_code"], "hi_family", int(record["hi_target"]) + 1))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO campaigns_target (campaign_id, unit_id, scheme, value)
                SELECT v.campaign_id, d.id, v.scheme, v.value
                FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::int[]) AS v(campaign_id, code, scheme, value)
                JOIN districts_district d ON d.code = v.code
                ON CONFLICT (campaign_id, unit_id, scheme) WHERE unit_id IS NOT NULL
                DO UPDATE SET value = EXCLUDED.value WHERE campaigns_target.value <> EXCLUDED.value
                """,
                [[v[0] for v in values], [v[1] for v in values], [v[2] for v in values], [v[3] for v in values]],
            )
            transaction.set_rollback(True)
    limit = THRESHOLDS["target_import"]
    total = preview.seconds + commit.seconds
    results.append(
        row(
            "target import: preview + commit",
            round(total, 3),
            round(ref.seconds, 3),
            threshold=f"< {limit['max_s'] * 1000:.0f} ms",
            verdict=_verdict(total < limit["max_s"]),
            peak_mb=max(preview.peak_mb, commit.peak_mb),
            rows=f"{unit_rows} units × 2 schemes in {len(files)} campaign files",
            note=(
                f"the {len(files)} province files in one import_targets run with --dry-run "
                f"({preview.seconds:.3f} s) and one run that imports them all or none ({commit.seconds:.3f} s), "
                f"every target changed; the same files one per run, {len(files)} previews then {len(files)} "
                f"commits, took {single.seconds:.3f} s; reference: csv parse + one INSERT … ON CONFLICT"
            ),
        )
    )


def _list_rows(count: int, *, prefix: str, duplicates: int = 0):
    """Rows in the import_enrollments format: new people in real communes, and some exact repeats of existing
    enrollments (which the import must detect and skip)."""
    communes = [
        code
        for (code,) in _fetch(
            "SELECT c.code FROM districts_commune c JOIN districts_district d ON d.id = c.district_id "
            "WHERE d.ceased_on IS NULL ORDER BY c.code"
        )
    ]
    repeats = _fetch(
        """
        SELECT p.si_number, p.full_name, p.date_of_birth, p.gender, c.code, e.scheme, e.enrolled_on,
               e.coverage_start, e.months
        FROM participants_enrollment e JOIN participants_participant p ON p.id = e.participant_id
        JOIN districts_commune c ON c.id = e.commune_id
        WHERE e.id %% 997 = 0 AND p.date_of_birth < '2008-01-01' AND e.agent_id IS NULL ORDER BY e.id LIMIT %s
        """,
        [duplicates],
    )
    for si, name, dob, gender, commune, scheme, enrolled, start, months in repeats:
        yield [si, name, dob.isoformat(), gender, commune, scheme, enrolled.isoformat(), start.isoformat(), months, ""]
    for i in range(count - len(repeats)):
        commune = communes[(i * 7919) % len(communes)]
        vsi = i % 3 == 0
        day = datetime.date(2024, 6, 1) + datetime.timedelta(days=i % 150)
        yield [
            f"{prefix}{i:0{10 - len(prefix)}d}",
            f"Trần Văn Nhập {i}",
            f"{1960 + i % 40}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "male" if i % 2 else "female",
            commune,
            "vsi" if vsi else "hi_family",
            day.isoformat(),
            day.isoformat(),
            1 if vsi else 12,
            "",
        ]


HEADER = [
    "si_number",
    "full_name",
    "date_of_birth",
    "gender",
    "commune_code",
    "scheme",
    "enrolled_on",
    "coverage_start",
    "months",
    "collection_agent_code",
]


def measure_list_import(results: list, workdir: Path, sample: int, reference_rows: int) -> None:
    """The whole list of `reference_rows` rows through `import_enrollments` (no extrapolation; `sample` is unused
    since the set-based import): a dry run (the preview), then the import itself — read, check, detect duplicates,
    write, deferred constraints checked — rolled back afterwards so that the data set stays as generated, exactly as
    the bare reference is."""
    from django.core.management import CommandError, call_command
    from django.db import connection, transaction

    list_path = workdir / "enrollments-list.csv"
    with list_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(_list_rows(reference_rows, prefix="903", duplicates=max(1, reference_rows // 100)))
    out, err = io.StringIO(), io.StringIO()
    try:
        with Timer() as check:
            call_command("import_enrollments", str(list_path), dry_run=True, stdout=out, stderr=err)
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) FROM participants_enrollment")
            last_id = cursor.fetchone()[0]
        with Timer() as commit, transaction.atomic(), connection.cursor() as cursor:
            call_command("import_enrollments", str(list_path), stdout=out, stderr=err)
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SELECT count(*) FROM participants_enrollment WHERE id > %s", [last_id])
            imported = cursor.fetchone()[0]
            transaction.set_rollback(True)
    except CommandError as exc:
        results.append(row("enrollment list import", "failed", note=f"{exc}: {err.getvalue()[:300]}"))
        return
    summary = out.getvalue().strip().splitlines()[-1] if out.getvalue().strip() else ""

    # Reference: a bare COPY of as many other rows into a staging table and INSERT … SELECT into the same tables
    # with their indexes and constraints (rolled back afterwards).
    ref_path = workdir / "enrollments-reference.csv"
    with ref_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerows(_list_rows(reference_rows, prefix="904"))
    with Timer() as ref, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_list (si_number text, full_name text, date_of_birth date, gender text, "
            "commune_code text, scheme text, enrolled_on date, coverage_start date, months int, agent_code text) "
            "ON COMMIT DROP"
        )
        with ref_path.open("rb") as fh, cursor.cursor.copy("COPY bench_list FROM STDIN (FORMAT CSV)") as copy:
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        cursor.execute(
            """
            INSERT INTO participants_participant (si_number, full_name, date_of_birth, gender, commune_id,
                                                  occupation, income_bracket, created_at)
            SELECT DISTINCT ON (s.si_number) s.si_number, s.full_name, s.date_of_birth, s.gender, c.id,
                   'other', 'unknown', now()
            FROM bench_list s JOIN districts_commune c ON c.code = s.commune_code
            ORDER BY s.si_number
            """
        )
        cursor.execute(
            """
            INSERT INTO participants_enrollment (participant_id, scheme, kind, enrolled_on, coverage_start,
                coverage_end, months, unit_id, commune_id, created_at, updated_at)
            SELECT p.id, s.scheme, 'new', s.enrolled_on, s.coverage_start,
                   (s.coverage_start + make_interval(months => s.months))::date, s.months, c.district_id, c.id,
                   now(), now()
            FROM bench_list s JOIN participants_participant p ON p.si_number = s.si_number
            JOIN districts_commune c ON c.code = s.commune_code
            """
        )
        inserted = cursor.rowcount
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        transaction.set_rollback(True)
    limit = THRESHOLDS["list_import"]
    ok = commit.seconds < limit["max_s"] and commit.seconds <= limit["max_ratio"] * ref.seconds
    results.append(
        row(
            f"enrollment list import of {reference_rows:,} rows",
            round(commit.seconds, 1),
            round(ref.seconds, 1),
            threshold=f"< {limit['max_s']:.0f} s and ≤ {limit['max_ratio']}× bare",
            verdict=_verdict(ok),
            peak_mb=max(commit.peak_mb, ref.peak_mb),
            rows=f"product {reference_rows:,} rows, {imported:,} saved; bare {inserted:,}",
            note=(
                f"import_enrollments (set-based: streamed COPY, checks and duplicates in SQL, INSERT … SELECT with "
                f"history) {commit.seconds:.1f} s, its --dry-run preview {check.seconds:.1f} s "
                f"(peak RSS {check.peak_mb} MB); {summary}; both rolled back after SET CONSTRAINTS ALL IMMEDIATE; "
                "bare: COPY into a staging table + INSERT … SELECT into the same tables"
            ),
        )
    )


# ------------------------------------------------------------------------------------------------ output


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value < 100 else f"{value:,.1f}"
    return str(value)


def table_markdown(result: dict) -> str:
    m, c = result["machine"], result["counts"]
    lines = [
        f"Run {result['started_at']} on {m['cores']} cores, {m['memory_gb']} GB, PostgreSQL {m['postgresql']} "
        f"(shared_buffers {m['shared_buffers']}), load average at start {m['load_average_at_start']}; "
        f"{c['enrollments']:,} enrollments, {c['participants']:,} participants, {c['campaigns']} campaigns, "
        f"{c['targets']:,} targets (enrollment table {c['enrollment_table_mb']:,} MB).",
        "",
        *[
            f"Steps {', '.join(sorted({r['step'] for r in rerun['rows']}))} were run again at {rerun['started_at']} "
            f"(load average {rerun['machine']['load_average_at_start']}) and their rows replaced."
            for rerun in result.get("reruns", [])
        ],
        "",
        "| measurement | product | bare SQL | ratio | to pass | verdict | peak RSS MB | rows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        unit = "" if r["product"] in ("not available", "failed", None) else f" {r['unit']}"
        lines.append(
            f"| {r['name']} | {_fmt(r['product'])}{unit} | {_fmt(r['reference'])}{unit if r['reference'] else ''} "
            f"| {_fmt(r['ratio'])} | {r['threshold'] or '–'} | {r['verdict'] or '–'} | {_fmt(r['peak_mb'])} "
            f"| {r['rows'] or '–'} |"
        )
    notes = [f"- {r['name']}: {r['note']}" for r in result["rows"] if r.get("note")]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def readme_update(markdown: str, path: Path = README) -> None:
    text = path.read_text(encoding="utf-8")
    block = f"{README_BEGIN}\n{markdown}\n{README_END}"
    if README_BEGIN in text and README_END in text:
        before, rest = text.split(README_BEGIN, 1)
        _old, after = rest.split(README_END, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------------------------------ the run


def benchmark(args) -> dict:
    """Runs every measurement on the configured (PostgreSQL) database; returns the result as a dict."""
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("The benchmark needs PostgreSQL: set DATABASE_URL=postgres://…")
    from celery import current_app

    # Production defers the recompute to a worker: publish to the in-process broker, run nothing in the request.
    saved_conf = {k: current_app.conf[k] for k in ("task_always_eager", "broker_url")}
    current_app.conf.task_always_eager = False
    current_app.conf.broker_url = "memory://"
    try:
        return _benchmark(args)
    finally:
        current_app.conf.update(saved_conf)


def _benchmark(args) -> dict:

    from campaigns.models import Campaign
    from districts.models import District, Province

    started_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = {"started_at": started_at, "args": vars(args), "machine": machine(), "rows": []}
    result["data"] = data_ensure(args.enrollments, args.seed, args.regenerate)
    result["vacuumed"] = vacuum_if_autovacuum_off()
    result["counts"] = counts()
    marks = {
        "enrollment": _scalar("SELECT COALESCE(max(id), 0) FROM participants_enrollment"),
        "participant": _scalar("SELECT COALESCE(max(id), 0) FROM participants_participant"),
    }
    rows = result["rows"]
    if not result["data"]["reused"]:
        rows.append(
            row(
                "generate_national (COPY + INSERT … SELECT, indexes rebuilt)",
                result["data"]["seconds"],
                unit="s",
                rows=f"{args.enrollments:,} rows, {result['data']['rows_per_s']:,} rows/s",
            )
        )
    province = Province.objects.get(code=args.province)
    unit = (
        District.objects.filter(province=province, communes__isnull=False)
        .exclude(kind=District.Kind.PROVINCIAL_OFFICE)
        .order_by("code")
        .first()
    )
    users = bench_users(province, unit)
    steps = [
        ("full recompute", lambda: measure_full(rows, datetime.date(2024, 12, 31))),
        ("incremental", lambda: measure_incremental(rows, args.day_rows, args.incremental_rounds)),
        (
            "dashboards",
            lambda: measure_pages(
                rows,
                users,
                list(
                    Campaign.objects.filter(
                        slug__in=[f"nat-{args.province}-peak-2024", f"nat-{args.province}-plan-2024"]
                    )
                ),
                args.requests,
                args.page_budget,
            ),
        ),
        ("entry save", lambda: measure_entry(rows, users, unit, args.requests)),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        steps += [
            ("target import", lambda: measure_target_import(rows, Path(workdir), args.target_files)),
            ("list import", lambda: measure_list_import(rows, Path(workdir), args.import_rows, args.reference_rows)),
        ]
        try:
            for name, step in steps:
                if args.only and name not in args.only:
                    continue
                print(f"… {name}", flush=True)
                first = len(rows)
                try:
                    step()
                except Exception as exc:  # one broken path must not hide the other figures
                    rows.append(row(name, "failed", note=f"{type(exc).__name__}: {str(exc)[:300]}"))
                    print(f"   {name} failed: {type(exc).__name__}: {exc}", flush=True)
                for r in rows[first:]:
                    r["step"], r["run"] = name, started_at
        finally:
            if not args.keep_added_rows:
                added_rows_delete(marks)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in load] if load else None
    result["finished_at"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return result


def merge(previous: dict, rerun: dict) -> dict:
    """The previous result with the steps run again (`--only`) replaced by this run's rows, in their place."""
    steps = {r["step"] for r in rerun["rows"]}
    merged, placed = [], set()
    for old in previous["rows"]:
        step = old.get("step") or old["name"]
        if step not in steps:
            merged.append(old)
        elif step not in placed:
            merged += [r for r in rerun["rows"] if r["step"] == step]
            placed.add(step)
    merged += [r for r in rerun["rows"] if r["step"] not in placed]
    return previous | {"rows": merged, "reruns": [*previous.get("reruns", []), rerun]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enrollments", type=int, default=None, help="N (default 10,000,000; 200,000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a small run for trying it out")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--regenerate", action="store_true", help="generate the data even if its size matches")
    parser.add_argument("--requests", type=int, default=50, help="requests per page measured (default 50)")
    parser.add_argument(
        "--page-budget", type=float, default=120, help="seconds per page before fewer requests are timed"
    )
    parser.add_argument("--target-files", type=int, default=None, help="campaign files imported (default: all)")
    parser.add_argument("--day-rows", type=int, default=10_000, help="one day's new enrollments (default 10,000)")
    parser.add_argument(
        "--incremental-rounds",
        type=int,
        default=3,
        help="rounds of new rows per incremental measurement, 1 to 4 (median; default 3)",
    )
    parser.add_argument("--import-rows", type=int, default=None, help="rows imported through the product")
    parser.add_argument("--reference-rows", type=int, default=None, help="rows of the bare list-import reference")
    parser.add_argument("--province", default="01", help="province code of the dashboards and entries (Hà Nội)")
    parser.add_argument("--only", nargs="*", help="run only these steps")
    parser.add_argument("--keep-added-rows", action="store_true")
    parser.add_argument("--merge", help="a previous results JSON whose rows for the steps run now are replaced")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results or README.md")
    args = parser.parse_args(argv)
    if args.enrollments is None:
        args.enrollments = 200_000 if args.quick else 10_000_000
    if args.import_rows is None:
        args.import_rows = 1_000 if args.quick else 2_000
    if args.reference_rows is None:
        args.reference_rows = 100_000 if args.quick else 1_000_000
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    if not os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
        print("The benchmark needs PostgreSQL: set DATABASE_URL=postgres://…", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The pages are served without collectstatic here; the manifest lookup it replaces is one dictionary read.
    os.environ.setdefault("STATICFILES_BACKEND", "django.contrib.staticfiles.storage.StaticFilesStorage")
    # Persistent connections, as a production server runs (with CONN_MAX_AGE=0 every request opens a new one).
    os.environ.setdefault("CONN_MAX_AGE", "600")
    sys.path.insert(0, str(ROOT))
    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    result = benchmark(args)
    if args.merge:
        result = merge(json.loads(Path(args.merge).read_text(encoding="utf-8")), result)
    markdown = table_markdown(result)
    print()
    print(markdown)
    if not args.no_write:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = result["started_at"].replace(":", "")
        if result.get("reruns"):
            stamp += "-rerun-" + result["reruns"][-1]["started_at"].replace(":", "")
        path = RESULTS_DIR / f"{stamp}.json"
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        readme_update(markdown)
        print(f"\nwritten {path.relative_to(ROOT)} and the README's benchmark section")
    return 0


if __name__ == "__main__":
    sys.exit(main())
