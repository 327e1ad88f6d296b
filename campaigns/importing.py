"""The target spreadsheet import: read (bytes → cells, refusing hostile files) → preview (match units, validate,
old → new per scheme) → apply (every row or none).

The browser, the command line and the tests all go through `read_table`, `build_preview` and `import_apply`, so
they cannot disagree; `build_previews` and `import_apply_many` do the same for several files at once (one per
campaign, all or nothing), in the queries of one file. Nothing here evaluates a formula: a formula cell is reported,
never computed.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import difflib
import io
import itertools
import math
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePath

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.models import Campaign
from campaigns.selectors import campaign_targets, campaign_targets_many
from campaigns.services import targets_bulk_set_many, targets_locked_many
from districts.models import District
from participants.models import Scheme
from participants.workbooks import UnsafeWorkbook, workbook_check

# A province has a few dozen units: a target file is tiny. These bounds are far above any real one.
DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_ZIP_ENTRIES = 200
MAX_ZIP_UNCOMPRESSED_BYTES = 50 * 1024 * 1024
MAX_DATA_ROWS = 1000
MAX_COLUMNS = 30
HEADER_SEARCH_ROWS = 20
# Spreadsheets often carry formatting far below the table; this many empty rows in a row end the table.
BLANK_RUN_ENDS_TABLE = 200
MAX_TARGET_VALUE = 10_000_000

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

CODE, NAME = "unit_code", "unit_name"
SCHEME_KEYS = (Scheme.VSI.value, Scheme.HI_FAMILY.value)
# The headers of the downloadable template (always Vietnamese) and the English column names of DESIGN.md.
VI_HEADERS = {CODE: "Mã đơn vị", NAME: "Tên đơn vị", Scheme.VSI: "BHXH tự nguyện", Scheme.HI_FAMILY: "BHYT hộ gia đình"}
EN_HEADERS = {CODE: "unit_code", NAME: "unit_name", Scheme.VSI: "vsi_target", Scheme.HI_FAMILY: "hi_target"}
HEADER_ALIASES = {
    CODE: ("unit_code", "ma don vi", "ma dv", "code"),
    NAME: ("unit_name", "ten don vi", "don vi", "name"),
    Scheme.VSI.value: ("vsi_target", "bhxh tu nguyen", "bhxh tn", "vsi"),
    Scheme.HI_FAMILY.value: ("hi_target", "bhyt ho gia dinh", "bhyt hgd", "hi_family_target", "hi_family"),
}

# Longest first, so that "thanh pho" wins over a shorter prefix; "tp." is how officers abbreviate a city.
UNIT_PREFIXES = ("thanh pho", "thi xa", "huyen", "quan", "tp.", "tp", "tx.", "tx", "h.", "q.")
# A totals row at the foot of an officer's sheet: shown as skipped, never imported.
TOTAL_ROW_NAMES = {"tong", "tong cong", "tong so", "cong", "total"}


def max_file_bytes() -> int:
    """The largest target file accepted (settings.MAX_TARGET_FILE_BYTES, else 2 MB)."""
    return getattr(settings, "MAX_TARGET_FILE_BYTES", DEFAULT_MAX_FILE_BYTES)


class FileRejected(Exception):
    """The file cannot be read at all (too big, not a spreadsheet, wrong encoding, hostile); says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ImportInvalid(Exception):
    """The file was read but has problems; nothing was saved. Carries the preview that lists them."""

    def __init__(self, preview: Preview):
        super().__init__(_("The import has %(n)d problem(s); nothing was saved.") % {"n": len(preview.problems)})
        self.preview = preview


# ---------------------------------------------------------------------------------------------------------------
# Text folding: case, Vietnamese diacritics and unit prefixes do not matter when matching names.


def fold(text: str) -> str:
    """Lower case, without diacritics (đ → d too, which Unicode does not decompose), single spaces."""
    text = str(text).replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.casefold().split())


def _strip_prefix(folded: str, prefixes) -> str:
    for prefix in prefixes:
        if folded.startswith(prefix) and (prefix.endswith(".") or folded[len(prefix) : len(prefix) + 1] == " "):
            rest = folded[len(prefix) :].strip()
            if rest:
                return rest
    return folded


def short_unit_name(name: str) -> str:
    """'Huyện Yên Dũng', 'yen dung', 'TP. Bắc Giang' → 'yen dung', 'yen dung', 'bac giang'."""
    return _strip_prefix(fold(name), UNIT_PREFIXES)


def _fold_header(text) -> str:
    return " ".join(fold(text).replace("_", " ").replace("-", " ").split())


_HEADER_LOOKUP = {_fold_header(alias): key for key, aliases in HEADER_ALIASES.items() for alias in aliases}


# ---------------------------------------------------------------------------------------------------------------
# Reading: bytes → Table. Everything that can go wrong with the file itself raises FileRejected.


@dataclass
class Table:
    """The cells of a target file: which column holds what (with its header as written), and the rows."""

    headers: dict[str, str]  # key (unit_code, unit_name, vsi, hi_family) → header as written in the file
    rows: list[dict] = field(default_factory=list)  # {"line": spreadsheet row number, "cells": {key: value}}
    ignored_headers: list[str] = field(default_factory=list)
    header_line: int = 1

    def to_json(self) -> dict:
        return {
            "headers": self.headers,
            "rows": self.rows,
            "ignored_headers": self.ignored_headers,
            "header_line": self.header_line,
        }

    @classmethod
    def from_json(cls, data: dict) -> Table:
        return cls(
            headers=data["headers"],
            rows=data["rows"],
            ignored_headers=data.get("ignored_headers", []),
            header_line=data.get("header_line", 1),
        )


def _save_as_hint() -> str:
    return _(
        "In Excel choose File → Save As and pick “Excel Workbook (*.xlsx)” or “CSV UTF-8 (Comma delimited) (*.csv)”, "
        "or start from the template you can download on the targets page."
    )


def read_table(data: bytes, file_name: str = "") -> Table:
    """Reads an uploaded target file (XLSX or CSV, recognised by its content, not its name)."""
    if len(data) > max_file_bytes():
        raise FileRejected(
            _("The file is too large (%(size)s kB; at most %(max)s kB). A target file has one row per unit.")
            % {"size": len(data) // 1024, "max": max_file_bytes() // 1024}
        )
    if not data.strip():
        raise FileRejected(_("The file is empty."))
    suffix = PurePath(file_name or "").suffix.lower()
    if data.startswith(b"PK\x03\x04"):
        return _read_xlsx(data)
    if data.startswith(OLE2_MAGIC):
        raise FileRejected(
            _("This is an old Excel 97–2003 file (.xls), which cannot be read. %(hint)s") % {"hint": _save_as_hint()}
        )
    if suffix in (".xlsx", ".xlsm", ".xls", ".ods"):
        raise FileRejected(
            _("The file is named %(suffix)s but is not really an Excel workbook. %(hint)s")
            % {"suffix": suffix, "hint": _save_as_hint()}
        )
    return _read_csv(data)


def _read_xlsx(data: bytes) -> Table:
    import openpyxl  # openpyxl parses its XML with defusedxml when it is installed (it is a dependency)

    try:
        workbook_check(data, max_entries=MAX_ZIP_ENTRIES, max_uncompressed=MAX_ZIP_UNCOMPRESSED_BYTES)
    except UnsafeWorkbook as exc:
        hint = {"hint": _save_as_hint()}
        messages = {
            UnsafeWorkbook.DAMAGED: _("The file is damaged or is not an Excel workbook. %(hint)s") % hint,
            UnsafeWorkbook.BOMB: _(
                "The workbook would unpack to far more data than a target file holds; it was refused. %(hint)s"
            )
            % hint,
            UnsafeWorkbook.ENCRYPTED: _(
                "The workbook is password-protected. Save a copy without a password and upload that."
            ),
            UnsafeWorkbook.UNSAFE_NAMES: _(
                "The workbook is malformed (its parts have unsafe or repeated names); it was refused. %(hint)s"
            )
            % hint,
            UnsafeWorkbook.LINKS_OR_MACROS: _(
                "The workbook links to other files or holds macros; it was refused. %(hint)s"
            )
            % hint,
            UnsafeWorkbook.NOT_XLSX: _("The file is a zip archive, not an Excel workbook. %(hint)s") % hint,
        }
        raise FileRejected(messages[exc.reason]) from exc
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False, keep_links=False)
    except Exception as exc:  # openpyxl raises many kinds on malformed parts; all mean the same to an officer
        raise FileRejected(_("The workbook could not be read. %(hint)s") % {"hint": _save_as_hint()}) from exc
    try:
        sheet = workbook.worksheets[0]
        rows = (
            (index, [_xlsx_cell(cell) for cell in row])
            for index, row in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS), start=1)
        )
        return _collect(rows)
    except FileRejected:
        raise
    except Exception as exc:
        raise FileRejected(_("The workbook could not be read. %(hint)s") % {"hint": _save_as_hint()}) from exc
    finally:
        workbook.close()


def _xlsx_cell(cell):
    value = cell.value
    if cell.data_type == "f" or (isinstance(value, str) and value.startswith("=")):
        return {"formula": str(getattr(value, "text", value))[:100]}
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, str):
        return value.strip()
    return value


def _read_csv(data: bytes) -> Table:
    if data.startswith(codecs.BOM_UTF8):
        encoding, payload = "utf-8", data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, payload = "utf-16", data  # Excel's "Unicode text"; the codec reads the BOM
    else:
        encoding, payload = "utf-8", data
    try:
        text = payload.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            _(
                "The file is not in UTF-8: it was probably saved in an old Windows encoding, and its Vietnamese "
                "letters would come out wrong. %(hint)s"
            )
            % {"hint": _save_as_hint()}
        ) from exc
    if "\x00" in text:
        raise FileRejected(
            _("The file is neither a CSV text file nor an Excel workbook. %(hint)s") % {"hint": _save_as_hint()}
        )
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    # Vietnamese-locale Excel separates CSV columns with semicolons.
    delimiter = max((",", ";", "\t"), key=first_line.count)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows = ((index, [cell.strip() for cell in row[:MAX_COLUMNS]]) for index, row in enumerate(reader, start=1))
        return _collect(rows)
    except csv.Error as exc:
        raise FileRejected(
            _("The CSV file could not be read (%(error)s). %(hint)s") % {"error": exc, "hint": _save_as_hint()}
        ) from exc


def _is_blank(values) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _header_key(value) -> str | None:
    if value is None or isinstance(value, dict):
        return None
    return _HEADER_LOOKUP.get(_fold_header(value))


def _collect(rows) -> Table:
    """Finds the header row, maps the columns and gathers the data rows, stopping at a long run of empty rows."""
    # Officers' sheets often carry a title above the table: the header is the first row with two known column
    # names; failing that, the first non-empty row (and the missing columns are then reported against it).
    buffered = []
    header_line, header_values = None, None
    for line, values in rows:
        buffered.append((line, values))
        if sum(1 for v in values if _header_key(v)) >= 2:
            header_line, header_values, buffered = line, values, []
            break
        if len(buffered) >= HEADER_SEARCH_ROWS:
            break
    if header_values is None:
        non_blank = [i for i, (_line, values) in enumerate(buffered) if not _is_blank(values)]
        if non_blank:
            header_line, header_values = buffered[non_blank[0]]
            buffered = buffered[non_blank[0] + 1 :]
    rows = itertools.chain(buffered, rows)
    if header_values is None:
        raise FileRejected(_("The file has no header row (Mã đơn vị, Tên đơn vị, BHXH tự nguyện, BHYT hộ gia đình)."))
    columns: dict[int, str] = {}
    headers: dict[str, str] = {}
    ignored: list[str] = []
    for position, raw in enumerate(header_values):
        if raw is None or isinstance(raw, dict) or not str(raw).strip():
            continue
        written = str(raw).strip()
        key = _header_key(written)
        if key is None:
            ignored.append(written)
            continue
        if key in headers:
            raise FileRejected(
                _("Two columns mean the same thing: “%(a)s” and “%(b)s”. Keep one of them.")
                % {"a": headers[key], "b": written}
            )
        headers[key] = written
        columns[position] = key
    table = Table(headers=headers, ignored_headers=ignored, header_line=header_line)
    blank_run = 0
    for line, values in rows:
        if _is_blank(values):
            blank_run += 1
            if blank_run >= BLANK_RUN_ENDS_TABLE:
                break
            continue
        blank_run = 0
        cells = {key: values[pos] if pos < len(values) else None for pos, key in columns.items()}
        if _is_blank(cells.values()):
            continue
        if len(table.rows) >= MAX_DATA_ROWS:
            raise FileRejected(
                _("The file has more than %(n)d rows; a target file has one row per unit of the province.")
                % {"n": MAX_DATA_ROWS}
            )
        table.rows.append({"line": line, "cells": cells})
    return table


# ---------------------------------------------------------------------------------------------------------------
# Preview: match each row's unit, check its numbers, and say what would change.


@dataclass
class Problem:
    line: int | None
    column: str
    message: str


@dataclass
class Change:
    scheme: str
    label: str
    old: int | None
    new: int

    @property
    def status(self) -> str:
        if self.old is None:
            return "new"
        return "unchanged" if self.old == self.new else "changed"


@dataclass
class RowPreview:
    line: int
    code: str
    name: str
    unit: District | None = None
    is_province: bool = False
    changes: list[Change] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: bool = False

    @property
    def status(self) -> str:
        if self.problems:
            return "error"
        if self.skipped:
            return "skipped"
        statuses = {c.status for c in self.changes}
        for status in ("changed", "new", "unchanged"):
            if status in statuses:
                return status
        return "empty"

    @property
    def matched_label(self) -> str:
        if self.is_province:
            return _("Province-level target")
        return f"{self.unit.name} ({self.unit.code})" if self.unit else ""


@dataclass
class Preview:
    campaign: Campaign
    rows: list[RowPreview] = field(default_factory=list)
    file_problems: list[Problem] = field(default_factory=list)
    ignored_headers: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        return self.file_problems + [p for row in self.rows for p in row.problems]

    @property
    def is_valid(self) -> bool:
        return not self.problems

    @property
    def counts(self) -> dict[str, int]:
        counts = {"new": 0, "changed": 0, "unchanged": 0}
        for row in self.rows:
            for change in row.changes:
                counts[change.status] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        counts = self.counts
        return bool(counts["new"] or counts["changed"])


def _code_text(value) -> str:
    if value is None or isinstance(value, dict):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a code typed into a number cell comes back as 221.0
    return str(value).strip()


_INT = re.compile(r"^-?\d+$")
_GROUPED = re.compile(r"^-?\d{1,3}([.,])\d{3}(\1\d{3})*$")  # 1.350 or 1,350 or 12.500.000
_DECIMAL = re.compile(r"^-?\d+[.,]\d+$")


def parse_target(value) -> tuple[int | None, str | None]:
    """A cell → (whole number or None for an empty cell, None) or (None, what is wrong with it)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if type(value) is str and value.isascii() and value.isdigit():
        # The common cell, plain digits (every CSV number): straight to the range checks below.
        return _in_range(int(value))
    if isinstance(value, dict):
        return None, _("The cell holds a formula (%(formula)s); type the number itself (copy, then paste values).") % {
            "formula": value.get("formula", "")
        }
    if isinstance(value, bool):
        return None, _("“%(value)s” is not a number.") % {"value": value}
    if isinstance(value, float):
        if not math.isfinite(value):
            return None, _("“%(value)s” is not a number.") % {"value": value}
        if not value.is_integer():
            return None, _("“%(value)s” is not a whole number; a target counts people.") % {"value": value}
        value = int(value)
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().replace("\u00a0", "").replace(" ", "")
        if text.startswith("="):
            return None, _(
                "The cell holds a formula (%(formula)s); type the number itself (copy, then paste values)."
            ) % {"formula": text[:100]}
        if _INT.match(text):
            number = int(text)
        elif _GROUPED.match(text):
            number = int(re.sub(r"[.,]", "", text))
        elif _DECIMAL.match(text) and set(re.split(r"[.,]", text)[1]) == {"0"}:
            number = int(re.split(r"[.,]", text)[0])
        elif _DECIMAL.match(text):
            return None, _("“%(value)s” is not a whole number; a target counts people.") % {"value": value}
        else:
            return None, _("“%(value)s” is not a number; type a whole number such as 1350.") % {
                "value": str(value)[:50]
            }
    return _in_range(number)


def _in_range(number: int) -> tuple[int | None, str | None]:
    if number < 0:
        return None, _("A target cannot be negative (%(value)s).") % {"value": number}
    if number > MAX_TARGET_VALUE:
        return None, _("%(value)s is too large for a target.") % {"value": number}
    return number, None


def _existed_during(unit: District, campaign: Campaign) -> bool:
    """campaigns.selectors.campaign_unit_condition's first half, on a unit already read: it existed at some time
    during the campaign's window."""
    return (unit.valid_from is None or unit.valid_from <= campaign.end_date) and (
        unit.ceased_on is None or unit.ceased_on > campaign.start_date
    )


def province_units(province_ids) -> dict[int, list[District]]:
    """Every unit of these provinces, in one query: {province id: [units ordered by code]}."""
    out: dict[int, list[District]] = {pk: [] for pk in province_ids}
    for unit in (
        District.objects.filter(province_id__in=list(out))
        .only("id", "province_id", "code", "name", "kind", "valid_from", "ceased_on")
        .order_by("code")
    ):
        out[unit.province_id].append(unit)
    return out


class UnitMatcher:
    """Finds a row's unit among the campaign's province's units: by code, else by name (case, diacritics and
    prefixes such as Huyện, Thị xã, Thành phố, Quận, TP. do not matter)."""

    def __init__(self, campaign: Campaign, *, targeted_unit_ids=None, units: list[District] | None = None):
        """`targeted_unit_ids`: the units that have a target in the campaign, when the caller has read them;
        `units`: the province's units (province_units), when the caller has read them."""
        self.campaign = campaign
        self.province = campaign.province
        if targeted_unit_ids is None:
            targeted_unit_ids = {unit_id for unit_id, _scheme in campaign_targets(campaign) if unit_id is not None}
        # The province's few dozen units in a plain query (the ORM compiles it in a fraction of the time the
        # campaign_units() condition takes); which of them the campaign covers is the same rule, decided here.
        if units is None:
            units = province_units([campaign.province_id])[campaign.province_id]
        self.all_units = units
        covered = [_existed_during(u, campaign) or u.pk in targeted_unit_ids for u in self.all_units]
        self.candidates = [u for u, inside in zip(self.all_units, covered, strict=True) if inside]
        self.outside = [u for u, inside in zip(self.all_units, covered, strict=True) if not inside]
        self.by_code = {u.code: u for u in self.all_units}
        self.by_bare_code = {u.code.lstrip("0"): u for u in self.all_units}
        self._names = None
        self._foreign_short = None

    def _by_name(self) -> tuple[dict, dict, set]:
        # Folded only when a row has no code to go by: a file of codes never pays for it.
        if self._names is None:
            full, short = defaultdict(list), defaultdict(list)
            for unit in self.candidates:
                full[fold(unit.name)].append(unit)
                short[short_unit_name(unit.name)].append(unit)
            # Only the province's full name (with Tỉnh / Thành phố) or "toàn tỉnh": its bare name is often a city's
            # too (Bắc Giang province and Bắc Giang city), and then the city is meant.
            self._names = (full, short, {fold(self.province.name), "toan tinh", "province"})
        return self._names

    @property
    def full(self) -> dict[str, list[District]]:
        return self._by_name()[0]

    @property
    def short(self) -> dict[str, list[District]]:
        return self._by_name()[1]

    @property
    def province_names(self) -> set[str]:
        return self._by_name()[2]

    def _window(self) -> str:
        return f"{self.campaign.start_date:%d/%m/%Y}–{self.campaign.end_date:%d/%m/%Y}"

    def _foreign_by_short_name(self) -> dict[str, list[tuple[str, str, str]]]:
        # Loaded only when a row matches nothing here: ~700 short rows for the whole country.
        if self._foreign_short is None:
            self._foreign_short = defaultdict(list)
            rows = (
                District.objects.exclude(province_id=self.province.pk)
                .values_list("code", "name", "province__name")
                .order_by("code")
            )
            for code, name, province_name in rows:
                self._foreign_short[short_unit_name(name)].append((code, name, province_name))
        return self._foreign_short

    def match(self, code: str, name: str) -> tuple[District | None, bool, str | None, str | None]:
        """→ (unit, is the province row, which column a problem is in (CODE/NAME), the problem)."""
        for column, text in ((CODE, code), (NAME, name)):
            # PostgreSQL text cannot hold a NUL character (a query with one fails); no real unit has one either.
            if text and "\x00" in text:
                return None, False, column, _("This cell contains an invalid (null) character.")
        if code:
            # Exact codes first; then codes whose leading zeros Excel dropped (Hà Nội is 01, Ba Đình 001).
            unit = self.by_code.get(code)
            if unit is None and code == self.province.code:
                return None, True, None, None
            unit = unit or self.by_bare_code.get(code.lstrip("0"))
            if unit is None and code.lstrip("0") == self.province.code.lstrip("0"):
                return None, True, None, None
            if unit is not None:
                if unit in self.outside:
                    return unit, False, CODE, self._not_in_window(unit)
                return unit, False, None, None
            foreign = (
                District.objects.filter(code=code)
                .exclude(province_id=self.province.pk)
                .select_related("province")
                .first()
            )
            if foreign is not None:
                return None, False, CODE, self._foreign_message(foreign.name, foreign.code, foreign.province.name)
            if not name:
                return (
                    None,
                    False,
                    CODE,
                    _("No unit of %(province)s has the code %(code)s.")
                    % {
                        "province": self.province.name,
                        "code": code,
                    },
                )
        if not name:
            return None, False, CODE, _("The row has neither a unit code nor a unit name.")
        folded = fold(name)
        hits = self.full.get(folded) or []
        if not hits and folded in self.province_names:
            return None, True, None, None
        short = short_unit_name(name)
        hits = hits or self.short.get(short) or []
        if len(hits) == 1:
            return hits[0], False, None, None
        if len(hits) > 1:
            return (
                None,
                False,
                NAME,
                _("Several units are called “%(name)s” (%(units)s); give the unit code.")
                % {
                    "name": name,
                    "units": ", ".join(f"{u.name} {u.code}" for u in hits),
                },
            )
        outside = [u for u in self.outside if fold(u.name) == folded or short_unit_name(u.name) == short]
        if outside:
            return outside[0], False, NAME, self._not_in_window(outside[0])
        foreign = self._foreign_by_short_name().get(short)
        if foreign:
            f_code, f_name, f_province = foreign[0]
            return None, False, NAME, self._foreign_message(f_name, f_code, f_province)
        suggestions = difflib.get_close_matches(short, list(self.short), n=3, cutoff=0.5)
        names = [self.short[s][0].name for s in suggestions]
        if names:
            return (
                None,
                False,
                NAME,
                _("No unit of %(province)s is called “%(name)s”. Did you mean: %(names)s?")
                % {
                    "province": self.province.name,
                    "name": name,
                    "names": ", ".join(names),
                },
            )
        return (
            None,
            False,
            NAME,
            _("No unit of %(province)s is called “%(name)s”.")
            % {
                "province": self.province.name,
                "name": name,
            },
        )

    def _not_in_window(self, unit) -> str:
        return _("%(unit)s (%(code)s) did not exist during the campaign (%(window)s).") % {
            "unit": unit.name,
            "code": unit.code,
            "window": self._window(),
        }

    def _foreign_message(self, name, code, province_name) -> str:
        return _("%(unit)s (%(code)s) is a unit of %(other)s, not of %(province)s.") % {
            "unit": name,
            "code": code,
            "other": province_name,
            "province": self.province.name,
        }


def _header(table: Table, key: str) -> str:
    return table.headers.get(key) or VI_HEADERS.get(key, key)


def _id_header(table: Table, key: str) -> str:
    # The problem is in the unit code or the unit name column; name whichever of them the file has.
    if key not in table.headers:
        key = CODE if CODE in table.headers else NAME
    return _header(table, key)


def build_preview(
    campaign: Campaign, table: Table, *, existing: dict | None = None, units: list[District] | None = None
) -> Preview:
    """What importing `table` into `campaign` would do, row by row, and every problem by row and column.

    `existing` ({(unit id or None, scheme): value}) is the campaign's targets when the caller has read them already
    (the import, under its lock); otherwise they are read here. `units`: the campaign's province's units
    (province_units), likewise."""
    preview = Preview(campaign=campaign, ignored_headers=list(table.ignored_headers))
    missing = []
    if CODE not in table.headers and NAME not in table.headers:
        missing.append(f"{VI_HEADERS[CODE]} ({EN_HEADERS[CODE]}) / {VI_HEADERS[NAME]} ({EN_HEADERS[NAME]})")
    for key in SCHEME_KEYS:
        if key not in table.headers:
            missing.append(f"{VI_HEADERS[key]} ({EN_HEADERS[key]})")
    for label in missing:
        preview.file_problems.append(
            Problem(line=table.header_line, column=label, message=_("This column is missing."))
        )
    if missing:
        return preview
    if not table.rows:
        preview.file_problems.append(Problem(line=None, column="", message=_("The file has no rows of targets.")))
        return preview

    if existing is None:
        existing = campaign_targets(campaign)
    matcher = UnitMatcher(
        campaign, targeted_unit_ids={unit_id for unit_id, _scheme in existing if unit_id is not None}, units=units
    )
    labels = {key: str(label) for key, label in Scheme.choices}  # translated once, not per row
    seen: dict[object, int] = {}
    for raw in table.rows:
        cells = raw["cells"]
        row = RowPreview(line=raw["line"], code=_code_text(cells.get(CODE)), name=_code_text(cells.get(NAME)))
        if not row.code and fold(row.name) in TOTAL_ROW_NAMES:
            row.skipped = True
            preview.rows.append(row)
            continue
        unit, is_province, column, message = matcher.match(row.code, row.name)
        row.unit, row.is_province = unit, is_province
        if message:
            row.problems.append(Problem(line=row.line, column=_id_header(table, column), message=message))
            unit = None  # a unit outside the window is named in the message but never written to
        matched_key = "province" if is_province else (unit.pk if unit else None)
        if matched_key is not None:
            if matched_key in seen:
                what = _("The province-level row") if is_province else f"{unit.name} ({unit.code})"
                row.problems.append(
                    Problem(
                        line=row.line,
                        column=_id_header(table, CODE if row.code else NAME),
                        message=_("%(what)s is already listed on row %(line)d.")
                        % {"what": what, "line": seen[matched_key]},
                    )
                )
            else:
                seen[matched_key] = row.line
        for key in SCHEME_KEYS:
            value, error = parse_target(cells.get(key))
            if error:
                row.problems.append(Problem(line=row.line, column=_header(table, key), message=error))
            elif value is not None and matched_key is not None:
                unit_id = None if is_province else unit.pk
                row.changes.append(Change(scheme=key, label=labels[key], old=existing.get((unit_id, key)), new=value))
        preview.rows.append(row)
    return preview


# ---------------------------------------------------------------------------------------------------------------
# Apply: every row or none, recorded in the targets' history with who imported which file.


def change_reason_for(file_name: str) -> str:
    return f"import: {PurePath(file_name or '-').name}"[:100]


def import_apply(*, campaign: Campaign, table: Table, user, file_name: str, campaign_locked: bool = False) -> Preview:
    """Imports `table` into `campaign`: validates it again inside the transaction and writes every change, or
    raises ImportInvalid and writes nothing. Importing the same file twice changes nothing the second time.

    `campaign_locked`: the caller has selected the campaign FOR UPDATE in its own, still open, transaction."""
    try:
        (preview,) = import_apply_many(
            files=[CampaignFile(campaign=campaign, table=table, file_name=file_name)],
            user=user,
            campaigns_locked=campaign_locked,
        )
    except BatchInvalid as exc:
        raise ImportInvalid(exc.previews[0]) from None
    return preview


@dataclass
class CampaignFile:
    """One file of an import: the campaign it is for, its cells, and its name (recorded in the targets' history)."""

    campaign: Campaign
    table: Table
    file_name: str = ""


class BatchInvalid(Exception):
    """At least one file of a several-file import has problems; nothing was saved. Carries every file's preview, in
    the order of the files."""

    def __init__(self, previews: list[Preview]):
        problems = sum(len(p.problems) for p in previews)
        super().__init__(_("The import has %(n)d problem(s); nothing was saved.") % {"n": problems})
        self.previews = previews


def _check_one_file_per_campaign(files: list[CampaignFile]) -> None:
    seen = set()
    for f in files:
        if f.campaign.pk in seen:
            # Two files for one campaign would each be previewed against the targets before the other: refused.
            raise ValueError(f"campaign {f.campaign.slug!r} is given twice")
        seen.add(f.campaign.pk)


def build_previews(files: list[CampaignFile]) -> list[Preview]:
    """build_preview of several files, each for its own campaign, reading the campaigns' targets and their provinces'
    units in two queries whatever the number of files."""
    _check_one_file_per_campaign(files)
    campaigns = [f.campaign for f in files]
    existing = campaign_targets_many(campaigns)
    units = province_units({c.province_id for c in campaigns})
    return [
        build_preview(f.campaign, f.table, existing=existing[f.campaign.pk], units=units[f.campaign.province_id])
        for f in files
    ]


def import_apply_many(*, files: list[CampaignFile], user, campaigns_locked: bool = False) -> list[Preview]:
    """Imports several files, each into its own campaign, all or nothing: every file is validated again inside one
    transaction and every change of every file is written, or BatchInvalid is raised and nothing is written.

    The queries do not grow with the number of files: the campaigns locked, their targets locked, their provinces'
    units, then one INSERT, one UPDATE and one history INSERT for all of them. `campaigns_locked`: the caller has
    selected every campaign FOR UPDATE in its own, still open, transaction."""
    _check_one_file_per_campaign(files)
    campaigns = [f.campaign for f in files]
    # No savepoint inside a caller's transaction (the browser's and the command's): a refused file is reported after
    # the block, having written nothing, and any other error ends the caller's transaction anyway.
    with transaction.atomic(savepoint=False):
        # One import at a time per campaign: the previews below must still be true when the rows are written. The
        # campaigns are locked in pk order, as every import locks them, so two imports cannot deadlock.
        if not campaigns_locked:
            list(
                Campaign.objects.select_for_update()
                .filter(pk__in=[c.pk for c in campaigns])
                .order_by("pk")
                .values_list("pk")
            )
        # The targets are read once, locked, and serve both the previews' old values and the write.
        locked = targets_locked_many(campaigns=campaigns)
        units = province_units({c.province_id for c in campaigns})
        previews = [
            build_preview(
                f.campaign,
                f.table,
                existing={key: target.value for key, target in locked[f.campaign.pk].items()},
                units=units[f.campaign.province_id],
            )
            for f in files
        ]
        valid = all(p.is_valid for p in previews)
        if valid:
            targets_bulk_set_many(
                existing=locked,
                batches=[
                    (
                        f.campaign,
                        [
                            (None if row.is_province else row.unit, change.scheme, change.new)
                            for row in preview.rows
                            for change in row.changes
                            if change.status != "unchanged"
                        ],
                        change_reason_for(f.file_name),
                    )
                    for f, preview in zip(files, previews, strict=True)
                ],
                history_user=user,
            )
    if not valid:
        raise BatchInvalid(previews)
    return previews


def preview_as_text(preview: Preview) -> str:
    """The preview as plain text lines, for the command line."""
    status_words = {
        "new": _("new"),
        "changed": _("changed"),
        "unchanged": _("unchanged"),
        "error": _("error"),
        "empty": _("no targets"),
        "skipped": _("total row, skipped"),
    }
    error, row_word, row_lower = _("ERROR"), _("Row"), _("row")  # translated once, not per row
    lines = []
    for problem in preview.file_problems:
        where = _("row %(line)s") % {"line": problem.line} if problem.line else _("file")
        lines.append(f"{error} [{where}, {problem.column}] {problem.message}".replace(", ]", "]"))
    for row in preview.rows:
        what = row.matched_label or row.code or row.name
        changes = "; ".join(
            f"{c.label}: {'—' if c.old is None else c.old} → {c.new} ({status_words[c.status]})" for c in row.changes
        )
        lines.append(f"{row_word} {row.line}: {what} [{status_words[row.status]}] {changes}".rstrip())
        for problem in row.problems:
            lines.append(f"  {error} [{row_lower} {problem.line}, {problem.column}] {problem.message}")
    counts = preview.counts
    lines.append(
        _("%(new)d new, %(changed)d changed, %(unchanged)d unchanged targets; %(problems)d problem(s).")
        % {**counts, "problems": len(preview.problems)}
    )
    return "\n".join(lines)


def previews_as_text(files: list[CampaignFile], previews: list[Preview]) -> str:
    """Several files' previews as plain text for the command line: each file under its own heading (the file, the
    campaign, its province), then the totals over all of them."""
    parts = []
    totals = {"new": 0, "changed": 0, "unchanged": 0}
    problems = 0
    for item, preview in zip(files, previews, strict=True):
        parts.append(
            "== "
            + _("%(file)s → %(campaign)s (%(slug)s, %(province)s)")
            % {
                "file": item.file_name,
                "campaign": item.campaign.name,
                "slug": item.campaign.slug,
                "province": item.campaign.province.name,
            }
            + " =="
        )
        parts.append(preview_as_text(preview))
        for key, value in preview.counts.items():
            totals[key] += value
        problems += len(preview.problems)
    invalid = sum(1 for p in previews if not p.is_valid)
    parts.append(
        _(
            "%(files)d files (%(invalid)d with problems): %(new)d new, %(changed)d changed, %(unchanged)d unchanged "
            "targets; %(problems)d problem(s)."
        )
        % {"files": len(files), "invalid": invalid, "problems": problems, **totals}
    )
    return "\n".join(parts)
