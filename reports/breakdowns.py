"""Stored "who responds" breakdowns, derived from the snapshot.

The dashboard's counts by age band, gender, occupation and kind used to be computed over the enrollments at every
request (a scan of the province's window joined to the participants: 0.4–1 s at 10 million enrollments). They are
now written by the engine's run, as of the snapshot's date, into AttainmentBreakdown:

- `on_snapshot_written` receives reports.signals.snapshot_written, inside the engine's transaction: an incremental
  run of one unit's entries rebuilds those (campaign, unit) groups in the same transaction; a full run (every unit of
  its campaigns) or a larger incremental one is left to the `breakdowns_refresh` task after the commit, which takes
  the engine's lock (a campaign whose stored rows are for another date, or were never built, is rebuilt whole);
- all the campaigns of a build in one INSERT … SELECT: the enrollments grouped once by campaign × unit × scheme ×
  kind × age band × gender × occupation (on PostgreSQL, a large build puts these groups into a temporary table
  first: CREATE TABLE AS runs in parallel, INSERT … SELECT does not), then summed per dimension (UNION ALL); the
  province rows (no unit) are sums of the unit rows — no Python loop over rows;
- a marker row per campaign (no unit, dimension "built") records the as-of date its rows are complete for, and
  "pending" while a deferred rebuild waits;
- `stored_breakdown` reads them for a page (~40 rows, scoped to the user's unit), or answers None when nothing is
  stored for that date, and the caller counts live instead.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Iterable

from celery import shared_task
from django.db import OperationalError, connection
from django.db.models import Q

from campaigns.models import Campaign
from districts.models import District
from participants.models import Enrollment, Participant, Scheme
from reports import engine
from reports.models import AttainmentBreakdown, AttainmentTotal

logger = logging.getLogger(__name__)

Dimension = AttainmentBreakdown.Dimension
# (lower bound inclusive, upper bound exclusive, label), as in reports.selectors.AGE_BANDS.
AGE_BANDS = ((None, 25, "under_25"), (25, 35, "25_34"), (35, 45, "35_44"), (45, 55, "45_54"), (55, None, "55_plus"))
AGE_ORDER = {label: i for i, (_low, _high, label) in enumerate(AGE_BANDS)}
AGE_YEARS = (25, 35, 45, 55)
# An incremental run touching more (campaign, unit) pairs than this defers their rebuild to a task (see
# on_snapshot_written). At 10 million enrollments one pair costs ~15-50 ms (a unit's window joined to its
# participants): one unit's entries in its two or three running campaigns stay in the run.
SYNC_MAX_UNITS = 4
# Past this many (campaign, unit) pairs a rebuild takes its campaigns whole: a pair reads its unit's window through
# an index and looks its people up one by one (~60 ms at 10 million enrollments; a national day's refresh touches
# ~1,400 pairs, 82 s measured), while one pass over the whole table costs ~11 s whatever the number of campaigns.
FULL_ABOVE_PAIRS = 150
PENDING = "pending"  # the marker's bucket while a deferred rebuild waits
SUMMED = (Dimension.AGE, Dimension.GENDER, Dimension.OCCUPATION, Dimension.KIND)


def _values(rows: list[tuple]) -> tuple[str, list]:
    """VALUES (%s, …), (…) of these rows, and their parameters."""
    row_sql = f"({', '.join(['%s'] * len(rows[0]))})"
    return ", ".join([row_sql] * len(rows)), [value for row in rows for value in row]


def _insert(jobs: list[tuple[Campaign, datetime.date]], touched: list[tuple[int, int]] | None = None) -> int:
    """One INSERT … SELECT for all these (campaign, as-of date) jobs — every unit, or only the (campaign id, unit id)
    pairs in `touched` — with the age bands' birth-date bounds of each campaign as parameters. Returns the rows
    written."""
    qn = connection.ops.quote_name
    adapt = connection.ops.adapt_datefield_value
    bounds = [
        adapt(engine.same_day_years_ago(campaign.start_date, years)) for campaign, _day in jobs for years in AGE_YEARS
    ]
    params_rows = []
    for i, (campaign, day) in enumerate(jobs):
        params_rows.append(
            (
                campaign.pk,
                campaign.province_id,
                adapt(campaign.start_date),
                adapt(min(day, campaign.end_date)),
                adapt(day),
                *bounds[i * len(AGE_YEARS) : (i + 1) * len(AGE_YEARS)],
            )
        )
    jobs_sql, params = _values(params_rows)
    cte = f"j (campaign_id, province_id, first_day, last_day, as_of, {', '.join(f'b{y}' for y in AGE_YEARS)}) AS (VALUES {jobs_sql})"
    touched_join = ""
    if touched is not None:
        touched_sql, touched_params = _values(touched)
        cte += f", t (campaign_id, unit_id) AS (VALUES {touched_sql})"
        params += touched_params
        touched_join = " INNER JOIN t ON t.campaign_id = j.campaign_id AND t.unit_id = e.unit_id"
    # Age at the campaign's start >= low  <=>  born on or before the start minus low years (bK: that bound).
    age = (
        "CASE WHEN p.date_of_birth > j.b25 THEN %s WHEN p.date_of_birth > j.b35 THEN %s "
        "WHEN p.date_of_birth > j.b45 THEN %s WHEN p.date_of_birth > j.b55 THEN %s "
        "WHEN p.date_of_birth <= j.b55 THEN %s ELSE %s END"
    )
    params += [label for _low, _high, label in AGE_BANDS] + ["unknown"]
    grouped = (
        f"SELECT j.campaign_id AS campaign_id, j.as_of AS as_of, e.unit_id AS unit_id, e.scheme AS scheme, "  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
        f"e.kind AS kind, {age} AS age, p.gender AS gender, p.occupation AS occupation, COUNT(*) AS n "
        f"FROM j INNER JOIN {qn(District._meta.db_table)} d ON d.province_id = j.province_id "
        f"INNER JOIN {qn(Enrollment._meta.db_table)} e ON e.unit_id = d.id "
        f"AND e.enrolled_on >= j.first_day AND e.enrolled_on <= j.last_day{touched_join} "
        f"INNER JOIN {qn(Participant._meta.db_table)} p ON p.id = e.participant_id "
        f"WHERE e.kind IN (%s, %s) GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
    )
    params += list(engine.GROWTH_KINDS)
    table = qn(AttainmentBreakdown._meta.db_table)
    columns = f"campaign_id, unit_id, scheme, dimension, bucket, {qn('count')}, as_of"
    selects = [
        f"SELECT campaign_id, unit_id, scheme, %s, {d}, SUM(n), as_of FROM {{groups}} "  # noqa: S608 # nosec B608 - a fixed column name of the groups; every value is a %s parameter
        f"GROUP BY campaign_id, as_of, unit_id, scheme, {d}"
        for d in SUMMED
    ]
    # Ordered by campaign: a page reads one campaign's rows, which then sit on a few neighbouring pages.
    sums = " UNION ALL ".join(selects) + " ORDER BY 1, 2"
    sums_params = [str(d) for d in SUMMED]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and (touched is None or len(touched) > SYNC_MAX_UNITS):
            # A full build joins millions of enrollments to their participants (5–8 s at 10 million rows). Its
            # groups go into a temporary table first because CREATE TABLE AS may run in parallel and INSERT …
            # SELECT never does (PostgreSQL 15); the join and the groups are hashed in memory rather than sorted
            # on disk (work_mem is 4 MB by default), and JIT compilation (1.3 s here) is skipped. SET LOCAL and ON
            # COMMIT DROP: all of it ends with the engine's transaction.
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL jit = off")
            groups = "pg_temp.reports_breakdown_groups"
            cursor.execute(f"DROP TABLE IF EXISTS {groups}")
            cursor.execute(f"CREATE TEMPORARY TABLE {groups} ON COMMIT DROP AS WITH {cte} {grouped}", params)  # noqa: S608 # nosec B608 - names from _meta, values are parameters
            cursor.execute(f"INSERT INTO {table} ({columns}) {sums.format(groups=groups)}", sums_params)  # noqa: S608 # nosec B608 - names from _meta, values are parameters
            written = cursor.rowcount
            cursor.execute(f"DROP TABLE {groups}")
            return max(written, 0)
        sql = f"WITH {cte}, g AS ({grouped}) INSERT INTO {table} ({columns}) {sums.format(groups='g')}"  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
        cursor.execute(sql, params + sums_params)  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
        return max(cursor.rowcount, 0)


def _province_sums(campaign_ids: list[int]) -> int:
    """The province rows (no unit) of these campaigns, summed from their unit rows by one INSERT … SELECT: a
    manager's page reads ~40 rows instead of summing ~1,000."""
    AttainmentBreakdown.objects.filter(campaign_id__in=campaign_ids, unit__isnull=True).exclude(
        dimension=Dimension.BUILT
    ).delete()
    qn = connection.ops.quote_name
    table = qn(AttainmentBreakdown._meta.db_table)
    columns = f"campaign_id, unit_id, scheme, dimension, bucket, {qn('count')}, as_of"
    placeholders = ", ".join(["%s"] * len(campaign_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT campaign_id, NULL, scheme, dimension, bucket, SUM({qn('count')}), "  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
            f"as_of FROM {table} WHERE campaign_id IN ({placeholders}) AND unit_id IS NOT NULL "
            f"GROUP BY campaign_id, as_of, scheme, dimension, bucket ORDER BY campaign_id",
            campaign_ids,
        )
        return max(cursor.rowcount, 0)


def rebuild(campaign_ids: Iterable[int], unit_ids: dict[int, set[int]] | None = None) -> int:
    """Rewrites the stored breakdowns of these campaigns as of their snapshot's date: every unit, or with
    `unit_ids` ({campaign id: unit ids}) only those units, unless the campaign's stored rows are for another date
    (or missing), which rebuilds the whole campaign. Run inside the engine's transaction; a fixed handful of
    statements whatever the number of campaigns. Returns the rows written."""
    campaign_ids = sorted(set(campaign_ids))
    if not campaign_ids:
        return 0
    started = time.monotonic()
    days = dict(
        AttainmentTotal.objects.filter(campaign_id__in=campaign_ids, unit__isnull=True)
        .order_by()
        .values_list("campaign_id", "as_of")
        .distinct()
    )
    built = dict(
        AttainmentBreakdown.objects.filter(campaign_id__in=campaign_ids, dimension=Dimension.BUILT).values_list(
            "campaign_id", "as_of"
        )
    )
    full, partial, touched = [], [], []
    for campaign in Campaign.objects.filter(pk__in=campaign_ids).order_by("pk"):
        day = days.get(campaign.pk)
        units = None if unit_ids is None else sorted(unit_ids.get(campaign.pk, ()))
        if day is None or built.get(campaign.pk) != day:
            units = None  # nothing (complete) stored for this date: the whole campaign
        if units is None:
            full.append((campaign, day))
        elif units:
            partial.append((campaign, day))
            touched += [(campaign.pk, u) for u in units]
    if len(touched) > FULL_ABOVE_PAIRS:
        full, partial, touched = full + partial, [], []
    stale = Q(campaign_id__in=[c.pk for c, _day in full])
    for campaign, _day in partial:
        stale |= Q(campaign_id=campaign.pk, unit_id__in=[u for c, u in touched if c == campaign.pk])
    AttainmentBreakdown.objects.filter(stale).delete()
    full = [(c, day) for c, day in full if day is not None]  # no snapshot: nothing to derive
    written = 0
    if full:
        written += _insert(full)
        AttainmentBreakdown.objects.bulk_create(
            AttainmentBreakdown(campaign=c, dimension=Dimension.BUILT, count=0, as_of=day) for c, day in full
        )
    if partial:
        written += _insert(partial, touched)
    if full or partial:
        written += _province_sums([c.pk for c, _day in full + partial])
    logger.info(
        "breakdowns: %s rows for %s campaigns in %.3f s", written, len(campaign_ids), time.monotonic() - started
    )
    return written


def on_snapshot_written(sender, *, campaign_ids, unit_ids=None, **kwargs):
    """reports.signals.snapshot_written receiver, inside the engine's transaction.

    An incremental run of up to SYNC_MAX_UNITS (campaign, unit) pairs (one unit's entries) rebuilds them in the
    same transaction: the page never shows counts older than its figures. A full run, or a larger incremental one
    (an import, a day's entries of a province or the country), would add the cost of the whole join to the run
    (10-17 s at 10 million enrollments on 2 busy cores, against ~10 s for the snapshot itself): it is left to a task
    after the commit, and until then the campaigns' marker says "pending" (the page shows the previous counts and
    says so; for a new as-of date, it counts live)."""
    if unit_ids is None:
        _defer(campaign_ids, None)
        return
    wanted = {c: set(unit_ids.get(c, ())) for c in campaign_ids}
    if sum(len(units) for units in wanted.values()) > SYNC_MAX_UNITS:
        _defer(campaign_ids, wanted)
        return
    rebuild(campaign_ids, unit_ids=unit_ids)


def _defer(campaign_ids: list[int], unit_ids: dict[int, set[int]] | None) -> None:
    from django.db import transaction

    from reports.tasks import enqueue

    campaign_ids = sorted(set(campaign_ids))
    AttainmentBreakdown.objects.filter(campaign_id__in=campaign_ids, dimension=Dimension.BUILT).update(bucket=PENDING)
    units = None if unit_ids is None else {str(c): sorted(u) for c, u in unit_ids.items()}
    transaction.on_commit(lambda: enqueue(breakdowns_refresh, campaign_ids, units))


@shared_task(name="reports.breakdowns_refresh", ignore_result=True, autoretry_for=(OperationalError,), max_retries=3)
def breakdowns_refresh(campaign_ids: list[int], unit_ids: dict[str, list[int]] | None = None) -> int:
    """The deferred rebuild of a run's campaigns (all their units, or these), under the engine's lock of those
    campaigns so that it never interleaves with a run; clears the "pending" mark."""
    from django.db import transaction

    wanted = None if unit_ids is None else {int(c): set(units) for c, units in unit_ids.items()}
    with transaction.atomic():
        engine._lock(campaign_ids)
        written = rebuild(campaign_ids, unit_ids=wanted)
        AttainmentBreakdown.objects.filter(
            campaign_id__in=campaign_ids, dimension=Dimension.BUILT, bucket=PENDING
        ).update(bucket="")
    return written


def stored_breakdown(
    *, campaign: Campaign, as_of: datetime.date, unit_id: int | None = None, user_unit_id: int | None = None
) -> dict[str, list[dict]] | None:
    """The stored breakdown of the campaign as of `as_of`, summed over its units (or of one unit), in the shape of
    reports.selectors.breakdown; None when nothing complete is stored for that date (the caller counts live).

    `user_unit_id` is the unit a staff user is tied to: only its rows are read, whatever `unit_id` asks.
    """
    units = {u for u in (unit_id, user_unit_id) if u}
    # In SQL written here: compiling the equivalent queryset cost about as much as running it, at every first view
    # of a dashboard.
    params: list = [campaign.pk, connection.ops.adapt_datefield_value(as_of)]
    if len(units) > 1:
        which = "unit_id IS NULL AND dimension = %s"  # another unit than the user's own: the marker only, no counts
        params.append(Dimension.BUILT.value)
    elif units:
        which = "(unit_id = %s OR (unit_id IS NULL AND dimension = %s))"
        params += [units.pop(), Dimension.BUILT.value]
    else:
        which = "unit_id IS NULL"  # the province rows
    table = connection.ops.quote_name(AttainmentBreakdown._meta.db_table)
    # One row per dimension, group and scheme either way (the province's are stored sums).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT dimension, bucket, scheme, {connection.ops.quote_name('count')} FROM {table} "  # noqa: S608 # nosec B608 - a quoted table name and fixed conditions; every value is a %s parameter
            f"WHERE campaign_id = %s AND as_of = %s AND {which}",
            params,
        )
        rows = [{"dimension": d, "bucket": b, "scheme": sc, "n": n} for d, b, sc, n in cursor.fetchall()]
    markers = [r for r in rows if r["dimension"] == Dimension.BUILT]
    if not markers:
        return None
    sums: dict[str, dict] = {str(d): {} for d in SUMMED}
    for row in rows:
        if row["dimension"] not in sums:
            continue
        group = sums[row["dimension"]].setdefault(
            row["bucket"], {"group": row["bucket"], "total": 0, **dict.fromkeys(Scheme.values, 0)}
        )
        group["total"] += row["n"]
        if row["scheme"] in group:
            group[row["scheme"]] += row["n"]
    out = {d: sorted(groups.values(), key=lambda g: (-g["total"], str(g["group"]))) for d, groups in sums.items()}
    out["age"] = sorted(sums["age"].values(), key=lambda g: AGE_ORDER.get(g["group"], len(AGE_ORDER)))
    out["pending"] = any(m["bucket"] == PENDING for m in markers)
    return out
