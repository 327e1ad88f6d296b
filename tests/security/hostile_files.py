"""Builders of hostile spreadsheet files, made in memory by each test (nothing hostile is kept in the repository)."""

import io
import struct
import zipfile

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="{workbook_type}"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
XLSM_TYPE = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>{extra}</Relationships>'
)


def sheet(rows, *, prolog="", dimension="") -> str:
    """A worksheet of inline strings: rows is a list of lists of text."""
    cells = []
    for r, row in enumerate(rows, start=1):
        cs = "".join(
            f'<c r="{chr(65 + c)}{r}" t="inlineStr"><is><t>{value}</t></is></c>' for c, value in enumerate(row)
        )
        cells.append(f'<row r="{r}">{cs}</row>')
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        f'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{dim}'
        f"<sheetData>{''.join(cells)}</sheetData></worksheet>"
    )


def xlsx(sheet_xml: str, *, extra=None, macro=False, rels_extra="", compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES.format(workbook_type=XLSM_TYPE if macro else XLSX_TYPE))
        z.writestr("_rels/.rels", ROOT_RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.format(extra=rels_extra))
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return out.getvalue()


def forge_size(data: bytes, entry: str, declared: int) -> bytes:
    """The same archive with `entry`'s uncompressed size rewritten (local header and central directory)."""
    buf = bytearray(data)
    name = entry.encode()
    i = 0
    while (i := buf.find(b"PK\x03\x04", i)) != -1:
        n = struct.unpack_from("<H", buf, i + 26)[0]
        if buf[i + 30 : i + 30 + n] == name:
            struct.pack_into("<I", buf, i + 22, declared)
        i += 4
    i = 0
    while (i := buf.find(b"PK\x01\x02", i)) != -1:
        n = struct.unpack_from("<H", buf, i + 28)[0]
        if buf[i + 46 : i + 46 + n] == name:
            struct.pack_into("<I", buf, i + 24, declared)
        i += 4
    return bytes(buf)


def set_flag_or_method(data: bytes, *, flag=None, method=None) -> bytes:
    """Every entry marked encrypted (flag bit 0) or with an unsupported compression method."""
    buf = bytearray(data)
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        i = 0
        while (i := buf.find(sig, i)) != -1:
            if flag is not None:
                struct.pack_into("<H", buf, i + flag_at, flag)
            if method is not None:
                struct.pack_into("<H", buf, i + method_at, method)
            i += 4
    return bytes(buf)
