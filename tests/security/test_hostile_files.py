"""Hostile files through both importers' browser doors (the enrollment list upload and the target spreadsheet):
each is refused or handled with a message, never a server error, in bounded time, and 0 rows are written."""

import codecs
import time
import zipfile

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Target, TargetImport
from participants.models import Enrollment, EnrollmentUpload, Participant
from tests.factories import CampaignFactory
from tests.security.hostile_files import forge_size, set_flag_or_method, sheet, xlsx

SECONDS = 60  # per file, generous for a slow CI machine; a hang or a runaway parse exceeds it by far

ENROLLMENT_HEADER = [
    "si_number",
    "full_name",
    "date_of_birth",
    "gender",
    "commune_code",
    "scheme",
    "enrolled_on",
    "coverage_start",
    "months",
    "collection_agent_code",
]
TARGET_HEADER = ["unit_code", "unit_name", "vsi_target", "hi_target"]


class Kind:
    """What a well-formed file of each importer holds, so that a hostile one differs by its hostility only."""

    def __init__(self, name, header, good_row, bad_row):
        self.name, self.header, self.good_row, self.bad_row = name, header, good_row, bad_row

    def rows(self, n):
        return [self.header] + [self.good_row(i) for i in range(n)]

    def csv(self, rows, *, encoding="utf-8"):
        return ("\n".join(",".join(map(str, r)) for r in rows) + "\n").encode(encoding)


def _kinds(commune, unit, today):
    day = today.isoformat()
    return {
        "enrollments": Kind(
            "enrollments",
            ENROLLMENT_HEADER,
            lambda i: [
                f"{2450000000 + i:010d}",
                f"Người Thử {i}",
                "1985-06-01",
                "female",
                commune.code,
                "vsi",
                day,
                day,
                12,
                "",
            ],
            ["12345", "Sai", "1985-02-30", "x", "nope", "vsi", day, day, 7, ""],
        ),
        "targets": Kind(
            "targets", TARGET_HEADER, lambda i: [unit.code, unit.name, 20 + i, 30], ["nope", "Không có", "-5", "abc"]
        ),
    }


def _ratio_bomb(k):
    body = sheet(k.rows(1)).replace("</sheetData>", " " * 60_000_000 + "</sheetData>")
    return "bomb.xlsx", xlsx(body)


def _many_entries(k):
    return "many.xlsx", xlsx(sheet(k.rows(1)), extra={f"xl/media/p{i}.bin": b"x" for i in range(20_000)})


def _forged_size(k):
    body = sheet(k.rows(1)).replace("</sheetData>", " " * 20_000_000 + "</sheetData>")
    return "forged.xlsx", forge_size(xlsx(body), "xl/worksheets/sheet1.xml", 1000)


def _forged_small_total(k):
    data = xlsx(sheet(k.rows(3)))
    return "forged2.xlsx", forge_size(data, "xl/workbook.xml", 4_000_000_000)


def _path_traversal(k):
    extra = {"../../../../tmp/evil.txt": b"x", "/etc/cron.d/evil": b"x", "..\\..\\evil.bat": b"x"}
    return "traversal.xlsx", xlsx(sheet(k.rows(1)), extra=extra)


def _macro(k):
    return "macro.xlsm", xlsx(
        sheet(k.rows(1)), macro=True, extra={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0" + b"\0" * 512}
    )


def _external_link(k):
    link = (
        '<?xml version="1.0" encoding="UTF-8"?><externalLink '
        'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><externalBook/></externalLink>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships '
        'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/externalLinkPath" '
        'Target="file:///etc/passwd" TargetMode="External"/></Relationships>'
    )
    extra = {"xl/externalLinks/externalLink1.xml": link, "xl/externalLinks/_rels/externalLink1.xml.rels": rels}
    rel = (
        '<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'externalLink" Target="externalLinks/externalLink1.xml"/>'
    )
    return "external.xlsx", xlsx(sheet(k.rows(1)), extra=extra, rels_extra=rel)


def _xxe(k):
    prolog = '<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    rows = k.rows(1)
    rows[1][1] = "&xxe;"
    return "xxe.xlsx", xlsx(sheet(rows, prolog=prolog))


def _billion_laughs(k):
    lol = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    )
    rows = k.rows(1)
    rows[1][1] = "&j;"
    return "laughs.xlsx", xlsx(sheet(rows, prolog=f"<!DOCTYPE worksheet [{lol}]>"))


def _huge_dimension(k):
    return "dimension.xlsx", xlsx(sheet(k.rows(1), dimension="A1:XFD1048576"))


def _deep_nesting(k):
    body = sheet(k.rows(1)).replace("</sheetData>", "</sheetData>" + "<x>" * 200_000 + "</x>" * 200_000)
    return "deep.xlsx", xlsx(body)


def _encrypted_entries(k):
    return "encrypted.xlsx", set_flag_or_method(xlsx(sheet(k.rows(1))), flag=1)


def _unsupported_compression(k):
    return "method.xlsx", set_flag_or_method(xlsx(sheet(k.rows(1))), method=99)


def _truncated_zip(k):
    data = xlsx(sheet(k.rows(5)))
    return "truncated.xlsx", data[: len(data) // 2]


def _duplicate_entries(k):
    import io
    import warnings

    base = zipfile.ZipFile(io.BytesIO(xlsx(sheet(k.rows(1)))))
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name: that is the point
        with zipfile.ZipFile(out, "w") as z:
            for info in base.infolist():
                z.writestr(info.filename, base.read(info))
            z.writestr("xl/worksheets/sheet1.xml", sheet(k.rows(2)))
    return "duplicate.xlsx", out.getvalue()


def _zip_not_workbook(k):
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "hello")
    return "plain.xlsx", out.getvalue()


MAGIC = {
    "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n",
    "elf": b"\x7fELF\x02\x01\x01" + b"\0" * 64,
    "ole2-xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504,
    "gif": b"GIF89a" + b"\0" * 32,
    "html": b"<html><body><script>alert(1)</script></body></html>",
}


def _magic(kind_of):
    def build(k):
        return f"list.{'xlsx' if kind_of != 'html' else 'csv'}", MAGIC[kind_of]

    return build


def _million_rows(k):
    return "million.csv", ("\n".join([",".join(k.header)] + ["1,2"] * 1_000_000) + "\n").encode()


def _utf16_bom(k):
    return "utf16.csv", codecs.BOM_UTF16_LE + k.csv(k.rows(2)).decode().encode("utf-16-le")


def _utf16_no_bom(k):
    return "utf16nobom.csv", k.csv(k.rows(2)).decode().encode("utf-16-le")


def _bad_row_at_the_end(k):
    n = 900 if k.name == "targets" else 3000
    return "late-error.csv", k.csv(k.rows(n) + [k.bad_row])


def _nul_bytes(k):
    data = k.csv(k.rows(2))
    return "nul.csv", data.replace(b",", b",\x00", 3)


def _long_line(k):
    return "long.csv", k.csv([k.header, ["x" * 1_500_000] * len(k.header)])


def _latin1(k):
    rows = k.rows(1)
    rows[1][1] = "Nguyễn Thị Hoa"
    return "latin.csv", ",".join(k.header).encode() + b"\n" + ",".join(map(str, rows[1])).encode("utf-8")[
        :-8
    ] + b"\xe9\xff\xfe\n"


def _lone_carriage_return(k):
    return "cr.csv", ",".join(k.header).encode() + b"\n\r\x01\n"


def _empty(k):
    return "empty.csv", b""


def _bom_only(k):
    return "bom.csv", codecs.BOM_UTF8


def _header_only(k):
    return "header.csv", k.csv([k.header])


def _formulas(k):
    rows = k.rows(1)
    rows[1][2] = '=HYPERLINK("http://evil.example")'
    return "formula.csv", k.csv(rows)


def _traversal_name(k):
    return "../../../../etc/passwd.csv", k.csv([k.header, k.bad_row])


def _script_name(k):
    return "<script>alert(1)</script>.csv", k.csv([k.header, k.bad_row])


def _long_name(k):
    return "a" * 3000 + ".csv", k.csv([k.header, k.bad_row])


HOSTILE_FILES = {
    "zip bomb by ratio": _ratio_bomb,
    "zip bomb by entry count": _many_entries,
    "forged uncompressed size of the sheet": _forged_size,
    "forged huge declared size": _forged_small_total,
    "path-traversal entry names": _path_traversal,
    "macro workbook (xlsm + vbaProject.bin)": _macro,
    "external link to a local file": _external_link,
    "XML external entity": _xxe,
    "XML entity expansion (billion laughs)": _billion_laughs,
    "dimension claiming the whole sheet": _huge_dimension,
    "200,000 nested XML elements": _deep_nesting,
    "entries marked encrypted": _encrypted_entries,
    "unsupported compression method": _unsupported_compression,
    "truncated zip": _truncated_zip,
    "duplicate entry names": _duplicate_entries,
    "zip that is no workbook": _zip_not_workbook,
    **{f"wrong magic bytes: {m}": _magic(m) for m in MAGIC},
    "CSV of a million rows": _million_rows,
    "UTF-16 with BOM": _utf16_bom,
    "UTF-16 without BOM": _utf16_no_bom,
    "one bad row at the end of a large file": _bad_row_at_the_end,
    "NUL bytes in cells": _nul_bytes,
    "a 1.5 MB cell": _long_line,
    "invalid UTF-8 bytes": _latin1,
    "a lone carriage return inside a field": _lone_carriage_return,
    "empty file": _empty,
    "only a BOM": _bom_only,
    "only the header": _header_only,
    "formula in a cell": _formulas,
    "path-traversal file name": _traversal_name,
    "markup in the file name": _script_name,
    "3,000-character file name": _long_name,
}


def _written():
    return (Enrollment.objects.count(), Participant.objects.count(), Target.objects.count())


def _upload(client, url, name, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(url, {"file": SimpleUploadedFile(name, data)})


# Files that are odd rather than dangerous: read for their real content, the same as any other file.
ODD_BUT_HARMLESS = {"dimension claiming the whole sheet", "UTF-16 with BOM", "200,000 nested XML elements"}


@pytest.mark.parametrize(
    "label",
    sorted(HOSTILE_FILES),
)
def test_a_hostile_enrollment_list_is_refused_or_handled_and_writes_nothing(
    client, staff_user, unit, commune, today, label
):
    kind = _kinds(commune, unit, today)["enrollments"]
    name, data = HOSTILE_FILES[label](kind)
    client.force_login(staff_user)
    before = _written()
    started = time.monotonic()
    response = _upload(client, reverse("participants:enrollment_upload"), name, data)
    assert response.status_code in (200, 302), response.status_code
    upload = EnrollmentUpload.objects.first()
    if upload is not None:
        page = client.get(reverse("participants:enrollment_upload_detail", args=[upload.pk]))
        assert page.status_code == 200
        assert "<script>alert(1)</script>" not in page.content.decode()
        if upload.status == EnrollmentUpload.Status.READY:
            if label not in ODD_BUT_HARMLESS:
                pytest.fail(f"a hostile file was accepted for import: {label}")
            # Read for what it really holds (one row), not for what it claims; the check stops here.
            assert upload.report["counts"]["rows"] <= 2
            return
        confirm = client.post(reverse("participants:enrollment_upload_confirm", args=[upload.pk]))
        assert confirm.status_code in (200, 302, 400, 409)
    assert time.monotonic() - started < SECONDS
    assert _written() == before


@pytest.mark.parametrize(
    "label",
    sorted(HOSTILE_FILES),
)
def test_a_hostile_target_file_is_refused_or_handled_and_writes_nothing(
    client, admin_user, province, unit, commune, today, label
):
    kind = _kinds(commune, unit, today)["targets"]
    name, data = HOSTILE_FILES[label](kind)
    campaign = CampaignFactory(province=province, start_date=today, end_date=today + timezone.timedelta(days=10))
    client.force_login(admin_user)
    before = _written()
    started = time.monotonic()
    response = _upload(client, reverse("campaigns:target_import", args=[campaign.slug]), name, data)
    assert response.status_code in (200, 302), response.status_code
    assert "<script>alert(1)</script>" not in response.content.decode("utf-8", errors="replace")
    for pending in TargetImport.objects.filter(campaign=campaign):
        # The file got as far as a preview: the admin's confirmation is the step that would write.
        page = client.get(reverse("campaigns:target_import_preview", args=[campaign.slug, pending.pk]))
        assert page.status_code == 200
        assert "<script>alert(1)</script>" not in page.content.decode()
        confirm = client.post(reverse("campaigns:target_import_preview", args=[campaign.slug, pending.pk]))
        assert confirm.status_code in (200, 302, 400, 409)
    assert time.monotonic() - started < SECONDS
    if label in ODD_BUT_HARMLESS:
        # Read for what it really holds (its one or two good rows), not for what it claims.
        assert Target.objects.count() - before[2] <= 2
    else:
        assert _written() == before
