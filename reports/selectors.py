"""Reads for the dashboards, exports and API: snapshot rows and live breakdowns, always scoped through
districts.scoping, aggregated in the database."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    IntegerField,
    Max,
    Q,
    Value,
    When,
)
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.models import Campaign
from districts.models import District, Province
from districts.scoping import role_of, scope_of, scope_queryset, visible_campaigns, visible_enrollments
from participants.models import EnrollmentKind, Scheme
from reports import breakdowns, engine
from reports.models import AttainmentDaily, AttainmentTotal, PendingRefresh, RecomputeRun

# A snapshot older than this is flagged even without pending changes: the nightly run did not happen.
STALE_AFTER = datetime.timedelta(hours=26)
AGE_BANDS = ((None, 25, "under_25"), (25, 35, "25_34"), (35, 45, "35_44"), (45, 55, "45_54"), (55, None, "55_plus"))
AGE_ORDER = {label: i for i, (_low, _high, label) in enumerate(AGE_BANDS)}


def dashboard_campaign(user, slug: str):
    """The campaign (with its province) if the user may see it, with what the page needs besides in the same
    query: the latest pending refresh (of the user's unit, for a user tied to one), the latest run's outcome, and
    the snapshot rows' version (latest computation, count) and date.

    The six sub-selects are written in SQL rather than as Subquery expressions (resolving those cost ~1.5 ms of the
    dashboard's ~12 ms at every request), and on PostgreSQL the whole query too (_dashboard_campaign_sql); every
    value is a parameter."""
    select, params = dashboard_campaign_select(user)
    read = _dashboard_campaign_sql if connection.vendor == "postgresql" else _dashboard_campaign_orm
    campaign = read(user, slug, select, params)
    if campaign is not None:
        # SQLite answers the aggregates as text; PostgreSQL as values.
        campaign.pending_since = _aware(campaign.pending_since)
        campaign.last_run_finished_at = _aware(campaign.last_run_finished_at)
        campaign.snapshot_at = _aware(campaign.snapshot_at)
        if isinstance(campaign.snapshot_as_of, str):
            campaign.snapshot_as_of = datetime.date.fromisoformat(campaign.snapshot_as_of)
    return campaign


def dashboard_campaign_select(user) -> tuple[dict[str, str], list]:
    """dashboard_campaign's sub-selects (name -> SQL on campaigns_campaign's row) and their parameters."""
    unit_id = user_unit_id(user)
    qn = connection.ops.quote_name
    pending, run, totals = (qn(m._meta.db_table) for m in (PendingRefresh, RecomputeRun, AttainmentTotal))
    campaign_id = f"{qn(Campaign._meta.db_table)}.{qn('id')}"
    unit = " AND unit_id = %s" if unit_id else ""
    unit_params = [unit_id] if unit_id else []
    last_run = f"FROM {run} WHERE campaign_id = {campaign_id} OR campaign_id IS NULL ORDER BY id DESC LIMIT 1"
    select = {
        "pending_since": f"SELECT MAX(marked_at) FROM {pending} WHERE campaign_id = {campaign_id}{unit}",  # noqa: S608 # nosec B608 - names from _meta, values are parameters
        "last_run_status": f"SELECT status {last_run}",
        "last_run_finished_at": f"SELECT finished_at {last_run}",
        "snapshot_at": f"SELECT MAX(computed_at) FROM {totals} WHERE campaign_id = {campaign_id}{unit}",  # noqa: S608 # nosec B608 - names from _meta, values are parameters
        "snapshot_as_of": f"SELECT MAX(as_of) FROM {totals} WHERE campaign_id = {campaign_id}{unit}",  # noqa: S608 # nosec B608 - names from _meta, values are parameters
        "snapshot_rows": f"SELECT COUNT(*) FROM {totals} WHERE campaign_id = {campaign_id}{unit}",  # noqa: S608 # nosec B608 - names from _meta, values are parameters
    }
    return select, [*unit_params, *unit_params, *unit_params, *unit_params]  # pending, snapshot_at, _as_of, _rows


def _dashboard_campaign_orm(user, slug: str, select: dict[str, str], params: list):
    """dashboard_campaign's query through the ORM (SQLite: its converters type the answers)."""
    return (
        visible_campaigns(user)
        .select_related("province")
        .extra(select=select, select_params=params)  # noqa: S610 # nosec B610 - fixed SQL, values are parameters
        .filter(slug=slug)
        .first()
    )


def _campaign_scope_sql(user) -> tuple[str, list] | None:
    """visible_campaigns(user) (districts.scoping.scope_filter with the campaign's province) as a condition on
    campaigns_campaign: none for an active superuser, the user's province for a user with a role and a scope, and
    None when the user may see no campaign. tests/reports/test_dash_campaign.py holds both the same for every kind
    of user."""
    if user.is_authenticated and user.is_active and user.is_superuser:
        return "", []
    scope = scope_of(user)
    if scope is None or role_of(user) is None:
        return None
    qn = connection.ops.quote_name
    return f" AND {qn(Campaign._meta.db_table)}.{qn('province_id')} = %s", [scope.province_id]


def _dashboard_campaign_sql(user, slug: str, select: dict[str, str], params: list):
    """dashboard_campaign's query written in SQL on PostgreSQL: the campaign and its province built from one row
    (Model.from_db, as the ORM does) without compiling a queryset (~0.5 ms of every dashboard view)."""
    scope = _campaign_scope_sql(user)
    if scope is None:
        return None
    qn = connection.ops.quote_name
    campaigns, provinces = qn(Campaign._meta.db_table), qn(Province._meta.db_table)
    campaign_fields = [f.attname for f in Campaign._meta.concrete_fields]
    province_fields = [f.attname for f in Province._meta.concrete_fields]
    columns = [
        *(f"{campaigns}.{qn(f.column)}" for f in Campaign._meta.concrete_fields),
        *(f"{provinces}.{qn(f.column)}" for f in Province._meta.concrete_fields),
        *(f"({sql}) AS {qn(name)}" for name, sql in select.items()),
    ]
    condition, scope_params = scope
    sql = (
        f"SELECT {', '.join(columns)} FROM {campaigns} INNER JOIN {provinces} "  # noqa: S608 # nosec B608 - names from _meta, values are parameters
        f"ON {provinces}.{qn('id')} = {campaigns}.{qn('province_id')} WHERE {campaigns}.{qn('slug')} = %s{condition}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, slug, *scope_params])
        row = cursor.fetchone()
    if row is None:
        return None
    n, m = len(campaign_fields), len(province_fields)
    campaign = Campaign.from_db(connection.alias, campaign_fields, row[:n])
    Campaign._meta.get_field("province").set_cached_value(
        campaign, Province.from_db(connection.alias, province_fields, row[n : n + m])
    )
    for name, value in zip(select, row[n + m :], strict=True):
        setattr(campaign, name, value)
    return campaign


def _aware(value):
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    return value


def freshness_from(campaign: Campaign) -> Freshness:
    """freshness() from the annotations of dashboard_campaign (no query)."""
    computed_at, as_of = campaign.snapshot_at, campaign.snapshot_as_of
    pending_since = campaign.pending_since
    stale = computed_at is None or pending_since is not None
    if computed_at is not None and campaign.end_date >= timezone.localdate() - datetime.timedelta(days=1):
        stale = stale or timezone.now() - computed_at > STALE_AFTER
    last_run = None
    if campaign.last_run_status:
        last_run = RecomputeRun(status=campaign.last_run_status, finished_at=campaign.last_run_finished_at)
    return Freshness(computed_at, as_of, pending_since, stale, last_run)


def breakdown_for_page(user, campaign: Campaign, as_of: datetime.date, *, unit=None) -> tuple[dict, bool]:
    """The breakdown a page shows and whether it was counted live: the stored one (reports.breakdowns) when it is
    for `as_of`, else the live count over the enrollments."""
    stored = breakdowns.stored_breakdown(
        campaign=campaign, as_of=as_of, unit_id=unit.pk if unit else None, user_unit_id=user_unit_id(user)
    )
    if stored is not None:
        return stored, False
    return breakdown(user, campaign, as_of, unit=unit), True


def user_unit_id(user) -> int | None:
    """The one unit a user is tied to, or None for a province-wide user (or a superuser)."""
    scope = scope_of(user)
    return scope.unit_id if scope is not None else None


def campaigns_for_overview(user):
    """The user's campaigns, active first, then by start date (newest first)."""
    return (
        visible_campaigns(user)
        .select_related("province")
        .annotate(
            status_order=Case(
                When(status=Campaign.Status.ACTIVE, then=Value(0)),
                When(status=Campaign.Status.DRAFT, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .order_by("status_order", "-start_date", "name")
    )


def scoped_totals(user, campaigns):
    """Snapshot rows of these campaigns that the user may see (unit rows of their unit, or all of the province's)."""
    return scope_queryset(
        AttainmentTotal.objects.filter(campaign__in=campaigns),
        user,
        province_field="campaign__province",
        unit_field="unit",
    )


def headline_rows(user, campaigns) -> dict[int, list[AttainmentTotal]]:
    """Per campaign id, the headline rows per scheme: the province row, or the user's own unit's rows."""
    unit_id = user_unit_id(user)
    qs = scoped_totals(user, campaigns).select_related("unit")
    qs = qs.filter(unit_id=unit_id) if unit_id else qs.filter(unit__isnull=True)
    out: dict[int, list[AttainmentTotal]] = {}
    for row in qs.order_by("campaign_id", "scheme"):
        out.setdefault(row.campaign_id, []).append(row)
    return out


def unit_rows(user, campaign):
    return scoped_totals(user, [campaign]).filter(unit__isnull=False).select_related("unit")


class SnapshotUnit:
    """What a snapshot row tells of its unit: its id, code and name (as District shows them)."""

    __slots__ = ("pk", "code", "name")

    def __init__(self, pk, code, name):
        self.pk, self.code, self.name = pk, code, name

    @property
    def id(self):
        return self.pk

    def __str__(self):
        return self.name


TOTAL_COLUMNS = tuple(f.attname for f in AttainmentTotal._meta.concrete_fields)
_SCHEME_LABELS = dict(Scheme.choices)  # lazy labels: each read in the language of the moment


class SnapshotRow:
    """One snapshot row as the dashboard reads it: AttainmentTotal's columns, its figures' properties and its unit
    (a SnapshotUnit, or None for the province), without a model instance per row and per unit (building those was
    ~2 ms of a dashboard's first view). The cards, the ranking (django-tables2 and its exports) and the charts read
    it as they read an AttainmentTotal."""

    __slots__ = (*TOTAL_COLUMNS, "unit")

    _change = staticmethod(AttainmentTotal._change)
    _change_pct = staticmethod(AttainmentTotal._change_pct)
    change_vs_prev_month = AttainmentTotal.change_vs_prev_month
    change_vs_prev_month_pct = AttainmentTotal.change_vs_prev_month_pct
    change_vs_year_end = AttainmentTotal.change_vs_year_end
    change_vs_year_end_pct = AttainmentTotal.change_vs_year_end_pct
    change_vs_same_day_last_year = AttainmentTotal.change_vs_same_day_last_year
    change_vs_same_day_last_year_pct = AttainmentTotal.change_vs_same_day_last_year_pct

    @property
    def pk(self):
        return self.id

    def get_scheme_display(self) -> str:
        return str(_SCHEME_LABELS.get(self.scheme, self.scheme))


def dashboard_rows(user, campaign: Campaign) -> list[SnapshotRow]:
    """The campaign's snapshot rows that the user may see, as SnapshotRow, in the model's order (scheme, rank,
    unit code; the province rows after the units of their scheme): all of them for a province-wide user, the rows of
    their own unit for a user tied to one (no province row), as scoped_totals gives them.

    `campaign` must come from dashboard_campaign (or another visible_campaigns query): its visibility, and so its
    province, is checked there; what is left of the scope here is the user's unit. One query, written in SQL on
    PostgreSQL (resolving the ORM's query cost ~0.5 ms a view); elsewhere the ORM's, whose converters type SQLite's
    answers."""
    return dashboard_snapshot(user, campaign, series=False)[0]


def dashboard_snapshot(user, campaign: Campaign, *, series: bool) -> tuple[list[SnapshotRow], dict | None]:
    """dashboard_rows, and with `series` the cumulative_series of what the user sees (the campaign, or their own
    unit): on PostgreSQL both statements in one round trip (one query), elsewhere one query each."""
    unit_id = user_unit_id(user)
    if connection.vendor != "postgresql":
        qs = AttainmentTotal.objects.filter(campaign_id=campaign.pk)
        qs = qs.filter(unit_id=unit_id) if unit_id else qs
        values = qs.order_by("scheme", "rank_enrolled", "unit__code").values_list(
            *TOTAL_COLUMNS, "unit__code", "unit__name"
        )
        return _snapshot_rows(values), cumulative_series(campaign, unit_id=unit_id) if series else None
    qn = connection.ops.quote_name
    columns = ", ".join(f"t.{qn(c)}" for c in TOTAL_COLUMNS)
    unit = " AND t.unit_id = %s" if unit_id else ""
    sql = (
        f"SELECT {columns}, d.{qn('code')}, d.{qn('name')} FROM {qn(AttainmentTotal._meta.db_table)} t "  # noqa: S608 # nosec B608 - names from _meta, values are parameters
        f"LEFT OUTER JOIN {qn(District._meta.db_table)} d ON d.id = t.unit_id WHERE t.campaign_id = %s{unit} "
        f"ORDER BY t.scheme, t.rank_enrolled, d.{qn('code')}"
    )
    params = [campaign.pk, *([unit_id] if unit_id else [])]
    if series:
        series_sql, series_params = _series_sql(campaign, unit_id)
        sql, params = f"{sql}; {series_sql}", [*params, *series_params]
    with connection.cursor() as cursor:
        # Two statements in one execute: Django's psycopg cursors bind parameters on the client side, so they
        # travel as one simple query, and nextset() reads the second answer.
        cursor.execute(sql, params)
        rows = _snapshot_rows(cursor.fetchall())
        if not series:
            return rows, None
        cursor.nextset()
        return rows, _series_from(cursor.fetchall())


def _snapshot_rows(values) -> list[SnapshotRow]:
    """SnapshotRows from (every column of TOTAL_COLUMNS, the unit's code, the unit's name) tuples."""
    rows = []
    width = len(TOTAL_COLUMNS)
    unit_at = TOTAL_COLUMNS.index("unit_id")
    new = object.__new__
    for value in values:
        row = new(SnapshotRow)
        for name, v in zip(TOTAL_COLUMNS, value, strict=False):
            setattr(row, name, v)
        row.unit = SnapshotUnit(value[unit_at], value[width], value[width + 1]) if value[unit_at] else None
        rows.append(row)
    return rows


@dataclass
class Freshness:
    computed_at: datetime.datetime | None
    as_of: datetime.date | None
    pending_since: datetime.datetime | None
    stale: bool
    last_run: RecomputeRun | None


def freshness(campaign: Campaign, *, unit_id: int | None = None) -> Freshness:
    """When the campaign's snapshot was computed and whether data changed after it (pending refreshes)."""
    latest = AttainmentTotal.objects.filter(campaign=campaign).aggregate(at=Max("computed_at"), day=Max("as_of"))
    pending = PendingRefresh.objects.filter(campaign=campaign)
    if unit_id:
        pending = pending.filter(unit_id=unit_id)
    pending_since = pending.aggregate(at=Max("marked_at"))["at"]
    computed_at = latest["at"]
    stale = computed_at is None or pending_since is not None
    if computed_at is not None and campaign.end_date >= timezone.localdate() - datetime.timedelta(days=1):
        stale = stale or timezone.now() - computed_at > STALE_AFTER
    last_run = RecomputeRun.objects.filter(Q(campaign=campaign) | Q(campaign__isnull=True)).order_by("-pk").first()
    return Freshness(computed_at, latest["day"], pending_since, stale, last_run)


def cumulative_series(campaign: Campaign, *, unit_id: int | None = None) -> dict[str, list[tuple[datetime.date, int]]]:
    """Per scheme, the (day, cumulative enrolled) points summed over the units (or of one unit)."""
    sql, params = _series_sql(campaign, unit_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return _series_from(cursor.fetchall())


def _series_sql(campaign: Campaign, unit_id: int | None) -> tuple[str, list]:
    # In SQL (resolving the ORM's GROUP BY cost ~0.4 ms of a dashboard's first view). The index attainment_daily_unique
    # carries the count: PostgreSQL sums a campaign's days from the index alone once the table is vacuumed.
    qn = connection.ops.quote_name
    unit = " AND unit_id = %s" if unit_id else ""
    sql = (
        f"SELECT scheme, {qn('day')}, SUM({qn('count')}) FROM {qn(AttainmentDaily._meta.db_table)} "  # noqa: S608 # nosec B608 - names from _meta, values are parameters
        f"WHERE campaign_id = %s{unit} GROUP BY scheme, {qn('day')} ORDER BY scheme, {qn('day')}"
    )
    return sql, [campaign.pk, *([unit_id] if unit_id else [])]


def _series_from(grouped) -> dict[str, list[tuple[datetime.date, int]]]:
    out: dict[str, list] = {s: [] for s in Scheme.values}
    running: dict[str, int] = dict.fromkeys(Scheme.values, 0)
    for scheme, day, n in grouped:
        if isinstance(day, str):  # SQLite answers dates as text
            day = datetime.date.fromisoformat(day)
        running[scheme] += n
        out[scheme].append((day, running[scheme]))
    return out


def campaign_enrollments(user, campaign: Campaign, as_of: datetime.date, *, unit=None):
    """The enrollments behind the campaign's figures that the user may see: new + resumed, in the window."""
    qs = visible_enrollments(user).filter(
        unit__province_id=campaign.province_id,
        enrolled_on__gte=campaign.start_date,
        enrolled_on__lte=min(as_of, campaign.end_date),
        kind__in=engine.GROWTH_KINDS,
    )
    if unit is not None:
        qs = qs.filter(unit_id=unit.pk)  # a District, or the dashboard's kept (pk, name) of the user's unit
    return qs


def _age_band_expression(reference: datetime.date):
    whens = []
    for low, high, label in AGE_BANDS:
        q = Q()
        # Age at the reference day >= low  <=>  born on or before reference minus low years.
        if low is not None:
            q &= Q(participant__date_of_birth__lte=engine.same_day_years_ago(reference, low))
        if high is not None:
            q &= Q(participant__date_of_birth__gt=engine.same_day_years_ago(reference, high))
        whens.append(When(q, then=Value(label)))
    return Case(*whens, default=Value("unknown"), output_field=CharField())


def breakdown(user, campaign: Campaign, as_of: datetime.date, *, unit=None) -> dict[str, list[dict]]:
    """Counts of the campaign's enrollments by age band (at the start of the window), gender and occupation.

    One scan of the enrollments joined to their participants, grouped by age band × gender × occupation × scheme
    (a few hundred rows at most); the three breakdowns are sums over those groups, not three scans.
    """
    grouped = (
        campaign_enrollments(user, campaign, as_of, unit=unit)
        .order_by()
        .annotate(age=_age_band_expression(campaign.start_date))
        .values("age", "scheme", gender=F("participant__gender"), occupation=F("participant__occupation"))
        .annotate(n=Count("id"))
        .order_by()
    )
    sums: dict[str, dict] = {"age": {}, "gender": {}, "occupation": {}}
    for row in grouped:
        for dimension in sums:
            group = sums[dimension].setdefault(
                row[dimension], {"group": row[dimension], "total": 0, **dict.fromkeys(Scheme.values, 0)}
            )
            group["total"] += row["n"]
            if row["scheme"] in group:
                group[row["scheme"]] += row["n"]
    return {
        "age": sorted(sums["age"].values(), key=lambda g: AGE_ORDER.get(g["group"], len(AGE_ORDER))),
        "gender": sorted(sums["gender"].values(), key=lambda g: (-g["total"], str(g["group"]))),
        "occupation": sorted(sums["occupation"].values(), key=lambda g: (-g["total"], str(g["group"]))),
    }


def unit_communes(user, campaign: Campaign, as_of: datetime.date, unit) -> list[dict]:
    """Per commune of the unit: enrolled per scheme (communes with none are listed too)."""
    from districts.scoping import visible_communes

    window = Q(
        enrollments__enrolled_on__gte=campaign.start_date,
        enrollments__enrolled_on__lte=min(as_of, campaign.end_date),
        enrollments__kind__in=engine.GROWTH_KINDS,
        enrollments__unit=unit,
    )
    return list(
        visible_communes(user)
        .filter(district=unit)
        .order_by("code")
        .values("pk", "code", "name")
        .annotate(
            total=Count("enrollments", filter=window),
            **{s: Count("enrollments", filter=window & Q(enrollments__scheme=s)) for s in Scheme.values},
        )
    )


def unit_collectors(user, campaign: Campaign, as_of: datetime.date, unit) -> list[dict]:
    """Per collection organisation and agent: enrolled per scheme in the unit."""
    per_scheme = {s: Count("id", filter=Q(scheme=s)) for s in Scheme.values}
    return list(
        campaign_enrollments(user, campaign, as_of, unit=unit)
        .order_by()
        .values(
            "organisation_id",
            "organisation__code",
            "organisation__name",
            "agent_id",
            "agent__code",
            "agent__full_name",
        )
        .annotate(total=Count("id"), **per_scheme)
        .order_by("-total", "organisation__code", "agent__code")
    )


def kind_counts(user, campaign: Campaign, as_of: datetime.date) -> dict:
    """new / resumed counts of the visible enrollments (used to check that pages and snapshot agree)."""
    return (
        campaign_enrollments(user, campaign, as_of)
        .order_by()
        .aggregate(
            new=Count("id", filter=Q(kind=EnrollmentKind.NEW)),
            resumed=Count("id", filter=Q(kind=EnrollmentKind.RESUMED)),
        )
    )


def attainment_for_campaign(*, user, campaign: Campaign, as_of: datetime.date | None = None) -> dict:
    """The figures the API serves: from the snapshot when it is for this date, else computed live (not stored)."""
    unit_id = user_unit_id(user)
    # The snapshot rows the user may see, read first: their date is the snapshot's (one query less than asking).
    rows = list(scoped_totals(user, [campaign]).select_related("unit").order_by("scheme", "unit__code"))
    if rows:
        snapshot_day = rows[0].as_of
    else:
        snapshot_day = AttainmentTotal.objects.filter(campaign=campaign).values_list("as_of", flat=True).first()
    if as_of is None:
        as_of = snapshot_day or engine.default_as_of(campaign)
    if snapshot_day == as_of:
        computed_at = max((r.computed_at for r in rows), default=None)
    else:
        live = engine.figures_compute(campaign, as_of)
        from districts.models import District

        names = {d.pk: d for d in District.objects.filter(pk__in=[r.unit_id for r in live if r.unit_id])}
        rows = []
        for r in live:
            if unit_id and r.unit_id != unit_id:
                continue
            r.unit = names.get(r.unit_id)
            rows.append(r)
        rows.sort(key=lambda r: (r.scheme, r.unit.code if r.unit else ""))
        computed_at = timezone.now()
    return {
        "as_of": as_of,
        "computed_at": computed_at,
        "province": [r for r in rows if r.unit_id is None],
        "units": [r for r in rows if r.unit_id is not None],
    }
