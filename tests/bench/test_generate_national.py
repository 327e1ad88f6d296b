"""generate_national at a small N: counts, determinism, valid histories, every enrollment inside its province."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import F

from campaigns.models import Campaign, Target
from districts.models import District, Province
from participants.models import CollectionAgent, CollectionOrganisation, Enrollment, Participant
from participants.services import derive_kind

N = 5000

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="generate_national needs PostgreSQL")


def _generate(**options):
    call_command("generate_national", enrollments=N, verbosity=0, **options)


def _digest() -> str:
    """A fingerprint of every generated row that does not depend on database ids."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT md5(string_agg(concat_ws('|', p.si_number, p.full_name, p.date_of_birth, p.gender, e.scheme,
                                            e.kind, e.enrolled_on, e.coverage_start, e.coverage_end, e.months,
                                            u.code, c.code, o.code, a.code),
                                  ',' ORDER BY p.si_number, e.scheme, e.coverage_start))
            FROM participants_enrollment e
            JOIN participants_participant p ON p.id = e.participant_id
            JOIN districts_district u ON u.id = e.unit_id
            JOIN districts_commune c ON c.id = e.commune_id
            LEFT JOIN participants_collectionorganisation o ON o.id = e.organisation_id
            LEFT JOIN participants_collectionagent a ON a.id = e.agent_id
            """
        )
        digest = cursor.fetchone()[0]
        cursor.execute(
            "SELECT md5(string_agg(concat_ws('|', c.slug, t.unit_id IS NULL, t.scheme, t.value), ',' "
            "ORDER BY c.slug, t.unit_id IS NULL, t.scheme, t.value)) "
            "FROM campaigns_target t JOIN campaigns_campaign c ON c.id = t.campaign_id"
        )
        return digest + cursor.fetchone()[0]


def _structures() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid IN ('participants_enrollment'::regclass, 'participants_participant'::regclass)"
        )
        constraints = set(cursor.fetchall())
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename IN ('participants_enrollment', 'participants_participant')"
        )
        return constraints | set(cursor.fetchall())


@on_postgresql
@pytest.mark.django_db
def test_it_generates_the_requested_enrollments_with_campaigns_targets_and_organisations():
    _generate(seed=3)

    assert Enrollment.objects.count() == N
    people = Participant.objects.count()
    assert 0 < people < N
    assert Enrollment.objects.values("participant").distinct().count() == people
    provinces = Province.objects.count()
    assert provinces == 63
    assert Campaign.objects.filter(measure=Campaign.Measure.STOCK).count() == provinces
    assert Campaign.objects.filter(measure=Campaign.Measure.WINDOW).count() == provinces
    # Every unit that existed in 2024 has a target per scheme in each campaign, and each campaign a province one.
    units_2024 = District.objects.exclude(ceased_on__lte="2024-01-01").count()
    assert Target.objects.filter(unit__isnull=False).count() == 2 * 2 * units_2024
    assert Target.objects.filter(unit__isnull=True).count() == 2 * 2 * provinces
    assert CollectionOrganisation.objects.count() >= 700
    assert CollectionAgent.objects.count() > CollectionOrganisation.objects.count()
    # Spread over both schemes, all three kinds, both years, and many provinces.
    assert set(Enrollment.objects.values_list("scheme", flat=True).distinct()) == {"vsi", "hi_family"}
    assert set(Enrollment.objects.values_list("kind", flat=True).distinct()) == {"new", "resumed", "renewal"}
    assert {d.year for d in Enrollment.objects.values_list("enrolled_on", flat=True)} == {2023, 2024}
    assert Enrollment.objects.values("unit__province").distinct().count() > 50


@on_postgresql
@pytest.mark.django_db
def test_every_enrollment_lies_inside_its_province_unit_and_commune():
    _generate(seed=4)

    assert not Enrollment.objects.exclude(commune__district=F("unit")).exists()
    assert not Enrollment.objects.exclude(participant__commune=F("commune")).exists()
    with_org = Enrollment.objects.filter(organisation__isnull=False)
    assert with_org.exists()
    assert not with_org.exclude(organisation__unit=F("unit")).exists()
    assert not with_org.exclude(agent__organisation=F("organisation")).exists()
    assert not Enrollment.objects.filter(unit__kind=District.Kind.PROVINCIAL_OFFICE).exists()
    # A unit that ceased (Yên Dũng, merged on 1 November 2024) records nothing from that day on.
    assert not Enrollment.objects.filter(unit__ceased_on__isnull=False, enrolled_on__gte=F("unit__ceased_on")).exists()


@on_postgresql
@pytest.mark.django_db
def test_no_person_has_overlapping_coverage_and_every_kind_is_what_derive_kind_gives():
    _generate(seed=5)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM participants_enrollment a JOIN participants_enrollment b "
            "ON a.participant_id = b.participant_id AND a.scheme = b.scheme AND a.id < b.id "
            "AND a.coverage_start < b.coverage_end AND b.coverage_start < a.coverage_end"
        )
        assert cursor.fetchone()[0] == 0
    previous_end = {}
    kinds = {"new": 0, "resumed": 0, "renewal": 0}
    for row in Enrollment.objects.order_by("participant_id", "scheme", "coverage_start").values(
        "participant_id", "scheme", "kind", "enrolled_on", "coverage_start", "coverage_end"
    ):
        key = (row["participant_id"], row["scheme"])
        assert row["kind"] == derive_kind(previous_end=previous_end.get(key), coverage_start=row["coverage_start"])
        assert row["enrolled_on"] <= row["coverage_start"]
        previous_end[key] = row["coverage_end"]
        kinds[row["kind"]] += 1
    assert kinds["renewal"] > kinds["resumed"] > 0


@on_postgresql
@pytest.mark.django_db
def test_the_same_seed_gives_the_same_data_and_another_seed_other_data():
    _generate(seed=11)
    first = _digest()
    _generate(seed=11, reset=True)
    assert _digest() == first
    _generate(seed=12, reset=True)
    assert _digest() != first
    assert Enrollment.objects.count() == N


@on_postgresql
@pytest.mark.django_db
def test_it_leaves_every_index_and_constraint_as_the_migrations_made_them():
    before = _structures()
    assert any(name.startswith("enrollment_no_overlapping_coverage_") for name, _ in before)

    _generate(seed=6)

    assert _structures() == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'generate_national_stage_%%'")
        assert cursor.fetchone()[0] == 0


@on_postgresql
@pytest.mark.django_db
def test_it_refuses_a_database_that_already_holds_enrollments_unless_told_to_reset():
    _generate(seed=7)
    with pytest.raises(CommandError, match="--reset"):
        _generate(seed=8)
    assert Enrollment.objects.count() == N


@pytest.mark.django_db
def test_on_sqlite_it_refuses_clearly_and_writes_nothing():
    if connection.vendor == "postgresql":
        pytest.skip("the refusal concerns SQLite")
    with pytest.raises(CommandError, match="PostgreSQL"):
        _generate(seed=1)
    assert not Enrollment.objects.exists()
    assert not Campaign.objects.exists()
