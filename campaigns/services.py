"""Writes on campaigns and targets."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
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


@transaction.atomic
def targets_bulk_set(
    *, campaign: Campaign, values: list[tuple], history_user=None, change_reason: str | None = None
) -> dict[str, int]:
    """Sets many targets of one campaign at once: `values` holds (unit or None, scheme, value).

    The same rules as target_set, in a constant number of queries (one read, one insert, one update, and their
    history rows) instead of several per target: a province's 700-odd units × 2 schemes import in well under a
    second. Returns how many were created, changed and left unchanged."""
    from simple_history.utils import bulk_create_with_history, bulk_update_with_history

    reason = change_reason[:CHANGE_REASON_MAX] if change_reason else None
    # Ordered by pk: the default ordering joins the unit table, and PostgreSQL will not lock through that join.
    existing = {
        (t.unit_id, t.scheme): t for t in Target.objects.select_for_update().filter(campaign=campaign).order_by("pk")
    }
    to_create, to_update, counts = [], [], {"created": 0, "changed": 0, "unchanged": 0}
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
            target.value = int(value)
            to_update.append(target)
        else:
            counts["unchanged"] += 1
    if to_create:
        bulk_create_with_history(to_create, Target, default_user=history_user, default_change_reason=reason)
    if to_update:
        bulk_update_with_history(to_update, Target, ["value"], default_user=history_user, default_change_reason=reason)
    counts["created"], counts["changed"] = len(to_create), len(to_update)
    return counts
