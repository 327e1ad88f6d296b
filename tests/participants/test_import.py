import datetime
import io
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from participants import importing, views
from participants.models import Enrollment, EnrollmentUpload, Participant
from tests.factories import ParticipantFactory
from tests.participants.conftest import login, record

pytestmark = pytest.mark.django_db
D = datetime.date
HEADER = importing.COLUMNS


def rows_for(commune, agent=None, count=3, start_number=2402000000):
    return [
        [
            str(start_number + i),
            f"Người Nhập {i}",
            "01/06/1985",
            "female" if i % 2 else "male",
            commune.code,
            "vsi",
            "14/03/2024",
            "2024-03-01",
            "12",
            agent.code if agent else "",
        ]
        for i in range(count)
    ]


def csv_bytes(rows, header=HEADER):
    lines = [",".join(header)] + [",".join(str(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def xlsx_bytes(rows, header=HEADER):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(header))
    for r in rows:
        sheet.append(r)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(client, name, data):
    response = client.post(reverse("participants:enrollment_upload"), {"file": SimpleUploadedFile(name, data)})
    assert response.status_code == 302, response.content.decode()[:2000]
    return EnrollmentUpload.objects.get(pk=response["Location"].rstrip("/").split("/")[-1]), response["Location"]


def confirm(client, item):
    return client.post(reverse("participants:enrollment_upload_confirm", args=[item.pk]))


def test_a_good_csv_is_previewed_then_saved_on_confirm(staff_client, commune, agent, staff_user):
    item, location = upload(staff_client, "list.csv", csv_bytes(rows_for(commune, agent)))
    assert item.status == "ready"
    assert not Enrollment.objects.exists()  # nothing before confirmation
    page = staff_client.get(location).content.decode()
    assert "Người Nhập 0" in page and 'id="creates"' in page
    assert item.report["counts"] == {"rows": 3, "create": 3, "duplicate": 0, "error": 0}
    response = confirm(staff_client, item)
    assert response.status_code == 302
    assert Enrollment.objects.count() == 3
    enrollment = Enrollment.objects.order_by("pk").first()
    assert enrollment.recorded_by == staff_user and enrollment.agent == agent and enrollment.kind == "new"
    assert enrollment.unit == commune.district
    item.refresh_from_db()
    assert item.status == "done" and item.created_count == 3


def test_an_xlsx_with_vietnamese_headers_and_dates_is_read(staff_client, commune):
    header = [importing.TEMPLATE_HEADERS_VI[c] for c in HEADER]
    rows = rows_for(commune, count=2)
    rows[0][2] = datetime.datetime(1985, 6, 1)  # a real date cell
    rows[1][7] = "01/03/2024"
    rows[1][8] = 12  # a number cell
    rows[1][0] = 2402000001  # an SI number stored as a number
    rows[0][0] = 402000000  # ... whose leading zero the number cell dropped (0402000000)
    rows[0][5] = "BHXH tự nguyện"
    item, _location = upload(staff_client, "danh-sach.xlsx", xlsx_bytes(rows, header))
    assert item.status == "ready", item.report
    confirm(staff_client, item)
    assert Enrollment.objects.count() == 2
    assert set(Participant.objects.values_list("si_number", flat=True)) == {"0402000000", "2402000001"}


def test_a_file_with_one_bad_row_saves_nothing_and_says_where(staff_client, commune):
    rows = rows_for(commune, count=4)
    rows[2][2] = "31/02/1985"
    rows[3][8] = "7"
    item, location = upload(staff_client, "list.csv", csv_bytes(rows))
    assert item.status == "invalid"
    errors = {(r["number"], e["column"]) for r in item.report["errors"] for e in r["errors"]}
    assert errors == {(4, "date_of_birth"), (5, "months")}
    page = staff_client.get(location).content.decode()
    assert "31/02/1985 is not a date that exists." in page and "Date of birth" in page
    assert "months paid must be one of: 1, 3, 6, 12, 24, 36, 48, 60" in page
    response = confirm(staff_client, item)
    assert response.status_code == 302
    assert not Enrollment.objects.exists() and not Participant.objects.exists()


def test_the_same_file_twice_creates_nothing_the_second_time(staff_client, commune):
    data = csv_bytes(rows_for(commune))
    first, _ = upload(staff_client, "list.csv", data)
    confirm(staff_client, first)
    assert Enrollment.objects.count() == 3
    second, location = upload(staff_client, "list.csv", data)
    assert second.report["counts"] == {"rows": 3, "create": 0, "duplicate": 3, "error": 0}
    assert "nothing new to save" in staff_client.get(location).content.decode()
    confirm(staff_client, second)
    assert Enrollment.objects.count() == 3


def test_confirming_twice_saves_once(staff_client, commune):
    item, _ = upload(staff_client, "list.csv", csv_bytes(rows_for(commune)))
    confirm(staff_client, item)
    confirm(staff_client, item)
    assert Enrollment.objects.count() == 3


def test_a_row_that_became_a_conflict_after_the_preview_rolls_back_the_whole_import(staff_client, commune, unit):
    rows = rows_for(commune)
    item, _ = upload(staff_client, "list.csv", csv_bytes(rows))
    # Meanwhile someone records the third person with a different, overlapping coverage.
    person = ParticipantFactory(si_number=rows[2][0], date_of_birth=D(1985, 6, 1))
    record(person, unit=unit, commune=commune, start=D(2024, 6, 1), months=6)
    confirm(staff_client, item)
    assert Enrollment.objects.count() == 1
    assert Participant.objects.count() == 1
    item.refresh_from_db()
    assert item.status == "invalid" and item.report["counts"]["error"] == 1


def test_rows_within_one_file_that_overlap_are_errors_and_identical_ones_are_skipped(staff_client, commune):
    rows = rows_for(commune, count=1)
    rows.append(list(rows[0]))  # identical
    overlapping = list(rows[0])
    overlapping[7] = "2024-06-01"
    rows.append(overlapping)
    item, _ = upload(staff_client, "list.csv", csv_bytes(rows))
    assert item.report["counts"] == {"rows": 3, "create": 1, "duplicate": 1, "error": 1}


def test_a_commune_of_another_unit_is_an_error_in_a_staff_members_upload(staff_client, commune, other_commune):
    rows = rows_for(commune, count=2)
    rows[1][4] = other_commune.code
    item, _ = upload(staff_client, "list.csv", csv_bytes(rows))
    assert item.status == "invalid"
    assert item.report["errors"][0]["errors"][0]["column"] == "commune_code"
    assert "in your area" in item.report["errors"][0]["errors"][0]["messages"][0]


def test_a_known_person_recorded_elsewhere_is_not_shown_with_old_details(
    staff_client, commune, other_unit, other_commune
):
    person = ParticipantFactory(si_number="2402000000", full_name="Tên Cũ Bí Mật", date_of_birth=D(1985, 6, 1))
    record(person, unit=other_unit, commune=other_commune, start=D(2020, 1, 1))
    item, location = upload(staff_client, "list.csv", csv_bytes(rows_for(commune, count=1)))
    assert item.status == "ready"
    assert "Bí Mật" not in staff_client.get(location).content.decode()


def test_another_users_upload_answers_404(client, staff_client, commune, other_staff_user):
    item, _ = upload(staff_client, "list.csv", csv_bytes(rows_for(commune)))
    login(client, other_staff_user)
    assert client.get(reverse("participants:enrollment_upload_detail", args=[item.pk])).status_code == 404
    assert confirm(client, item).status_code == 404
    assert not Enrollment.objects.exists()


# ------------------------------------------------------------------------------------------- hostile files


def _upload_error(client, name, data):
    response = client.post(reverse("participants:enrollment_upload"), {"file": SimpleUploadedFile(name, data)})
    if response.status_code == 200:
        return response.content.decode()
    item = EnrollmentUpload.objects.get(pk=response["Location"].rstrip("/").split("/")[-1])
    assert item.status == "invalid"
    return item.report["file_error"]


def test_an_oversized_file_is_refused(staff_client, settings, commune):
    settings.MAX_UPLOAD_BYTES = 500
    message = _upload_error(staff_client, "big.csv", csv_bytes(rows_for(commune, count=20)))
    assert "too large" in message
    assert not EnrollmentUpload.objects.exists()


def test_too_many_rows_are_refused(staff_client, settings, commune):
    settings.MAX_IMPORT_ROWS = 5
    message = _upload_error(staff_client, "many.csv", csv_bytes(rows_for(commune, count=6)))
    assert "more than 5 rows" in message


def test_a_text_file_named_xlsx_is_refused(staff_client):
    message = _upload_error(staff_client, "fake.xlsx", b"si_number,full_name\n1,2\n")
    assert "not a real Excel workbook" in message


def test_a_zip_that_is_not_a_workbook_is_refused(staff_client):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hello")
    assert "not an Excel workbook" in _upload_error(staff_client, "list.xlsx", out.getvalue())


def test_a_broken_workbook_is_refused_with_a_clear_message(staff_client):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<not-xml")
        archive.writestr("xl/workbook.xml", "garbage")
    assert "could not be read" in _upload_error(staff_client, "list.xlsx", out.getvalue())


def test_a_zip_bomb_is_refused_before_it_is_unpacked(staff_client):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (30 * 1024 * 1024))
    data = out.getvalue()
    assert len(data) < 100_000
    assert "zip bomb" in _upload_error(staff_client, "bomb.xlsx", data)


def test_a_file_without_the_required_columns_names_them(staff_client):
    message = _upload_error(staff_client, "list.csv", b"name,dob\nA,1\n")
    assert "These columns are missing" in message and "si_number" in message


def test_a_csv_that_is_not_utf8_is_refused_with_advice(staff_client):
    message = _upload_error(staff_client, "list.csv", "si_number,full_name\n1,Nguy\u1ec5n\n".encode("utf-16"))
    assert "UTF-8" in message


def test_a_manager_cannot_upload(client, manager_user, commune):
    login(client, manager_user)
    response = client.post(
        reverse("participants:enrollment_upload"), {"file": SimpleUploadedFile("l.csv", csv_bytes(rows_for(commune)))}
    )
    assert response.status_code == 403
    assert not EnrollmentUpload.objects.exists()


# ------------------------------------------------------------------------------------- background task


def test_a_large_upload_is_checked_and_saved_by_celery_tasks(
    staff_client, commune, monkeypatch, django_capture_on_commit_callbacks, celery_eager
):
    monkeypatch.setattr(views, "SYNC_CHECK_BYTES", 0)
    monkeypatch.setattr(views, "SYNC_CONFIRM_ROWS", 0)
    with django_capture_on_commit_callbacks(execute=True):
        item, location = upload(staff_client, "list.csv", csv_bytes(rows_for(commune, count=5)))
    item.refresh_from_db()
    assert item.task_id and item.status == "ready"
    with django_capture_on_commit_callbacks(execute=True):
        confirm(staff_client, item)
    item.refresh_from_db()
    assert item.status == "done" and Enrollment.objects.count() == 5
    fragment = staff_client.get(location, HTTP_HX_REQUEST="true")
    assert fragment["HX-Refresh"] == "true"


def test_the_progress_fragment_polls_while_a_task_runs(staff_client, commune):
    item, location = upload(staff_client, "list.csv", csv_bytes(rows_for(commune)))
    EnrollmentUpload.objects.filter(pk=item.pk).update(status="importing")
    fragment = staff_client.get(location, HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 1s"' in fragment.content.decode()
    assert "HX-Refresh" not in fragment


# ------------------------------------------------------------------------------------------------ command


def test_the_command_dry_run_saves_nothing_and_the_real_run_saves_all(tmp_path, commune, capsys):
    path = tmp_path / "list.csv"
    path.write_bytes(csv_bytes(rows_for(commune)))
    call_command("import_enrollments", str(path), "--dry-run")
    assert "would create 3" in capsys.readouterr().out
    assert not Enrollment.objects.exists()
    call_command("import_enrollments", str(path))
    assert Enrollment.objects.count() == 3
    assert Enrollment.objects.first().unit == commune.district
    call_command("import_enrollments", str(path))
    assert "created 0, already recorded 3" in capsys.readouterr().out
    assert Enrollment.objects.count() == 3


def test_the_command_refuses_communes_outside_the_given_unit(tmp_path, commune, other_commune, unit):
    rows = rows_for(commune, count=2)
    rows[1][4] = other_commune.code
    path = tmp_path / "list.xlsx"
    path.write_bytes(xlsx_bytes(rows))
    with pytest.raises(CommandError, match="nothing was saved"):
        call_command("import_enrollments", str(path), "--unit", unit.code)
    assert not Enrollment.objects.exists()


def test_the_command_reports_a_hostile_file(tmp_path, db):
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"not a workbook")
    with pytest.raises(CommandError, match="not a real Excel workbook"):
        call_command("import_enrollments", str(path))


def test_a_whole_import_sends_one_enrollments_changed_signal(tmp_path, commune, django_capture_on_commit_callbacks):
    from participants.signals import enrollments_changed

    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    enrollments_changed.connect(receiver)
    try:
        path = tmp_path / "list.csv"
        path.write_bytes(csv_bytes(rows_for(commune, count=4)))
        with django_capture_on_commit_callbacks(execute=True):
            call_command("import_enrollments", str(path))
    finally:
        enrollments_changed.disconnect(receiver)
    assert len(received) == 1
    assert received[0]["unit_ids"] == {commune.district_id}
    assert received[0]["days"] == {D(2024, 3, 14)} and received[0]["schemes"] == {"vsi"}


def test_a_failed_upload_says_nothing_was_saved_and_stops_polling(staff_client, commune):
    item, location = upload(staff_client, "list.csv", csv_bytes(rows_for(commune)))
    EnrollmentUpload.objects.filter(pk=item.pk).update(status="failed")
    page = staff_client.get(location).content.decode()
    assert "nothing was saved" in page and "every 1s" not in page
    assert confirm(staff_client, item).status_code == 302
    assert not Enrollment.objects.exists()


def _xlsx_with(commune, extra=None, duplicate=False):
    base = zipfile.ZipFile(io.BytesIO(xlsx_bytes(rows_for(commune, count=1))))
    out = io.BytesIO()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(out, "w") as archive:
            for info in base.infolist():
                archive.writestr(info.filename, base.read(info))
            for name, content in (extra or {}).items():
                archive.writestr(name, content)
            if duplicate:
                archive.writestr("xl/worksheets/sheet1.xml", base.read("xl/worksheets/sheet1.xml"))
    return out.getvalue()


@pytest.mark.parametrize(
    ("extra", "duplicate", "fragment"),
    [
        ({"../../evil.txt": b"x"}, False, "unsafe or repeated names"),
        ({"/etc/cron.d/evil": b"x"}, False, "unsafe or repeated names"),
        ({"..\\evil.bat": b"x"}, False, "unsafe or repeated names"),
        ({}, True, "unsafe or repeated names"),
        ({"xl/externalLinks/externalLink1.xml": b"<externalLink/>"}, False, "links to other files"),
        ({"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0"}, False, "holds macros"),
    ],
)
def test_workbooks_with_unsafe_parts_are_refused(staff_client, commune, extra, duplicate, fragment):
    message = _upload_error(staff_client, "list.xlsx", _xlsx_with(commune, extra, duplicate))
    assert fragment in message
    assert not Enrollment.objects.exists()


@pytest.mark.parametrize("column", ["full_name", "commune_code", "collection_agent_code", "si_number"])
def test_a_null_character_in_a_cell_is_an_error_on_that_cell_not_a_crash(staff_user, commune, column):
    raw = dict(zip(HEADER, rows_for(commune, count=1)[0], strict=True)) | {"_row": 2, column: "97\x00001"}
    plan = importing.import_plan(rows=[raw], user=staff_user)
    assert plan.counts()["create"] == 0
    assert [e for e in plan.errors[0].errors] == [column]
    assert "null" in plan.errors[0].errors[column][0]


def test_a_negative_or_huge_page_size_is_clamped(staff_client, unit, commune):
    record(unit=unit, commune=commune)
    for value in ("-5", "0", "100000000", "abc"):
        assert staff_client.get(reverse("participants:enrollment_list"), {"per_page": value}).status_code == 200


def test_the_command_leaves_an_audit_event_like_the_browser_upload(tmp_path, commune):
    from audit.models import AuditEvent

    path = tmp_path / "danh-sach.csv"
    path.write_bytes(csv_bytes(rows_for(commune)))
    call_command("import_enrollments", str(path), "--unit", commune.district.code)
    event = AuditEvent.objects.get(action=AuditEvent.Action.IMPORTED)
    assert "danh-sach.csv" in event.detail and "3 created" in event.detail
