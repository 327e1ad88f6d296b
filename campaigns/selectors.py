"""Reads on campaigns and targets: the units a campaign covers, its targets grid and their sums."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q, Sum

from campaigns.models import Campaign, Target
from districts.models import District
from participants.models import Scheme


def campaign_unit_condition(campaign: Campaign) -> Q:
    """On District: the unit existed at some time during the campaign's window, or already has a target in it."""
    existed = (Q(valid_from__isnull=True) | Q(valid_from__lte=campaign.end_date)) & (
        Q(ceased_on__isnull=True) | Q(ceased_on__gt=campaign.start_date)
    )
    targeted = Q(pk__in=Target.objects.filter(campaign=campaign, unit__isnull=False).order_by().values("unit_id"))
    return existed | targeted


def campaign_units(campaign: Campaign):
    """The campaign's province's units that existed at some time during its window, plus any unit that already
    has a target in it (so that a target set before a merge never disappears from the grid)."""
    return (
        District.objects.filter(province_id=campaign.province_id)
        .filter(campaign_unit_condition(campaign))
        .order_by("code")
    )


def campaign_targets(campaign: Campaign) -> dict[tuple[int | None, str], int]:
    """{(unit id or None for the province, scheme): value} for every target of the campaign."""
    return {
        (unit_id, scheme): value
        # No ordering: the model's default one would join the campaign and unit tables for nothing.
        for unit_id, scheme, value in Target.objects.filter(campaign=campaign)
        .order_by()
        .values_list("unit_id", "scheme", "value")
    }


def campaign_targets_many(campaigns: list[Campaign]) -> dict[int, dict[tuple[int | None, str], int]]:
    """campaign_targets of several campaigns in one query: {campaign id: {(unit id or None, scheme): value}}."""
    out: dict[int, dict[tuple[int | None, str], int]] = {c.pk: {} for c in campaigns}
    for campaign_id, unit_id, scheme, value in (
        Target.objects.filter(campaign_id__in=list(out))
        .order_by()
        .values_list("campaign_id", "unit_id", "scheme", "value")
    ):
        out[campaign_id][(unit_id, scheme)] = value
    return out


def unit_target_sums(campaign: Campaign) -> dict[str, int | None]:
    """The sum of the unit-level targets per scheme (None where no unit has one), computed in the database."""
    sums = {scheme: None for scheme in Scheme.values}
    rows = (
        Target.objects.filter(campaign=campaign, unit__isnull=False)
        .values("scheme")
        .annotate(total=Sum("value"))
        .values_list("scheme", "total")
    )
    sums.update(dict(rows))
    return sums


@dataclass
class SchemeTotals:
    scheme: str
    label: str
    unit_sum: int | None
    province: int | None

    @property
    def differs(self) -> bool:
        return self.province is not None and self.unit_sum is not None and self.province != self.unit_sum

    @property
    def difference(self) -> int | None:
        if self.province is None or self.unit_sum is None:
            return None
        return self.province - self.unit_sum


@dataclass
class TargetGrid:
    units: list  # [(unit, {scheme: value or None})]
    totals: list[SchemeTotals] = field(default_factory=list)


def target_grid(campaign: Campaign, *, units=None) -> TargetGrid:
    """The campaign's targets as a grid, with the province-level target beside the sum of the units' per scheme.

    `units` narrows the rows (a district manager sees only their unit); the sums are always the whole province's.
    """
    units = list(campaign_units(campaign) if units is None else units)
    values = campaign_targets(campaign)
    sums = unit_target_sums(campaign)
    rows = [(unit, {s: values.get((unit.pk, s)) for s in Scheme.values}) for unit in units]
    totals = [
        SchemeTotals(scheme=s, label=str(label), unit_sum=sums[s], province=values.get((None, s)))
        for s, label in Scheme.choices
    ]
    return TargetGrid(units=rows, totals=totals)


def campaign_list_for(qs):
    """Campaigns annotated with how many targets they have, for the list page (one query)."""
    return qs.select_related("province").annotate(target_count=Count("targets"))
