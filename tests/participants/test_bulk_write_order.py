"""How the set-based list import writes (PostgreSQL): new people's ids drawn in the order their enrollments are
inserted, the history tables carrying only the indexes something reads, and the per-scheme exclusion constraints
that every insert maintains."""

import datetime
import io

import pytest
from django.db import IntegrityError, connection, transaction

from participants import bulk_import
from participants.models import Enrollment, Participant, Scheme
from tests.factories import ParticipantFactory
from tests.participants.conftest import record
from tests.participants.test_bulk_import import csv_bytes, person_row

D = datetime.date

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the set-based import needs PostgreSQL"),
]


def test_new_people_are_numbered_in_the_order_their_enrollments_are_inserted(commune, other_commune):
    # The file's order (SI numbers ascending) is not the insert order: the other unit's rows and the later days come
    # first in the file, so numbering people by SI number or by row would not follow (unit, scheme, day).
    rows = [
        person_row("0400000001", other_commune, scheme="vsi", enrolled="10/03/2024", start="2024-03-10", months="1"),
        person_row("0400000002", commune, scheme="vsi", enrolled="12/03/2024", start="2024-03-12", months="1"),
        person_row("0400000003", commune, scheme="hi_family", enrolled="01/03/2024", start="2024-03-01"),
        person_row("0400000004", commune, scheme="vsi", enrolled="11/03/2024", start="2024-03-11", months="1"),
        person_row("0400000005", other_commune, scheme="hi_family", enrolled="02/03/2024", start="2024-03-02"),
    ]
    bulk_import.bulk_import(name="list.csv", stream=io.BytesIO(csv_bytes(rows)), commit=True)

    inserted = list(Enrollment.objects.order_by("unit_id", "scheme", "enrolled_on").values_list("id", "participant_id"))
    assert len(inserted) == 5
    assert [e for e, _p in inserted] == sorted(e for e, _p in inserted)
    assert [p for _e, p in inserted] == sorted(p for _e, p in inserted)
    assert set(Participant.objects.values_list("si_number", flat=True)) == {f"040000000{i}" for i in range(1, 6)}


def test_a_person_already_known_keeps_their_id_and_the_new_ones_come_after(commune):
    rows = [person_row("0400000011", commune, enrolled="01/03/2024", start="2024-03-01")]
    bulk_import.bulk_import(name="first.csv", stream=io.BytesIO(csv_bytes(rows)), commit=True)
    known = Participant.objects.get(si_number="0400000011")
    rows = [
        person_row("0400000012", commune, enrolled="05/03/2024", start="2024-03-05"),
        person_row("0400000011", commune, scheme="hi_family", enrolled="06/03/2024", start="2024-03-06", months="12"),
    ]
    plan = bulk_import.bulk_import(name="second.csv", stream=io.BytesIO(csv_bytes(rows)), commit=True)

    assert plan.totals["create"] == 2
    assert Participant.objects.count() == 2
    assert Enrollment.objects.filter(participant=known).count() == 2
    assert Participant.objects.get(si_number="0400000012").pk > known.pk


def _indexed_columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass",
            [table],
        )
        return {name for (name,) in cursor.fetchall()}


def test_history_tables_index_only_the_record_id_its_date_and_its_user():
    expected = {"history_id", "id", "history_date", "history_user_id"}
    assert _indexed_columns(Enrollment.history.model._meta.db_table) == expected
    assert _indexed_columns(Participant.history.model._meta.db_table) == expected


def test_every_scheme_has_its_exclusion_constraint_against_overlapping_coverage():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'participants_enrollment'::regclass AND contype = 'x'"
        )
        definitions = [d for (d,) in cursor.fetchall()]
    for scheme in Scheme.values:
        assert [d for d in definitions if f"'{scheme}'::text" in d and "participant_id WITH =" in d], scheme


@pytest.mark.parametrize("scheme", Scheme.values)
def test_the_database_refuses_overlapping_coverage_in_a_scheme_and_allows_it_in_the_other(scheme, unit, commune):
    person = ParticipantFactory()
    record(person, unit=unit, commune=commune, scheme=scheme, start=D(2024, 1, 1), months=12)
    other = next(s for s in Scheme.values if s != scheme)
    insert = (
        "INSERT INTO participants_enrollment (participant_id, scheme, kind, enrolled_on, coverage_start, coverage_end, "
        "months, unit_id, commune_id, created_at, updated_at) VALUES (%s, %s, 'new', %s, %s, %s, 12, %s, %s, now(), now())"
    )
    with connection.cursor() as cursor:
        cursor.execute(insert, [person.pk, other, D(2024, 2, 1), D(2024, 2, 1), D(2025, 2, 1), unit.pk, commune.pk])
        with pytest.raises(IntegrityError), transaction.atomic():
            cursor.execute(
                insert, [person.pk, scheme, D(2024, 6, 1), D(2024, 6, 1), D(2025, 6, 1), unit.pk, commune.pk]
            )
    assert Enrollment.objects.filter(participant=person).count() == 2
