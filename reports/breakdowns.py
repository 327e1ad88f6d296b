"""Stored "who responds" breakdowns, derived from the snapshot.

The dashboard's counts by age band, gender, occupation and kind used to be computed over the enrollments at every
request (a scan of the province's window joined to the participants: 0.4–1 s at 10 million enrollments). They are
now written by the engine's run, as of the snapshot's date, into AttainmentBreakdown:

- `on_snapshot_written` receives reports.signals.snapshot_written, inside the engine's transaction: a full run
  rebuilds every unit of its campaigns, an incremental one only the touched units (the whole campaign when its stored
  rows are for another date or were never built);
- each campaign is one INSERT … SELECT: the enrollments grouped once by unit × scheme × kind × age band × gender ×
  occupation in a CTE, then summed per dimension (UNION ALL) — no Python loop over rows;
- a marker row per campaign (no unit, dimension "built") records the as-of date its rows are complete for;
- `stored_breakdown` reads them for a page (one grouped query, scoped to the user's unit), or answers None when
  nothing is stored for that date, and the caller counts live instead.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Iterable

from django.db import connection
from django.db.models import Q, Sum

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
SUMMED = (Dimension.AGE, Dimension.GENDER, Dimension.OCCUPATION, Dimension.KIND)


def _age_case(reference: datetime.date) -> tuple[str, list]:
    """CASE … END of the age band at `reference` (age ≥ low ⇔ born on or before `reference` minus low years)."""
    whens, params = [], []
    for low, high, label in AGE_BANDS:
        conditions = []
        if low is not None:
            conditions.append("p.date_of_birth <= %s")
            params.append(connection.ops.adapt_datefield_value(engine.same_day_years_ago(reference, low)))
        if high is not None:
            conditions.append("p.date_of_birth > %s")
            params.append(connection.ops.adapt_datefield_value(engine.same_day_years_ago(reference, high)))
        whens.append(f"WHEN {' AND '.join(conditions)} THEN %s")
        params.append(label)
    params.append("unknown")
    return f"CASE {' '.join(whens)} ELSE %s END", params


def _insert(campaign: Campaign, as_of: datetime.date, unit_ids: list[int] | None) -> int:
    """One INSERT … SELECT of the campaign's rows (of these units only, when given); returns the rows written."""
    qn = connection.ops.quote_name
    adapt = connection.ops.adapt_datefield_value
    age_sql, age_params = _age_case(campaign.start_date)
    params = [
        *age_params,
        campaign.province_id,
        adapt(campaign.start_date),
        adapt(min(as_of, campaign.end_date)),
        *engine.GROWTH_KINDS,
    ]
    unit_filter = ""
    if unit_ids is not None:
        unit_filter = f" AND e.unit_id IN ({', '.join(['%s'] * len(unit_ids))})"
        params += unit_ids
    grouped = (
        f"SELECT e.unit_id AS unit_id, e.scheme AS scheme, e.kind AS kind, {age_sql} AS age, "  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
        f"p.gender AS gender, p.occupation AS occupation, COUNT(*) AS n "
        f"FROM {qn(Enrollment._meta.db_table)} e "
        f"INNER JOIN {qn(District._meta.db_table)} d ON d.id = e.unit_id "
        f"INNER JOIN {qn(Participant._meta.db_table)} p ON p.id = e.participant_id "
        f"WHERE d.province_id = %s AND e.enrolled_on >= %s AND e.enrolled_on <= %s AND e.kind IN (%s, %s)"
        f"{unit_filter} GROUP BY 1, 2, 3, 4, 5, 6"
    )
    selects = []
    for dimension in SUMMED:
        column = {Dimension.AGE: "age"}.get(dimension, str(dimension))
        selects.append(
            f"SELECT %s, unit_id, scheme, %s, {column}, SUM(n), %s FROM g GROUP BY unit_id, scheme, {column}"  # noqa: S608 # nosec B608 - a fixed column name of the CTE; every value is a %s parameter
        )
        params += [campaign.pk, str(dimension), adapt(as_of)]
    table = qn(AttainmentBreakdown._meta.db_table)
    sql = (
        f"WITH g AS ({grouped}) "  # noqa: S608 # nosec B608 - table and column names come from the models' _meta, quoted; every value is a %s parameter
        f"INSERT INTO {table} (campaign_id, unit_id, scheme, dimension, bucket, {qn('count')}, as_of) "
        + " UNION ALL ".join(selects)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def rebuild(campaign_ids: Iterable[int], unit_ids: dict[int, set[int]] | None = None) -> int:
    """Rewrites the stored breakdowns of these campaigns as of their snapshot's date: every unit, or with
    `unit_ids` ({campaign id: unit ids}) only those units, unless the campaign's stored rows are for another date
    (or missing), which rebuilds the whole campaign. Run inside the engine's transaction. Returns the rows written."""
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
    written = 0
    for campaign in Campaign.objects.filter(pk__in=campaign_ids).order_by("pk"):
        day = days.get(campaign.pk)
        stored = AttainmentBreakdown.objects.filter(campaign=campaign)
        units = None if unit_ids is None else sorted(unit_ids.get(campaign.pk, ()))
        if day is None or built.get(campaign.pk) != day:
            units = None  # nothing (complete) stored for this date: the whole campaign
        if units is not None:
            if not units:
                continue
            stored.filter(unit_id__in=units).delete()
        else:
            stored.delete()
        if day is None:
            continue  # no snapshot: nothing to derive
        written += _insert(campaign, day, units)
        if units is None:
            AttainmentBreakdown.objects.create(campaign=campaign, dimension=Dimension.BUILT, count=0, as_of=day)
    logger.info(
        "breakdowns: %s rows for %s campaigns in %.3f s", written, len(campaign_ids), time.monotonic() - started
    )
    return written


def on_snapshot_written(sender, *, campaign_ids, unit_ids=None, **kwargs):
    """reports.signals.snapshot_written receiver: the breakdowns follow the snapshot in the same transaction."""
    rebuild(campaign_ids, unit_ids=unit_ids)


def stored_breakdown(
    *, campaign: Campaign, as_of: datetime.date, unit_id: int | None = None, user_unit_id: int | None = None
) -> dict[str, list[dict]] | None:
    """The stored breakdown of the campaign as of `as_of`, summed over its units (or of one unit), in the shape of
    reports.selectors.breakdown; None when nothing complete is stored for that date (the caller counts live).

    `user_unit_id` is the unit a staff user is tied to: only its rows are read, whatever `unit_id` asks.
    """
    units = {u for u in (unit_id, user_unit_id) if u}
    qs = AttainmentBreakdown.objects.filter(campaign=campaign, as_of=as_of)
    if len(units) > 1:
        qs = qs.filter(unit__isnull=True)  # another unit than the user's own: the marker only, no counts
    elif units:
        qs = qs.filter(Q(unit_id=units.pop()) | Q(unit__isnull=True))
    rows = list(qs.order_by().values("dimension", "bucket", "scheme").annotate(n=Sum("count")).order_by())
    if not any(r["dimension"] == Dimension.BUILT for r in rows):
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
    return out
