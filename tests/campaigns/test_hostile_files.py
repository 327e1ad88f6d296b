"""Awkward and hostile target files: each gets a clear message and nothing is saved."""

import io
import time
import unicodedata
import zipfile

import openpyxl
import pytest
from django.urls import reverse
from django.utils import translation

from campaigns import importing
from campaigns.models import Target, TargetImport
from tests.campaigns.conftest import HEADERS_VI, csv_bytes, upload, xlsx_bytes


@pytest.fixture(autouse=True)
def _english_messages():
    """Service-level messages are checked in English here; the pages are checked in Vietnamese, the default."""
    with translation.override("en"):
        yield


def to_cp1258(text: str) -> bytes:
    """As Vietnamese Windows saves it: precomposed letters where the code page has them, else base + tone mark."""
    out = b""
    for ch in text:
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            tones = "".join(c for c in parts if c in "\u0300\u0301\u0303\u0309\u0323")
            base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in tones))
            out += (base + tones).encode("cp1258")
    return out


def _rejected(data, name):
    with pytest.raises(importing.FileRejected) as excinfo:
        importing.read_table(data, name)
    return excinfo.value.message


def test_a_utf8_csv_is_read_with_or_without_a_bom(campaign, unit):
    for bom in (True, False):
        table = importing.read_table(csv_bytes([HEADERS_VI, ["", "Huyện Yên Thử", 1, 2]], bom=bom), "t.csv")
        assert table.headers["unit_name"] == "Tên đơn vị"
        assert table.rows[0]["cells"]["unit_name"] == "Huyện Yên Thử"


def test_a_semicolon_separated_csv_from_vietnamese_excel_is_read(campaign, unit):
    table = importing.read_table(csv_bytes([HEADERS_VI, [unit.code, "", 1, 2]], delimiter=";"), "t.csv")
    assert importing.build_preview(campaign, table).is_valid


def test_a_utf16_csv_with_its_bom_is_read(campaign, unit):
    data = "\t".join(HEADERS_VI).encode("utf-16") + "\r\n9221\tHuyện Yên Thử\t1\t2\r\n".encode("utf-16-le")
    table = importing.read_table(data, "t.csv")
    assert table.rows[0]["cells"]["unit_name"] == "Huyện Yên Thử"


@pytest.mark.parametrize(
    "data",
    [
        to_cp1258("Mã đơn vị,Tên đơn vị,BHXH tự nguyện,BHYT hộ gia đình\r\n,Huyện Yên Thử,1,2\r\n"),
        "unit_code,unit_name,vsi_target,hi_target\r\n,Hà Nam,1,2\r\n".encode("cp1252"),
    ],
    ids=["cp1258", "windows-1252"],
)
def test_a_csv_in_a_legacy_windows_encoding_is_refused_with_how_to_save_it(data):
    message = _rejected(data, "t.csv")
    assert "UTF-8" in message and "Save As" in message


def test_an_oversized_file_is_refused_before_it_is_parsed(settings):
    message = _rejected(b"a" * (importing.max_file_bytes() + 1), "t.csv")
    assert "too large" in message


def test_a_file_named_xlsx_that_is_not_a_workbook_is_refused():
    assert "not really an Excel workbook" in _rejected(b"<html>hello</html>", "chi-tieu.xlsx")


def test_an_old_xls_file_is_refused_with_how_to_save_it():
    assert ".xls" in _rejected(importing.OLE2_MAGIC + b"\x00" * 600, "chi-tieu.xls")


def test_a_zip_that_is_not_a_workbook_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hi")
    assert "not an Excel workbook" in _rejected(out.getvalue(), "t.xlsx")


def test_a_zip_bomb_is_refused_on_its_declared_sizes_before_decompression():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (60 * 1024 * 1024))
    data = out.getvalue()
    assert len(data) < 200_000  # small on disk, 60 MB unpacked
    assert "far more data" in _rejected(data, "t.xlsx")


def test_a_workbook_with_too_many_entries_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        for n in range(importing.MAX_ZIP_ENTRIES + 1):
            archive.writestr(f"xl/extra/{n}.xml", "")
    assert "far more data" in _rejected(out.getvalue(), "t.xlsx")


def test_a_damaged_workbook_is_refused():
    data = xlsx_bytes([HEADERS_VI, ["9221", "", 1, 2]])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            dst.writestr(info, b"<not-xml" if info.filename.endswith("sheet1.xml") else body)
    assert "could not be read" in _rejected(out.getvalue(), "t.xlsx")


def test_a_sheet_with_a_million_empty_rows_is_read_quickly_and_stops_at_the_table(campaign, unit, settings):
    """The empty rows are written as real <row> elements, as a sheet with formatting below the table has them.
    Such a file is 2.4 MB, above the default bound; the bound is raised here to reach the reader."""
    settings.MAX_TARGET_FILE_BYTES = 8 * 1024 * 1024
    data = xlsx_bytes([HEADERS_VI, [unit.code, "", 1, 2]])
    src = zipfile.ZipFile(io.BytesIO(data))
    sheet_xml = src.read("xl/worksheets/sheet1.xml").decode()
    empty = "".join(f'<row r="{n}"/>' for n in range(3, 1_000_003))
    sheet_xml = sheet_xml.replace("</sheetData>", empty + "</sheetData>").replace('ref="A1:D2"', 'ref="A1:D1000002"')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = sheet_xml if info.filename == "xl/worksheets/sheet1.xml" else src.read(info.filename)
            dst.writestr(info.filename, body)
    started = time.monotonic()
    table = importing.read_table(out.getvalue(), "t.xlsx")
    assert time.monotonic() - started < 5
    assert len(table.rows) == 1
    assert importing.build_preview(campaign, table).is_valid


def test_a_sheet_with_too_many_filled_rows_is_refused():
    rows = [HEADERS_VI] + [[f"X{n}", "", 1, 1] for n in range(importing.MAX_DATA_ROWS + 1)]
    assert "more than" in _rejected(csv_bytes(rows), "t.csv")


def test_formulas_are_reported_and_never_evaluated(campaign, unit):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADERS_VI)
    sheet.append([unit.code, "", "=10*2", "=SUM(1,2)"])
    out = io.BytesIO()
    workbook.save(out)
    preview = importing.build_preview(campaign, importing.read_table(out.getvalue(), "t.xlsx"))
    assert [(p.column, "formula" in p.message) for p in preview.problems] == [
        ("BHXH tự nguyện", True),
        ("BHYT hộ gia đình", True),
    ]
    assert preview.rows[0].changes == []


def test_a_file_with_no_header_row_is_refused():
    assert "header" in _rejected(b"\n,,\n" * 30 + b"x,y\n", "t.csv")
    assert "header" in _rejected(xlsx_bytes([[None], [None]]), "t.xlsx")


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (b"<html></html>", "t.xlsx", "Excel"),
        (to_cp1258("Mã đơn vị,Tên đơn vị\n"), "t.csv", "UTF-8"),
    ],
)
def test_a_hostile_upload_through_the_browser_shows_the_message_and_saves_nothing(
    client, admin_user, campaign, data, name, words
):
    client.force_login(admin_user)
    response = client.post(reverse("campaigns:target_import", args=[campaign.slug]), {"file": upload(data, name)})
    assert response.status_code == 200
    assert words in response.content.decode()
    assert TargetImport.objects.count() == 0 and Target.objects.count() == 0
