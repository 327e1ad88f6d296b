"""A small province for the browser journeys: two units with communes, a collection organisation, an active campaign
with targets in the thousands (so thousand separators show), a few weeks of enrollments and a computed snapshot."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils import timezone

from campaigns.models import Campaign, Target
from participants.models import Enrollment, EnrollmentKind, Scheme, add_months
from tests.factories import AgentFactory, CampaignFactory, CommuneFactory, OrganisationFactory, ParticipantFactory


@dataclass
class World:
    campaign: Campaign
    today: datetime.date
    communes: list
    enrolled_unit: int
    enrolled_other_unit: int


def build_world(*, province, unit, other_unit, commune, other_commune, snapshot=True) -> World:
    today = timezone.localdate()
    second = CommuneFactory(district=unit, code="97002", name="Xã Phúc Thử")
    organisation = OrganisationFactory(province=province, code="BD-YT", name="Bưu điện Yên Thử")
    organisation.unit = unit
    organisation.save()
    agent = AgentFactory(organisation=organisation, code="NVT-01", full_name="Lê Thị Hoa")
    campaign = CampaignFactory(
        province=province,
        name="Tháng vận động BHXH tự nguyện",
        slug="thang-van-dong",
        start_date=today - datetime.timedelta(days=20),
        end_date=today + datetime.timedelta(days=10),
        status=Campaign.Status.ACTIVE,
    )
    for target_unit, vsi, hi in ((unit, 1200, 2400), (other_unit, 800, 1600), (None, 12500, 4000)):
        Target.objects.create(campaign=campaign, unit=target_unit, scheme=Scheme.VSI, value=vsi)
        Target.objects.create(campaign=campaign, unit=target_unit, scheme=Scheme.HI_FAMILY, value=hi)
    counts = {unit.pk: 0, other_unit.pk: 0}
    for day in range(18):
        on = campaign.start_date + datetime.timedelta(days=day)
        for target_unit, place, per_day in ((unit, (commune, second), 3), (other_unit, (other_commune,), 1)):
            for n in range(per_day if day % 4 else per_day + 2):
                scheme = Scheme.VSI if n % 3 else Scheme.HI_FAMILY
                Enrollment.objects.create(
                    participant=ParticipantFactory(),
                    scheme=scheme,
                    kind=EnrollmentKind.NEW if n % 4 else EnrollmentKind.RESUMED,
                    enrolled_on=on,
                    coverage_start=on,
                    coverage_end=add_months(on, 12),
                    months=12,
                    unit=target_unit,
                    commune=place[n % len(place)],
                    organisation=organisation if target_unit == unit else None,
                    agent=agent if target_unit == unit and n % 2 else None,
                )
                counts[target_unit.pk] += 1
    if snapshot:
        from reports import engine

        engine.snapshot_rebuild(campaigns=[campaign], as_of=today)
    return World(
        campaign=campaign,
        today=today,
        communes=[commune, second],
        enrolled_unit=counts[unit.pk],
        enrolled_other_unit=counts[other_unit.pk],
    )
