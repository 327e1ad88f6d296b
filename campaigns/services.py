"""Writes on campaigns and targets."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Campaign, Target
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
        return target, "created"
    if target.value == int(value):
        return target, "unchanged"
    target.value = int(value)
    _stamp(target, history_user=history_user, change_reason=change_reason)
    target.save(update_fields=["value"])
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


def targets_locked(*, campaign: Campaign) -> dict[tuple[int | None, str], Target]:
    """The campaign's targets, read FOR UPDATE in the current transaction: {(unit id or None, scheme): target}."""
    # Ordered by pk: the default ordering joins the unit table, and PostgreSQL will not lock through that join.
    return {
        (t.unit_id, t.scheme): t
        for t in Target.objects.select_for_update()
        .filter(campaign=campaign)
        .order_by("pk")
        .only("pk", "campaign_id", "unit_id", "scheme", "value")
    }


# No savepoint when called inside a transaction (the import's): nothing catches an error half-way through, and an
# error rolls the caller's whole transaction back, which is what an all-or-nothing import wants.
@transaction.atomic(savepoint=False)
def targets_bulk_set(
    *,
    campaign: Campaign,
    values: list[tuple],
    history_user=None,
    change_reason: str | None = None,
    existing: dict[tuple[int | None, str], Target] | None = None,
) -> dict[str, int]:
    """Sets many targets of one campaign at once: `values` holds (unit or None, scheme, value).

    The same rules as target_set, set-based: one read (skipped when the caller passes `existing`, the campaign's
    targets it already read with targets_locked in this transaction), one INSERT of the new targets, one UPDATE of
    the changed ones, and one INSERT … SELECT of their history rows, whatever the number of units. Returns how many
    were created, changed and left unchanged."""
    reason = change_reason[:CHANGE_REASON_MAX] if change_reason else ""
    if existing is None:
        existing = targets_locked(campaign=campaign)
    to_create, changed, counts = [], {}, {"created": 0, "changed": 0, "unchanged": 0}
    for unit, scheme, value in values:
        if scheme not in Scheme.values:
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
        target = existing.get((unit.pk if unit else None, scheme))
        if target is None:
            to_create.append(Target(campaign=campaign, unit=unit, scheme=scheme, value=int(value)))
        elif target.value != int(value):
            target.value = changed[target.pk] = int(value)
        else:
            counts["unchanged"] += 1
    if to_create:
        Target.objects.bulk_create(to_create)  # sets the new rows' ids (RETURNING) on PostgreSQL and SQLite
    if changed:
        _targets_update_values(changed)
    if to_create or changed:
        _targets_history_write(
            created=[t.pk for t in to_create], changed=list(changed), user=history_user, reason=reason
        )
    counts["created"], counts["changed"] = len(to_create), len(changed)
    return counts


def _targets_update_values(values: dict[int, int]) -> None:
    # One UPDATE with a plain CASE over the ids: Django's bulk_update builds a Case/When expression tree per row,
    # which costs more Python time than the whole statement costs the database.
    table = connection.ops.quote_name(Target._meta.db_table)
    cases = " ".join("WHEN %s THEN %s" for _ in values)
    marks = ", ".join("%s" for _ in values)
    params = [p for pk, value in values.items() for p in (pk, value)] + list(values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET value = CASE id {cases} END WHERE id IN ({marks})",  # noqa: S608 # nosec B608 - table name from the model, every value a %s parameter
            params,
        )


def _targets_history_write(*, created: list[int], changed: list[int], user, reason: str) -> None:
    """The history rows simple-history would write for these targets ('+' created, '~' changed), in one statement."""
    history = Target.history.model
    table = connection.ops.quote_name(history._meta.db_table)
    source = connection.ops.quote_name(Target._meta.db_table)
    ids = created + changed
    marks = ", ".join("%s" for _ in ids)
    created_marks = ", ".join("%s" for _ in created) or "NULL"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, campaign_id, unit_id, scheme, value, history_date, history_change_reason, "  # noqa: S608 # nosec B608 - names from the models, every value a %s parameter
            f"history_type, history_user_id) "
            f"SELECT id, campaign_id, unit_id, scheme, value, %s, %s, "
            f"CASE WHEN id IN ({created_marks}) THEN '+' ELSE '~' END, %s FROM {source} WHERE id IN ({marks})",
            [
                connection.ops.adapt_datetimefield_value(timezone.now()),
                reason or None,
                *created,
                getattr(user, "pk", None),
                *ids,
            ],
        )
