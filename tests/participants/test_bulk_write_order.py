"""How the set-based list import writes (PostgreSQL): new people's ids drawn in the order their enrollments are
inserted, and the history tables carrying only the indexes something reads."""

import io

import pytest
from django.db import connection

from participants import bulk_import
from participants.models import Enrollment, Participant
from tests.participants.test_bulk_import import csv_bytes, person_row

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
