"""Issue 6, the entry save's budget: on PostgreSQL a new person's entry (the person, the enrollment and the history
record of each) is written in one statement, the request's user is read with their role, scope and second-factor
device in one query, and what the rows, their history and the after-commit signal hold is what the ORM path writes."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from participants.models import Enrollment, Participant
from participants.services import _record_for_person_once, enrollment_record_for_person
from participants.signals import enrollments_changed
from tests.factories import ParticipantFactory, make_user
from tests.participants.conftest import entry_data, record

D = datetime.date
URL = "participants:enrollment_create"
# session, the user with role, scope and device, the commune's check, the one statement that writes the entry.
NEW_PERSON_POSTGRES_MAX = 4

# What differs between two otherwise equal records written at different moments.
MOMENT_FIELDS = {"id", "created_at", "updated_at", "history_id", "history_date", "participant_id", "si_number"}


def _skip_unless_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement entry is PostgreSQL's; SQLite keeps the ORM path")


def _row(instance):
    return {
        f.attname: getattr(instance, f.attname)
        for f in type(instance)._meta.concrete_fields
        if f.attname not in MOMENT_FIELDS
    }


def _entry(si_number, unit, commune, user, **overrides):
    fields = {
        "si_number": si_number,
        "full_name": "  Lê Văn Nam ",
        "date_of_birth": D(1980, 1, 2),
        "gender": "male",
        "scheme": "vsi",
        "enrolled_on": D(2024, 3, 14),
        "coverage_start": D(2024, 3, 1),
        "months": 6,
        "unit": unit,
        "commune": commune,
        "organisation": None,
        "agent": None,
        "recorded_by": user,
    }
    return fields | overrides


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_new_persons_entry_is_saved_in_one_statement_through_the_page(
    client, staff_user, commune, django_assert_max_num_queries
):
    _skip_unless_postgres()
    client.force_login(staff_user)
    client.post(reverse(URL), entry_data(commune, si_number="2409100001"))
    with CaptureQueriesContext(connection) as queries:
        response = client.post(reverse(URL), entry_data(commune, si_number="2409100002"))
    assert response.status_code == 302
    # Within the test's transaction the after-commit work waits for a commit that never comes: not counted here.
    assert len(queries) <= NEW_PERSON_POSTGRES_MAX, [q["sql"][:80] for q in queries.captured_queries]
    writes = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SELECT")]
    assert len(writes) == 1 and writes[0].startswith("WITH p AS (INSERT INTO")
    enrollment = Enrollment.objects.get(participant__si_number="2409100002")
    assert response["Location"].endswith(f"?saved={enrollment.pk}")
    assert (enrollment.kind, enrollment.recorded_by, enrollment.unit_id) == (
        "new",
        staff_user,
        staff_user.scope.unit_id,
    )
    assert enrollment.history.get().history_user == staff_user
    person = Participant.objects.get(si_number="2409100002")
    assert (person.history.get().history_type, person.history.get().history_user) == ("+", staff_user)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_one_statement_writes_the_rows_and_history_the_orm_path_writes(unit, commune, agent, staff_user):
    """The same entry through the one statement and through the locked ORM path: every stored value but the ids and
    the moments is the same, in the person, the enrollment and both history records."""
    _skip_unless_postgres()
    fast = enrollment_record_for_person(**_entry("2409100003", unit, commune, staff_user, agent=agent))
    entry = _entry("2409100004", unit, commune, staff_user, agent=agent)
    person = {k: entry.pop(k) for k in ("si_number", "full_name", "date_of_birth", "gender")}
    slow = _record_for_person_once(person=person, entry=entry)
    fast_db, slow_db = Enrollment.objects.get(pk=fast.pk), Enrollment.objects.get(pk=slow.pk)
    assert _row(fast_db) == _row(slow_db)
    assert fast_db.organisation == agent.organisation  # the agent's organisation, as the ORM path sets it
    assert _row(fast_db.participant) == _row(slow_db.participant)
    assert fast_db.participant.full_name == "Lê Văn Nam"
    assert _row(fast_db.history.get()) == _row(slow_db.history.get())
    assert _row(fast_db.participant.history.get()) == _row(slow_db.participant.history.get())
    # The returned objects are the saved rows, usable as the ORM's would be.
    assert (fast.pk, fast.participant_id, fast._state.adding) == (fast_db.pk, fast_db.participant_id, False)
    assert fast.created_at == fast_db.created_at and fast.participant.created_at == fast_db.participant.created_at


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_one_statement_sends_the_change_after_commit_and_nothing_for_a_refused_entry(
    unit, commune, staff_user, django_capture_on_commit_callbacks
):
    _skip_unless_postgres()
    from django.core.exceptions import ValidationError

    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    enrollments_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            enrollment_record_for_person(**_entry("2409100005", unit, commune, staff_user))
        assert len(callbacks) == 1 and received == []  # sent after the commit, not before
        callbacks[0]()
        assert received[0]["unit_ids"] == {unit.pk} and received[0]["days"] == {D(2024, 3, 14)}
        assert received[0]["coverage_since"] == D(2024, 3, 1) and received[0]["schemes"] == {"vsi"}
        # A VSI participant under 15 is refused before anything is written.
        with django_capture_on_commit_callbacks(execute=False) as callbacks, pytest.raises(ValidationError):
            enrollment_record_for_person(**_entry("2409100006", unit, commune, staff_user, date_of_birth=D(2015, 1, 1)))
        assert callbacks == []
        assert not Participant.objects.filter(si_number="2409100006").exists()
    finally:
        enrollments_changed.disconnect(receiver)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_known_number_writes_nothing_in_the_one_statement_and_takes_the_locked_path(unit, commune, staff_user):
    _skip_unless_postgres()
    person = ParticipantFactory(si_number="2409100007", date_of_birth=D(1980, 1, 2), full_name="Lê Văn Nam")
    existing = record(person, unit=unit, commune=commune, start=D(2023, 3, 1), months=12)
    with CaptureQueriesContext(connection) as queries:
        renewal = enrollment_record_for_person(
            **_entry("2409100007", unit, commune, staff_user, coverage_start=D(2024, 3, 1))
        )
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert statements[0].startswith("WITH p AS (INSERT INTO")
    assert "FOR NO KEY UPDATE" in statements[1]  # then the person's row is locked, as before
    assert renewal.kind == "renewal" and renewal.participant_id == person.pk
    assert Participant.objects.filter(si_number="2409100007").count() == 1
    assert person.history.filter(history_type="+").count() == 1  # no creation record from the statement
    assert Enrollment.objects.filter(participant=person).count() == 2
    # The ORM path still refuses an overlap and names the record it clashes with.
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as overlap:
        enrollment_record_for_person(**_entry("2409100007", unit, commune, staff_user, coverage_start=D(2023, 6, 1)))
    assert overlap.value.error_list[0].params["existing_pk"] == existing.pk


@pytest.mark.django_db
def test_the_requests_user_is_read_with_role_scope_and_device_in_one_query(client, province, unit, commune):
    """Session middleware (second factor), the page's role check and the form's scope ask nothing more."""
    officer = make_user("staff", province=province, unit=unit, username="mot_truy_van")
    client.force_login(officer)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(URL))
    assert response.status_code == 200
    user_reads = [q["sql"] for q in queries.captured_queries if 'FROM "auth_user"' in q["sql"]]
    assert len(user_reads) == 1
    separate = ('SELECT "otp_totp_totpdevice"', 'SELECT "districts_userscope"', 'SELECT "auth_group"')
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith(separate)]


@pytest.mark.django_db
def test_with_history_switched_off_a_new_persons_entry_writes_no_history_record(unit, commune, staff_user):
    from django.test import override_settings

    with override_settings(SIMPLE_HISTORY_ENABLED=False):
        enrollment = enrollment_record_for_person(**_entry("2409100008", unit, commune, staff_user))
    assert enrollment.kind == "new"
    assert not enrollment.history.exists()
    assert not Participant.objects.get(si_number="2409100008").history.exists()
