"""Saving one enrollment through the entry page stays within a fixed number of queries (issue 6: the entry save has
a budget of 15 ms at 10 million rows, and every round trip counts), and the shortcuts that buy it keep the rules."""

import datetime
import threading
import time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from participants.models import Enrollment, Participant
from participants.services import add_months, enrollment_record_for_person
from tests.factories import ParticipantFactory, make_user
from tests.participants.conftest import entry_data, record

D = datetime.date
URL = "participants:enrollment_create"

# The request's own queries (on_commit receivers excluded: the recompute is enqueued after the response's commit):
# session, the user read with their role, scope and second-factor device (one query, accounts.backends), the
# commune's check, then the write. On PostgreSQL a new person's write is one statement (the person, the enrollment
# and both history records); SQLite's is the person's lookup with its lock, the person and its history row, the
# enrollment and its history row, and the transaction's two ends (savepoints inside the test's transaction).
NEW_PERSON_MAX = 10
# A known person adds one aggregate over their rows in the scheme (overlap, previous end, later rows) and needs no
# INSERT of a person (changed details add their UPDATE, history row and audit event); on PostgreSQL the one
# statement's attempt comes first and writes nothing.
KNOWN_PERSON_MAX = 10
# An officer of the whole province picks the unit: one more query, for the unit.
PROVINCE_OFFICER_MAX = 11


def _post(client, data):
    response = client.post(reverse(URL), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


@pytest.mark.django_db
def test_saving_a_new_person_through_the_entry_page_takes_a_fixed_number_of_queries(
    client, staff_user, commune, django_assert_max_num_queries
):
    client.force_login(staff_user)
    _post(client, entry_data(commune, si_number="2409000001"))  # the day's sticky values are now in the session
    with django_assert_max_num_queries(NEW_PERSON_MAX):
        _post(client, entry_data(commune, si_number="2409000002"))
    enrollment = Enrollment.objects.get(participant__si_number="2409000002")
    assert enrollment.kind == "new"
    assert enrollment.recorded_by == staff_user
    assert enrollment.history.get().history_user == staff_user
    assert Participant.objects.get(si_number="2409000002").history.get().history_type == "+"


@pytest.mark.django_db
def test_saving_a_known_persons_renewal_takes_one_query_more(
    client, staff_user, unit, commune, django_assert_max_num_queries
):
    client.force_login(staff_user)
    person = ParticipantFactory(
        si_number="2409000003", date_of_birth=D(1985, 6, 1), full_name="Nguyễn Thị Hoa", commune=commune
    )
    record(person, unit=unit, commune=commune, start=D(2023, 3, 1), months=12)
    _post(client, entry_data(commune, si_number="2409000001"))
    with django_assert_max_num_queries(KNOWN_PERSON_MAX):
        _post(client, entry_data(commune, si_number="2409000003", coverage_start="01/03/2024"))
    assert Enrollment.objects.filter(participant=person).order_by("coverage_start").last().kind == "renewal"


@pytest.mark.django_db
def test_a_province_wide_officer_saves_in_one_query_more(
    client, province, unit, commune, django_assert_max_num_queries
):
    officer = make_user("staff", province=province, username="can_bo_tinh")
    client.force_login(officer)
    _post(client, entry_data(commune, si_number="2409000001", unit=unit.pk))
    with django_assert_max_num_queries(PROVINCE_OFFICER_MAX):
        _post(client, entry_data(commune, si_number="2409000002", unit=unit.pk))
    assert Enrollment.objects.get(participant__si_number="2409000002").unit == unit


@pytest.mark.django_db
def test_the_session_is_not_rewritten_when_the_days_values_are_unchanged(client, staff_user, commune):
    client.force_login(staff_user)
    _post(client, entry_data(commune, si_number="2409000001"))
    with CaptureQueriesContext(connection) as queries:
        _post(client, entry_data(commune, si_number="2409000002"))
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "django_session" in q["sql"]]
    # A changed value is kept for the next entry.
    _post(client, entry_data(commune, si_number="2409000003", scheme="hi_family", months="12"))
    assert client.session["enrollment_sticky"]["scheme"] == "hi_family"


@pytest.mark.django_db
def test_a_new_person_is_not_checked_for_coverage_they_cannot_have(unit, commune, staff_user):
    with CaptureQueriesContext(connection) as queries:
        enrollment = enrollment_record_for_person(
            si_number="2409000004",
            full_name="Lê Văn Nam",
            date_of_birth=D(1980, 1, 2),
            gender="male",
            scheme="vsi",
            enrolled_on=D(2024, 3, 14),
            coverage_start=D(2024, 3, 1),
            months=12,
            unit=unit,
            commune=commune,
            recorded_by=staff_user,
        )
    statements = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        # The person, the enrollment and both history records in one statement, which reads no coverage.
        assert len(statements) == 1 and statements[0].startswith("WITH p AS (INSERT INTO")
    else:
        reads = [sql for sql in statements if sql.startswith("SELECT")]
        assert len(reads) == 1 and "participants_participant" in reads[0]  # only the person's lookup
    assert not [sql for sql in statements if sql.startswith("SELECT") and "participants_enrollment" in sql]
    assert enrollment.kind == "new"


@pytest.mark.django_db
def test_the_shortcut_refuses_a_known_persons_overlap_and_another_date_of_birth(unit, commune):
    from django.core.exceptions import ValidationError

    person = ParticipantFactory(si_number="2409000005", date_of_birth=D(1985, 6, 1))
    existing = record(person, unit=unit, commune=commune, start=D(2024, 1, 1), months=12)
    fields = {
        "full_name": person.full_name,
        "gender": person.gender,
        "scheme": "vsi",
        "enrolled_on": D(2024, 3, 14),
        "months": 12,
        "unit": unit,
        "commune": commune,
    }
    with pytest.raises(ValidationError) as overlap:
        enrollment_record_for_person(
            si_number="2409000005", date_of_birth=D(1985, 6, 1), coverage_start=D(2024, 3, 1), **fields
        )
    assert overlap.value.error_list[0].params["existing_pk"] == existing.pk
    with pytest.raises(ValidationError) as mismatch:
        enrollment_record_for_person(
            si_number="2409000005", date_of_birth=D(1990, 1, 1), coverage_start=D(2025, 3, 1), **fields
        )
    assert "date_of_birth" in mismatch.value.error_dict
    assert Enrollment.objects.filter(participant=person).count() == 1
    # A back-dated entry still re-derives the later row's kind.
    earlier = enrollment_record_for_person(
        si_number="2409000005", date_of_birth=D(1985, 6, 1), coverage_start=D(2023, 1, 1), **fields
    )
    existing.refresh_from_db()
    assert (earlier.kind, existing.kind) == ("new", "renewal")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_overlap_stored_behind_the_persons_lock_is_refused_with_a_link_not_an_error(
    client, staff_user, unit, commune
):
    """A write path that does not lock the person (a bulk import) stores an overlapping coverage while the entry is
    being saved: the exclusion constraint refuses the entry's row, the entry runs again and names the other one."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the exclusion constraint and row locks")
    person = ParticipantFactory(si_number="2409000006", date_of_birth=D(1985, 6, 1))
    client.force_login(staff_user)
    inserted, release = threading.Event(), threading.Event()

    def unlocked_writer():
        try:
            with transaction.atomic():
                Enrollment.objects.create(
                    participant=person,
                    scheme="vsi",
                    kind="new",
                    enrolled_on=D(2024, 3, 2),
                    coverage_start=D(2024, 3, 1),
                    coverage_end=add_months(D(2024, 3, 1), 12),
                    months=12,
                    unit=unit,
                    commune=commune,
                )
                inserted.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    writer = threading.Thread(target=unlocked_writer)
    writer.start()
    assert inserted.wait(timeout=10)
    # The entry's INSERT waits on the writer's uncommitted row; the writer commits a moment later.
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    response = client.post(reverse(URL), entry_data(commune, si_number="2409000006"))
    writer.join(timeout=10)
    assert time.monotonic() - started >= 0.4  # it did wait for the writer
    assert response.status_code == 200
    assert "already has Voluntary social insurance coverage" in response.content.decode()
    assert Enrollment.objects.filter(participant=person).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_persons_lock_lets_another_writers_foreign_key_check_through_so_the_two_never_deadlock(
    client, staff_user, unit, commune
):
    """The entry locks a known person FOR NO KEY UPDATE, not FOR UPDATE: the overlap test above then resolves by the
    import's commit, not by PostgreSQL aborting one of the two as a deadlock (which it did every time, and which
    failed that test whenever it chose the import)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: row locks")
    ParticipantFactory(si_number="2409000007", date_of_birth=D(1985, 6, 1))
    client.force_login(staff_user)
    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        deadlocks = cursor.fetchone()[0]
    with CaptureQueriesContext(connection) as queries:
        _post(client, entry_data(commune, si_number="2409000007"))
    locks = [q["sql"] for q in queries if 'FROM "participants_participant"' in q["sql"] and "FOR " in q["sql"]]
    assert locks and all(sql.endswith("FOR NO KEY UPDATE") for sql in locks), locks
    test_an_overlap_stored_behind_the_persons_lock_is_refused_with_a_link_not_an_error(client, staff_user, unit, commune)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        assert cursor.fetchone()[0] == deadlocks


# What the save does after its commit (the enrollments_changed receiver of the reports app): one query for the
# touched campaigns of the unit's province with their windows, then the pending mark and its days in one statement
# (PostgreSQL); SQLite writes them as two statements inside a savepoint.
AFTER_COMMIT_MAX = {"postgresql": 1, "sqlite": 5}


@pytest.mark.django_db
def test_the_after_commit_scheduling_of_an_entry_takes_a_fixed_number_of_queries(
    client, staff_user, province, unit, commune, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from reports.models import PendingRefresh, PendingRefreshDay
    from reports.tasks import DEBOUNCE_KEY
    from tests.factories import CampaignFactory

    window = CampaignFactory(province=province, start_date=D(2024, 3, 1), end_date=D(2024, 3, 31))
    stock = CampaignFactory(province=province, measure="stock", start_date=D(2024, 1, 1), end_date=D(2024, 12, 31))
    CampaignFactory(province=province, start_date=D(2024, 5, 1), end_date=D(2024, 5, 31))  # not touched
    client.force_login(staff_user)
    _post(client, entry_data(commune, si_number="2409000001"))
    # A refresh is already queued (the debounce key is set): the broker's publish is not what is counted here.
    cache.set(DEBOUNCE_KEY, 1, 60)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            _post(client, entry_data(commune, si_number="2409000002", enrolled_on="20/03/2024"))
        assert callbacks
        with CaptureQueriesContext(connection) as queries:
            for callback in callbacks:
                callback()
    finally:
        cache.delete(DEBOUNCE_KEY)
    assert len(queries) <= AFTER_COMMIT_MAX[connection.vendor], [q["sql"] for q in queries]
    # The entry days are listed for SQLite's recount; PostgreSQL's refresh reads the change journal instead.
    listed = connection.vendor != "postgresql"
    assert set(PendingRefresh.objects.values_list("campaign_id", "unit_id", "since", "days_only")) == {
        (window.pk, unit.pk, D(2024, 3, 20), listed),
        (stock.pk, unit.pk, D(2024, 3, 20), listed),
    }
    assert set(PendingRefreshDay.objects.values_list("campaign_id", "unit_id", "day")) == (
        {(window.pk, unit.pk, D(2024, 3, 20)), (stock.pk, unit.pk, D(2024, 3, 20))} if listed else set()
    )
