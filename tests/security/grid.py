"""The permission grid's building blocks: the URL walk, the roles, and a small world of objects in one unit."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

# Whole URL trees left out of the grid, by explicit rule: Django's own admin (staff-only, its own permission
# system and tests) and the language switch (public by design, tested for open redirects in tests/accounts).
EXCLUDED_PREFIXES = ("admin/", "i18n/")

ROLES = ("anonymous", "staff", "other_staff", "manager", "admin", "foreign_admin")
ROLE_FIXTURES = {
    "staff": "staff_user",
    "other_staff": "other_staff_user",
    "manager": "manager_user",
    "admin": "admin_user",
    "foreign_admin": "foreign_admin_user",
}


def walk(patterns=None, prefix="", namespace=None):
    """Every URL pattern as (view name, route), recursing through include()s."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            ns = ":".join(x for x in (namespace, p.namespace) if x) or None
            yield from walk(p.url_patterns, route, ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else (p.name or f"<unnamed {route}>")
            yield name, route


def grid_patterns():
    return sorted({(name, route) for name, route in walk() if not route.startswith(EXCLUDED_PREFIXES)})


@dataclass
class World:
    """Objects that belong to the staff user's unit (and the province); the other roles see them or not."""

    campaign: object
    enrollment: object
    upload: object
    target_import: object
    run: object
    unit: object


def build_world(*, province, unit, commune, staff_user, admin_user) -> World:
    from campaigns.importing import read_table
    from campaigns.models import TargetImport
    from participants.importing import upload_create
    from participants.models import Scheme
    from participants.services import enrollment_record
    from reports.models import RecomputeRun
    from tests.factories import CampaignFactory, ParticipantFactory, TargetFactory

    today = timezone.localdate()
    campaign = CampaignFactory(
        province=province,
        slug="grid-campaign",
        start_date=today - datetime.timedelta(days=10),
        end_date=today + datetime.timedelta(days=10),
    )
    TargetFactory(campaign=campaign, unit=unit, scheme=Scheme.VSI, value=20)
    enrollment = enrollment_record(
        participant=ParticipantFactory(si_number="2499990001"),
        scheme=Scheme.VSI,
        enrolled_on=today,
        coverage_start=today,
        months=12,
        unit=unit,
        commune=commune,
        recorded_by=staff_user,
    )
    csv = (
        "si_number,full_name,date_of_birth,gender,commune_code,scheme,enrolled_on,coverage_start,months,"
        f"collection_agent_code\n2499990002,Lê Thị Lưới,1980-01-02,female,{commune.code},vsi,"
        f"{today.isoformat()},{today.isoformat()},12,\n"
    ).encode()
    upload = upload_create(user=staff_user, name="grid.csv", data=csv)
    target_import = TargetImport.objects.create(
        campaign=campaign,
        uploaded_by=admin_user,
        file_name="grid.csv",
        sha256="0" * 64,
        table=read_table(
            f"unit_code,unit_name,vsi_target,hi_target\n{unit.code},{unit.name},25,30\n".encode(), "t.csv"
        ).to_json(),
    )
    run = RecomputeRun.objects.create(campaign=campaign, kind=RecomputeRun.Kind.FULL, started_by=admin_user)
    return World(
        campaign=campaign, enrollment=enrollment, upload=upload, target_import=target_import, run=run, unit=unit
    )


@dataclass
class Canaries:
    """Rows the user must never see, with strings that would give them away in any page, export or API answer."""

    foreign: tuple[str, ...]  # another province: nobody but a superuser may see these
    other_unit: tuple[str, ...]  # another unit of the same province: staff of the unit must not see these


def build_canaries(*, other_unit, foreign_unit, other_commune, other_staff_user, foreign_admin_user) -> Canaries:
    from participants.models import Scheme
    from participants.services import enrollment_record
    from tests.factories import CampaignFactory, CommuneFactory, ParticipantFactory

    today = timezone.localdate()
    foreign_commune = CommuneFactory(district=foreign_unit, code="98901", name="Xã Canary Xa")
    CampaignFactory(
        province=foreign_unit.province,
        slug="canary-foreign-campaign",
        name="Canary Foreign Campaign",
        start_date=today - datetime.timedelta(days=10),
        end_date=today + datetime.timedelta(days=10),
    )
    for si, name, unit, commune, user in (
        ("2488880001", "Canary Ngoại Tỉnh", foreign_unit, foreign_commune, foreign_admin_user),
        ("2477770001", "Canary Khác Huyện", other_unit, other_commune, other_staff_user),
    ):
        enrollment_record(
            participant=ParticipantFactory(si_number=si, full_name=name),
            scheme=Scheme.VSI,
            enrolled_on=today,
            coverage_start=today,
            months=12,
            unit=unit,
            commune=commune,
            recorded_by=user,
        )
    return Canaries(
        foreign=(
            "2488880001",
            "Canary Ngoại Tỉnh",
            "canary-foreign-campaign",
            "Canary Foreign Campaign",
            "Xã Canary Xa",
            foreign_unit.name,
        ),
        other_unit=("2477770001", "Canary Khác Huyện"),
    )
