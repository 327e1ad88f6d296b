"""The attainment engine: every figure of DESIGN.md "The figures", computed with set-based SQL.

The database does the counting (GROUP BY with filtered aggregates, a window function for the cumulative daily
series and RANK() for the ranking); Python only does arithmetic on the handful of aggregated rows per campaign.

`figures_compute()` returns the rows for any as-of date without writing (the API uses it for a date other than the
snapshot's); `snapshot_rebuild()` writes them to the snapshot tables: it builds and swaps inside one transaction,
under a per-campaign lock, so a failed or killed run leaves the previous snapshot whole and two runs cannot
interleave. Running it twice gives the same tables.
"""

from __future__ import annotations

import bisect
import datetime
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from campaigns.models import Campaign, Target
from districts.models import District
from participants.models import Enrollment, EnrollmentKind, Scheme
from reports.models import AttainmentDaily, AttainmentTotal, PendingRefresh, RecomputeRun
from reports.signals import snapshot_written

logger = logging.getLogger(__name__)

GROWTH_KINDS = (EnrollmentKind.NEW, EnrollmentKind.RESUMED)
# First key of PostgreSQL's two-int advisory lock: this engine's namespace; the second is the campaign id.
ADVISORY_LOCK_NAMESPACE = 5150
CENT = Decimal("0.01")


class RecomputeError(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------- dates


def default_as_of(campaign: Campaign, today: datetime.date | None = None) -> datetime.date:
    """Today while the campaign runs (or before it starts); the day after the end once it is over.

    Every count stops at min(as_of, end) anyway; taking the day after the end for a finished campaign makes its
    days left 0 (not 1) and keeps its snapshot's date fixed, so late corrections can still refresh incrementally.
    """
    today = today or timezone.localdate()
    return today if today <= campaign.end_date else campaign.end_date + datetime.timedelta(days=1)


def prev_month_end(day: datetime.date) -> datetime.date:
    return day.replace(day=1) - datetime.timedelta(days=1)


def prev_year_end(day: datetime.date) -> datetime.date:
    return datetime.date(day.year - 1, 12, 31)


def same_day_last_year(day: datetime.date) -> datetime.date:
    return same_day_years_ago(day, 1)


def same_day_years_ago(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return datetime.date(day.year - years, 2, 28)


def days_elapsed(campaign: Campaign, as_of: datetime.date) -> int:
    """Days of the window up to and including min(as_of, end); 0 before the start."""
    last = min(as_of, campaign.end_date)
    return max(0, (last - campaign.start_date).days + 1)


def days_left(campaign: Campaign, as_of: datetime.date) -> int:
    """Days from as_of (or the start, when as_of is before it) to the end, both inclusive; 0 after the end."""
    if as_of > campaign.end_date:
        return 0
    return (campaign.end_date - max(as_of, campaign.start_date)).days + 1


def _q2(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _ratio(numerator: int, denominator: int) -> Decimal:
    return _q2(Decimal(numerator) / Decimal(denominator))


# ---------------------------------------------------------------------------------------------------------- rows


@dataclass
class FigureRow:
    """The figures of one unit (None: the province) and scheme; field names are the API's."""

    unit_id: int | None
    scheme: str
    target: int = 0
    has_target: bool = False
    enrolled: int = 0
    new: int = 0
    resumed: int = 0
    achieved: int = 0
    attained_pct: Decimal | None = None
    remaining: int = 0
    days_left: int = 0
    days_elapsed: int = 0
    required_daily_pace: Decimal | None = None
    current_daily_pace: Decimal = Decimal("0.00")
    projected_at_end: Decimal = Decimal("0.00")
    on_track: bool = False
    rank_enrolled: int | None = None
    rank_attained: int | None = None
    active: int | None = None
    active_prev_month_end: int | None = None
    active_prev_year_end: int | None = None
    active_same_day_last_year: int | None = None
    active_before_start: int | None = None
    extra: dict = field(default_factory=dict)

    def model_fields(self) -> dict:
        data = dict(self.__dict__)
        data.pop("extra")
        return data


def campaign_unit_ids(campaign: Campaign) -> set[int]:
    """The province's units that existed during the window, plus any unit with a target or an enrollment in it."""
    existed = District.objects.filter(province_id=campaign.province_id).filter(
        (Q(valid_from__isnull=True) | Q(valid_from__lte=campaign.end_date))
        & (Q(ceased_on__isnull=True) | Q(ceased_on__gt=campaign.start_date))
    )
    ids = set(existed.values_list("pk", flat=True))
    ids |= set(
        Target.objects.filter(campaign=campaign, unit__isnull=False).values_list("unit_id", flat=True).distinct()
    )
    return ids


def _window_enrollments(campaign: Campaign, as_of: datetime.date):
    return Enrollment.objects.filter(
        unit__province_id=campaign.province_id,
        enrolled_on__gte=campaign.start_date,
        enrolled_on__lte=min(as_of, campaign.end_date),
        kind__in=GROWTH_KINDS,
    )


def _stock_dates(campaign: Campaign, as_of: datetime.date) -> dict[str, datetime.date]:
    day = min(as_of, campaign.end_date)
    return {
        "active": day,
        "active_prev_month_end": prev_month_end(day),
        "active_prev_year_end": prev_year_end(day),
        "active_same_day_last_year": same_day_last_year(day),
        "active_before_start": campaign.start_date - datetime.timedelta(days=1),
    }


def _stock_counts(campaign: Campaign, as_of: datetime.date) -> dict:
    """Participants whose coverage covers each comparison day (coverage_start <= d < coverage_end), per unit and
    scheme, and the province's as the sum of its units (key (None, scheme)).

    PostgreSQL's exclusion constraint forbids overlapping coverage per person and scheme, so a participant is
    covered by at most one enrollment on a day and COUNT(coverage_start) (NOT NULL: COUNT(*)) equals
    COUNT(DISTINCT participant): the covering index
    enrollment_unit_scheme_coverage then answers alone. The sum of the units equals the province's distinct count
    for the same reason. SQLite has no such constraint and keeps the DISTINCT count.
    """
    dates = _stock_dates(campaign, as_of)
    qs = Enrollment.objects.filter(
        unit__province_id=campaign.province_id,
        coverage_start__lte=max(dates.values()),
        coverage_end__gt=min(dates.values()),
    )
    distinct = connection.vendor != "postgresql"
    aggregates = {
        name: (
            Count("participant_id", distinct=True, filter=Q(coverage_start__lte=d, coverage_end__gt=d))
            if distinct
            else Count("coverage_start", filter=Q(coverage_start__lte=d, coverage_end__gt=d))
        )
        for name, d in dates.items()
    }
    out = {}
    for row in qs.order_by().values("unit_id", "scheme").annotate(**aggregates):
        out[(row["unit_id"], row["scheme"])] = {name: row[name] for name in dates}
    if distinct:
        for row in qs.order_by().values("scheme").annotate(**aggregates):
            out[(None, row["scheme"])] = {name: row[name] for name in dates}
    else:
        for (_unit_id, scheme), counts in list(out.items()):
            province = out.setdefault((None, scheme), dict.fromkeys(dates, 0))
            for name, value in counts.items():
                province[name] += value
    return out


def _derive(row: FigureRow, campaign: Campaign, as_of: datetime.date) -> FigureRow:
    """The arithmetic of DESIGN.md on one aggregated row (no database access)."""
    window = campaign.days_in_window
    elapsed = days_elapsed(campaign, as_of)
    left = days_left(campaign, as_of)
    row.days_elapsed, row.days_left = elapsed, left
    if campaign.is_stock:
        for name in ("active", "active_prev_month_end", "active_prev_year_end", "active_same_day_last_year"):
            setattr(row, name, getattr(row, name) or 0)
        row.active_before_start = row.active_before_start or 0
        row.achieved = row.active
        growth = row.active - row.active_before_start
        if elapsed:
            row.current_daily_pace = _ratio(growth, elapsed)
            projected_exact = Decimal(row.active_before_start) + Decimal(growth) * window / elapsed
            on_track = row.active_before_start * elapsed + growth * window >= row.target * elapsed
        else:
            row.current_daily_pace = Decimal("0.00")
            projected_exact = Decimal(row.active)
            on_track = row.active >= row.target
    else:
        row.achieved = row.enrolled
        if elapsed:
            row.current_daily_pace = _ratio(row.enrolled, elapsed)
            projected_exact = Decimal(row.enrolled) * window / elapsed
            on_track = row.enrolled * window >= row.target * elapsed
        else:
            row.current_daily_pace = Decimal("0.00")
            projected_exact = Decimal(0)
            on_track = row.target == 0
    row.projected_at_end = _q2(projected_exact)
    row.on_track = bool(on_track)
    row.attained_pct = _ratio(row.achieved * 100, row.target) if row.target else None
    row.remaining = max(row.target - row.achieved, 0)
    row.required_daily_pace = _ratio(row.remaining, left) if left else None
    return row


def competition_rank(rows: list[FigureRow]) -> None:
    """RANK() semantics (1, 1, 3) in Python, for figures computed live; the snapshot uses SQL RANK()."""
    for scheme in Scheme.values:
        same = [r for r in rows if r.scheme == scheme and r.unit_id is not None]
        for attr, rank_attr in (("achieved", "rank_enrolled"), ("attained_pct", "rank_attained")):
            ranked = [r for r in same if getattr(r, attr) is not None]
            ranked.sort(key=lambda r, a=attr: getattr(r, a), reverse=True)
            for r in ranked:
                value = getattr(r, attr)
                setattr(r, rank_attr, 1 + sum(1 for other in ranked if getattr(other, attr) > value))


def _growth_live(campaign: Campaign, as_of: datetime.date):
    return (
        _window_enrollments(campaign, as_of)
        .order_by()
        .values("unit_id", "scheme")
        .annotate(
            # COUNT(kind) (NOT NULL, so = COUNT(*)), not COUNT(id): a column of the covering index
            # enrollment_unit_scheme_day, which then answers without reading the heap.
            enrolled=Count("kind"),
            new=Count("kind", filter=Q(kind=EnrollmentKind.NEW)),
            resumed=Count("kind", filter=Q(kind=EnrollmentKind.RESUMED)),
        )
    )


def _growth_from_daily(campaign: Campaign) -> list[dict]:
    """The same counts as `_growth_live`, summed from the campaign's freshly written daily rows (same filter)."""
    rows = (
        AttainmentDaily.objects.filter(campaign=campaign)
        .order_by()
        .values("unit_id", "scheme")
        .annotate(enrolled=Sum("count"), new=Sum("new"))
    )
    return [{**row, "resumed": row["enrolled"] - row["new"]} for row in rows]


def figures_compute(
    campaign: Campaign,
    as_of: datetime.date | None = None,
    *,
    unit_ids: Iterable[int] | None = None,
    growth_rows: Iterable[dict] | None = None,
) -> list[FigureRow]:
    """Every figure per unit × scheme (restricted to `unit_ids` if given) and the province row, as of a date.

    `growth_rows` (unit_id, scheme, enrolled, new, resumed) replaces the count over the enrollments when the caller
    has them already (a full run sums them from the daily rows it has just written).
    """
    as_of = as_of or default_as_of(campaign)
    all_units = campaign_unit_ids(campaign)
    growth = {}
    for row in _growth_live(campaign, as_of) if growth_rows is None else growth_rows:
        growth[(row["unit_id"], row["scheme"])] = row
        all_units.add(row["unit_id"])
    wanted = set(all_units) if unit_ids is None else set(unit_ids) & all_units

    targets = {
        (u, s): v for u, s, v in Target.objects.filter(campaign=campaign).values_list("unit_id", "scheme", "value")
    }
    stock = _stock_counts(campaign, as_of) if campaign.is_stock else {}

    rows: list[FigureRow] = []
    for scheme in Scheme.values:
        for unit_id in sorted(wanted):
            g = growth.get((unit_id, scheme), {})
            row = FigureRow(unit_id=unit_id, scheme=scheme)
            row.enrolled, row.new, row.resumed = g.get("enrolled", 0), g.get("new", 0), g.get("resumed", 0)
            row.has_target = (unit_id, scheme) in targets
            row.target = targets.get((unit_id, scheme), 0)
            for name, value in stock.get((unit_id, scheme), {}).items():
                setattr(row, name, value)
            rows.append(_derive(row, campaign, as_of))
        # The province: all of its enrollments (not only `wanted`), and its own target when one is set.
        row = FigureRow(unit_id=None, scheme=scheme)
        for (_unit, s), g in growth.items():
            if s == scheme:
                row.enrolled += g["enrolled"]
                row.new += g["new"]
                row.resumed += g["resumed"]
        unit_targets = [v for (u, s), v in targets.items() if s == scheme and u is not None]
        row.has_target = (None, scheme) in targets or bool(unit_targets)
        row.target = targets[(None, scheme)] if (None, scheme) in targets else sum(unit_targets)
        for name, value in stock.get((None, scheme), {}).items():
            setattr(row, name, value)
        rows.append(_derive(row, campaign, as_of))
    if unit_ids is None:
        competition_rank(rows)
    return rows


# ---------------------------------------------------------------------------------------------------------- snapshot


def _lock(campaign_ids: Iterable[int]) -> None:
    """Serialises runs per campaign for the rest of the transaction.

    PostgreSQL: an advisory transaction lock per campaign, taken in id order so that two runs never deadlock.
    SQLite: the settings open every transaction IMMEDIATE, which takes the database's write lock at BEGIN, so a
    second run waits for the first to commit.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for campaign_id in sorted(set(campaign_ids)):
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, campaign_id])


def _insert_daily(
    campaign: Campaign, as_of: datetime.date, unit_ids: Iterable[int] | None, since: datetime.date | None = None
) -> int:
    """Writes the daily series with one INSERT … SELECT: counts per day and the running total (SUM() OVER).

    With `since` (only with `unit_ids`), only the days from `since` on, whose rows the caller has deleted: the
    running total continues from the unit's last remaining row before `since` (the series is non-decreasing, so
    that row holds the MAX()).
    """
    qn = connection.ops.quote_name
    daily = AttainmentDaily._meta.db_table
    enrollment = Enrollment._meta.db_table
    district = District._meta.db_table
    adapt = connection.ops.adapt_datefield_value
    params = [
        campaign.pk,
        EnrollmentKind.NEW,
        campaign.province_id,
        adapt(campaign.start_date),
        adapt(min(as_of, campaign.end_date)),
        *GROWTH_KINDS,
    ]
    unit_filter = ""
    if unit_ids is not None:
        unit_ids = sorted(unit_ids)
        if not unit_ids:
            return 0
        unit_filter = f" AND e.unit_id IN ({', '.join(['%s'] * len(unit_ids))})"
        params += unit_ids
    if since is not None and unit_filter:
        unit_filter += " AND e.enrolled_on >= %s"
        params.append(adapt(since))
    sql = (
        f"SELECT %s AS campaign_id, e.unit_id AS unit_id, e.scheme AS scheme, e.enrolled_on AS d, COUNT(*) AS n, "  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
        f"SUM(CASE WHEN e.kind = %s THEN 1 ELSE 0 END) AS nw, "
        f"SUM(COUNT(*)) OVER (PARTITION BY e.unit_id, e.scheme ORDER BY e.enrolled_on) AS cum "
        f"FROM {qn(enrollment)} e INNER JOIN {qn(district)} d ON d.id = e.unit_id "
        f"WHERE d.province_id = %s AND e.enrolled_on >= %s AND e.enrolled_on <= %s AND e.kind IN (%s, %s)"
        f"{unit_filter} GROUP BY e.unit_id, e.scheme, e.enrolled_on"
    )
    columns = f"campaign_id, unit_id, scheme, {qn('day')}, {qn('count')}, new, cumulative"
    if since is not None and unit_filter:
        # The running totals continue from each unit's last row before `since` (one lookup per unit and scheme).
        sql = (
            f"SELECT g.campaign_id, g.unit_id, g.scheme, g.d, g.n, g.nw, g.cum + COALESCE(p.m, 0) FROM ({sql}) g "  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
            f"LEFT JOIN (SELECT unit_id, scheme, MAX(cumulative) AS m FROM {qn(daily)} "
            f"WHERE campaign_id = %s AND {qn('day')} < %s GROUP BY unit_id, scheme) p "
            f"ON p.unit_id = g.unit_id AND p.scheme = g.scheme"
        )
        params += [campaign.pk, adapt(since)]
    sql = f"INSERT INTO {qn(daily)} ({columns}) {sql}"  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def _insert_totals(campaign, as_of, rows: list[FigureRow], run, computed_at) -> int:
    objs = [
        AttainmentTotal(campaign=campaign, as_of=as_of, computed_at=computed_at, run=run, **row.model_fields())
        for row in rows
    ]
    AttainmentTotal.objects.bulk_create(objs, batch_size=500)
    return len(objs)


def _rank_in_database(campaign: Campaign) -> None:
    """RANK() OVER (PARTITION BY scheme ORDER BY …) across the campaign's unit rows, written back by one UPDATE …
    FROM (PostgreSQL, and SQLite since 3.33); a unit without attained % has no rank by it."""
    table = connection.ops.quote_name(AttainmentTotal._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET rank_enrolled = r.r_enrolled, rank_attained = r.r_attained FROM ("  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
            f"SELECT id, RANK() OVER (PARTITION BY scheme ORDER BY achieved DESC) AS r_enrolled, "
            f"CASE WHEN attained_pct IS NULL THEN NULL "
            f"ELSE RANK() OVER (PARTITION BY scheme ORDER BY attained_pct DESC NULLS LAST) END AS r_attained "
            f"FROM {table} WHERE campaign_id = %s AND unit_id IS NOT NULL) r WHERE {table}.id = r.id",
            [campaign.pk],
        )


def _progress_key(run_id: int) -> str:
    return f"reports:run:{run_id}:progress"


def _report_progress(run: RecomputeRun | None, done: int, total: int, on_progress: Callable | None) -> None:
    if run is not None:
        try:
            cache.set(_progress_key(run.pk), (done, total), 3600)
        except Exception:  # a cache outage must not fail the run
            logger.warning("could not store progress of run %s", run.pk, exc_info=True)
    if on_progress is not None:
        on_progress(done, total)


def run_progress(run: RecomputeRun) -> tuple[int, int]:
    """Progress of a run: the cache while it runs (its transaction is not visible yet), else the row."""
    if not run.is_finished:
        try:
            value = cache.get(_progress_key(run.pk))
        except Exception:
            value = None
        if value:
            return value
    return run.steps_done, run.steps_total


def snapshot_rebuild(
    *,
    campaigns: Iterable[Campaign] | None = None,
    as_of: datetime.date | None = None,
    run: RecomputeRun | None = None,
    unit_ids: dict[int, set[int]] | None = None,
    since: dict[int, datetime.date | None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RecomputeRun:
    """Recomputes the snapshot of `campaigns` (all when None): a full run, or with `unit_ids` ({campaign id: unit
    ids}) an incremental one that rewrites only those units' rows, the province row and the ranks; `since`
    ({campaign id: day}) limits the rewrite of those units' daily series to the days from that day on.

    Everything happens in one transaction: a failure anywhere leaves the previous snapshot as it was. The run row
    is committed before and after, so that it records the failure too.
    """
    if campaigns is None:
        campaigns = Campaign.objects.all()
    campaigns = sorted(campaigns, key=lambda c: c.pk)
    if run is None:
        run = RecomputeRun.objects.create(
            campaign=campaigns[0] if len(campaigns) == 1 else None,
            kind=RecomputeRun.Kind.INCREMENTAL if unit_ids is not None else RecomputeRun.Kind.FULL,
        )
    started = time.monotonic()
    run.status = RecomputeRun.Status.RUNNING
    run.started_at = timezone.now()
    run.as_of = as_of
    run.steps_total = 2 * len(campaigns) + 1
    run.steps_done = 0
    run.error = ""
    run.save(update_fields=["status", "started_at", "as_of", "steps_total", "steps_done", "error"])
    _report_progress(run, 0, run.steps_total, on_progress)
    totals = dailies = 0
    try:
        with transaction.atomic():
            _lock(c.pk for c in campaigns)
            computed_at = timezone.now()
            step = 0
            for campaign in campaigns:
                day = as_of or default_as_of(campaign)
                units = None if unit_ids is None else unit_ids.get(campaign.pk, set())
                previous = AttainmentTotal.objects.filter(campaign=campaign).values_list("as_of", flat=True).first()
                if units is not None and previous != day:
                    # The other units' rows are for another date: rebuild the whole campaign instead.
                    units = None
                old_totals = AttainmentTotal.objects.filter(campaign=campaign)
                old_daily = AttainmentDaily.objects.filter(campaign=campaign)
                first_day = None if units is None or since is None else since.get(campaign.pk)
                if units is not None:
                    old_totals = old_totals.filter(Q(unit_id__in=units) | Q(unit__isnull=True))
                    old_daily = old_daily.filter(unit_id__in=units)
                if first_day is not None:
                    old_daily = old_daily.filter(day__gte=first_day)
                old_daily.delete()
                dailies += _insert_daily(campaign, day, units, first_day)
                # A full run has just written every daily row of the campaign: its totals are their sums (one
                # scan of the enrollments, not two); an incremental one counts the province live.
                growth_rows = _growth_from_daily(campaign) if units is None else None
                rows = figures_compute(campaign, day, unit_ids=units, growth_rows=growth_rows)
                step += 1
                _report_progress(run, step, run.steps_total, on_progress)

                old_totals.delete()
                totals += _insert_totals(campaign, day, rows, run, computed_at)
                _rank_in_database(campaign)
                if units is None:
                    PendingRefresh.objects.filter(campaign=campaign, marked_at__lte=run.started_at).delete()
                else:
                    PendingRefresh.objects.filter(
                        campaign=campaign, unit_id__in=units, marked_at__lte=run.started_at
                    ).delete()
                step += 1
                _report_progress(run, step, run.steps_total, on_progress)
            snapshot_written.send(
                sender=RecomputeRun,
                campaign_ids=[c.pk for c in campaigns],
                unit_ids=unit_ids,
                since=since,
                as_of=as_of,
            )
    except Exception as exc:
        run.status = RecomputeRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = timezone.now()
        run.duration_seconds = time.monotonic() - started
        run.save(update_fields=["status", "error", "finished_at", "duration_seconds"])
        logger.exception("attainment run %s failed", run.pk)
        raise
    run.status = RecomputeRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.duration_seconds = time.monotonic() - started
    run.total_rows, run.daily_rows = totals, dailies
    run.steps_done = run.steps_total
    run.save(update_fields=["status", "finished_at", "duration_seconds", "total_rows", "daily_rows", "steps_done"])
    _report_progress(run, run.steps_total, run.steps_total, on_progress)
    return run


def campaigns_touched(
    *, unit_ids: Iterable[int], days: Iterable[datetime.date], coverage_since: datetime.date | None = None
) -> dict[int, set[int]]:
    """{campaign id: unit ids} of the campaigns whose figures a change to these units and days can move: window
    campaigns of the units' provinces whose window contains a day, and campaigns on the stock of those provinces
    (coverage, not the entry date, decides those) unless the touched coverage starts after they ended."""
    units = dict(District.objects.filter(pk__in=list(unit_ids)).values_list("pk", "province_id"))
    days = sorted(days)
    out: dict[int, set[int]] = {}
    if not units:
        return out
    stock = Q(measure=Campaign.Measure.STOCK)
    if coverage_since is not None:
        # Every stock figure counts coverage on a day no later than the campaign's end.
        stock &= Q(end_date__gte=coverage_since)
    # One condition for the span of the days, not one per day: a large import touches thousands of days, and
    # SQLite refuses an expression tree that deep. The few window campaigns in the span are then checked exactly.
    in_span = Q(start_date__lte=days[-1], end_date__gte=days[0]) if days else Q(pk__in=[])
    candidates = Campaign.objects.filter(stock | in_span, province_id__in=set(units.values())).values_list(
        "pk", "province_id", "measure", "start_date", "end_date"
    )
    for campaign_id, province_id, measure, start, end in candidates:
        is_stock = measure == Campaign.Measure.STOCK and (coverage_since is None or end >= coverage_since)
        if not is_stock:
            first_on_or_after_start = bisect.bisect_left(days, start)
            if first_on_or_after_start == len(days) or days[first_on_or_after_start] > end:
                continue
        out[campaign_id] = {u for u, p in units.items() if p == province_id}
    return out


def pending_mark(touched: dict[int, set[int]], *, since: datetime.date | None = None) -> None:
    """Records in the database which campaign units wait for a refresh, and from which entry day (`since`; None:
    the whole series).

    An upsert that moves the time forward and the day back (an empty day wins): a run clears only the marks made
    before it started, so a change that commits while a refresh is running stays marked for the next one.
    """
    pairs = sorted((c, u) for c, units in touched.items() for u in units)
    if not pairs:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    day = connection.ops.adapt_datefield_value(since)
    table = connection.ops.quote_name(PendingRefresh._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s)"] * len(pairs))
    params = [value for campaign_id, unit_id in pairs for value in (campaign_id, unit_id, now, day)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (campaign_id, unit_id, marked_at, since) VALUES {values} "  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
            f"ON CONFLICT (campaign_id, unit_id) DO UPDATE SET marked_at = excluded.marked_at, "
            f"since = CASE WHEN {table}.since IS NULL OR excluded.since IS NULL THEN NULL "
            f"WHEN excluded.since < {table}.since THEN excluded.since ELSE {table}.since END",
            params,
        )


def pending_units(campaign_id: int) -> set[int]:
    return set(PendingRefresh.objects.filter(campaign_id=campaign_id).values_list("unit_id", flat=True))


def pending_units_since(campaign_id: int) -> tuple[set[int], datetime.date | None]:
    """The pending units and, read with them in one query, the earliest day from which their daily series must be
    rewritten (None: all of it)."""
    marks = list(PendingRefresh.objects.filter(campaign_id=campaign_id).values_list("unit_id", "since"))
    days = [since for _unit, since in marks]
    return {unit for unit, _since in marks}, (None if not days or None in days else min(days))
