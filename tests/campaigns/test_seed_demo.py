"""`seed_demo` and `demo_logins`: Bắc Giang's demo campaigns, data and users, deterministic for a seed.

The tests seed at a small scale (--scale 0.05: a few hundred people) to stay fast; the shapes are the same.
"""

import datetime
import io
from collections import defaultdict

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from campaigns.demo import DEMO_USERS, demo_digest
from campaigns.models import Campaign, Target
from districts.models import District, Province
from districts.scoping import role_of, visible_enrollments
from participants.models import (
    ALLOWED_MONTHS,
    CollectionAgent,
    CollectionOrganisation,
    Enrollment,
    EnrollmentKind,
    Participant,
)
from participants.services import derive_kind
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db

SMALL = ["--scale", "0.05", "--no-recompute"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Seeding hashes four demo passwords; the default hasher would take most of each test's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(*args):
    out = io.StringIO()
    call_command("seed_demo", *SMALL, *args, stdout=out)
    return out.getvalue()


def targets_of(slug):
    return {(t.unit.code if t.unit else None, t.scheme): t.value for t in Target.objects.filter(campaign__slug=slug)}


def test_the_role_groups_exist_after_migrating():
    assert set(Group.objects.values_list("name", flat=True)) >= {"staff", "manager", "admin"}


def test_it_loads_the_reference_data_and_creates_bac_giangs_campaigns_shaped_like_the_news_reports():
    output = seed()

    assert "Demo data seeded" in output
    assert Province.objects.count() == 63
    campaigns = {c.slug: c for c in Campaign.objects.all()}
    assert {c.province.code for c in campaigns.values()} == {"24"}
    launch = campaigns["bg-2024-ra-quan"]
    assert launch.start_date == launch.end_date == datetime.date(2024, 3, 14)
    launch_targets = targets_of("bg-2024-ra-quan")
    assert launch_targets[(None, "vsi")] == 260
    assert launch_targets[(None, "hi_family")] == 390
    assert launch_targets[("223", "vsi")] == 20
    assert launch_targets[("VP24", "hi_family")] == 30
    # Bắc Giang had ten district-level units and its office in 2024: the province's own aim is not their sum.
    assert sum(v for (unit, scheme), v in launch_targets.items() if unit and scheme == "vsi") == 220

    march = campaigns["bg-2024-thang-3"]
    assert (march.start_date, march.end_date) == (datetime.date(2024, 3, 14), datetime.date(2024, 3, 31))
    march_targets = targets_of("bg-2024-thang-3")
    assert (march_targets[(None, "vsi")], march_targets[(None, "hi_family")]) == (1350, 1650)
    assert sum(v for (unit, scheme), v in march_targets.items() if unit and scheme == "vsi") == 1350

    peak = campaigns["bg-2024-cao-diem-4-5"]
    assert (peak.start_date, peak.end_date) == (datetime.date(2024, 4, 1), datetime.date(2024, 5, 31))
    peak_targets = targets_of("bg-2024-cao-diem-4-5")
    assert peak_targets[(None, "vsi")] + peak_targets[(None, "hi_family")] == 5800
    assert (
        sum(v for (unit, scheme), v in peak_targets.items() if unit and scheme == "vsi") > peak_targets[(None, "vsi")]
    )
    assert peak_targets[("223", "vsi")] > peak_targets[("220", "vsi")]  # Hiệp Hòa is larger than Sơn Động

    plan = campaigns["bg-2024-ke-hoach-nam"]
    assert plan.measure == Campaign.Measure.STOCK
    assert (plan.start_date, plan.end_date) == (datetime.date(2024, 1, 1), datetime.date(2024, 12, 31))
    assert targets_of("bg-2024-ke-hoach-nam")[("221", "vsi")] > 0  # Yên Dũng still counted in 2024

    today = timezone.localdate()
    current = [c for c in campaigns.values() if c.measure == "window" and c.start_date <= today <= c.end_date]
    assert len(current) == 1
    assert current[0].status == Campaign.Status.ACTIVE
    current_units = {code for code, _scheme in targets_of(current[0].slug) if code}
    assert "221" not in current_units  # Yên Dũng no longer exists
    assert "213" in current_units
    assert Enrollment.objects.filter(enrolled_on__range=(current[0].start_date, today)).exists()


def test_it_creates_collection_organisations_of_every_kind_with_agents():
    seed()
    kinds = set(CollectionOrganisation.objects.filter(province__code="24").values_list("kind", flat=True))
    assert kinds == {"post_office", "cooperative", "commune_point"}
    assert CollectionOrganisation.objects.get(code="BD223").name == "Bưu điện huyện Hiệp Hòa"
    assert CollectionAgent.objects.filter(organisation__code="BD223").count() == 3
    assert not CollectionOrganisation.objects.get(code="BD221").is_active  # Yên Dũng's, after the merge
    assert Enrollment.objects.filter(agent__isnull=False).exists()
    assert not Enrollment.objects.filter(agent__isnull=False).exclude(organisation=F("agent__organisation")).exists()


def test_every_enrollment_follows_the_enrollment_rules_and_kinds_are_derived_from_the_history():
    seed()
    today = timezone.localdate()
    rows = list(
        Enrollment.objects.select_related("unit", "commune", "participant").order_by(
            "participant_id", "scheme", "coverage_start"
        )
    )
    assert 1000 < len(rows) < 10000
    previous_end = {}
    for row in rows:
        key = (row.participant_id, row.scheme)
        # No coverage overlaps another of the same person and scheme, and the kind is what the service would derive.
        assert key not in previous_end or previous_end[key] <= row.coverage_start
        assert row.kind == derive_kind(previous_end=previous_end.get(key), coverage_start=row.coverage_start)
        previous_end[key] = row.coverage_end
        assert row.months in ALLOWED_MONTHS[row.scheme]
        assert row.unit.serves(row.commune)  # its own commune, or any of the province for the provincial office
        assert row.unit.province.code == "24"
        assert row.enrolled_on <= today
        assert row.unit.ceased_on is None or row.enrolled_on < row.unit.ceased_on
    kinds = defaultdict(int)
    for row in rows:
        kinds[row.kind] += 1
    assert all(kinds[k] > 0 for k in EnrollmentKind.values)
    people = Participant.objects.all()
    assert all(len(p.si_number) == 10 and p.si_number.isdigit() for p in people)
    assert {p.gender for p in people} == {"male", "female"}
    assert len({p.occupation for p in people}) >= 5
    assert len({p.income_bracket for p in people}) >= 4
    assert any("Nguyễn" in p.full_name for p in people)
    assert len({p.date_of_birth.year for p in people}) > 30


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data():
    seed("--seed", "7")
    first = demo_digest()
    seed("--seed", "7", "--reset")
    assert demo_digest() == first
    assert Campaign.objects.filter(province__code="24").count() == 6
    assert User.objects.filter(username__in=[u.username for u in DEMO_USERS]).count() == len(DEMO_USERS)
    seed("--seed", "8", "--reset")
    assert demo_digest() != first


def test_it_refuses_to_run_twice_without_reset_and_changes_nothing():
    seed()
    before = demo_digest()
    count = Enrollment.objects.count()
    with pytest.raises(CommandError, match="--reset"):
        seed()
    assert Enrollment.objects.count() == count
    assert demo_digest() == before


def test_reset_keeps_other_provinces_data_and_the_reference_data():
    seed()
    other = CampaignFactory(province=Province.objects.get(code="01"), slug="ha-noi-2024")
    seed("--reset")
    assert Campaign.objects.filter(pk=other.pk).exists()
    assert District.objects.filter(code="221").exists()
    assert Campaign.objects.filter(province__code="24").count() == 6


def test_if_empty_seeds_an_empty_database_and_quietly_leaves_existing_data_alone():
    seed("--if-empty")
    count = Enrollment.objects.count()
    assert count > 0
    assert seed("--if-empty") == ""
    assert Enrollment.objects.count() == count


def test_if_empty_does_not_seed_when_another_province_has_campaigns():
    call_command("load_units")
    CampaignFactory(province=Province.objects.get(code="01"), slug="ha-noi-2024")
    assert seed("--if-empty") == ""
    assert not Campaign.objects.filter(province__code="24").exists()


def test_demo_users_have_their_roles_scopes_and_documented_passwords(client):
    seed()
    expected = {
        "canbo": ("staff", "223"),
        "canbo_tinh": ("staff", "VP24"),
        "lanhdao": ("manager", None),
        "quantri": ("admin", None),
    }
    for demo in DEMO_USERS:
        user = User.objects.get(username=demo.username)
        assert (role_of(user), user.scope.unit.code if user.scope.unit else None) == expected[demo.username]
        assert user.scope.province.code == "24"
        assert not user.is_superuser
        response = client.post(reverse("login"), {"username": demo.username, "password": demo.password})
        assert response.status_code == 302, demo.username
        assert int(client.session["_auth_user_id"]) == user.pk
        client.logout()
    canbo = User.objects.get(username="canbo")
    seen_units = set(visible_enrollments(canbo).values_list("unit__code", flat=True).distinct())
    assert seen_units == {"223"}
    lanhdao = User.objects.get(username="lanhdao")
    assert visible_enrollments(lanhdao).count() == Enrollment.objects.filter(unit__province__code="24").count()


def test_demo_logins_prints_the_users_or_says_how_to_create_them():
    out = io.StringIO()
    call_command("demo_logins", stdout=out)
    assert "seed_demo" in out.getvalue()
    seed()
    out = io.StringIO()
    call_command("demo_logins", stdout=out)
    text = out.getvalue()
    for demo in DEMO_USERS:
        assert demo.username in text
        assert demo.password in text
    assert "Huyện Hiệp Hòa" in text
    assert "Tỉnh Bắc Giang" in text
