import datetime
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from participants.models import Enrollment, Participant
from participants.services import enrollment_delete, enrollment_update
from participants.signals import enrollments_changed
from tests.factories import ParticipantFactory
from tests.participants.conftest import entry_data, record

D = datetime.date


@pytest.mark.django_db
def test_a_first_enrollment_in_a_scheme_is_new(unit, commune):
    assert record(unit=unit, commune=commune).kind == "new"


@pytest.mark.django_db
def test_a_payment_that_continues_without_a_gap_is_a_renewal(unit, commune):
    person = ParticipantFactory()
    record(person, unit=unit, commune=commune, start=D(2024, 1, 1), months=3)
    assert record(person, unit=unit, commune=commune, start=D(2024, 4, 1), months=3).kind == "renewal"


@pytest.mark.django_db
def test_coming_back_after_a_gap_is_resumed(unit, commune):
    person = ParticipantFactory()
    record(person, unit=unit, commune=commune, start=D(2023, 1, 1), months=6)
    assert record(person, unit=unit, commune=commune, start=D(2024, 3, 1), months=12).kind == "resumed"


@pytest.mark.django_db
def test_the_kind_is_counted_per_scheme(unit, commune):
    person = ParticipantFactory()
    record(person, unit=unit, commune=commune, start=D(2023, 1, 1), months=12, scheme="hi_family")
    assert record(person, unit=unit, commune=commune, start=D(2024, 1, 1), months=12, scheme="vsi").kind == "new"


@pytest.mark.django_db
def test_a_back_dated_entry_turns_the_later_one_into_a_renewal(unit, commune):
    person = ParticipantFactory()
    later = record(person, unit=unit, commune=commune, start=D(2024, 4, 1), months=3)
    assert later.kind == "new"
    earlier = record(person, unit=unit, commune=commune, start=D(2024, 1, 1), months=3)
    later.refresh_from_db()
    assert (earlier.kind, later.kind) == ("new", "renewal")
    # the history shows the re-derived kind
    assert later.history.first().kind == "renewal"


@pytest.mark.django_db
def test_deleting_the_first_enrollment_makes_the_next_one_new_again(unit, commune):
    person = ParticipantFactory()
    first = record(person, unit=unit, commune=commune, start=D(2024, 1, 1), months=3)
    second = record(person, unit=unit, commune=commune, start=D(2024, 4, 1), months=3)
    enrollment_delete(enrollment=first)
    second.refresh_from_db()
    assert second.kind == "new"


@pytest.mark.django_db
def test_moving_coverage_by_an_edit_re_derives_the_kinds(unit, commune):
    person = ParticipantFactory()
    first = record(person, unit=unit, commune=commune, start=D(2024, 1, 1), months=3)
    second = record(person, unit=unit, commune=commune, start=D(2024, 4, 1), months=3)
    enrollment_update(
        enrollment=first,
        scheme="vsi",
        enrolled_on=D(2023, 1, 1),
        coverage_start=D(2023, 1, 1),
        months=1,
        unit=unit,
        commune=commune,
    )
    second.refresh_from_db()
    assert second.kind == "resumed"


@pytest.mark.django_db
def test_an_overlapping_coverage_is_refused_naming_the_existing_record(unit, commune):
    person = ParticipantFactory(full_name="Đỗ Văn Trùng")
    existing = record(person, unit=unit, commune=commune, start=D(2024, 1, 1), months=12)
    with pytest.raises(ValidationError) as info:
        record(person, unit=unit, commune=commune, start=D(2024, 6, 1), months=6)
    error = info.value.error_list[0]
    assert error.code == "duplicate" and error.params["existing_pk"] == existing.pk
    assert "Đỗ Văn Trùng" in error.message and f"record no. {existing.pk}" in error.message
    assert "31/12/2024" in error.message
    assert Enrollment.objects.count() == 1


@pytest.mark.django_db
def test_the_entry_page_links_to_the_existing_record_of_a_duplicate(staff_client, unit, commune):
    staff_client.post(reverse("participants:enrollment_create"), entry_data(commune))
    existing = Enrollment.objects.get()
    response = staff_client.post(reverse("participants:enrollment_create"), entry_data(commune))
    page = response.content.decode()
    assert response.status_code == 200
    assert f"record no. {existing.pk}" in page
    assert reverse("participants:enrollment_detail", args=[existing.pk]) in page
    assert Enrollment.objects.count() == 1


@pytest.mark.django_db
def test_a_duplicate_held_by_another_unit_is_named_but_not_linked(staff_client, other_unit, other_commune, commune):
    person = ParticipantFactory(si_number="2401234567", date_of_birth=D(1985, 6, 1))
    existing = record(person, unit=other_unit, commune=other_commune, start=D(2024, 3, 1))
    response = staff_client.post(reverse("participants:enrollment_create"), entry_data(commune))
    page = response.content.decode()
    assert f"record no. {existing.pk}" in page and "belongs to another unit" in page
    assert reverse("participants:enrollment_detail", args=[existing.pk]) not in page


@pytest.mark.django_db
def test_every_write_sends_enrollments_changed_after_commit(unit, commune, django_capture_on_commit_callbacks):
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    enrollments_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            enrollment = record(unit=unit, commune=commune, start=D(2024, 3, 1), enrolled_on=D(2024, 3, 14))
        assert received[-1]["unit_ids"] == {unit.pk}
        assert received[-1]["days"] == {D(2024, 3, 14)}
        assert received[-1]["schemes"] == {"vsi"}
        assert received[-1]["coverage_since"] == D(2024, 3, 1)
        with django_capture_on_commit_callbacks(execute=True):
            enrollment_delete(enrollment=enrollment)
        assert len(received) == 2
        with django_capture_on_commit_callbacks(execute=False) as callbacks, pytest.raises(ValidationError):
            record(unit=unit, commune=commune, months=5)
        assert callbacks == []  # nothing for a write that did not happen
    finally:
        enrollments_changed.disconnect(receiver)


# ---------------------------------------------------------------- real concurrent submits (PostgreSQL only)


def _submit_together(users, data, rounds_id):
    from django.test import Client

    barrier = threading.Barrier(len(users))
    results = [None] * len(users)

    def worker(index, user):
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        client.force_login(user)
        try:
            barrier.wait(timeout=10)
            response = client.post(reverse("participants:enrollment_create"), data)
            results[index] = (response.status_code, response.content.decode())
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            results[index] = (500, repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, u)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


@pytest.fixture
def two_officers(province, unit):
    from tests.factories import make_user

    return [
        make_user("staff", province=province, unit=unit, username="counter_a"),
        make_user("staff", province=province, unit=unit, username="counter_b"),
    ]


def _skip_unless_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers and has no row locks")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("known_person", [True, False], ids=["known-person", "new-person"])
def test_two_officers_saving_the_same_person_at_the_same_moment_record_it_once(two_officers, commune, known_person):
    _skip_unless_postgres()
    for round_number in range(5):
        si_number = f"24000000{round_number:02d}"
        if known_person:
            ParticipantFactory(si_number=si_number, date_of_birth=D(1985, 6, 1))
        results = _submit_together(two_officers, entry_data(commune, si_number=si_number), round_number)
        statuses = sorted(status for status, _body in results)
        assert statuses == [200, 302], results
        refused = next(body for status, body in results if status == 200)
        assert "already has Voluntary social insurance coverage" in refused
        assert Enrollment.objects.filter(participant__si_number=si_number).count() == 1
        assert Participant.objects.filter(si_number=si_number).count() == 1


@pytest.mark.django_db
def test_the_service_locks_the_participant_row_before_checking(unit, commune):
    # On SQLite select_for_update is a no-op; the concurrent proof is the PostgreSQL test above. Here: the lock
    # query is issued (FOR NO KEY UPDATE appears in the SQL on PostgreSQL).
    from django.test.utils import CaptureQueriesContext

    person = ParticipantFactory()
    with CaptureQueriesContext(connection) as queries:
        record(person, unit=unit, commune=commune)
    lock = [q["sql"] for q in queries.captured_queries if "participants_participant" in q["sql"]]
    assert lock, "the participant row is read (and locked) first"
    if connection.vendor == "postgresql":
        assert "FOR NO KEY UPDATE" in lock[0]
