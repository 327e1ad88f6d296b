"""Writes on campaigns and targets."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Campaign, Target
from campaigns.signals import targets_changed_on_commit
from participants.models import Scheme

# simple-history keeps the reason in a 100-character column.
CHANGE_REASON_MAX = 100


# Target's default ordering joins the unit (LEFT OUTER JOIN); PostgreSQL refuses FOR UPDATE on the nullable side of
# an outer join, so locked reads order by pk instead.


def _stamp(target: Target, *, history_user=None, change_reason: str | None = None) -> None:
    # simple-history reads these private attributes when it writes the history row; an explicit user wins over
    # the request's (the command line has no request at all).
    if history_user is not None:
        target._history_user = history_user
    if change_reason:
        target._change_reason = change_reason[:CHANGE_REASON_MAX]


@transaction.atomic
def target_set(
    *, campaign: Campaign, unit, scheme: str, value: int, history_user=None, change_reason: str | None = None
) -> tuple[Target, str]:
    """Sets one target (unit None = the province-level target). Returns the target and what happened:
    "created", "changed" or "unchanged". `history_user` and `change_reason` go into the target's history."""
    if scheme not in Scheme.values:
        raise ValidationError({"scheme": _("Unknown scheme.")})
    if value is None or int(value) < 0:
        raise ValidationError({"value": _("A target cannot be negative.")})
    if unit is not None and unit.province_id != campaign.province_id:
        raise ValidationError(
            {"unit": _("%(unit)s is not in %(province)s.") % {"unit": unit.name, "province": campaign.province.name}}
        )
    target = (
        Target.objects.select_for_update().filter(campaign=campaign, unit=unit, scheme=scheme).order_by("pk").first()
    )
    if target is None:
        target = Target(campaign=campaign, unit=unit, scheme=scheme, value=int(value))
        _stamp(target, history_user=history_user, change_reason=change_reason)
        target.save()
        targets_changed_on_commit([campaign.pk])
        return target, "created"
    if target.value == int(value):
        return target, "unchanged"
    target.value = int(value)
    _stamp(target, history_user=history_user, change_reason=change_reason)
    target.save(update_fields=["value"])
    targets_changed_on_commit([campaign.pk])
    return target, "changed"


@transaction.atomic
def target_clear(*, campaign: Campaign, unit, scheme: str, history_user=None, change_reason: str | None = None) -> bool:
    """Removes one target (unit None = the province-level one); True when there was one. The history keeps it."""
    target = (
        Target.objects.select_for_update().filter(campaign=campaign, unit=unit, scheme=scheme).order_by("pk").first()
    )
    if target is None:
        return False
    _stamp(target, history_user=history_user, change_reason=change_reason)
    target.delete()
    targets_changed_on_commit([campaign.pk])
    return True


@transaction.atomic
def targets_save_grid(
    *, campaign: Campaign, values: dict, history_user=None, change_reason: str | None = None
) -> dict[str, int]:
    """Saves the targets grid: `values` maps (unit or None, scheme) to a number, or None to remove the target.

    All or nothing; returns how many targets were created, changed, removed and left unchanged."""
    counts = {"created": 0, "changed": 0, "unchanged": 0, "removed": 0}
    for (unit, scheme), value in values.items():
        if value is None:
            if target_clear(
                campaign=campaign, unit=unit, scheme=scheme, history_user=history_user, change_reason=change_reason
            ):
                counts["removed"] += 1
            continue
        _target, outcome = target_set(
            campaign=campaign,
            unit=unit,
            scheme=scheme,
            value=value,
            history_user=history_user,
            change_reason=change_reason,
        )
        counts[outcome] += 1
    return counts


@dataclass(slots=True)
class HeldTarget:
    """A target read under its lock: its id and value (targets_bulk_set updates `value` as it plans the write)."""

    pk: int
    value: int


def targets_locked(*, campaign: Campaign) -> dict[tuple[int | None, str], HeldTarget]:
    """The campaign's targets, read FOR UPDATE in the current transaction: {(unit id or None, scheme): target}."""
    return targets_locked_many(campaigns=[campaign])[campaign.pk]


def targets_locked_many(*, campaigns: list[Campaign]) -> dict[int, dict[tuple[int | None, str], HeldTarget]]:
    """targets_locked of several campaigns in one query: {campaign id: {(unit id or None, scheme): target}}."""
    out: dict[int, dict[tuple[int | None, str], HeldTarget]] = {c.pk: {} for c in campaigns}
    # Ordered by pk: the default ordering joins the unit table, and PostgreSQL will not lock through that join. The
    # pk order is also one lock order for every import, whichever campaigns it covers. Plain tuples, not model
    # instances: a national import holds 1,500 of them.
    for pk, campaign_id, unit_id, scheme, value in (
        Target.objects.select_for_update()
        .filter(campaign_id__in=list(out))
        .order_by("pk")
        .values_list("pk", "campaign_id", "unit_id", "scheme", "value")
    ):
        out[campaign_id][(unit_id, scheme)] = HeldTarget(pk=pk, value=value)
    return out


# No savepoint when called inside a transaction (the import's): nothing catches an error half-way through, and an
# error rolls the caller's whole transaction back, which is what an all-or-nothing import wants.
@transaction.atomic(savepoint=False)
def targets_bulk_set(
    *,
    campaign: Campaign,
    values: list[tuple],
    history_user=None,
    change_reason: str | None = None,
    existing: dict[tuple[int | None, str], HeldTarget] | None = None,
) -> dict[str, int]:
    """Sets many targets of one campaign at once: `values` holds (unit or None, scheme, value).

    The same rules as target_set, set-based: one read (skipped when the caller passes `existing`, the campaign's
    targets it already read with targets_locked in this transaction), one INSERT of the new targets, one UPDATE of
    the changed ones, and one INSERT … SELECT of their history rows, whatever the number of units. Returns how many
    were created, changed and left unchanged."""
    counts = targets_bulk_set_many(
        batches=[(campaign, values, change_reason)],
        history_user=history_user,
        existing=None if existing is None else {campaign.pk: existing},
    )
    return counts[campaign.pk]


@transaction.atomic(savepoint=False)
def targets_bulk_set_many(
    *,
    batches: list[tuple[Campaign, list[tuple], str | None]],
    history_user=None,
    existing: dict[int, dict[tuple[int | None, str], HeldTarget]] | None = None,
) -> dict[int, dict[str, int]]:
    """targets_bulk_set for several campaigns at once (a national office's files): `batches` holds
    (campaign, values, change reason) with values as in targets_bulk_set; each campaign appears once.

    Still one INSERT, one UPDATE and one history INSERT … SELECT in all, each history row with its own campaign's
    reason. `existing` is targets_locked_many's answer when the caller has read it. Returns the counts per campaign
    id."""
    if existing is None:
        existing = targets_locked_many(campaigns=[campaign for campaign, _values, _reason in batches])
    to_create, changed, reasons, all_counts = [], {}, {}, {}
    schemes = set(Scheme.values)  # Scheme.values builds a new list at every call
    for campaign, values, change_reason in batches:
        reasons[campaign.pk] = change_reason[:CHANGE_REASON_MAX] if change_reason else ""
        counts = all_counts[campaign.pk] = {"created": 0, "changed": 0, "unchanged": 0}
        current = existing[campaign.pk]
        for unit, scheme, value in values:
            if scheme not in schemes:
                raise ValidationError({"scheme": _("Unknown scheme.")})
            if value is None or int(value) < 0:
                raise ValidationError({"value": _("A target cannot be negative.")})
            if unit is not None and unit.province_id != campaign.province_id:
                raise ValidationError(
                    {
                        "unit": _("%(unit)s is not in %(province)s.")
                        % {"unit": unit.name, "province": campaign.province.name}
                    }
                )
            target = current.get((unit.pk if unit else None, scheme))
            if target is None:
                to_create.append(Target(campaign=campaign, unit=unit, scheme=scheme, value=int(value)))
                counts["created"] += 1
            elif target.value != int(value):
                target.value = changed[target.pk] = int(value)
                counts["changed"] += 1
            else:
                counts["unchanged"] += 1
    if to_create:
        Target.objects.bulk_create(to_create)  # sets the new rows' ids (RETURNING) on PostgreSQL and SQLite
    if changed:
        _targets_update_values(changed)
    if to_create or changed:
        _targets_history_write(
            created=[t.pk for t in to_create], changed=list(changed), user=history_user, reasons=reasons
        )
        targets_changed_on_commit(pk for pk, counts in all_counts.items() if counts["created"] or counts["changed"])
    return all_counts


def _targets_update_values(values: dict[int, int]) -> None:
    # Django's bulk_update builds a Case/When expression tree per row, which costs more Python time than the whole
    # statement costs the database. On PostgreSQL the new values travel as two arrays joined by id (a CASE over the
    # ids is tested row by row: with a national office's 1,400 targets that was 2 million comparisons, 0.2 s); on
    # SQLite, where a province's few dozen targets are written, a plain CASE.
    table = connection.ops.quote_name(Target._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS t SET value = v.value FROM unnest(%s::bigint[], %s::integer[]) AS v(id, value) "  # noqa: S608 # nosec B608 - table name from the model, every value a %s parameter
                f"WHERE t.id = v.id",
                [list(values), list(values.values())],
            )
            return
        cases = " ".join("WHEN %s THEN %s" for _ in values)
        marks = ", ".join("%s" for _ in values)
        params = [p for pk, value in values.items() for p in (pk, value)] + list(values)
        cursor.execute(
            f"UPDATE {table} SET value = CASE id {cases} END WHERE id IN ({marks})",  # noqa: S608 # nosec B608 - table name from the model, every value a %s parameter
            params,
        )


def _targets_history_write(*, created: list[int], changed: list[int], user, reasons: dict[int, str]) -> None:
    """The history rows simple-history would write for these targets ('+' created, '~' changed), in one statement.

    `reasons`: each campaign's change reason (its file's name); an empty one is stored as NULL, as simple-history
    does."""
    history = Target.history.model
    table = connection.ops.quote_name(history._meta.db_table)
    source = connection.ops.quote_name(Target._meta.db_table)
    columns = (
        f"INSERT INTO {table} (id, campaign_id, unit_id, scheme, value, history_date, history_change_reason, "
        f"history_type, history_user_id) "
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    user_id = getattr(user, "pk", None)
    ids = created + changed
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The ids and the reasons as arrays: one parameter each, however many targets and files.
            cursor.execute(
                columns + f"SELECT t.id, t.campaign_id, t.unit_id, t.scheme, t.value, %s, r.reason, "  # noqa: S608 # nosec B608 - names from the models, every value a %s parameter
                f"CASE WHEN t.id = ANY(%s::bigint[]) THEN '+' ELSE '~' END, %s "
                f"FROM {source} AS t "
                f"LEFT JOIN unnest(%s::bigint[], %s::text[]) AS r(campaign_id, reason) ON r.campaign_id = t.campaign_id "
                f"WHERE t.id = ANY(%s::bigint[])",
                [now, created, user_id, list(reasons), [r or None for r in reasons.values()], ids],
            )
            return
        marks = ", ".join("%s" for _ in ids)
        created_marks = ", ".join("%s" for _ in created) or "NULL"
        reason_cases = " ".join("WHEN %s THEN %s" for _ in reasons)
        cursor.execute(
            columns + f"SELECT id, campaign_id, unit_id, scheme, value, %s, CASE campaign_id {reason_cases} END, "  # noqa: S608 # nosec B608 - names from the models, every value a %s parameter
            f"CASE WHEN id IN ({created_marks}) THEN '+' ELSE '~' END, %s FROM {source} WHERE id IN ({marks})",
            [
                now,
                *[p for campaign_id, reason in reasons.items() for p in (campaign_id, reason or None)],
                *created,
                user_id,
                *ids,
            ],
        )
