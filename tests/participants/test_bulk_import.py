"""The set-based list import (PostgreSQL) against the row path: the same files give the same checks and the same
saved rows; and the bulk path's own duties (all or nothing, idempotent, one signal, scope, streaming bounds)."""

import datetime
import io

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from participants import bulk_import, importing
from participants.models import Enrollment, Participant
from participants.signals import enrollments_changed
from tests.factories import AgentFactory, OrganisationFactory, ParticipantFactory
from tests.participants.conftest import record

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the set-based import needs PostgreSQL"),
]
D = datetime.date
HEADER = list(importing.COLUMNS)


def csv_bytes(rows, header=HEADER):
    out = io.StringIO()
    import csv

    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def xlsx_bytes(rows, header=HEADER):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(header))
    for r in rows:
        sheet.append(r)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def person_row(
    si,
    commune,
    *,
    name="Người Nhập",
    dob="01/06/1985",
    gender="nữ",
    scheme="vsi",
    enrolled="14/03/2024",
    start="2024-03-01",
    months="12",
    agent="",
):
    return [si, name, dob, gender, commune.code, scheme, enrolled, start, months, agent]


def normalised(report: dict) -> dict:
    """A report with each row's errors as {column: messages} (the row path's column order follows a set)."""

    def row(r):
        return {**r, "errors": {e["column"]: e["messages"] for e in r["errors"]}}

    return {
        "counts": report["counts"],
        "errors": [row(r) for r in report["errors"]],
        "duplicates": [row(r) for r in report["duplicates"]],
        "create_sample": [row(r) for r in report["create_sample"]],
    }


def row_plan(name, data, *, user=None, unit=None):
    rows = importing.read_table(name=name, data=data)
    return importing.import_plan(rows=rows, user=user, unit=unit).as_json()


def bulk_plan(name, data, *, user=None, unit=None):
    try:
        plan = bulk_import.bulk_import(name=name, stream=io.BytesIO(data), user=user, unit=unit, commit=False)
    except bulk_import.BulkRejected as exc:
        plan = exc.plan
    return plan.as_json()


def state():
    """Everything an import may change, by natural keys (ids of new rows differ between two runs)."""
    people = {
        p["si_number"]: p
        for p in Participant.objects.values("si_number", "full_name", "date_of_birth", "gender", "commune_id")
    }
    enrollments = sorted(
        Enrollment.objects.values_list(
            "participant__si_number",
            "scheme",
            "coverage_start",
            "coverage_end",
            "months",
            "kind",
            "enrolled_on",
            "unit_id",
            "commune_id",
            "organisation_id",
            "agent_id",
            "recorded_by_id",
        )
    )
    # History: one creation record per enrollment, and the re-derived kinds of records that existed before. (The row
    # path also writes a change record when a later row of the same list re-derives a row it has just created.)
    pre_existing = set(Enrollment.history.filter(history_date__lt=IMPORT_STARTED).values_list("id", flat=True))
    histories = sorted(
        set(Enrollment.history.filter(history_type="+").values_list("participant__si_number", "coverage_start"))
    ) + sorted(
        Enrollment.history.filter(history_type="~", id__in=pre_existing).values_list(
            "participant__si_number", "coverage_start", "kind"
        )
    )
    people_with_history = set(Participant.history.values_list("si_number", flat=True).distinct())
    return people, enrollments, histories, people_with_history


IMPORT_STARTED = None


def applied(path, name, data, *, user=None, unit=None):
    """Saves through one path inside a savepoint, reads the state, and rolls back."""
    global IMPORT_STARTED
    IMPORT_STARTED = timezone.now()
    with transaction.atomic():
        try:
            if path == "rows":
                rows = importing.read_table(name=name, data=data)
                importing.import_apply(rows=rows, user=user, unit=unit)
            else:
                bulk_import.bulk_import(name=name, stream=io.BytesIO(data), user=user, unit=unit, commit=True)
            outcome = "saved"
        except (importing.ImportRejected, bulk_import.BulkRejected):
            outcome = "rejected"
        result = (outcome, state())
        transaction.set_rollback(True)
    return result


def assert_same(name, data, *, user=None, unit=None):
    global IMPORT_STARTED
    expected = normalised(row_plan(name, data, user=user, unit=unit))
    assert normalised(bulk_plan(name, data, user=user, unit=unit)) == expected
    IMPORT_STARTED = timezone.now()
    before = state()
    row_outcome = applied("rows", name, data, user=user, unit=unit)
    bulk_outcome = applied("bulk", name, data, user=user, unit=unit)
    assert state() == before
    assert bulk_outcome[0] == row_outcome[0]
    for got, want in zip(bulk_outcome[1], row_outcome[1], strict=True):
        assert got == want
    return expected, row_outcome


@pytest.fixture
def other_agent(province, other_unit):
    organisation = OrganisationFactory(province=province, unit=other_unit, code="TCDV-T2")
    return AgentFactory(organisation=organisation, code="NVT-T2")


@pytest.fixture
def history(unit, commune, staff_user):
    """People with coverage already: one to renew, one to resume, one with a later record to back-date before."""
    renewer = ParticipantFactory(si_number="2400000001", date_of_birth=D(1980, 1, 1), full_name="Cũ Một")
    record(renewer, unit=unit, commune=commune, start=D(2023, 3, 1), months=12, user=staff_user)
    resumer = ParticipantFactory(si_number="2400000002", date_of_birth=D(1981, 2, 2), full_name="Cũ Hai")
    record(resumer, unit=unit, commune=commune, start=D(2022, 1, 1), months=12, user=staff_user)
    later = ParticipantFactory(si_number="2400000003", date_of_birth=D(1982, 3, 3), full_name="Cũ Ba")
    record(later, unit=unit, commune=commune, start=D(2024, 1, 1), months=1, enrolled_on=D(2024, 1, 5))
    record(later, unit=unit, commune=commune, start=D(2024, 2, 1), months=1, enrolled_on=D(2024, 2, 5))
    return renewer, resumer, later


def test_a_valid_list_gives_the_same_plan_and_the_same_saved_rows_on_both_paths(commune, agent, staff_user):
    rows = [person_row(f"24020000{i:02d}", commune, name=f"Người  Nhập {i}", agent=agent.code) for i in range(5)]
    rows.append(person_row("2402000099", commune, scheme="BHYT hộ gia đình", gender="Nam", months="12.0"))
    expected, (outcome, (people, enrollments, histories, _people_hist)) = assert_same(
        "list.csv", csv_bytes(rows), user=staff_user
    )
    assert expected["counts"] == {"rows": 6, "create": 6, "duplicate": 0, "error": 0}
    assert outcome == "saved" and len(enrollments) == 6 and {e[5] for e in enrollments} == {"new"}
    assert people["2402000000"]["full_name"] == "Người Nhập 0"


def test_errors_give_the_same_messages_on_both_paths(commune, other_commune, agent, other_agent, staff_user, unit):
    ParticipantFactory(si_number="2403000009", date_of_birth=D(1970, 5, 5))
    rows = [
        person_row("24O3000001", commune),  # letter O
        person_row("240300001", commune),  # nine digits
        person_row("...", commune),
        person_row("2403000002", commune, dob="31/02/1985"),
        person_row("2403000003", commune, enrolled="hôm qua"),
        person_row("2403000004", commune, start="2024-13-01"),
        person_row("2403000005", commune, gender="khác"),
        person_row("2403000006", commune, scheme="bhxh bắt buộc"),
        person_row("2403000007", commune, months="1.5"),
        person_row("2403000008", commune, months="5"),
        person_row("2403000010", commune, scheme="hi_family", months="6"),
        ["2403000011", "Không Xã", "01/01/1980", "nam", "99999", "vsi", "14/03/2024", "2024-03-01", "12", ""],
        person_row("2403000012", other_commune),  # another unit's commune: not in a staff user's area
        person_row("2403000013", commune, agent="NVT-KHONG"),
        person_row("2403000014", commune, agent=other_agent.code),
        person_row("2403000015", commune, dob="01/01/2999"),
        person_row("2403000016", commune, dob="01/01/1850"),
        person_row("2403000017", commune, dob="01/06/2015"),  # 8 years old, VSI
        person_row("2403000018", commune, enrolled="01/01/2999"),
        ["2403000019", "", "", "", "", "", "", "", "", ""],
        person_row("2403000009", commune, dob="06/06/1966"),  # known number, other birth date
        person_row("2403000020", commune, dob="01/01/1990"),
        person_row("2403000020", commune, dob="02/02/1991", start="2025-03-01"),  # same new number, other birth date
        ["", "", "", "", "", "", "", "", "", "", "extra"],
    ]
    for user in (staff_user, None):
        expected, (outcome, _state) = assert_same("errors.csv", csv_bytes(rows), user=user)
        assert outcome == "rejected" and expected["counts"]["error"] >= 20
    assert_same("errors.csv", csv_bytes(rows), unit=unit)


def test_duplicates_and_overlaps_within_the_file_and_against_the_database(commune, unit, staff_user, history):
    renewer, _resumer, _later = history
    rows = [
        # exact repeat of an existing record: skipped
        person_row(renewer.si_number, commune, dob="01/01/1980", start="2023-03-01", enrolled="01/03/2023"),
        person_row("2404000001", commune, start="2024-01-01"),
        person_row("2404000001", commune, start="2024-01-01"),  # the same as the row before: skipped
        person_row("2404000002", commune, start="2024-01-01", months="12"),
        person_row("2404000002", commune, start="2024-06-01", months="12"),  # overlaps the row before: error
        person_row("2404000002", commune, start="2025-01-01", months="6"),  # overlaps only the refused row: saved
        person_row("2404000003", commune, start="2024-01-01", months="3"),
        person_row("2404000003", commune, start="2024-01-01", months="1"),  # same start, other months: error
    ]
    expected, (outcome, _state) = assert_same("dups.csv", csv_bytes(rows), user=staff_user)
    assert outcome == "rejected"
    assert expected["counts"] == {"rows": 8, "create": 4, "duplicate": 2, "error": 2}
    clean = [r for i, r in enumerate(rows) if i not in (4, 7)]
    expected, (outcome, (_people, enrollments, _h, _ph)) = assert_same("dups.csv", csv_bytes(clean), user=staff_user)
    assert outcome == "saved" and expected["counts"] == {"rows": 6, "create": 4, "duplicate": 2, "error": 0}
    overlap = [person_row(renewer.si_number, commune, dob="01/01/1980", start="2023-09-01", months="6")]
    expected, _ = assert_same("overlap.csv", csv_bytes(overlap))
    assert "overlaps this one" in expected["errors"][0]["errors"]["coverage_start"][0]


def test_renewals_resumptions_and_back_dated_rows_derive_the_same_kinds(commune, unit, staff_user, history):
    renewer, resumer, later = history
    rows = [
        person_row(renewer.si_number, commune, dob="01/01/1980", name="Cũ Một Đổi Tên", start="2024-03-01"),
        person_row(resumer.si_number, commune, dob="02/02/1981", start="2024-03-01", gender="male"),
        # before both of this person's records: the later ones are re-derived
        person_row(later.si_number, commune, dob="03/03/1982", start="2023-11-01", months="1"),
        # a new person's later row first, then an earlier one (back-dated within the file)
        person_row("2405000001", commune, start="2024-03-01", months="3", enrolled="01/03/2024"),
        person_row("2405000001", commune, start="2023-12-01", months="3", enrolled="01/12/2023"),
        person_row("2405000002", commune, start="2023-01-01", months="6"),
        person_row("2405000002", commune, start="2024-01-01", months="6"),
    ]
    expected, (outcome, (people, enrollments, histories, _ph)) = assert_same(
        "kinds.csv", csv_bytes(rows), user=staff_user
    )
    assert outcome == "saved"
    kinds = {(e[0], e[2]): e[5] for e in enrollments}
    assert kinds[(renewer.si_number, D(2024, 3, 1))] == "renewal"
    assert kinds[(resumer.si_number, D(2024, 3, 1))] == "resumed"
    assert kinds[(later.si_number, D(2023, 11, 1))] == "new"
    assert kinds[(later.si_number, D(2024, 1, 1))] == "resumed"
    assert kinds[("2405000001", D(2023, 12, 1))] == "new" and kinds[("2405000001", D(2024, 3, 1))] == "renewal"
    assert kinds[("2405000002", D(2024, 1, 1))] == "resumed"
    assert people[renewer.si_number]["full_name"] == "Cũ Một Đổi Tên"
    assert expected["create_sample"][0]["changes"] == {"full_name": ["Cũ Một", "Cũ Một Đổi Tên"]}


def test_an_xlsx_with_number_and_date_cells_gives_the_same_outcome(commune, staff_user):
    rows = [
        [
            123456789,
            "Số Không Đầu",
            datetime.datetime(1985, 6, 1),
            "nam",
            commune.code,
            "vsi",
            datetime.datetime(2024, 3, 14),
            datetime.datetime(2024, 3, 1),
            12,
            None,
        ],
        ["2406000001", "Chữ", "01/06/1985", "nữ", commune.code, "vsi", "14/03/2024", "01/03/2024", 3.0, None],
    ]
    expected = normalised(row_plan("list.xlsx", xlsx_bytes(rows), user=staff_user))
    got = normalised(bulk_plan("list.xlsx", xlsx_bytes(rows), user=staff_user))
    assert got["counts"] == expected["counts"] == {"rows": 2, "create": 2, "duplicate": 0, "error": 0}
    for row in expected["create_sample"] + got["create_sample"]:
        row.pop("values")  # typed cells are echoed as read (see bulk_import's docstring)
    assert got == expected
    with transaction.atomic():
        bulk_import.bulk_import(name="list.xlsx", stream=io.BytesIO(xlsx_bytes(rows)), user=staff_user, commit=True)
        assert Participant.objects.filter(si_number="0123456789").exists()
        transaction.set_rollback(True)


def test_importing_the_same_file_twice_adds_nothing_and_sends_one_signal(
    commune, agent, staff_user, django_capture_on_commit_callbacks
):
    rows = [person_row(f"24070000{i:02d}", commune, agent=agent.code, enrolled=f"{10 + i}/03/2024") for i in range(4)]
    data = csv_bytes(rows)
    sent = []

    def receiver(sender, **kwargs):
        sent.append(kwargs)

    enrollments_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            plan = bulk_import.bulk_import(name="l.csv", stream=io.BytesIO(data), user=staff_user, commit=True)
        assert plan.counts() == {"rows": 4, "create": 4, "duplicate": 0, "error": 0}
        with django_capture_on_commit_callbacks(execute=True):
            again = bulk_import.bulk_import(name="l.csv", stream=io.BytesIO(data), user=staff_user, commit=True)
    finally:
        enrollments_changed.disconnect(receiver)
    assert again.counts() == {"rows": 4, "create": 0, "duplicate": 4, "error": 0}
    assert Enrollment.objects.count() == 4 and Enrollment.history.filter(history_type="+").count() == 4
    assert len(sent) == 1
    assert sent[0]["unit_ids"] == frozenset({commune.district_id})
    assert sent[0]["days"] == frozenset(D(2024, 3, 10 + i) for i in range(4))
    assert sent[0]["schemes"] == frozenset({"vsi"}) and sent[0]["coverage_since"] == D(2024, 3, 1)
    assert set(Enrollment.objects.values_list("recorded_by_id", flat=True)) == {staff_user.pk}
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp.bi_stage')")
        assert cursor.fetchone()[0] is None  # the staging tables are gone; the next import can start


def test_a_staff_user_cannot_import_into_another_units_commune(commune, other_commune, staff_user):
    data = csv_bytes([person_row("2408000001", other_commune)])
    with pytest.raises(bulk_import.BulkRejected) as caught:
        bulk_import.bulk_import(name="l.csv", stream=io.BytesIO(data), user=staff_user, commit=True)
    message = caught.value.plan.errors[0].errors["commune_code"][0]
    assert message == f"There is no commune with code {other_commune.code} in your area."
    assert not Enrollment.objects.exists() and not Participant.objects.exists()


def test_messages_are_in_vietnamese_for_a_vietnamese_officer(commune, staff_user):
    from django.utils import translation

    data = csv_bytes([person_row("12345", commune)])
    with translation.override("vi"):
        expected = row_plan("l.csv", data, user=staff_user)["errors"][0]["errors"]
        got = bulk_plan("l.csv", data, user=staff_user)["errors"][0]["errors"]
    assert got == expected and "10" in got[0]["messages"][0]


def test_whole_file_errors_and_the_row_bound(commune, settings):
    for name, data, words in (
        ("l.csv", b"  \n", "empty"),
        ("l.csv", b"si_number,full_name\n1,2\n", "missing"),
        ("l.xlsx", b"si_number\n", "not a real Excel"),
        ("l.csv", "si_number\n".encode("utf-16"), "neither"),
        ("l.csv", csv_bytes([]), "no enrollments"),
    ):
        with pytest.raises(importing.ImportFileError, match=words):
            bulk_import.bulk_import(name=name, stream=io.BytesIO(data), commit=False)
    settings.MAX_BULK_IMPORT_ROWS = 3
    data = csv_bytes([person_row(f"24090000{i:02d}", commune) for i in range(5)])
    with pytest.raises(importing.ImportFileError, match="more than 3 rows"):
        bulk_import.bulk_import(name="l.csv", stream=io.BytesIO(data), commit=False)


def test_the_command_uses_the_set_based_path_and_its_dry_run_saves_nothing(commune, tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(csv_bytes([person_row(f"24100000{i:02d}", commune) for i in range(3)]))
    out = io.StringIO()
    call_command("import_enrollments", str(path), dry_run=True, stdout=out, stderr=io.StringIO())
    assert "would create 3" in out.getvalue() and not Enrollment.objects.exists()
    call_command("import_enrollments", str(path), stdout=out, stderr=io.StringIO())
    assert Enrollment.objects.count() == 3
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([person_row("24100000x1", commune)]))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 row"):
        call_command("import_enrollments", str(bad), stdout=io.StringIO(), stderr=err)
    assert "row 2, si_number" in err.getvalue()


def test_a_long_list_of_errors_shows_the_first_rows_and_counts_them_all(commune, monkeypatch):
    monkeypatch.setattr(bulk_import, "ERROR_SAMPLE", 3)
    rows = [person_row(f"24110000{i:02d}", commune, months="7") for i in range(8)]
    rows += [person_row(f"24120000{i:02d}", commune) for i in range(2)]
    with pytest.raises(bulk_import.BulkRejected) as caught:
        bulk_import.bulk_import(name="l.csv", stream=io.BytesIO(csv_bytes(rows)), commit=True)
    plan = caught.value.plan
    assert plan.counts() == {"rows": 10, "create": 2, "duplicate": 0, "error": 8}
    assert [r.number for r in plan.errors] == [2, 3, 4]
    assert plan.as_json()["errors"][0]["errors"][0]["column"] == "months"
    assert not Enrollment.objects.exists()


@pytest.mark.parametrize("seed", range(8))
def test_random_lists_give_the_same_outcome_on_both_paths(
    seed, province, commune, other_commune, foreign_unit, agent, other_agent, staff_user, history
):
    """Lists drawn from a small pool of good and bad values, so that repeats, overlaps, renewals, clashes with the
    database and every kind of error meet in one file; imported by a unit officer, the provincial office, the
    command line, and the command line with --unit."""
    import random

    from districts.models import District
    from districts.scoping import ROLE_STAFF
    from tests.factories import CommuneFactory, DistrictFactory, make_user

    rng = random.Random(seed)
    office = DistrictFactory(province=province, code="VP924", name="Văn phòng", kind=District.Kind.PROVINCIAL_OFFICE)
    foreign_commune = CommuneFactory(district=foreign_unit, code="98001")
    who = [
        {"user": staff_user},
        {"user": make_user(ROLE_STAFF, province=province, unit=office, username="office1")},
        {},
        {"unit": commune.district},
    ][seed % 4]
    renewer, resumer, later = history
    people = [
        (renewer.si_number, "01/01/1980"),
        (resumer.si_number, "1981-02-02"),
        (later.si_number, "03/03/1982"),
        (later.si_number, "04/04/1984"),  # the right number with another birth date
        *[(f"24130000{i:02d}", rng.choice(["01/06/1985", "1990-12-31", "29/02/2000"])) for i in range(6)],
        ("2413 000 099", "01/01/1970"),
        ("24130000x9", "01/01/1970"),
    ]
    starts = [
        "2022-12-01",
        "2023-03-01",
        "2023-06-01",
        "2023-11-01",
        "2024-01-01",
        "2024-02-01",
        "2024-03-01",
        "31/01/2024",
        "2024-02-30",
        "sau",
    ]
    rows = []
    for _ in range(40):
        si, dob = rng.choice(people)
        scheme = rng.choice(["vsi", "vsi", "hi_family", "BHYT HGĐ", "khác"])
        months = rng.choice(["1", "3", "6", "12", "12", "24", "5", "x"])
        place = rng.choice([commune] * 6 + [other_commune, foreign_commune])
        start = rng.choice(starts)
        rows.append(
            [
                si,
                rng.choice(["Người Thử", "  Người   Thử ", "Người Khác", ""]),
                dob,
                rng.choice(["nam", "Nữ", "female", "?"]),
                place.code,
                scheme,
                rng.choice(["14/03/2024", "2024-03-01", "01/12/2023", "2999-01-01"]),
                start,
                months,
                rng.choice(["", "", "", agent.code, other_agent.code, "NVT-X"]),
            ]
        )
    data = csv_bytes(rows)
    assert_same("random.csv", data, **who)
    # Without the file's errors the rest is saved: the same rows, kinds and people on both paths.
    errors = {r["number"] for r in row_plan("random.csv", data, **who)["errors"]}
    clean = [r for number, r in enumerate(rows, start=2) if number not in errors]
    if clean:
        expected, (outcome, _state) = assert_same("clean.csv", csv_bytes(clean), **who)
        assert outcome == "saved"


def test_the_command_prints_the_same_report_row_by_row_and_set_based(commune, tmp_path, history):
    renewer, _resumer, _later = history
    path = tmp_path / "list.csv"
    rows = [
        person_row(renewer.si_number, commune, dob="01/01/1980", start="2023-03-01", enrolled="01/03/2023"),
        person_row("2414000001", commune),
        person_row("2414000001", commune),
        person_row("2414000002", commune, months="7"),
    ]
    path.write_bytes(csv_bytes(rows))
    outputs = []
    for flags in ({}, {"row_by_row": True}):
        out, err = io.StringIO(), io.StringIO()
        with pytest.raises(CommandError, match="1 row"):
            call_command("import_enrollments", str(path), dry_run=True, stdout=out, stderr=err, **flags)
        outputs.append((out.getvalue(), err.getvalue()))
    assert outputs[0] == outputs[1]
    assert "row 5, months" in outputs[0][1] and "row 2: Already recorded" in outputs[0][0]
