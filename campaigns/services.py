"""Writes on campaigns and targets."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.models import Campaign, Target
from participants.models import Scheme


@transaction.atomic
def target_set(*, campaign: Campaign, unit, scheme: str, value: int) -> tuple[Target, str]:
    """Sets one target (unit None = the province-level target). Returns the target and what happened:
    "created", "changed" or "unchanged"."""
    if scheme not in Scheme.values:
        raise ValidationError({"scheme": _("Unknown scheme.")})
    if value is None or int(value) < 0:
        raise ValidationError({"value": _("A target cannot be negative.")})
    if unit is not None and unit.province_id != campaign.province_id:
        raise ValidationError(
            {"unit": _("%(unit)s is not in %(province)s.") % {"unit": unit.name, "province": campaign.province.name}}
        )
    target = Target.objects.select_for_update().filter(campaign=campaign, unit=unit, scheme=scheme).first()
    if target is None:
        return Target.objects.create(campaign=campaign, unit=unit, scheme=scheme, value=int(value)), "created"
    if target.value == int(value):
        return target, "unchanged"
    target.value = int(value)
    target.save(update_fields=["value"])
    return target, "changed"
