"""The attainment engine: every figure of DESIGN.md "The figures", computed with set-based SQL.

The database does the counting (GROUP BY with filtered aggregates for the daily series and the totals, and
RANK() for the ranking); Python only does arithmetic on the handful of aggregated rows per campaign.

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
from dataclasses import fields as fields_of
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from campaigns.models import Campaign, Target
from districts.models import District
from participants.models import GROWTH_KINDS, Enrollment, EnrollmentKind, Scheme
from reports.models import (
    AttainmentDaily,
    AttainmentTotal,
    EnrollmentChange,
    PendingRefresh,
    PendingRefreshDay,
    RecomputeRun,
)
from reports.signals import snapshot_written

logger = logging.getLogger(__name__)

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


def figures_compute(
    campaign: Campaign,
    as_of: datetime.date | None = None,
    *,
    unit_ids: Iterable[int] | None = None,
    growth_rows: Iterable[dict] | None = None,
) -> list[FigureRow]:
    """Every figure per unit × scheme (restricted to `unit_ids` if given) and the province row, as of a date.

    `growth_rows` (unit_id, scheme, enrolled, new, resumed) replaces the count over the enrollments when the caller
    has them already.
    """
    as_of = as_of or default_as_of(campaign)
    all_units = campaign_unit_ids(campaign)
    growth = {}
    for row in _growth_live(campaign, as_of) if growth_rows is None else growth_rows:
        growth[(row["unit_id"], row["scheme"])] = row
    targets = {
        (u, s): v for u, s, v in Target.objects.filter(campaign=campaign).values_list("unit_id", "scheme", "value")
    }
    stock = _stock_counts(campaign, as_of) if campaign.is_stock else {}
    rows = _rows_build(campaign, as_of, all_units, growth, targets, stock, unit_ids)
    if unit_ids is None:
        competition_rank(rows)
    return rows


def _rows_build(
    campaign: Campaign,
    as_of: datetime.date,
    all_units: set[int],
    growth: dict,
    targets: dict,
    stock: dict,
    unit_ids: Iterable[int] | None = None,
) -> list[FigureRow]:
    """The rows of one campaign from its aggregated counts (no database access): every unit of `all_units` and
    every unit with enrollments (restricted to `unit_ids` if given), then the province row, per scheme.

    growth: {(unit, scheme): {enrolled, new, resumed}}; targets: {(unit or None, scheme): value}; stock: {(unit or
    None, scheme): {active…: count}} (the province's key (None, scheme)).
    """
    all_units = set(all_units) | {unit for unit, _scheme in growth}
    wanted = all_units if unit_ids is None else set(unit_ids) & all_units
    rows: list[FigureRow] = []
    for scheme in Scheme.values:
        for unit_id in sorted(wanted):
            g = growth.get((unit_id, scheme), {})
            row = FigureRow(unit_id=unit_id, scheme=scheme)
            row.enrolled, row.new, row.resumed = g.get("enrolled", 0), g.get("new", 0), g.get("resumed", 0)
            row.has_target = (unit_id, scheme) in targets
            row.target = targets.get((unit_id, scheme), 0)
            if campaign.is_stock:
                # A unit nobody's coverage reaches has 0 active participants (an incremental refresh moving a
                # unit's last participant out gives 0 too, as it must).
                counts = stock.get((unit_id, scheme), {})
                for name in STOCK_ALL:
                    setattr(row, name, counts.get(name, 0))
            rows.append(_derive(row, campaign, as_of))
        # The province: all of its enrollments (not only `wanted`), and its own target when one is set.
        row = FigureRow(unit_id=None, scheme=scheme)
        for (_unit, s), g in growth.items():
            if s == scheme:
                row.enrolled += g["enrolled"]
                row.new += g["new"]
                row.resumed += g["resumed"]
        _province_target(row, targets)
        if campaign.is_stock:
            counts = stock.get((None, scheme), {})
            for name in STOCK_ALL:
                setattr(row, name, counts.get(name, 0))
        rows.append(_derive(row, campaign, as_of))
    return rows


def _province_target(row: FigureRow, targets: dict) -> None:
    unit_targets = [v for (u, s), v in targets.items() if s == row.scheme and u is not None]
    row.has_target = (None, row.scheme) in targets or bool(unit_targets)
    row.target = targets[(None, row.scheme)] if (None, row.scheme) in targets else sum(unit_targets)


# ---------------------------------------------------------------------------------------------------------- snapshot
#
# A run rewrites any number of campaigns with a fixed handful of statements, whatever their number: the daily series
# of every campaign in one INSERT … SELECT, the stock counts of every campaign on the stock in one grouped query, the
# totals in one multi-row INSERT and the ranks in one UPDATE. The campaigns' parameters (province, dates) travel as a
# VALUES list joined to the enrollments, so the database does all the counting in one pass per kind of figure.


STOCK_FIELDS = ("active", "active_prev_month_end", "active_prev_year_end", "active_same_day_last_year")
STOCK_ALL = (*STOCK_FIELDS, "active_before_start")
GROWTH_FIELDS = ("enrolled", "new", "resumed")


@dataclass
class _Job:
    """One campaign of a run: its as-of date and, for an incremental refresh, the units whose rows are rewritten
    and the first entry day of their daily series that is (None: a full rebuild of the campaign)."""

    campaign: Campaign
    day: datetime.date
    units: set[int] | None = None
    since: datetime.date | None = None
    # {unit: entry days}: the only days of that unit's series that can have moved (every other marked unit's
    # series is recounted from `first_rewritten` on).
    days: dict[int, set[datetime.date]] = field(default_factory=dict)
    # The earliest coverage start the marks touched (None: unknown): stock comparison days before it keep their
    # counts.
    coverage_since: datetime.date | None = None

    def stock_fixed(self) -> set[str]:
        """The stock figures of the marked units that no marked change can have moved (partial jobs only)."""
        if self.units is None or self.coverage_since is None:
            return set()
        dates = _stock_dates(self.campaign, self.day)
        return {name for name in STOCK_ALL if dates[name] < self.coverage_since}

    def ranges(self) -> list[tuple[int, datetime.date, datetime.date]]:
        """(unit, first day, last day) of the daily series recounted: each listed day of a unit with days, else
        the unit's series from the first rewritten day; disjoint, inside the window up to the as-of date."""
        start, last = self.campaign.start_date, self.last
        out = []
        for unit in sorted(self.units or ()):
            if unit in self.days:
                # Consecutive days as one range: one index range per unit and scheme for a week of late entries.
                for d in sorted(d for d in self.days[unit] if start <= d <= last):
                    if out and out[-1][0] == unit and out[-1][2] == d - datetime.timedelta(days=1):
                        out[-1] = (unit, out[-1][1], d)
                    else:
                        out.append((unit, d, d))
            elif self.first_rewritten <= last:
                out.append((unit, self.first_rewritten, last))
        return out

    @property
    def last(self) -> datetime.date:
        return min(self.day, self.campaign.end_date)

    @property
    def first_rewritten(self) -> datetime.date:
        return max(self.since or self.campaign.start_date, self.campaign.start_date)


def _lock(campaign_ids: Iterable[int]) -> None:
    """Serialises runs per campaign for the rest of the transaction.

    PostgreSQL: an advisory transaction lock per campaign, taken in id order (one statement) so that two runs
    never deadlock. SQLite: the settings open every transaction IMMEDIATE, which takes the database's write lock at
    BEGIN, so a second run waits for the first to commit.
    """
    ids = sorted(set(campaign_ids))
    if connection.vendor == "postgresql" and ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(%s, c)) FROM (SELECT unnest(%s::int[]) AS c ORDER BY 1) s",
                [ADVISORY_LOCK_NAMESPACE, ids],
            )


def _values(rows: list[tuple], names: tuple[str, ...]) -> tuple[str, list]:
    """A derived table of literal rows with named columns, in SQL both databases accept."""
    one = "(" + ", ".join(["%s"] * len(names)) + ")"
    columns = ", ".join(f"column{i + 1} AS {name}" for i, name in enumerate(names))
    sql = f"(SELECT {columns} FROM (VALUES {', '.join([one] * len(rows))}) v)"  # noqa: S608 # nosec B608 - only placeholders and fixed column names
    return sql, [x for r in rows for x in r]


def _marks_table(rows: list[tuple], names: tuple[str, ...]) -> tuple[str, list]:
    """`_values` of (campaign, unit, scheme, first day, last day) rows; on PostgreSQL five arrays unnested, so
    that tens of thousands of rows stay five parameters."""
    if connection.vendor != "postgresql":
        return _values(rows, names)
    types = ("bigint[]", "bigint[]", "text[]", "date[]", "date[]")
    columns = ", ".join(f"%s::{t}" for t in types)
    sql = f"(SELECT * FROM unnest({columns}) AS m({', '.join(names)}))"  # noqa: S608 # nosec B608 - fixed types and column names
    return sql, [list(column) for column in zip(*rows, strict=True)]


def _sql(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _execute(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def _d(value: datetime.date):
    return connection.ops.adapt_datefield_value(value)


def _array(values: Iterable) -> str:
    """PostgreSQL: a list of ints, dates or booleans (None as NULL) as an array's text, for a `%s::type[]`
    parameter. psycopg dumps a Python list element by element on the client (about 12 ms a refresh for the
    thousands of keys it sends); this is one join."""
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


def _names() -> dict[str, str]:
    qn = connection.ops.quote_name
    return {
        "daily": qn(AttainmentDaily._meta.db_table),
        "enrollment": qn(Enrollment._meta.db_table),
        "district": qn(District._meta.db_table),
        "day": qn("day"),
        "count": qn("count"),
    }


BUILD_TABLE = "reports_attainmentdaily_build"


def _daily_full_select(
    full: list[_Job], until: datetime.date, *, everything: bool, stock_too: bool = False
) -> tuple[str, list]:
    """The daily series of whole campaigns, columns campaign_id, unit_id, scheme, d, n, nw (of which new). Every
    campaign's last day is min(end, `until`), as `default_as_of` makes it. Only the window campaigns' series, the
    ones a page draws, unless `stock_too` (see `_daily_build`).

    The enrollments are counted first per (unit, scheme, day), in the order of the covering index
    enrollment_unit_scheme_day (unit, scheme, day, kind): read from the index alone and grouped as it streams, no
    hash table and no sort of millions of rows; those few hundred thousand groups are then joined to the campaigns
    of their province whose window holds the day (a day in two campaigns' windows counts in both)."""
    n = _names()
    least = "LEAST" if connection.vendor == "postgresql" else "MIN"
    campaign = connection.ops.quote_name(Campaign._meta.db_table)
    params: list = [EnrollmentKind.NEW, *GROWTH_KINDS]
    units_only = only = ""
    if not everything:
        ids = [j.campaign.pk for j in full]
        marks = ", ".join(["%s"] * len(ids))
        units_only = (
            f" AND e.unit_id IN (SELECT u.id FROM {n['district']} u WHERE u.province_id IN "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
            f"(SELECT k.province_id FROM {campaign} k WHERE k.id IN ({marks})))"
        )
        only = f" AND c.id IN ({marks})"
        params += ids
    params.append(_d(until))
    if not everything:
        params += [j.campaign.pk for j in full]
    measure = ""
    if not stock_too:
        measure = " AND c.measure = %s"
        params.append(Campaign.Measure.WINDOW)
    sql = (
        f"SELECT c.id AS campaign_id, g.unit_id AS unit_id, g.scheme AS scheme, g.d AS d, g.n AS n, g.nw AS nw "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
        f"FROM (SELECT e.unit_id AS unit_id, e.scheme AS scheme, e.enrolled_on AS d, COUNT(*) AS n, "
        f"SUM(CASE WHEN e.kind = %s THEN 1 ELSE 0 END) AS nw FROM {n['enrollment']} e "
        f"WHERE e.kind IN (%s, %s){units_only} GROUP BY e.unit_id, e.scheme, e.enrolled_on) g "
        f"INNER JOIN {n['district']} d ON d.id = g.unit_id "
        f"INNER JOIN {campaign} c ON c.province_id = d.province_id "
        f"AND g.d >= c.start_date AND g.d <= {least}(c.end_date, %s){only}{measure}"
    )
    return sql, params


# Every campaign's day counts of a full PostgreSQL run (`_daily_build`), dropped at its commit.
DAILY_ALL = "engine_daily_all"


def _daily_build(full: list[_Job], until: datetime.date) -> int:
    """PostgreSQL, every campaign: counts every campaign's days into a temporary table (DAILY_ALL: no WAL, and
    `_growth_sums` sums every campaign's figures from it), then builds the new daily table of the window campaigns
    from it beside the live one with CREATE TABLE … AS, then its constraints and indexes in one pass each, instead
    of maintaining them row by row. `_daily_swap` puts it in place at the end of the run."""
    t = AttainmentDaily._meta.db_table
    qn = connection.ops.quote_name
    select, params = _daily_full_select(full, until, everything=True, stock_too=True)
    campaign = qn(Campaign._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {DAILY_ALL}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {DAILY_ALL} ON COMMIT DROP AS SELECT g.campaign_id, g.unit_id, g.scheme, "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
            f"g.d AS {qn('day')}, g.n AS {qn('count')}, g.nw AS new FROM ({select}) g",
            params,
        )
        cursor.execute(f"DROP TABLE IF EXISTS {BUILD_TABLE}")
        cursor.execute(
            # In day order: one day's rows (what a refresh after a day's entries moves) share a few pages.
            f"CREATE TABLE {BUILD_TABLE} AS SELECT row_number() OVER (ORDER BY g.{qn('day')}) AS id, g.campaign_id, "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
            f'g.unit_id, CAST(g.scheme AS varchar(16)) COLLATE "default" AS scheme, g.{qn("day")}, '
            f"CAST(g.{qn('count')} AS integer) AS {qn('count')}, CAST(g.new AS integer) AS new FROM {DAILY_ALL} g "
            f"WHERE g.campaign_id IN (SELECT k.id FROM {campaign} k WHERE k.measure = %s)",
            [Campaign.Measure.WINDOW],
        )
        written = max(cursor.rowcount, 0)
        not_null = ", ".join(
            f"ALTER COLUMN {qn(c)} SET NOT NULL"
            for c in ("id", "campaign_id", "unit_id", "scheme", "day", "count", "new")
        )
        checks = ", ".join(f"ADD CONSTRAINT {t}_{c}_check CHECK ({qn(c)} >= 0)" for c in ("count", "new"))
        cursor.execute(f"ALTER TABLE {BUILD_TABLE} {not_null}, {checks}")
        cursor.execute(
            f"ALTER TABLE {BUILD_TABLE} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {written + 1})"
        )
        cursor.execute(
            f"CREATE UNIQUE INDEX {BUILD_TABLE}_unique ON {BUILD_TABLE} (campaign_id, unit_id, scheme, {qn('day')}) "
            f"INCLUDE ({qn('count')})"
        )
        cursor.execute(f"CREATE UNIQUE INDEX {BUILD_TABLE}_pkey ON {BUILD_TABLE} (id)")
    return written


def _daily_swap() -> None:
    """Replaces the live daily table by the one `_daily_build` made, under the names Django knows: the last
    statements of the run, so that readers wait on the swap's lock only from here to the commit."""
    t = AttainmentDaily._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {t}")
        cursor.execute(f"ALTER TABLE {BUILD_TABLE} RENAME TO {t}")
        cursor.execute(f"ALTER TABLE {t} ADD CONSTRAINT {t}_pkey PRIMARY KEY USING INDEX {BUILD_TABLE}_pkey")
        cursor.execute(
            f"ALTER TABLE {t} ADD CONSTRAINT attainment_daily_unique UNIQUE USING INDEX {BUILD_TABLE}_unique"
        )
        cursor.execute(f"ALTER SEQUENCE {BUILD_TABLE}_id_seq RENAME TO {t}_id_seq")


def _daily_vacuum() -> None:
    """After a swap has committed: VACUUM (ANALYZE) of the new daily table (~0.1 s for half a million rows), so that
    its visibility map lets the dashboard's series be read from the covering index alone, and the planner knows the
    table, without waiting for autovacuum. A failure here leaves a correct snapshot: it is logged, not raised."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {AttainmentDaily._meta.db_table}")
    except Exception:
        logger.warning("could not vacuum the new daily table", exc_info=True)


def _daily_rewrite(full: list[_Job], partial: list[_Job], until: datetime.date) -> int:
    """Rewrites the daily series: whole campaigns for `full` (delete, then one INSERT … SELECT), and for `partial`
    the marked units from their first rewritten day, recounted in one statement; on PostgreSQL only the day rows
    whose counts changed are written (an upsert that skips equal rows, and a delete of the days that have no
    enrollment any more), so a late entry writes its own day's rows, not the whole rest of the series."""
    n = _names()
    written = 0
    columns = f"campaign_id, unit_id, scheme, {n['day']}, {n['count']}, new"
    if full:
        AttainmentDaily.objects.filter(campaign_id__in=[j.campaign.pk for j in full]).delete()
        select, params = _daily_full_select(full, until, everything=False)
        written += _execute(
            f"INSERT INTO {n['daily']} ({columns}) SELECT campaign_id, unit_id, scheme, d, n, nw FROM ({select}) g",  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
            params,
        )
    # The recounted ranges per scheme too, so that every one is a range of the (unit, scheme, day) indexes.
    marks = [
        (j.campaign.pk, u, scheme, _d(first), _d(last))
        for j in partial
        if not j.campaign.is_stock
        for u, first, last in j.ranges()
        for scheme in Scheme.values
    ]
    if not marks:
        return written
    names = ("campaign_id", "unit_id", "scheme", "since", "last_day")
    p, p_params = _marks_table(marks, names)
    recount = (
        f"SELECT p.campaign_id AS campaign_id, e.unit_id AS unit_id, e.scheme AS scheme, e.enrolled_on AS d, "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
        f"COUNT(*) AS n, SUM(CASE WHEN e.kind = %s THEN 1 ELSE 0 END) AS nw "
        f"FROM {n['enrollment']} e INNER JOIN {p} p ON p.unit_id = e.unit_id AND p.scheme = e.scheme "
        f"AND e.enrolled_on >= p.since AND e.enrolled_on <= p.last_day "
        f"WHERE e.kind IN (%s, %s) GROUP BY p.campaign_id, e.unit_id, e.scheme, e.enrolled_on"
    )
    recount_params = [EnrollmentKind.NEW, *p_params, *GROWTH_KINDS]
    daily = n["daily"]
    if connection.vendor == "postgresql":
        q, q_params = _marks_table(marks, names)
        key = f"f.campaign_id = o.campaign_id AND f.unit_id = o.unit_id AND f.scheme = o.scheme AND f.d = o.{n['day']}"
        with connection.cursor() as cursor:
            # The recount as a query of its own (a statement that writes never runs in parallel), then one
            # statement that compares it with the rows in place and writes only the differences.
            cursor.execute(f"CREATE TEMPORARY TABLE engine_fresh ON COMMIT DROP AS {recount}", recount_params)
            cursor.execute(
                f"CREATE TEMPORARY TABLE engine_old ON COMMIT DROP AS SELECT x.campaign_id, x.unit_id, x.scheme, "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
                f"x.{n['day']}, x.{n['count']}, x.new FROM {daily} x INNER JOIN {q} q ON q.campaign_id = x.campaign_id "
                f"AND q.unit_id = x.unit_id AND q.scheme = x.scheme AND x.{n['day']} >= q.since "
                f"AND x.{n['day']} <= q.last_day",
                q_params,
            )
            # Without statistics the planner takes the new tables for a few rows and joins them by nested loops.
            cursor.execute("ANALYZE engine_fresh, engine_old")
            cursor.execute(
                f"WITH upserted AS (INSERT INTO {daily} ({columns}) "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
                f"SELECT f.campaign_id, f.unit_id, f.scheme, f.d, f.n, f.nw "
                f"FROM engine_fresh f LEFT JOIN engine_old o ON {key} WHERE o.campaign_id IS NULL "
                f"OR o.{n['count']} <> f.n OR o.new <> f.nw "
                f"ON CONFLICT (campaign_id, unit_id, scheme, {n['day']}) DO UPDATE SET {n['count']} = EXCLUDED.{n['count']}, "
                f"new = EXCLUDED.new RETURNING 1), "
                f"removed AS (DELETE FROM {daily} x USING (SELECT o.* FROM engine_old o LEFT JOIN engine_fresh f "
                f"ON {key} WHERE f.campaign_id IS NULL) g WHERE x.campaign_id = g.campaign_id "
                f"AND x.unit_id = g.unit_id AND x.scheme = g.scheme AND x.{n['day']} = g.{n['day']} RETURNING 1) "
                f"SELECT (SELECT COUNT(*) FROM upserted), (SELECT COUNT(*) FROM removed)"
            )
            upserted, _removed = cursor.fetchone()
            cursor.execute("DROP TABLE engine_fresh, engine_old")
        return written + upserted
    _execute(
        f"DELETE FROM {daily} WHERE EXISTS (SELECT 1 FROM {p} p WHERE p.campaign_id = "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
        f"{daily}.campaign_id AND p.unit_id = {daily}.unit_id AND p.scheme = {daily}.scheme "
        f"AND {daily}.{n['day']} >= p.since AND {daily}.{n['day']} <= p.last_day)",
        p_params,
    )
    return written + _execute(
        f"INSERT INTO {daily} ({columns}) SELECT campaign_id, unit_id, scheme, d, n, nw FROM ({recount}) g",  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
        recount_params,
    )


def _journal_take(all_ids: list[int] | None, partial: list[_Job]) -> None:
    """PostgreSQL: takes the journal rows (reports.EnrollmentChange) of the run's campaigns out of the journal
    (every row when `all_ids` is None: a run over every campaign) with one DELETE … RETURNING, and keeps those of
    the partial jobs, summed per distinct change, in the temporary table engine_delta for `_daily_apply` and
    `_delta_sums`. The rows of the campaigns rebuilt whole are dropped: their count, in the same snapshot, has them.
    """
    journal = connection.ops.quote_name(EnrollmentChange._meta.db_table)
    where, params = ("", []) if all_ids is None else ("WHERE campaign_id = ANY(%s::bigint[])", [_array(all_ids)])
    partial_ids = [j.campaign.pk for j in partial]
    with connection.cursor() as cursor:
        # Dropped at the commit; inside a caller's transaction (tests) a second run finds it still there.
        cursor.execute("DROP TABLE IF EXISTS engine_delta")
        cursor.execute(
            "CREATE TEMPORARY TABLE engine_delta (campaign_id bigint, unit_id bigint, scheme varchar(16), "
            "kind varchar(8), enrolled_on date, coverage_start date, coverage_end date, n integer) ON COMMIT DROP"
        )
        cursor.execute(
            f"WITH taken AS (DELETE FROM {journal} {where} RETURNING campaign_id, unit_id, scheme, kind, "  # noqa: S608 # nosec B608 - table name from the model's _meta, quoted; every value is a %s parameter
            f"enrolled_on, coverage_start, coverage_end, sign) "
            f"INSERT INTO engine_delta SELECT campaign_id, unit_id, scheme, kind, enrolled_on, coverage_start, "
            f"coverage_end, SUM(sign) FROM taken WHERE campaign_id = ANY(%s::bigint[]) "
            f"GROUP BY campaign_id, unit_id, scheme, kind, enrolled_on, coverage_start, coverage_end "
            f"HAVING SUM(sign) <> 0",
            [*params, _array(partial_ids)],
        )
        if partial_ids and cursor.rowcount > ANALYZE_DELTA_ABOVE:
            # A large journal (an import): its statistics, so that the planner joins it to the stored rows by hash
            # rather than by an index probe per change. A day's entries (a few thousand changes) are planned well
            # from the table's size alone, and the ANALYZE was 3 ms of such a refresh.
            cursor.execute("ANALYZE engine_delta")


# Above this many summed changes a refresh gathers statistics on them (see _journal_take).
ANALYZE_DELTA_ABOVE = 20_000


def _jobs_table(partial: list[_Job]) -> tuple[str, list]:
    """The partial jobs as a derived table p(campaign_id, first_day, last_day, d1…d5): the window's days counted
    and the stock comparison days (STOCK_ALL's order; NULL for a campaign not on the stock)."""
    columns: list[list] = [[] for _ in range(3 + len(STOCK_ALL))]
    for j in partial:
        dates = _stock_dates(j.campaign, j.day) if j.campaign.is_stock else {}
        values = [j.campaign.pk, j.campaign.start_date, j.last, *(dates.get(name) for name in STOCK_ALL)]
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    types = ["bigint[]", "date[]", "date[]", *(["date[]"] * len(STOCK_ALL))]
    names = ["campaign_id", "first_day", "last_day", *(f"d{i}" for i in range(len(STOCK_ALL)))]
    sql = f"(SELECT * FROM unnest({', '.join(f'%s::{t}' for t in types)}) AS p({', '.join(names)}))"  # noqa: S608 # nosec B608 - fixed types and column names
    return sql, [_array(column) for column in columns]


def _daily_apply(partial: list[_Job]) -> int:
    """PostgreSQL: adds engine_delta's entry-day counts to the daily rows of the partial jobs (one MERGE: a row
    moved to zero is deleted, as a full count would not have it; a new day is inserted). Only the window
    campaigns have a daily series. Returns the rows written."""
    partial = [j for j in partial if not j.campaign.is_stock]
    if not partial:
        return 0
    n = _names()
    p, params = _jobs_table(partial)
    with connection.cursor() as cursor:
        cursor.execute(
            f"MERGE INTO {n['daily']} t USING ("  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
            f"SELECT d.campaign_id, d.unit_id, d.scheme, d.enrolled_on AS day, SUM(d.n) AS n, "
            f"SUM(CASE WHEN d.kind = %s THEN d.n ELSE 0 END) AS nw FROM engine_delta d "
            f"JOIN {p} p ON p.campaign_id = d.campaign_id AND d.enrolled_on >= p.first_day "
            f"AND d.enrolled_on <= p.last_day WHERE d.kind IN (%s, %s) "
            f"GROUP BY d.campaign_id, d.unit_id, d.scheme, d.enrolled_on) s "
            f"ON t.campaign_id = s.campaign_id AND t.unit_id = s.unit_id AND t.scheme = s.scheme "
            f"AND t.{n['day']} = s.day "
            f"WHEN MATCHED AND t.{n['count']} + s.n = 0 THEN DELETE "
            f"WHEN MATCHED AND (s.n <> 0 OR s.nw <> 0) THEN UPDATE SET {n['count']} = t.{n['count']} + s.n, "
            f"new = t.new + s.nw "
            f"WHEN NOT MATCHED AND (s.n <> 0 OR s.nw <> 0) THEN INSERT (campaign_id, unit_id, scheme, {n['day']}, "
            f"{n['count']}, new) VALUES (s.campaign_id, s.unit_id, s.scheme, s.day, s.n, s.nw)",
            [EnrollmentKind.NEW, *params, *GROWTH_KINDS],
        )
        return max(cursor.rowcount, 0)


def _delta_sums(partial: list[_Job]) -> dict[tuple[int, int, str], dict]:
    """PostgreSQL: {(campaign, unit, scheme): {enrolled, new, resumed, active…}} by how much engine_delta moves
    each figure (the stock days only for campaigns on the stock), in one grouped query."""
    if not partial:
        return {}
    p, params = _jobs_table(partial)
    in_window = "d.enrolled_on >= p.first_day AND d.enrolled_on <= p.last_day"
    stock = ", ".join(
        f"SUM(CASE WHEN d.coverage_start <= p.d{i} AND d.coverage_end > p.d{i} THEN d.n ELSE 0 END)"
        for i in range(len(STOCK_ALL))
    )
    out: dict[tuple[int, int, str], dict] = {}
    for campaign_id, unit_id, scheme, enrolled, new, *active in _sql(
        f"SELECT d.campaign_id, d.unit_id, d.scheme, "  # noqa: S608 # nosec B608 - fixed SQL; every value is a %s parameter
        f"SUM(CASE WHEN d.kind IN (%s, %s) AND {in_window} THEN d.n ELSE 0 END), "
        f"SUM(CASE WHEN d.kind = %s AND {in_window} THEN d.n ELSE 0 END), {stock} "
        f"FROM engine_delta d JOIN {p} p ON p.campaign_id = d.campaign_id "
        f"GROUP BY d.campaign_id, d.unit_id, d.scheme",
        [*GROWTH_KINDS, EnrollmentKind.NEW, *params],
    ):
        delta = {"enrolled": enrolled, "new": new, "resumed": enrolled - new}
        delta.update(zip(STOCK_ALL, active, strict=True))
        out[(campaign_id, unit_id, scheme)] = delta
    return out


def _totals_apply_complete(partial: list[_Job], run, computed_at) -> int | None:
    """PostgreSQL: `_totals_apply` when every unit of the partial jobs has its two rows (one per scheme) and each
    campaign its province's: the rows written; else None, with the UPDATE undone (a savepoint), for the caller to
    build the rows in Python. One statement in the usual case, instead of counting the rows first."""
    if not partial:
        return 0
    wanted = sum(len(j.units) + 1 for j in partial) * len(Scheme.values)
    savepoint = transaction.savepoint()
    written = _totals_apply(partial, run, computed_at)
    if written == wanted:
        transaction.savepoint_commit(savepoint)
        return written
    transaction.savepoint_rollback(savepoint)
    return None


def _totals_apply(partial: list[_Job], run, computed_at) -> int:
    """PostgreSQL: moves the partial jobs' total rows (their units' and the province's) by engine_delta in one
    UPDATE, every derived figure computed there by `_derive`'s arithmetic (numeric division, rounded half away from
    zero to two decimals, as Decimal's ROUND_HALF_UP), with the campaign's current targets. Returns the rows."""
    if not partial:
        return 0
    table = connection.ops.quote_name(AttainmentTotal._meta.db_table)
    target_table = connection.ops.quote_name(Target._meta.db_table)
    p, p_params = _jobs_table(partial)
    meta = [
        [j.campaign.pk for j in partial],
        [j.campaign.is_stock for j in partial],
        [j.campaign.days_in_window for j in partial],
        [days_elapsed(j.campaign, j.day) for j in partial],
        [days_left(j.campaign, j.day) for j in partial],
    ]
    keys = [(j.campaign.pk, u) for j in partial for u in j.units]
    in_window = "d.enrolled_on >= p.first_day AND d.enrolled_on <= p.last_day"
    active = ", ".join(
        f"SUM(CASE WHEN d.coverage_start <= p.d{i} AND d.coverage_end > p.d{i} THEN d.n ELSE 0 END) AS a{i}"
        for i in range(len(STOCK_ALL))
    )
    # The new values, written once here and used in the SET list: the row's own figure moved by its delta.
    new = {"enrolled": "(t.enrolled + x.d_enrolled)", "new": "(t.new + x.d_new)"}
    new.update({name: f"(COALESCE(t.{name}, 0) + x.a{i})" for i, name in enumerate(STOCK_ALL)})
    achieved = f"(CASE WHEN x.is_stock THEN {new['active']} ELSE {new['enrolled']} END)"
    growth = f"({new['active']} - {new['active_before_start']})"
    enrolled, now_active, before = new["enrolled"], new["active"], new["active_before_start"]
    deltas = ", ".join(f"COALESCE(s.a{i}, 0) AS a{i}" for i in range(len(STOCK_ALL)))
    stock_set = ", ".join(f"{name} = CASE WHEN x.is_stock THEN {new[name]} ELSE t.{name} END" for name in STOCK_ALL)
    schemes = ", ".join(["(%s)"] * len(Scheme.values))
    # One row of x per total row to move (campaign, unit or 0 for the province, scheme), joined to the table once by
    # that key (a hash join), every figure computed from the row's own values in the SET list.
    sql = f"""
        WITH p AS (SELECT p.*, m.is_stock, m.win, m.elapsed, m.lft FROM {p} p
                   JOIN unnest(%s::bigint[], %s::boolean[], %s::int[], %s::int[], %s::int[])
                        AS m(campaign_id, is_stock, win, elapsed, lft) ON m.campaign_id = p.campaign_id),
        s AS (SELECT d.campaign_id, CASE WHEN GROUPING(d.unit_id) = 1 THEN 0 ELSE d.unit_id END AS unit_key, d.scheme,
                     SUM(CASE WHEN d.kind IN (%s, %s) AND {in_window} THEN d.n ELSE 0 END) AS enrolled,
                     SUM(CASE WHEN d.kind = %s AND {in_window} THEN d.n ELSE 0 END) AS new, {active}
              FROM engine_delta d JOIN p ON p.campaign_id = d.campaign_id
              GROUP BY GROUPING SETS ((d.campaign_id, d.unit_id, d.scheme), (d.campaign_id, d.scheme))),
        tg AS (SELECT campaign_id, unit_id, scheme, value FROM {target_table} WHERE campaign_id = ANY(%s::bigint[])),
        targets AS (SELECT campaign_id, COALESCE(unit_id, 0) AS unit_key, scheme, value, true AS own FROM tg
                    UNION ALL
                    SELECT campaign_id, 0, scheme, SUM(value), false FROM tg WHERE unit_id IS NOT NULL
                    GROUP BY campaign_id, scheme),
        k AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS k(campaign_id, unit_key)
              UNION ALL SELECT campaign_id, 0 FROM p),
        x AS (SELECT k.campaign_id, k.unit_key, sc.scheme, p.is_stock, p.win, p.elapsed, p.lft,
                     COALESCE(s.enrolled, 0) AS d_enrolled, COALESCE(s.new, 0) AS d_new, {deltas},
                     COALESCE(own.value, units.value, 0) AS target,
                     own.value IS NOT NULL OR units.value IS NOT NULL AS has_target
              FROM k JOIN p ON p.campaign_id = k.campaign_id
              CROSS JOIN (VALUES {schemes}) AS sc(scheme)
              LEFT JOIN s ON s.campaign_id = k.campaign_id AND s.unit_key = k.unit_key AND s.scheme = sc.scheme
              LEFT JOIN targets own ON own.own AND own.campaign_id = k.campaign_id AND own.unit_key = k.unit_key
                   AND own.scheme = sc.scheme
              LEFT JOIN targets units ON NOT units.own AND k.unit_key = 0 AND units.campaign_id = k.campaign_id
                   AND units.scheme = sc.scheme)
        UPDATE {table} t SET
            computed_at = %s, run_id = %s, target = x.target, has_target = x.has_target,
            enrolled = {enrolled}, new = {new["new"]}, resumed = {enrolled} - {new["new"]}, achieved = {achieved},
            {stock_set},
            days_elapsed = x.elapsed, days_left = x.lft,
            current_daily_pace = CASE WHEN x.elapsed = 0 THEN 0
                WHEN x.is_stock THEN round({growth}::numeric / x.elapsed, 2)
                ELSE round({enrolled}::numeric / x.elapsed, 2) END,
            projected_at_end = CASE WHEN x.is_stock AND x.elapsed = 0 THEN {now_active}
                WHEN x.is_stock THEN round({before} + ({growth}::numeric * x.win) / x.elapsed, 2)
                WHEN x.elapsed = 0 THEN 0
                ELSE round(({enrolled}::numeric * x.win) / x.elapsed, 2) END,
            on_track = CASE WHEN x.is_stock AND x.elapsed = 0 THEN {now_active} >= x.target
                WHEN x.is_stock THEN {before}::bigint * x.elapsed + {growth}::bigint * x.win
                                     >= x.target::bigint * x.elapsed
                WHEN x.elapsed = 0 THEN x.target = 0
                ELSE {enrolled}::bigint * x.win >= x.target::bigint * x.elapsed END,
            attained_pct = CASE WHEN x.target <> 0 THEN round({achieved}::numeric * 100 / x.target, 2) END,
            remaining = GREATEST(x.target - {achieved}, 0),
            required_daily_pace = CASE WHEN x.lft <> 0 THEN round(GREATEST(x.target - {achieved}, 0)::numeric / x.lft, 2)
                END
        FROM x WHERE t.campaign_id = x.campaign_id AND COALESCE(t.unit_id, 0) = x.unit_key AND t.scheme = x.scheme
    """  # noqa: S608 # nosec B608 - quoted table names and fixed column names; every value is a %s parameter
    params = [
        *p_params,
        *(_array(column) for column in meta),
        *GROWTH_KINDS,
        EnrollmentKind.NEW,
        _array(j.campaign.pk for j in partial),
        _array(c for c, _u in keys),
        _array(u for _c, u in keys),
        *Scheme.values,
        computed_at,
        run.pk if run is not None else None,
    ]
    return _execute(sql, params)


def _session_lock(campaign_ids: Iterable[int], *, unlock: bool = False) -> None:
    """PostgreSQL: the per-campaign advisory locks of `_lock`, held by the session (taken before the run's
    REPEATABLE READ transaction starts, so that its snapshot sees every run that held them before; released after
    its commit). The same keys as `_lock`'s: a session lock and a transaction lock of a campaign exclude each other."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return
    function = "pg_advisory_unlock" if unlock else "pg_advisory_lock"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count({function}(%s, c)) FROM (SELECT unnest(%s::int[]) AS c ORDER BY 1) s",  # noqa: S608 # nosec B608 - one of two fixed function names
            [ADVISORY_LOCK_NAMESPACE, ids],
        )


def _growth_sums(full: list[_Job], partial: list[_Job], table: str | None = None) -> dict[tuple[int, int, str], dict]:
    """{(campaign, unit, scheme): {enrolled, new, resumed}} summed from the daily rows just written (the same
    filter as the live count): every unit of the full campaigns, the marked units of the partial ones. `table`:
    a table of every campaign's day counts (DAILY_ALL), instead of the live one, which holds the window campaigns'
    only: without it the campaigns on the stock are counted from the enrollments (`_growth_direct`)."""
    n = _names()
    out: dict[tuple[int, int, str], dict] = {}
    if table is not None:
        n["daily"] = table
    else:
        out = _growth_direct([j for j in full + partial if j.campaign.is_stock])
        full = [j for j in full if not j.campaign.is_stock]
        partial = [j for j in partial if not j.campaign.is_stock]
    queries = []
    if full:
        ids = [j.campaign.pk for j in full]
        queries.append((f"campaign_id IN ({', '.join(['%s'] * len(ids))})", ids))
    pairs = [(j.campaign.pk, u) for j in partial for u in sorted(j.units)]
    if pairs:
        p, params = _values(pairs, ("campaign_id", "unit_id"))
        queries.append(
            (
                f"EXISTS (SELECT 1 FROM {p} p WHERE p.campaign_id = {n['daily']}.campaign_id "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
                f"AND p.unit_id = {n['daily']}.unit_id)",
                params,
            )
        )
    for where, params in queries:
        for campaign_id, unit_id, scheme, enrolled, new in _sql(
            f"SELECT campaign_id, unit_id, scheme, SUM({n['count']}), SUM(new) FROM {n['daily']} "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
            f"WHERE {where} GROUP BY campaign_id, unit_id, scheme",
            params,
        ):
            out[(campaign_id, unit_id, scheme)] = {"enrolled": enrolled, "new": new, "resumed": enrolled - new}
    return out


def _growth_direct(jobs: list[_Job]) -> dict[tuple[int, int, str], dict]:
    """`_growth_sums` of campaigns whose daily series is not stored (those on the stock): enrolled, new and resumed
    per (campaign, unit, scheme) counted from the enrollments of the window up to the as-of date, every unit of
    the province for a full job, the marked units for a partial one, in one grouped query per kind of job."""
    n = _names()
    out: dict[tuple[int, int, str], dict] = {}
    whole = [
        (j.campaign.pk, j.campaign.province_id, _d(j.campaign.start_date), _d(j.last)) for j in jobs if j.units is None
    ]
    units = [
        (j.campaign.pk, u, _d(j.campaign.start_date), _d(j.last))
        for j in jobs
        if j.units is not None
        for u in sorted(j.units)
    ]
    queries = []
    if whole:
        p, params = _values(whole, ("campaign_id", "province_id", "first_day", "last_day"))
        queries.append(
            (
                f"INNER JOIN {n['district']} d ON d.id = e.unit_id INNER JOIN {p} p ON p.province_id = d.province_id",  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
                params,
            )
        )
    if units:
        p, params = _values(units, ("campaign_id", "unit_id", "first_day", "last_day"))
        queries.append((f"INNER JOIN {p} p ON p.unit_id = e.unit_id", params))  # noqa: S608 # nosec B608 - a derived table of placeholders
    for join, params in queries:
        for campaign_id, unit_id, scheme, enrolled, new in _sql(
            f"SELECT p.campaign_id, e.unit_id, e.scheme, COUNT(*), SUM(CASE WHEN e.kind = %s THEN 1 ELSE 0 END) "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
            f"FROM {n['enrollment']} e {join} WHERE e.kind IN (%s, %s) AND e.enrolled_on >= p.first_day "
            f"AND e.enrolled_on <= p.last_day GROUP BY p.campaign_id, e.unit_id, e.scheme",
            [EnrollmentKind.NEW, *params, *GROWTH_KINDS],
        ):
            out[(campaign_id, unit_id, scheme)] = {"enrolled": enrolled, "new": new, "resumed": enrolled - new}
    return out


def _stock_sums(jobs: list[_Job]) -> dict[tuple[int, int, str], dict]:
    """{(campaign, unit, scheme): {active…}} for the campaigns on the stock among `jobs` (every unit of a full one,
    the marked units of a partial one): participants whose coverage covers each comparison day
    (coverage_start <= d < coverage_end), per unit and scheme. See `_stock_plan` for the queries."""
    plan = _stock_plan(jobs)
    return _stock_collect(plan, [_sql(sql, params) for sql, params, _dates, _group in plan])


def _stock_plan(jobs: list[_Job]) -> list[tuple[str, list, tuple, list[_Job]]]:
    """The stock queries of `jobs`: [(sql, params, comparison days, jobs)], to run on any connection that sees the
    run's snapshot (`_StockConcurrent` runs them on a second one while the daily series is built).

    One grouped query per set of comparison days (every annual plan of a year shares them), over the enrollments
    alone with the days as constants: no join, so the database evaluates a few comparisons per row and groups by
    (unit, scheme); each unit's counts then go to the campaigns of its province (`_stock_collect`). That pass over
    the stock is most of a full run's cost beyond the daily series.

    PostgreSQL's exclusion constraint forbids overlapping coverage per person and scheme, so a participant is
    covered by at most one enrollment on a day and COUNT(*) equals COUNT(DISTINCT participant). SQLite has no
    such constraint and keeps the DISTINCT count.
    """
    jobs = [j for j in jobs if j.campaign.is_stock and (j.units is None or j.units)]
    if not jobs:
        return []
    n = _names()
    postgres = connection.vendor == "postgresql"
    groups: dict[tuple, list[_Job]] = {}
    for j in jobs:
        dates = _stock_dates(j.campaign, j.day)
        fixed = j.stock_fixed()
        if fixed == set(STOCK_ALL):
            continue  # every count kept (see _figures_for_jobs)
        key = tuple(None if name in fixed else dates[name] for name in STOCK_ALL)
        groups.setdefault(key, []).append(j)
    province_of = _province_of()
    plan = []
    for dates, group in groups.items():
        # Only the days counted: a day no change can have moved keeps its count (None here).
        distinct_days = sorted({d for d in dates if d is not None})
        counts = ", ".join(
            "COUNT(CASE WHEN e.coverage_start <= %s AND e.coverage_end > %s THEN 1 END)"
            if postgres
            else "COUNT(DISTINCT CASE WHEN e.coverage_start <= %s AND e.coverage_end > %s THEN e.participant_id END)"
            for _day in distinct_days
        )
        params = [_d(day) for day in distinct_days for _twice in (0, 1)]
        where = "e.coverage_start <= %s AND e.coverage_end > %s"
        params += [_d(distinct_days[-1]), _d(distinct_days[0])]
        provinces = {j.campaign.province_id for j in group if j.units is None}
        units = {u for j in group if j.units is not None for u in j.units}
        if provinces != set(province_of.values()) or units:
            units |= {u for u, province in province_of.items() if province in provinces}
            where += f" AND e.unit_id IN ({', '.join(['%s'] * len(units))})"
            params += sorted(units)
        sql = (
            f"SELECT e.unit_id, e.scheme, {counts} FROM {n['enrollment']} e "  # noqa: S608 # nosec B608 - names from the models' _meta, quoted; every value is a %s parameter
            f"WHERE {where} GROUP BY e.unit_id, e.scheme"
        )
        plan.append((sql, params, dates, group))
    return plan


def _province_of() -> dict[int, int]:
    return dict(District.objects.values_list("pk", "province_id"))


def _stock_collect(plan: list[tuple[str, list, tuple, list[_Job]]], results: list[list[tuple]]):
    """The rows of `_stock_plan`'s queries (in its order) as {(campaign, unit, scheme): {active…}}."""
    if not plan:
        return {}
    province_of = _province_of()
    out = {}
    for (_sql_text, _params, dates, group), rows in zip(plan, results, strict=True):
        distinct_days = sorted({d for d in dates if d is not None})
        by_province: dict[int, list[_Job]] = {}
        for j in group:
            by_province.setdefault(j.campaign.province_id, []).append(j)
        for unit_id, scheme, *values in rows:
            by_day = dict(zip(distinct_days, values, strict=True))
            counted = {name: by_day[day] for name, day in zip(STOCK_ALL, dates, strict=True) if day is not None}
            for j in by_province.get(province_of.get(unit_id), []):
                if j.units is None or unit_id in j.units:
                    out[(j.campaign.pk, unit_id, scheme)] = dict(counted)
    return out


class _StockConcurrent:
    """PostgreSQL, a full run in its own REPEATABLE READ transaction: the stock queries run on a second connection,
    in a thread, while this one builds the daily series, so that the two passes over the enrollments use both
    cores instead of one after the other (the daily aggregate streams from its covering index on one core).

    The second connection imports this transaction's snapshot (`pg_export_snapshot` / `SET TRANSACTION
    SNAPSHOT`), so both count exactly the same committed enrollments; it only reads. `result()` waits for the
    queries and returns `_stock_collect`'s dict; an error there fails the run as an error here would. The thread's
    connection is always closed, whatever happened."""

    def __init__(self, plan):
        import threading

        self.plan = plan
        self.rows: list[list[tuple]] | None = None
        self.error: BaseException | None = None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            self.snapshot = cursor.fetchone()[0]
        self.thread = threading.Thread(target=self._run, name="engine-stock", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from django.db import connections

        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                cursor.execute("SET TRANSACTION SNAPSHOT %s", [self.snapshot])
                # One core: the other one is building the daily series meanwhile. On one core the count streams
                # from the covering index enrollment_unit_scheme_coverage in (unit, scheme) order (2.0 s at 10M
                # rows beside the daily build) rather than reading the whole heap through shared_buffers, which
                # the planner prefers and which took 3.1 s beside it (bench/run.py, 2 cores).
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("SET LOCAL enable_bitmapscan = off")
                cursor.execute("SET LOCAL work_mem = '256MB'")
                cursor.execute("SET LOCAL jit = off")
                rows = []
                for sql, params, _dates, _group in self.plan:
                    cursor.execute(sql, params)
                    rows.append(cursor.fetchall())
                cursor.execute("COMMIT")
            self.rows = rows
        except BaseException as exc:  # handed to the run's thread by result()
            self.error = exc
        finally:
            other.close()

    def result(self) -> dict[tuple[int, int, str], dict]:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return _stock_collect(self.plan, self.rows)


def _campaign_units(campaigns: list[Campaign]) -> dict[int, set[int]]:
    """`campaign_unit_ids` of many campaigns with two queries."""
    provinces = {c.province_id for c in campaigns}
    units = list(
        District.objects.filter(province_id__in=provinces).values_list("pk", "province_id", "valid_from", "ceased_on")
    )
    out: dict[int, set[int]] = {}
    for c in campaigns:
        out[c.pk] = {
            pk
            for pk, province_id, valid_from, ceased_on in units
            if province_id == c.province_id
            and (valid_from is None or valid_from <= c.end_date)
            and (ceased_on is None or ceased_on > c.start_date)
        }
    for campaign_id, unit_id in Target.objects.filter(campaign_id__in=list(out), unit__isnull=False).values_list(
        "campaign_id", "unit_id"
    ):
        out[campaign_id].add(unit_id)
    return out


def _partial_where(partial: list[_Job], table: str) -> tuple[str, list]:
    """A WHERE condition on the total rows of the partial jobs: their units' rows and the province row."""
    if connection.vendor == "postgresql":
        keys = [(j.campaign.pk, u) for j in partial for u in (*sorted(j.units), 0)]
        return (
            f"({table}.campaign_id, COALESCE({table}.unit_id, 0)) IN "  # noqa: S608 # nosec B608 - a quoted table name
            f"(SELECT * FROM unnest(%s::bigint[], %s::bigint[]))",
            [[c for c, _u in keys], [u for _c, u in keys]],
        )
    parts, params = [], []
    for j in partial:
        units = sorted(j.units)
        in_units = f"{table}.unit_id IN ({', '.join(['%s'] * len(units))}) OR " if units else ""
        parts.append(f"({table}.campaign_id = %s AND ({in_units}{table}.unit_id IS NULL))")
        params += [j.campaign.pk, *units]
    return "(" + " OR ".join(parts or ["1 = 0"]) + ")", params


def _totals_of(partial: list[_Job], names: tuple[str, ...]) -> list[tuple]:
    """These columns of the partial jobs' total rows (their units' and the province's), in one query."""
    table = connection.ops.quote_name(AttainmentTotal._meta.db_table)
    where, params = _partial_where(partial, table)
    return _sql(f"SELECT {', '.join(names)} FROM {table} WHERE {where}", params)  # noqa: S608 # nosec B608 - fixed column names; every value is a %s parameter


def _totals_delete(full: list[_Job], partial: list[_Job]) -> None:
    """Deletes the total rows a run rewrites: every row of the full jobs' campaigns, the partial jobs' units' and
    province rows."""
    table = connection.ops.quote_name(AttainmentTotal._meta.db_table)
    conditions, params = [], []
    if full:
        conditions.append(f"{table}.campaign_id IN ({', '.join(['%s'] * len(full))})")
        params += [j.campaign.pk for j in full]
    if partial:
        where, where_params = _partial_where(partial, table)
        conditions.append(where)
        params += where_params
    if conditions:
        _execute(f"DELETE FROM {table} WHERE {' OR '.join(conditions)}", params)  # noqa: S608 # nosec B608 - fixed column names; every value is a %s parameter


def _figures_for_jobs(
    full: list[_Job],
    partial: list[_Job],
    daily_table: str | None = None,
    deltas: dict[tuple[int, int, str], dict] | None = None,
    stock: dict[tuple[int, int, str], dict] | None = None,
) -> dict[int, list[FigureRow]]:
    """The new total rows per campaign: every row of a full job; the marked units' rows and the province row of a
    partial one (the province's counts move by what its marked units' counts moved; the other units' rows stay).

    With `deltas` (PostgreSQL's journal, `_delta_sums`) a partial job's units are its previous counts moved by
    their deltas, nothing recounted, except a unit that had no row (recounted: it has no previous counts).
    `stock`: the stock sums of `full`, already counted (`_StockConcurrent`, a run with no partial job)."""
    jobs = full + partial
    old: dict[tuple[int, int | None, str], dict] = {}
    if partial:
        names = ("campaign_id", "unit_id", "scheme", *GROWTH_FIELDS, *STOCK_ALL, "rank_enrolled", "rank_attained")
        for values in _totals_of(partial, names):
            row = dict(zip(names, values, strict=True))
            old[(row["campaign_id"], row["unit_id"], row["scheme"])] = row
    if deltas is None:
        growth = _growth_sums(full, partial, daily_table)
        if stock is None:
            stock = _stock_sums(jobs)
    else:
        recount = []
        for j in partial:
            missing = {u for u in j.units if any((j.campaign.pk, u, s) not in old for s in Scheme.values)}
            if missing:
                recount.append(_Job(j.campaign, j.day, missing))
        growth = _growth_sums(full, recount, daily_table)
        stock = _stock_sums(full + recount)
        recounted = {(r.campaign.pk, u) for r in recount for u in r.units}
        for j in partial:
            c = j.campaign.pk
            for unit in j.units:
                if (c, unit) in recounted:
                    continue
                for scheme in Scheme.values:
                    before, delta = old[(c, unit, scheme)], deltas.get((c, unit, scheme), {})
                    growth[(c, unit, scheme)] = {name: before[name] + delta.get(name, 0) for name in GROWTH_FIELDS}
                    if j.campaign.is_stock:
                        stock[(c, unit, scheme)] = {
                            name: (before[name] or 0) + delta.get(name, 0) for name in STOCK_ALL
                        }
    targets: dict[int, dict] = {j.campaign.pk: {} for j in jobs}
    for campaign_id, unit_id, scheme, value in Target.objects.filter(campaign_id__in=list(targets)).values_list(
        "campaign_id", "unit_id", "scheme", "value"
    ):
        targets[campaign_id][(unit_id, scheme)] = value
    units = _campaign_units([j.campaign for j in jobs])

    by_campaign_growth: dict[int, dict] = {}
    for (c, u, s), v in growth.items():
        by_campaign_growth.setdefault(c, {})[(u, s)] = v
    by_campaign_stock: dict[int, dict] = {}
    for (c, u, s), v in stock.items():
        by_campaign_stock.setdefault(c, {})[(u, s)] = v

    out: dict[int, list[FigureRow]] = {}
    for j in full:
        c = j.campaign
        campaign_stock = by_campaign_stock.get(c.pk, {})
        if c.is_stock:
            # The province's stock: the sum of its units (see _stock_sums).
            for (_unit, scheme), counts in list(campaign_stock.items()):
                province = campaign_stock.setdefault((None, scheme), dict.fromkeys(STOCK_ALL, 0))
                for name, value in counts.items():
                    province[name] += value
        out[c.pk] = _rows_build(c, j.day, units[c.pk], by_campaign_growth.get(c.pk, {}), targets[c.pk], campaign_stock)
    for j in partial:
        c = j.campaign
        campaign_growth = by_campaign_growth.get(c.pk, {})
        campaign_stock = by_campaign_stock.get(c.pk, {})
        fixed = j.stock_fixed() if c.is_stock else set()
        if fixed:
            # The counts no change can have moved are the unit's previous ones; the others were just counted.
            for unit in j.units:
                for scheme in Scheme.values:
                    counts = campaign_stock.setdefault((unit, scheme), {})
                    before = old.get((c.pk, unit, scheme)) or {}
                    for name in STOCK_ALL:
                        counts[name] = (before.get(name) or 0) if name in fixed else counts.get(name, 0)
        rows = [
            r
            for r in _rows_build(c, j.day, units[c.pk], campaign_growth, targets[c.pk], campaign_stock, j.units)
            if r.unit_id is not None
        ]
        for r in rows:
            # The previous ranks, so that the ranking rewrites only the rows whose rank moved.
            before = old.get((c.pk, r.unit_id, r.scheme)) or {}
            r.rank_enrolled, r.rank_attained = before.get("rank_enrolled"), before.get("rank_attained")
        for scheme in Scheme.values:
            # The province row: its previous counts, moved by what the marked units' counts moved.
            before = old.get((c.pk, None, scheme), {})
            row = FigureRow(unit_id=None, scheme=scheme)
            fields = GROWTH_FIELDS + (STOCK_ALL if c.is_stock else ())
            for name in fields:
                source = campaign_stock if name in STOCK_ALL else campaign_growth
                value = before.get(name) or 0
                if deltas is not None:
                    # Moved by the journal's changes of every unit: a unit without a row (one outside the
                    # campaign's units) counts in the province too.
                    for unit in j.units:
                        value += (deltas.get((c.pk, unit, scheme)) or {}).get(name, 0)
                    setattr(row, name, value)
                    continue
                for unit in j.units:
                    value -= (old.get((c.pk, unit, scheme)) or {}).get(name) or 0
                    value += (source.get((unit, scheme)) or {}).get(name, 0)
                setattr(row, name, value)
            _province_target(row, targets[c.pk])
            rows.append(_derive(row, c, j.day))
        out[c.pk] = rows
    return out


def _insert_totals(jobs: list[_Job], rows: dict[int, list[FigureRow]], run, computed_at) -> int:
    by_id = {j.campaign.pk: j for j in jobs}
    objs = [
        AttainmentTotal(
            campaign_id=campaign_id,
            as_of=by_id[campaign_id].day,
            computed_at=computed_at,
            run=run,
            **row.model_fields(),
        )
        for campaign_id, campaign_rows in rows.items()
        for row in campaign_rows
    ]
    AttainmentTotal.objects.bulk_create(objs, batch_size=1000)
    return len(objs)


def _copy_totals(jobs: list[_Job], rows: dict[int, list[FigureRow]], run, computed_at) -> int:
    """PostgreSQL: `_insert_totals` through COPY (thousands of rows of thirty columns: no model instances, no
    statement text of a hundred thousand parameters)."""
    by_id = {j.campaign.pk: j for j in jobs}
    names = [f.name for f in fields_of(FigureRow) if f.name != "extra"]
    columns = ["campaign_id", "as_of", "computed_at", "run_id", *names]
    table = connection.ops.quote_name(AttainmentTotal._meta.db_table)
    run_id = run.pk if run is not None else None
    count = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for campaign_id, campaign_rows in rows.items():
            head = (campaign_id, by_id[campaign_id].day, computed_at, run_id)
            for row in campaign_rows:
                copy.write_row((*head, *(getattr(row, n) for n in names)))
                count += 1
    return count


def _rank_in_database(campaign_ids: list[int]) -> None:
    """RANK() OVER (PARTITION BY campaign, scheme ORDER BY …) across the campaigns' unit rows, written back by one
    UPDATE … FROM (PostgreSQL, and SQLite since 3.33); a unit without attained % has no rank by it."""
    if not campaign_ids:
        return
    table = connection.ops.quote_name(AttainmentTotal._meta.db_table)
    _execute(
        f"UPDATE {table} SET rank_enrolled = r.r_enrolled, rank_attained = r.r_attained FROM ("  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
        f"SELECT id, RANK() OVER (PARTITION BY campaign_id, scheme ORDER BY achieved DESC) AS r_enrolled, "
        f"CASE WHEN attained_pct IS NULL THEN NULL "
        f"ELSE RANK() OVER (PARTITION BY campaign_id, scheme ORDER BY attained_pct DESC NULLS LAST) END AS r_attained "
        f"FROM {table} WHERE campaign_id IN ({', '.join(['%s'] * len(campaign_ids))}) AND unit_id IS NOT NULL) r "
        f"WHERE {table}.id = r.id AND ({table}.rank_enrolled IS DISTINCT FROM r.r_enrolled "
        f"OR {table}.rank_attained IS DISTINCT FROM r.r_attained)",
        list(campaign_ids),
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


# A run takes seconds at national scale; one still "running" after this long lost its worker (killed, machine
# restarted) without anyone marking it: the next run does, so that no progress bar waits for it forever.
ORPHANED_RUN_AFTER = datetime.timedelta(minutes=30)


def runs_orphaned_fail(*, exclude: int | None = None, now: datetime.datetime | None = None) -> int:
    """Marks as failed the runs started more than ORPHANED_RUN_AFTER ago that never finished; returns how many."""
    from django.utils.translation import gettext

    now = now or timezone.now()
    return (
        RecomputeRun.objects.filter(status=RecomputeRun.Status.RUNNING, started_at__lt=now - ORPHANED_RUN_AFTER)
        .exclude(pk=exclude)
        .update(
            status=RecomputeRun.Status.FAILED,
            error=gettext("The worker running this recompute stopped before it finished; start it again."),
            finished_at=now,
        )
    )


def _marks_clear(full: list[_Job], partial: list[_Job], before: datetime.datetime) -> None:
    """Clears the pending marks the run took care of (made up to `before`), and the listed days of the marks
    cleared (a unit marked again meanwhile keeps its days, old and new)."""
    ids = [j.campaign.pk for j in full + partial]
    if connection.vendor == "postgresql":
        qn = connection.ops.quote_name
        marks, listed = qn(PendingRefresh._meta.db_table), qn(PendingRefreshDay._meta.db_table)
        keys = [(j.campaign.pk, u) for j in partial for u in j.units]
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {marks} p WHERE p.marked_at <= %s AND (p.campaign_id = ANY(%s::bigint[]) OR "  # noqa: S608 # nosec B608 - quoted table names; every value is a %s parameter
                f"(p.campaign_id, p.unit_id) IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[])))",
                [
                    before,
                    _array(j.campaign.pk for j in full),
                    _array(c for c, _u in keys),
                    _array(u for _c, u in keys),
                ],
            )
            cursor.execute(
                f"DELETE FROM {listed} d WHERE d.campaign_id = ANY(%s) AND NOT EXISTS (SELECT 1 FROM {marks} p "  # noqa: S608 # nosec B608 - quoted table names; every value is a %s parameter
                f"WHERE p.campaign_id = d.campaign_id AND p.unit_id = d.unit_id)",
                [ids],
            )
        return
    pending = PendingRefresh.objects.filter(campaign_id__in=[j.campaign.pk for j in full])
    for j in partial:
        pending |= PendingRefresh.objects.filter(campaign_id=j.campaign.pk, unit_id__in=j.units)
    pending.filter(marked_at__lte=before).delete()
    PendingRefreshDay.objects.filter(campaign_id__in=ids).exclude(
        Exists(PendingRefresh.objects.filter(campaign_id=OuterRef("campaign_id"), unit_id=OuterRef("unit_id")))
    ).delete()


def snapshot_rebuild(
    *,
    campaigns: Iterable[Campaign] | None = None,
    as_of: datetime.date | None = None,
    run: RecomputeRun | None = None,
    unit_ids: dict[int, set[int]] | None = None,
    since: dict[int, datetime.date | None] | None = None,
    days: dict[int, dict[int, set[datetime.date]]] | None = None,
    coverage_since: dict[int, datetime.date | None] | None = None,
    marks_before: datetime.datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RecomputeRun:
    """Recomputes the snapshot of `campaigns` (all when None): a full run, or with `unit_ids` ({campaign id: unit
    ids}) an incremental one that rewrites only those units' rows, the province row and the ranks; `since`
    ({campaign id: day}) limits the rewrite of those units' daily series to the days from that day on, and `days`
    ({campaign id: {unit id: entry days}}) to those days only for the units listed; `coverage_since` ({campaign
    id: earliest coverage start touched}) keeps the stock counts of the days before it. The run clears the marks
    of its units made up to `marks_before` (when its caller read them; default: the run's start). A campaign
    whose snapshot is for another date than this run's is rebuilt whole.

    All campaigns together, with a fixed number of statements (see above), in one transaction: a failure anywhere
    leaves the previous snapshot as it was. The run row is committed before and after, so that it records the
    failure too.
    """
    every_campaign = campaigns is None
    if campaigns is None:
        campaigns = Campaign.objects.all()
    campaigns = sorted(campaigns, key=lambda c: c.pk)
    if run is None:
        run = RecomputeRun.objects.create(
            campaign=campaigns[0] if len(campaigns) == 1 else None,
            kind=RecomputeRun.Kind.INCREMENTAL if unit_ids is not None else RecomputeRun.Kind.FULL,
        )
    started = time.monotonic()
    runs_orphaned_fail(exclude=run.pk)
    run.status = RecomputeRun.Status.RUNNING
    run.started_at = timezone.now()
    run.as_of = as_of
    run.steps_total = 4
    run.steps_done = 0
    run.error = ""
    run.save(update_fields=["status", "started_at", "as_of", "steps_total", "steps_done", "error"])
    _report_progress(run, 0, run.steps_total, on_progress)
    totals = dailies = 0
    ids = [c.pk for c in campaigns]
    # PostgreSQL: the whole run reads one snapshot (REPEATABLE READ), so that what it counts and the journal rows it
    # takes out are the same changes; the campaigns' locks are taken before that snapshot, by the session. Inside a
    # caller's transaction (tests) the isolation cannot change: transaction locks, as on SQLite.
    postgres = connection.vendor == "postgresql"
    isolated = postgres and not connection.in_atomic_block
    journal = postgres
    clear_marks_after = isolated
    concurrent: _StockConcurrent | None = None
    try:
        if isolated:
            _session_lock(ids)
        with transaction.atomic():
            if isolated:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            else:
                _lock(ids)
            computed_at = timezone.now()
            previous = {}
            if unit_ids is not None and ids:
                previous = {
                    campaign_id: (day, elapsed, left, active is not None)
                    for campaign_id, day, elapsed, left, active in AttainmentTotal.objects.filter(
                        campaign_id__in=ids, unit__isnull=True
                    ).values_list("campaign_id", "as_of", "days_elapsed", "days_left", "active")
                }
            full: list[_Job] = []
            partial: list[_Job] = []
            today = timezone.localdate()
            for campaign in campaigns:
                day = as_of or default_as_of(campaign, today)
                # The other units' rows stay only if they are for this date and this window and measure (an edited
                # campaign's snapshot is rebuilt whole).
                same = (day, days_elapsed(campaign, day), days_left(campaign, day), campaign.is_stock)
                if unit_ids is not None and previous.get(campaign.pk) == same:
                    units = set(unit_ids.get(campaign.pk, set()))
                    if journal:
                        partial.append(_Job(campaign, day, units))
                        continue
                    unit_days = {u: d for u, d in (days or {}).get(campaign.pk, {}).items() if u in units}
                    partial.append(
                        _Job(
                            campaign,
                            day,
                            units,
                            (since or {}).get(campaign.pk),
                            unit_days,
                            (coverage_since or {}).get(campaign.pk),
                        )
                    )
                else:
                    # A full run, or the other units' rows are for another date: rebuild the whole campaign.
                    full.append(_Job(campaign, day))
            # Every campaign rebuilt whole on PostgreSQL: the daily table is built beside the live one and swapped.
            swap = every_campaign and not partial and postgres
            if postgres:
                with connection.cursor() as cursor:
                    # The aggregates group millions of rows into thousands of groups: in memory, not sorted on
                    # disk; and compiling them (JIT) costs more than it saves at this size.
                    cursor.execute("SET LOCAL work_mem = '256MB'")
                    cursor.execute("SET LOCAL jit = off")
                    # The snapshot is derived data: its commit need not wait for the WAL flush. A crash that
                    # loses it loses the whole transaction (the journal rows it took out included), so the
                    # previous snapshot and the journal are back as they were, and the next run counts those
                    # changes; the enrollments themselves are committed by their writers as usual.
                    cursor.execute("SET LOCAL synchronous_commit = off")
            until = as_of or today
            deltas = None
            in_sql = False
            if swap and isolated:
                # Every campaign rebuilt in a transaction of the run's own: the stock is counted on a second
                # connection in this snapshot while the daily series is built here.
                concurrent = _StockConcurrent(_stock_plan(full))
            if journal:
                _journal_take(None if every_campaign else ids, partial)
                moved: dict[int, set[int]] = {}
                for c, u in _sql("SELECT DISTINCT campaign_id, unit_id FROM engine_delta", []):
                    moved.setdefault(c, set()).add(u)
                for j in partial:
                    # The units the journal moved join the marked ones (a change is counted whether or not its
                    # mark arrived).
                    j.units |= moved.get(j.campaign.pk, set())
                dailies = _daily_build(full, until) if swap else _daily_rewrite(full, [], until)
                dailies += _daily_apply(partial)
                # Every unit has its previous row (the usual case): the partial jobs' rows are moved in place by
                # one UPDATE; else (a unit new to the snapshot) that UPDATE is undone and they are built in Python
                # from the deltas.
                applied = _totals_apply_complete(partial, run, computed_at)
                in_sql = applied is not None
                if not in_sql:
                    deltas = _delta_sums(partial)
            else:
                dailies = _daily_build(full, until) if swap else _daily_rewrite(full, partial, until)
            _report_progress(run, 1, run.steps_total, on_progress)
            built = full if in_sql else full + partial
            stock = concurrent.result() if concurrent is not None else None
            rows = _figures_for_jobs(full, [] if in_sql else partial, DAILY_ALL if swap else None, deltas, stock)
            _report_progress(run, 2, run.steps_total, on_progress)

            _totals_delete(full, [] if in_sql else partial)
            write = _copy_totals if postgres else _insert_totals
            totals = write(built, rows, run, computed_at)
            if in_sql:
                totals += applied
            _rank_in_database(ids)
            if not clear_marks_after:
                _marks_clear(full, partial, marks_before or run.started_at)
            _report_progress(run, 3, run.steps_total, on_progress)
            if full:
                snapshot_written.send(
                    sender=RecomputeRun,
                    campaign_ids=[j.campaign.pk for j in full],
                    unit_ids=None,
                    since=None,
                    as_of=as_of,
                )
            if partial:
                snapshot_written.send(
                    sender=RecomputeRun,
                    campaign_ids=[j.campaign.pk for j in partial],
                    unit_ids={j.campaign.pk: set(j.units) for j in partial},
                    since={j.campaign.pk: j.since for j in partial},
                    as_of=as_of,
                )
            if swap:
                _daily_swap()
        if clear_marks_after:
            # After the commit, in a transaction of its own: a writer may update a mark meanwhile, which a
            # REPEATABLE READ transaction could not delete.
            with transaction.atomic():
                if postgres:
                    with connection.cursor() as cursor:
                        # A clear lost in a crash only makes the next refresh run for nothing.
                        cursor.execute("SET LOCAL synchronous_commit = off")
                _marks_clear(full, partial, marks_before or run.started_at)
        if swap and not connection.in_atomic_block:
            _daily_vacuum()
    except Exception as exc:
        if concurrent is not None:
            concurrent.thread.join()  # its connection closed before the next run starts
        run.status = RecomputeRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = timezone.now()
        run.duration_seconds = time.monotonic() - started
        run.save(update_fields=["status", "error", "finished_at", "duration_seconds"])
        logger.exception("attainment run %s failed", run.pk)
        raise
    finally:
        if isolated:
            try:
                _session_lock(ids, unlock=True)
            except Exception:  # a dead connection released them already
                logger.warning("could not release the locks of run %s", run.pk, exc_info=True)
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
    return campaigns_touched_windows(unit_ids=unit_ids, days=days, coverage_since=coverage_since)[0]


def campaigns_touched_windows(
    *, unit_ids: Iterable[int], days: Iterable[datetime.date], coverage_since: datetime.date | None = None
) -> tuple[dict[int, set[int]], dict[int, tuple[datetime.date, datetime.date]]]:
    """`campaigns_touched` and {campaign id: (start, end)} of those campaigns (what `pending_mark` needs to list
    their days), read in one query: the campaigns of the units' provinces joined to the units themselves."""
    unit_ids = list(unit_ids)
    days = sorted(days)
    out: dict[int, set[int]] = {}
    windows: dict[int, tuple[datetime.date, datetime.date]] = {}
    if not unit_ids:
        return out, windows
    # Stock campaigns, unless the touched coverage starts after they ended (every stock figure counts coverage on a
    # day no later than the campaign's end), and window campaigns over the span of the days: one condition for the
    # span, not one per day (a large import touches thousands of days, and SQLite refuses an expression tree that
    # deep); the few window campaigns in the span are then checked exactly. The campaigns of the units' provinces
    # are joined to the units: one row per (campaign, touched unit), in SQL written here rather than built by the
    # ORM (this runs after every entry's commit).
    qn = connection.ops.quote_name
    campaigns, units = qn(Campaign._meta.db_table), qn(District._meta.db_table)
    conditions, params = ["c.measure = %s"], [Campaign.Measure.STOCK.value]
    if coverage_since is not None:
        conditions.append("c.end_date >= %s")
        params.append(connection.ops.adapt_datefield_value(coverage_since))
    span = ["(" + " AND ".join(conditions) + ")"]
    if days:
        span.append("(c.start_date <= %s AND c.end_date >= %s)")
        params += [connection.ops.adapt_datefield_value(days[-1]), connection.ops.adapt_datefield_value(days[0])]
    if connection.vendor == "postgresql":
        in_units, params = "= ANY(%s)", [*params, unit_ids]
    else:
        in_units, params = f"IN ({', '.join(['%s'] * len(unit_ids))})", [*params, *unit_ids]
    candidates = _sql(
        f"SELECT c.id, c.measure, c.start_date, c.end_date, u.id FROM {campaigns} c "  # noqa: S608 # nosec B608 - table names come from the models' _meta, quoted; every value is a %s parameter
        f"JOIN {units} u ON u.province_id = c.province_id "
        f"WHERE ({' OR '.join(span)}) AND u.id {in_units}",
        params,
    )
    if connection.vendor != "postgresql":
        date_field = Campaign._meta.get_field("start_date")
        candidates = [(c, m, date_field.to_python(s), date_field.to_python(e), u) for c, m, s, e, u in candidates]
    for campaign_id, measure, start, end, unit_id in candidates:
        if campaign_id not in windows:
            is_stock = measure == Campaign.Measure.STOCK and (coverage_since is None or end >= coverage_since)
            if not is_stock:
                first_on_or_after_start = bisect.bisect_left(days, start)
                if first_on_or_after_start == len(days) or days[first_on_or_after_start] > end:
                    windows[campaign_id] = None  # a window campaign in the span that holds none of the days
                    continue
            windows[campaign_id] = (start, end)
        elif windows[campaign_id] is None:
            continue
        out.setdefault(campaign_id, set()).add(unit_id)
    return out, {pk: window for pk, window in windows.items() if window is not None}


# Above this many (campaign, unit, day) marks in one change (a large import) a unit's series is recounted from
# its first touched day on instead of day by day.
MAX_DAY_MARKS = 20_000


def _mark_conflict(table: str) -> str:
    """The upsert rule of a mark made again: its time moves forward, its first day and coverage start back (an
    empty one wins: the whole series, every comparison day), and it lists days only while every change did."""
    return (
        f"ON CONFLICT (campaign_id, unit_id) DO UPDATE SET marked_at = excluded.marked_at, "  # nosec B608 - a quoted table name, no value
        f"since = CASE WHEN {table}.since IS NULL OR excluded.since IS NULL THEN NULL "
        f"WHEN excluded.since < {table}.since THEN excluded.since ELSE {table}.since END, "
        f"days_only = ({table}.days_only AND excluded.days_only), "
        f"coverage_since = CASE WHEN {table}.coverage_since IS NULL OR excluded.coverage_since IS NULL THEN NULL "
        f"WHEN excluded.coverage_since < {table}.coverage_since THEN excluded.coverage_since "
        f"ELSE {table}.coverage_since END"
    )


def pending_mark(
    touched: dict[int, set[int]],
    *,
    since: datetime.date | None = None,
    days: Iterable[datetime.date] | None = None,
    coverage_since: datetime.date | None = None,
    windows: dict[int, tuple[datetime.date, datetime.date]] | None = None,
) -> None:
    """Records in the database which campaign units wait for a refresh, and from which entry day (`since`; None:
    the whole series); with `days` (every entry day whose counts the change can have moved: `since` is then their
    first) only those days of each unit's series are recounted, as long as every change since its last refresh
    listed its days; with `coverage_since` (the earliest coverage start the change touched) the stock counts of
    comparison days before it are kept, as long as every change since the last refresh gave one.

    An upsert that moves the time forward and the day back (an empty day wins), in one transaction with the days:
    a run clears only the marks made before it started, so a change that commits while a refresh is running stays
    marked, with its days, for the next one. `windows` ({campaign id: (start, end)}, as `campaigns_touched_windows`
    returns them) saves reading the campaigns' windows again. On PostgreSQL the days and the mark are written by one
    statement (a CTE), atomic on its own.
    """
    pairs = sorted((c, u) for c, units in touched.items() for u in units)
    if not pairs:
        return
    days = sorted(set(days or ()))
    if days:
        since = days[0]
    day_rows: list[tuple[int, int, datetime.date]] = []
    # PostgreSQL's refresh takes the changes themselves from the journal (EnrollmentChange): no days to list.
    if days and connection.vendor != "postgresql":
        if windows is None or not set(touched) <= set(windows):
            windows = {
                pk: (start, end)
                for pk, start, end in Campaign.objects.filter(pk__in=list(touched))
                .order_by()
                .values_list("pk", "start_date", "end_date")
            }
        for campaign_id, unit_id in pairs:
            start, end = windows.get(campaign_id, (None, None))
            if start is None:
                continue
            lo, hi = bisect.bisect_left(days, start), bisect.bisect_right(days, end)
            day_rows += [(campaign_id, unit_id, d) for d in days[lo:hi]]
            if len(day_rows) > MAX_DAY_MARKS:
                break
    days_only = bool(days) and connection.vendor != "postgresql" and len(day_rows) <= MAX_DAY_MARKS
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    day = connection.ops.adapt_datefield_value(since)
    table = connection.ops.quote_name(PendingRefresh._meta.db_table)
    coverage = connection.ops.adapt_datefield_value(coverage_since)
    if connection.vendor == "postgresql":
        # Two arrays and four values, whatever the number of units: a statement text of thousands of placeholders
        # costs more to bind than to run.
        values = "SELECT u.c, u.u, %s::timestamptz, %s::date, %s::boolean, %s::date FROM unnest(%s::bigint[], %s::bigint[]) AS u(c, u)"
        params = [now, day, days_only, coverage, [c for c, _u in pairs], [u for _c, u in pairs]]
    else:
        values = "VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(pairs))
        params = [
            value for campaign_id, unit_id in pairs for value in (campaign_id, unit_id, now, day, days_only, coverage)
        ]
    upsert = (
        f"INSERT INTO {table} (campaign_id, unit_id, marked_at, since, days_only, coverage_since) {values} "  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
        f"{_mark_conflict(table)}"
    )
    if connection.vendor == "postgresql":
        # One statement, one round trip and one commit: the days' INSERT rides in a CTE (data-modifying CTEs run
        # exactly once, in the same snapshot and transaction as the mark's upsert).
        with connection.cursor() as cursor:
            if days_only and day_rows:
                day_sql, day_params = _day_marks_insert_sql(day_rows)
                cursor.execute(f"WITH listed_days AS ({day_sql}) {upsert}", [*day_params, *params])
            else:
                cursor.execute(upsert, params)
        return
    with transaction.atomic(), connection.cursor() as cursor:
        if days_only and day_rows:
            _day_marks_insert(cursor, day_rows)
        cursor.execute(upsert, params)


def pending_mark_touched(
    *, unit_ids: Iterable[int], days: Iterable[datetime.date], coverage_since: datetime.date | None = None
) -> dict[int, set[int]]:
    """PostgreSQL: `campaigns_touched` and `pending_mark` of what it finds in one statement (outside a transaction,
    in one of its own with an asynchronous commit): the touched campaign units are upserted as marks from the
    entry's first day (no days listed: the refresh reads the change journal) and returned."""
    unit_ids, days = sorted(set(unit_ids)), sorted(set(days))
    if not unit_ids:
        return {}
    qn = connection.ops.quote_name
    campaigns, units, table = (qn(m._meta.db_table) for m in (Campaign, District, PendingRefresh))
    stock = "c.measure = %s" + (" AND c.end_date >= %s" if coverage_since is not None else "")
    params: list = [timezone.now(), days[0] if days else None, coverage_since, Campaign.Measure.STOCK.value]
    if coverage_since is not None:
        params.append(coverage_since)
    params += [_array(days), _array(unit_ids)]
    sql = (
        f"INSERT INTO {table} (campaign_id, unit_id, marked_at, since, days_only, coverage_since) "  # noqa: S608 # nosec B608 - table names from the models' _meta, quoted; every value is a %s parameter
        f"SELECT c.id, u.id, %s::timestamptz, %s::date, false, %s::date FROM {campaigns} c "
        f"JOIN {units} u ON u.province_id = c.province_id "
        f"WHERE (({stock}) OR EXISTS (SELECT 1 FROM unnest(%s::date[]) d(day) "
        f"WHERE d.day >= c.start_date AND d.day <= c.end_date)) AND u.id = ANY(%s::bigint[]) "
        f"{_mark_conflict(table)} RETURNING campaign_id, unit_id"
    )
    if connection.in_atomic_block:
        rows = _sql(sql, params)
    else:
        # On PostgreSQL a mark is advisory (the refresh takes the changes, and their campaigns, from the journal
        # written in the writer's transaction): its commit need not wait for the WAL flush, which was most of this
        # after-commit step's time. A mark lost in a crash only hides the dashboard's "older than the data" until
        # the refresh that the journal still drives.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
            rows = _sql(sql, params)
    out: dict[int, set[int]] = {}
    for campaign_id, unit_id in rows:
        out.setdefault(campaign_id, set()).add(unit_id)
    return out


def _day_marks_insert_sql(rows: list[tuple[int, int, datetime.date]]) -> tuple[str, list]:
    """PostgreSQL: the INSERT of the listed days, one statement whatever their number (three arrays)."""
    table = connection.ops.quote_name(PendingRefreshDay._meta.db_table)
    conflict = f"ON CONFLICT (campaign_id, unit_id, {connection.ops.quote_name('day')}) DO NOTHING"
    campaigns, units, days = (list(column) for column in zip(*rows, strict=True))
    return (
        f"INSERT INTO {table} (campaign_id, unit_id, day) "  # noqa: S608 # nosec B608 - table name from the model's _meta, quoted; every value is a %s parameter
        f"SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::date[]) {conflict}",
        [campaigns, units, days],
    )


def _day_marks_insert(cursor, rows: list[tuple[int, int, datetime.date]]) -> None:
    table = connection.ops.quote_name(PendingRefreshDay._meta.db_table)
    conflict = f"ON CONFLICT (campaign_id, unit_id, {connection.ops.quote_name('day')}) DO NOTHING"
    if connection.vendor == "postgresql":
        cursor.execute(*_day_marks_insert_sql(rows))
        return
    for i in range(0, len(rows), 300):
        chunk = rows[i : i + 300]
        cursor.execute(
            f"INSERT INTO {table} (campaign_id, unit_id, day) VALUES {', '.join(['(%s, %s, %s)'] * len(chunk))} "  # noqa: S608 # nosec B608 - table name from the model's _meta, quoted; every value is a %s parameter
            f"{conflict}",
            [x for c, u, d in chunk for x in (c, u, _d(d))],
        )


def pending_units(campaign_id: int) -> set[int]:
    return set(PendingRefresh.objects.filter(campaign_id=campaign_id).values_list("unit_id", flat=True))


def pending_units_since(campaign_id: int) -> tuple[set[int], datetime.date | None]:
    """The pending units and, read with them in one query, the earliest day from which their daily series must be
    rewritten (None: all of it)."""
    marks = list(PendingRefresh.objects.filter(campaign_id=campaign_id).values_list("unit_id", "since"))
    days = [since for _unit, since in marks]
    return {unit for unit, _since in marks}, (None if not days or None in days else min(days))


def pending_all() -> tuple[dict[int, set[int]], dict[int, datetime.date | None]]:
    """Every pending mark, read in one query: ({campaign id: unit ids}, {campaign id: earliest day to rewrite from,
    None for the whole series})."""
    units, since, _days, _coverage = pending_all_days()
    return units, since


def pending_all_days() -> tuple[
    dict[int, set[int]],
    dict[int, datetime.date | None],
    dict[int, dict[int, set[datetime.date]]],
    dict[int, datetime.date | None],
]:
    """`pending_all` and, read with it in the same statement, {campaign id: {unit id: entry days}} of the marks
    whose days are listed (the other marked units are recounted from their first day on), and {campaign id:
    earliest coverage start touched, None when unknown}."""
    units: dict[int, set[int]] = {}
    since: dict[int, datetime.date | None] = {}
    coverage: dict[int, datetime.date | None] = {}
    days: dict[int, dict[int, set[datetime.date]]] = {}
    qn = connection.ops.quote_name
    marks, listed = qn(PendingRefresh._meta.db_table), qn(PendingRefreshDay._meta.db_table)
    rows = _sql(
        f"SELECT p.campaign_id, p.unit_id, p.since, p.days_only, p.coverage_since, d.{qn('day')} FROM {marks} p "  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted
        f"LEFT JOIN {listed} d ON p.days_only AND d.campaign_id = p.campaign_id AND d.unit_id = p.unit_id",
        [],
    )
    date_field = PendingRefreshDay._meta.get_field("day")
    for campaign_id, unit_id, first, days_only, covered, day in rows:
        if connection.vendor != "postgresql":
            first, covered, day = (date_field.to_python(v) for v in (first, covered, day))
        if campaign_id not in units:
            units[campaign_id], since[campaign_id], coverage[campaign_id] = set(), first, covered
        units[campaign_id].add(unit_id)
        for earliest, value in ((since, first), (coverage, covered)):
            if value is None or earliest[campaign_id] is None:
                earliest[campaign_id] = None
            else:
                earliest[campaign_id] = min(earliest[campaign_id], value)
        if days_only:
            unit_days = days.setdefault(campaign_id, {}).setdefault(unit_id, set())
            if day is not None:
                unit_days.add(day)
    return units, since, days, coverage


def pending_refresh(
    units=None, since=None, days=None, coverage_since=None, *, marks_before=None
) -> RecomputeRun | None:
    """The incremental refresh of every pending mark (or of the marks `pending_all_days` returned, read at
    `marks_before`), all campaigns in one run; None when nothing is pending. Only the marks made up to the time they
    were read are cleared: a unit marked again after that stays marked for the next run."""
    if units is None:
        marks_before = timezone.now()
        units, since, days, coverage_since = pending_all_days()
    if connection.vendor == "postgresql":
        # The journal's campaigns too: a change whose mark never arrived (its after-commit step failed, or a crash
        # lost it) is refreshed now rather than at the nightly run; its units come from the journal.
        for (campaign_id,) in _sql(
            f"SELECT DISTINCT campaign_id FROM {connection.ops.quote_name(EnrollmentChange._meta.db_table)}",  # noqa: S608 # nosec B608 - a table name from the model's _meta, quoted
            [],
        ):
            units.setdefault(campaign_id, set())
    if not units:
        return None
    campaigns = list(Campaign.objects.filter(pk__in=list(units)))
    if not campaigns:
        return None
    return snapshot_rebuild(
        campaigns=campaigns,
        unit_ids=units,
        since=since,
        days=days,
        coverage_since=coverage_since,
        marks_before=marks_before,
    )
