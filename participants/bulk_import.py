"""The set-based path of the enrollment list import, for PostgreSQL: the same outcome as the row path in importing.py
(same accepted rows, messages, duplicates, kinds, participants), for lists of a million rows.

The file is streamed (CSV read line by line, XLSX through openpyxl's read-only reader) into a TEMP staging table
with COPY; Python only picks the columns and spots blank rows. Everything else happens in SQL over the whole list
at once: parsing (SI number, dates, months), the choice words, communes and their scope, agents, the person's
date of birth, duplicates against the database and within the file, the derived kind (a running maximum of the
person's earlier coverage per scheme, existing rows included), then INSERT … SELECT into participants, enrollments
and their history tables. Messages are the row path's own translated strings, filled in by SQL.

What differs from the row path, on purpose:
- a person created from several rows of one list gets one history record (the row path writes one per row that
  changed the name, gender or commune); the person's final values are the same (those of the last row); the
  history records of people carry no user (as the row path's, outside a request);
- an enrollment of the list whose kind a later, back-dated row of the same list changes is created with its final
  kind (the row path creates it with the first kind and adds a change record); records that existed before the
  import are re-derived, with change records, exactly where the row path re-derives them;
- a concurrent save of one of the list's people or coverages (a unique or exclusion constraint fires) rolls the
  import back and runs it once more, instead of the row path's lock on each person;
- a typed XLSX cell (a number or a date) is echoed in the preview as the value it was read as (0123456789,
  2024-03-01), where the row path echoes Python's text of the cell (123456789, 2024-03-01 00:00:00);
- the preview lists the first ERROR_SAMPLE error rows and duplicates (the counts are complete).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from districts.scoping import scope_of, visible_communes, visible_enrollments
from participants.importing import (
    COLUMNS,
    GENDER_WORDS,
    MAX_XLSX_UNCOMPRESSED,
    PREVIEW_SAMPLE,
    SCHEME_WORDS,
    ImportFileError,
    RowCheck,
    _blank,
    _check_zip,
    _code,
    _fold,
    header_positions,
)
from participants.models import ALLOWED_MONTHS, Scheme
from participants.services import VSI_MIN_AGE
from participants.signals import enrollments_changed_on_commit

# Error rows and duplicates listed in a report; the counts are always complete.
ERROR_SAMPLE = 1000
# What Python's str.strip() and str.split() treat as white space, so that SQL trims exactly the same characters.
WHITESPACE = "".join(chr(i) for i in range(0x110000) if chr(i).isspace())
COPY_COLUMNS = ("row_no", "nul_mask", *COLUMNS)
# Sheets are streamed: an .xlsx of two million rows unpacks to about 1.2 GB.
BULK_XLSX_UNCOMPRESSED = 4 * 1024 * 1024 * 1024


def available() -> bool:
    """The set-based path needs PostgreSQL (COPY, temp tables, NFKC normalize); SQLite keeps the row path."""
    return connection.vendor == "postgresql"


def _too_many_rows(limit: int) -> str:
    return _("The file has more than %(limit)s rows; split it into smaller files.") % {
        "limit": f"{limit:,}".replace(",", ".")
    }


# ----------------------------------------------------------------------------------------------- streaming the file


def _csv_records(stream) -> Iterator[list]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        sample = text.read(4096)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        text.seek(0)
        line_no = 0

        def lines():
            for line in text:
                if "\x00" in line:
                    raise ImportFileError(_("This file is not a CSV text file."))
                yield line

        reader = csv.reader(lines(), dialect)
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportFileError(
                    _("Line %(line)s of the CSV file could not be read; save the list again as “CSV UTF-8”.")
                    % {"line": line_no + 1}
                ) from exc
            line_no += 1
            yield values
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            _("This file is neither an Excel workbook nor a CSV file in UTF-8. In Excel choose “CSV UTF-8”.")
        ) from exc
    finally:
        text.detach()


def _xlsx_records(stream) -> Iterator[list]:
    data = stream.read()  # compressed bytes only (bounded by the size limit); the sheet's XML is streamed
    # A million-row sheet unpacks to more than the row path's bound, and is streamed, so only the compression ratio
    # and this larger bound guard the sheets; every other part (shared strings, styles: read whole) keeps the small one.
    _check_zip(data, max_uncompressed=BULK_XLSX_UNCOMPRESSED)
    entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    if any(not e.filename.startswith("xl/worksheets/") and e.file_size > MAX_XLSX_UNCOMPRESSED for e in entries):
        raise ImportFileError(
            _("This workbook would unpack to far more data than it holds (a “zip bomb”); it was refused.")
        )
    import openpyxl  # defusedxml is installed, so openpyxl parses the XML without entity expansion

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on malformed parts; all mean the same to the officer
        raise ImportFileError(_("This Excel workbook could not be read; save it again as .xlsx or CSV.")) from exc
    try:
        for values in workbook.worksheets[0].iter_rows(values_only=True):
            yield list(values)
    except ImportFileError:
        raise
    except Exception as exc:
        raise ImportFileError(_("This Excel workbook could not be read; save it again as .xlsx or CSV.")) from exc
    finally:
        workbook.close()


def _typed(column: str, value):
    """A typed XLSX cell as the text the row path would have read it as (strings pass through untouched)."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if column in ("date_of_birth", "enrolled_on", "coverage_start") else str(value)
    if isinstance(value, datetime.date):
        return value.isoformat() if column in ("date_of_birth", "enrolled_on", "coverage_start") else str(value)
    if column == "si_number" and isinstance(value, int | float) and float(value).is_integer() and 0 <= value < 10**10:
        return f"{int(value):010d}"  # a number cell cannot keep a leading zero
    if column in ("si_number", "commune_code", "collection_agent_code", "months"):
        return _code(value)
    return str(value)


def stream_rows(*, name: str, stream, max_rows: int | None = None) -> Iterator[tuple]:
    """(row number, NUL mask, the ten cells) for each non-blank row after the header: the row path's reading rules."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    if size > settings.MAX_BULK_IMPORT_BYTES:
        raise ImportFileError(
            _("The file is too large (%(size)s MB); the limit is %(limit)s MB.")
            % {"size": round(size / 1048576, 1), "limit": round(settings.MAX_BULK_IMPORT_BYTES / 1048576, 1)}
        )
    head = stream.read(1 << 16)
    stream.seek(0)
    if not head.strip() and size <= len(head):
        raise ImportFileError(_("The file is empty."))
    is_xlsx = head[:4] == b"PK\x03\x04"
    if not is_xlsx and name.lower().endswith((".xlsx", ".xlsm", ".xls")):
        raise ImportFileError(
            _("This file is not a real Excel workbook (.xlsx). Save it again from Excel as .xlsx or as CSV UTF-8.")
        )
    records = _xlsx_records(stream) if is_xlsx else _csv_records(stream)
    positions = None
    number = 0
    max_rows = max_rows or settings.MAX_BULK_IMPORT_ROWS
    limit = max_rows + 1
    data_rows = 0
    for values in records:
        number += 1
        if number > limit:
            raise ImportFileError(_too_many_rows(max_rows))
        if positions is None:
            if all(_blank(v) for v in values):
                continue
            positions = header_positions(values)
            picks = [(c, positions.get(c, -1)) for c in COLUMNS]
            continue
        if is_xlsx:
            if all(_blank(v) for v in values):
                continue
            cells, mask = [], 0
            for bit, (column, position) in enumerate(picks):
                value = _typed(column, values[position]) if 0 <= position < len(values) else None
                if isinstance(value, str) and "\x00" in value:
                    mask |= 1 << bit
                    value = value.replace("\x00", "\ufffd")
                cells.append(value)
        else:
            joined = "".join(values)
            if not joined or joined.isspace():
                continue
            width = len(values)
            cells = [values[p] if 0 <= p < width else None for _c, p in picks]
            mask = 0
        si, full_name = cells[0], cells[1]
        if isinstance(si, str) and len(si) == 10 and si.isascii() and si.isdigit() and not mask & 1:
            mask |= SI_PLAIN
        if (
            isinstance(full_name, str)
            and full_name
            and len(full_name) <= 120
            and not mask & 2
            and full_name == " ".join(full_name.split())
        ):
            mask |= NAME_PLAIN
        data_rows += 1
        yield (number, mask, *cells)
    if positions is None:
        raise ImportFileError(_("The file has no rows."))
    if not data_rows:
        raise ImportFileError(_("The file has a header row but no enrollments."))


# --------------------------------------------------------------------------------------------------- the plan


@dataclass
class BulkPlan:
    """What an import would do (or did): complete counts, and the first rows of each kind for the preview."""

    totals: dict
    errors: list[RowCheck] = field(default_factory=list)
    duplicates: list[RowCheck] = field(default_factory=list)
    create_sample: list[RowCheck] = field(default_factory=list)
    changed: dict = field(default_factory=dict)  # what the signal carried: unit_ids, days, schemes, coverage_since
    timings: dict = field(default_factory=dict)  # seconds per step: read_and_copy, check, write

    def counts(self) -> dict:
        return dict(self.totals)

    @property
    def to_create(self) -> list[RowCheck]:
        return self.create_sample

    def as_json(self) -> dict:
        return {
            "counts": self.counts(),
            "errors": [r.as_json() for r in self.errors],
            "duplicates": [r.as_json() for r in self.duplicates],
            "create_sample": [r.as_json() for r in self.create_sample[:PREVIEW_SAMPLE]],
        }


class BulkRejected(Exception):
    """Raised inside the import's transaction so that nothing is saved; carries the plan with its errors."""

    def __init__(self, plan: BulkPlan):
        super().__init__("import rejected")
        self.plan = plan


def _marked(message: str, **names) -> str:
    """A translated message whose placeholders become \\x01, \\x02, … for SQL's replace()."""
    return message % {key: chr(i) for i, key in enumerate(names, start=1)} if names else message


def _messages(*, unit) -> dict:
    allowed = {
        scheme: _("For this scheme the months paid must be one of: %(allowed)s.")
        % {"allowed": ", ".join(str(m) for m in months)}
        for scheme, months in ALLOWED_MONTHS.items()
    }
    return {
        "nul": _("This cell contains an invalid (null) character."),
        "empty": _("This cell is empty."),
        "si_required": _("Enter the social insurance number."),
        "si_digits": _marked(_("The social insurance number may contain only digits (%(value)s)."), value=1),
        "si_length": _marked(
            _("The social insurance number must have exactly 10 digits; this one has %(count)s."), count=1
        ),
        "date_exists": _marked(_("%(value)s is not a date that exists."), value=1),
        "date_bad": _marked(_("%(value)s is not a date; write DD/MM/YYYY or YYYY-MM-DD."), value=1),
        "gender": _("Write male or female (nam / nữ)."),
        "scheme": _("Write vsi (voluntary social insurance) or hi_family (family health insurance)."),
        "months_bad": _marked(_("%(value)s is not a whole number of months."), value=1),
        "commune_none": _marked(_("There is no commune with code %(code)s in your area."), code=1),
        "commune_unit": (
            _("The commune %(commune)s is not in the unit %(unit)s.") % {"commune": "\x01", "unit": unit.name}
            if unit is not None
            else ""
        ),
        "agent_none": _marked(_("There is no collection agent with code %(code)s."), code=1),
        "months_vsi": allowed[Scheme.VSI],
        "months_hi": allowed[Scheme.HI_FAMILY],
        "agent_unit": _marked(_("This collection agent does not work for the unit %(unit)s."), unit=1),
        "dob_future": _("The date of birth cannot be in the future."),
        "dob_past": _("The date of birth is too far in the past; check the year."),
        "dob_age": _("Voluntary social insurance is for people aged %(age)s or over; this person is %(actual)s.")
        % {"age": VSI_MIN_AGE, "actual": "\x01"},
        "enrolled_future": _("The date recorded cannot be in the future."),
        "dob_mismatch": _marked(
            _(
                "The social insurance number %(si)s belongs to a person with another date of birth. "
                "Check the number and the date."
            ),
            si=1,
        ),
        "dob_in_file": _marked(_("Row %(row)s has the same SI number with another date of birth."), row=1),
        "dup_existing": _marked(_("Already recorded (record no. %(pk)s)."), pk=1),
        "overlap_existing": _marked(
            _(
                "This person already has coverage in this scheme from %(start)s to %(end)s "
                "(record no. %(pk)s, %(unit)s) that overlaps this one."
            ),
            start=1,
            end=2,
            pk=3,
            unit=4,
        ),
        "dup_file": _marked(_("The same enrollment as row %(row)s."), row=1),
        "overlap_file": _marked(_("The coverage overlaps the one in row %(row)s for the same person."), row=1),
    }


def _enrollment_unit_override(*, user, unit):
    """The provincial office records people from every commune of its province as its own (see enrollment_unit)."""
    if unit is not None and unit.is_provincial_office:
        return unit
    scope = scope_of(user) if user is not None else None
    if scope is not None and scope.unit_id and scope.unit.is_provincial_office:
        return scope.unit
    return None


def _script(cursor, sql: str, params: dict | None = None) -> None:
    """Runs each statement of `sql` on its own: with parameters, PostgreSQL takes one statement at a time."""
    for statement in sql.split(";\n"):
        if statement.strip():
            cursor.execute(statement, params)


SETUP_SQL = """
CREATE TEMP TABLE bi_stage (
    row_no integer, nul_mask integer, si_number text, full_name text, date_of_birth text, gender text,
    commune_code text, scheme text, enrolled_on text, coverage_start text, months text, collection_agent_code text
) ON COMMIT DROP;
CREATE TEMP TABLE bi_err (row_no integer, seq integer, col text, msg text) ON COMMIT DROP;
CREATE TEMP TABLE bi_words (kind text, raw text, value text) ON COMMIT DROP
"""

# Bits of bi_stage.nul_mask: 1 << i when column i held a NUL character; and two hints set while streaming, each
# only choosing a shortcut that gives the same result as the full expression: the SI number is already 10 ASCII
# digits, the name already has single spaces and at most 120 characters.
SI_PLAIN, NAME_PLAIN = 1024, 2048

# The columns with few distinct spellings (dates, months, codes) are parsed once per spelling, then joined.
DISTINCT_SQL = """
CREATE TEMP TABLE bi_dates ON COMMIT DROP AS
SELECT raw, t, ymd IS NOT NULL AS ymd_ok,
       CASE WHEN ymd[1] >= 1 AND ymd[2] BETWEEN 1 AND 12 AND ymd[3] >= 1
                 AND ymd[3] <= extract(day FROM make_date(ymd[1], ymd[2], 1) + interval '1 month' - interval '1 day')
            THEN make_date(ymd[1], ymd[2], ymd[3]) END AS d
FROM (
    SELECT raw, t,
           CASE WHEN t ~ '^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$' THEN string_to_array(t, '-')::int[]
                WHEN t ~ '^[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{4}$' THEN
                    (SELECT ARRAY[r.m[3]::int, r.m[2]::int, r.m[1]::int]
                     FROM regexp_match(t, '^([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})$') AS r(m)) END AS ymd
    FROM (SELECT raw, nullif(btrim(raw, %(ws)s), '') AS t
          FROM (SELECT date_of_birth AS raw FROM bi_stage UNION SELECT enrolled_on FROM bi_stage
                UNION SELECT coverage_start FROM bi_stage) u
          WHERE raw IS NOT NULL) v
) w;
CREATE TEMP TABLE bi_months ON COMMIT DROP AS
SELECT raw, t, CASE WHEN t ~ '^[0-9]+(\\.0+)?$' THEN t::numeric END AS num
FROM (SELECT raw, nullif(btrim(raw, %(ws)s), '') AS t FROM (SELECT DISTINCT months AS raw FROM bi_stage) u
      WHERE raw IS NOT NULL) v;
CREATE TEMP TABLE bi_cref ON COMMIT DROP AS
SELECT v.raw, v.t, c.id AS commune_id, c.name AS commune_name,
       (c.id IS NOT NULL AND (NOT %(scoped)s::boolean OR c.id IN (SELECT id FROM bi_communes))) AS visible,
       (%(check_unit)s::bigint IS NULL OR (CASE WHEN %(check_unit_po)s::boolean
                                                THEN cd.province_id = %(check_unit_province)s::bigint
                                                ELSE c.district_id = %(check_unit)s::bigint END)) AS in_unit,
       coalesce(%(override_unit)s::bigint, c.district_id) AS unit_id,
       coalesce(%(override_province)s::bigint, cd.province_id) AS unit_province_id,
       coalesce(%(override_name)s::text, cd.name) AS unit_name
FROM (SELECT raw, nullif(btrim(raw, %(ws)s), '') AS t FROM (SELECT DISTINCT commune_code AS raw FROM bi_stage) u
      WHERE raw IS NOT NULL) v
LEFT JOIN districts_commune c ON c.code = v.t
LEFT JOIN districts_district cd ON cd.id = c.district_id;
CREATE TEMP TABLE bi_aref ON COMMIT DROP AS
SELECT v.raw, v.t, a.id AS agent_id, o.id AS org_id, o.province_id AS org_province_id, o.unit_id AS org_unit_id
FROM (SELECT raw, nullif(btrim(raw, %(ws)s), '') AS t
      FROM (SELECT DISTINCT collection_agent_code AS raw FROM bi_stage) u WHERE raw IS NOT NULL) v
LEFT JOIN participants_collectionagent a ON a.code = v.t
LEFT JOIN participants_collectionorganisation o ON o.id = a.organisation_id
"""

SI_SLOW = """(SELECT CASE WHEN y.dgt ~ '^[0-9]{10}$' THEN y.dgt END
    FROM (SELECT translate(CASE WHEN z.v ~ '^[0-9]+\\.0$' THEN left(z.v, -2) ELSE z.v END,
                           ' .-' || chr(160) || chr(9), '') AS dgt
          FROM (SELECT btrim(normalize(btrim(s.si_number, %(ws)s), NFKC), %(ws)s) AS v) z) y)"""

# Each row with its values parsed, its references resolved and the person behind its SI number; `clean` is a
# conservative summary: a clean row has none of the errors below (a row that is not clean is checked in full).
NORM_SQL = """
CREATE TEMP TABLE bi_norm ON COMMIT DROP AS
SELECT q.*,
       CASE WHEN q.si IS NOT NULL AND q.dob IS NOT NULL AND q.p_id IS NULL THEN
           first_value(q.row_no) OVER w_person END AS first_row,
       CASE WHEN q.si IS NOT NULL AND q.dob IS NOT NULL AND q.p_id IS NULL THEN
           first_value(q.dob) OVER w_person END AS first_dob
FROM (
    SELECT s.row_no, s.nul_mask, s.si_number AS si_raw,
           CASE WHEN s.nul_mask & 1024 <> 0 THEN s.si_number WHEN s.nul_mask & 1 <> 0 THEN NULL
                ELSE nullif(btrim(s.si_number, %(ws)s), '') END AS t_si,
           CASE WHEN s.nul_mask & 1024 <> 0 THEN s.si_number WHEN s.nul_mask & 1 <> 0 THEN NULL
                ELSE {SI_SLOW} END AS si,
           CASE WHEN s.nul_mask & 2048 <> 0 THEN s.full_name WHEN s.nul_mask & 2 <> 0 THEN NULL
                ELSE nullif(left(regexp_replace(btrim(s.full_name, %(ws)s), %(ws_run)s, ' ', 'g'), 120), '')
           END AS name,
           CASE WHEN s.nul_mask & 4 = 0 THEN d1.t END AS t_dob,
           CASE WHEN s.nul_mask & 4 = 0 THEN d1.d END AS dob, d1.ymd_ok AS dob_ymd_ok,
           CASE WHEN s.nul_mask & 64 = 0 THEN d2.t END AS t_enr,
           CASE WHEN s.nul_mask & 64 = 0 THEN d2.d END AS enrolled_on, d2.ymd_ok AS enr_ymd_ok,
           CASE WHEN s.nul_mask & 128 = 0 THEN d3.t END AS t_start,
           CASE WHEN s.nul_mask & 128 = 0 THEN d3.d END AS cov_start, d3.ymd_ok AS start_ymd_ok,
           CASE WHEN s.nul_mask & 8 = 0 THEN nullif(btrim(s.gender, %(ws)s), '') END AS t_gender,
           CASE WHEN s.nul_mask & 8 = 0 THEN gw.value END AS gender_v,
           CASE WHEN s.nul_mask & 32 = 0 THEN nullif(btrim(s.scheme, %(ws)s), '') END AS t_scheme,
           CASE WHEN s.nul_mask & 32 = 0 THEN sw.value END AS scheme_v,
           CASE WHEN s.nul_mask & 256 = 0 THEN m.t END AS t_months,
           CASE WHEN s.nul_mask & 256 = 0 THEN m.num END AS months_num,
           CASE WHEN s.nul_mask & 256 = 0 AND m.num <= 32767 THEN m.num::int END AS months_i,
           CASE WHEN s.nul_mask & 16 = 0 THEN c.t END AS t_commune,
           CASE WHEN s.nul_mask & 16 = 0 THEN c.commune_id END AS commune_id,
           c.commune_name, coalesce(c.visible, false) AS commune_visible, coalesce(c.in_unit, false) AS commune_in_unit,
           c.unit_id, c.unit_province_id, c.unit_name,
           CASE WHEN s.nul_mask & 512 = 0 THEN a.t END AS t_agent,
           CASE WHEN s.nul_mask & 512 = 0 THEN a.agent_id END AS agent_id,
           a.org_id, a.org_province_id, a.org_unit_id,
           p.id AS p_id, p.date_of_birth AS p_dob, p.full_name AS p_name, p.gender AS p_gender
    FROM bi_stage s
    LEFT JOIN bi_dates d1 ON d1.raw = s.date_of_birth
    LEFT JOIN bi_dates d2 ON d2.raw = s.enrolled_on
    LEFT JOIN bi_dates d3 ON d3.raw = s.coverage_start
    LEFT JOIN bi_words gw ON gw.kind = 'gender' AND gw.raw = s.gender
    LEFT JOIN bi_words sw ON sw.kind = 'scheme' AND sw.raw = s.scheme
    LEFT JOIN bi_months m ON m.raw = s.months
    LEFT JOIN bi_cref c ON c.raw = s.commune_code
    LEFT JOIN bi_aref a ON a.raw = s.collection_agent_code
    LEFT JOIN participants_participant p ON p.si_number = CASE WHEN s.nul_mask & 1024 <> 0 THEN s.si_number
                                                               WHEN s.nul_mask & 1 <> 0 THEN NULL ELSE {SI_SLOW} END
) q
WINDOW w_person AS (PARTITION BY q.si, (q.si IS NOT NULL AND q.dob IS NOT NULL AND q.p_id IS NULL) ORDER BY q.row_no)
""".replace("{SI_SLOW}", SI_SLOW)  # nosec B608 - SI_SLOW is a constant SQL fragment of this module

CLEAN_SQL = """
CREATE TEMP TABLE bi_clean ON COMMIT DROP AS
SELECT row_no FROM bi_norm n
WHERE n.nul_mask & 1023 = 0 AND n.si IS NOT NULL AND n.name IS NOT NULL AND n.dob IS NOT NULL
  AND n.gender_v IS NOT NULL AND n.commune_id IS NOT NULL AND n.commune_visible AND n.commune_in_unit
  AND n.scheme_v IS NOT NULL AND n.enrolled_on IS NOT NULL AND n.cov_start IS NOT NULL
  AND ((n.scheme_v = 'vsi' AND n.months_i = ANY(%(vsi_months)s::int[]))
       OR (n.scheme_v = 'hi_family' AND n.months_i = ANY(%(hi_months)s::int[])))
  AND (n.t_agent IS NULL OR (n.agent_id IS NOT NULL AND n.org_province_id = n.unit_province_id
                              AND (n.org_unit_id IS NULL OR n.org_unit_id = n.unit_id)))
  AND n.dob <= %(today)s::date AND n.dob >= DATE '1900-01-01' AND n.enrolled_on <= %(today)s::date
  AND (n.scheme_v <> 'vsi' OR n.dob + interval '15 years 1 day' <= n.enrolled_on)
  AND CASE WHEN n.p_id IS NOT NULL THEN n.p_dob = n.dob ELSE (n.first_row = n.row_no OR n.first_dob = n.dob) END
"""

# Every error the row path would find before it looks at coverage, in its order (seq).
ERRORS_SQL = """
INSERT INTO bi_err (row_no, seq, col, msg)
SELECT n.row_no, e.seq, e.col, e.msg
FROM bi_norm n
CROSS JOIN LATERAL (
    SELECT (n.commune_id IS NOT NULL AND n.commune_visible AND n.commune_in_unit) AS commune_ok
) k
CROSS JOIN LATERAL (
    SELECT x.si_txt, translate(x.si_txt, ' .-' || chr(160) || chr(9), '') AS si_digits
    FROM (SELECT CASE WHEN z.v ~ '^[0-9]+\\.0$' THEN left(z.v, -2) ELSE z.v END AS si_txt
          FROM (SELECT btrim(normalize(n.t_si, NFKC), %(ws)s) AS v) z) x
) d
CROSS JOIN LATERAL (
    SELECT (extract(year FROM coalesce(n.enrolled_on, %(today)s::date)) - extract(year FROM n.dob)
            - CASE WHEN (extract(month FROM coalesce(n.enrolled_on, %(today)s::date)),
                         extract(day FROM coalesce(n.enrolled_on, %(today)s::date)))
                        < (extract(month FROM n.dob), extract(day FROM n.dob)) THEN 1 ELSE 0 END)::int AS age
) a
CROSS JOIN LATERAL (VALUES
    (1, 'si_number', CASE WHEN n.nul_mask & 1 <> 0 THEN %(nul)s END),
    (1, 'full_name', CASE WHEN n.nul_mask & 2 <> 0 THEN %(nul)s END),
    (1, 'date_of_birth', CASE WHEN n.nul_mask & 4 <> 0 THEN %(nul)s END),
    (1, 'gender', CASE WHEN n.nul_mask & 8 <> 0 THEN %(nul)s END),
    (1, 'commune_code', CASE WHEN n.nul_mask & 16 <> 0 THEN %(nul)s END),
    (1, 'scheme', CASE WHEN n.nul_mask & 32 <> 0 THEN %(nul)s END),
    (1, 'enrolled_on', CASE WHEN n.nul_mask & 64 <> 0 THEN %(nul)s END),
    (1, 'coverage_start', CASE WHEN n.nul_mask & 128 <> 0 THEN %(nul)s END),
    (1, 'months', CASE WHEN n.nul_mask & 256 <> 0 THEN %(nul)s END),
    (1, 'collection_agent_code', CASE WHEN n.nul_mask & 512 <> 0 THEN %(nul)s END),
    (2, 'si_number', CASE WHEN n.nul_mask & 1 = 0 AND n.t_si IS NULL THEN %(empty)s END),
    (2, 'full_name', CASE WHEN n.nul_mask & 2 = 0 AND n.name IS NULL THEN %(empty)s END),
    (2, 'date_of_birth', CASE WHEN n.nul_mask & 4 = 0 AND n.t_dob IS NULL THEN %(empty)s END),
    (2, 'gender', CASE WHEN n.nul_mask & 8 = 0 AND n.t_gender IS NULL THEN %(empty)s END),
    (2, 'commune_code', CASE WHEN n.nul_mask & 16 = 0 AND n.t_commune IS NULL THEN %(empty)s END),
    (2, 'scheme', CASE WHEN n.nul_mask & 32 = 0 AND n.t_scheme IS NULL THEN %(empty)s END),
    (2, 'enrolled_on', CASE WHEN n.nul_mask & 64 = 0 AND n.t_enr IS NULL THEN %(empty)s END),
    (2, 'coverage_start', CASE WHEN n.nul_mask & 128 = 0 AND n.t_start IS NULL THEN %(empty)s END),
    (2, 'months', CASE WHEN n.nul_mask & 256 = 0 AND n.t_months IS NULL THEN %(empty)s END),
    (3, 'si_number', CASE WHEN n.t_si IS NULL THEN NULL
                          WHEN d.si_digits = '' THEN %(si_required)s
                          WHEN d.si_digits !~ '^[0-9]+$' THEN replace(%(si_digits)s, chr(1), left(d.si_txt, 20))
                          WHEN length(d.si_digits) <> 10
                              THEN replace(%(si_length)s, chr(1), length(d.si_digits)::text) END),
    (4, 'date_of_birth', CASE WHEN n.t_dob IS NULL OR n.dob IS NOT NULL THEN NULL
                              WHEN n.dob_ymd_ok THEN replace(%(date_exists)s, chr(1), n.t_dob)
                              ELSE replace(%(date_bad)s, chr(1), left(n.t_dob, 30)) END),
    (5, 'enrolled_on', CASE WHEN n.t_enr IS NULL OR n.enrolled_on IS NOT NULL THEN NULL
                            WHEN n.enr_ymd_ok THEN replace(%(date_exists)s, chr(1), n.t_enr)
                            ELSE replace(%(date_bad)s, chr(1), left(n.t_enr, 30)) END),
    (6, 'coverage_start', CASE WHEN n.t_start IS NULL OR n.cov_start IS NOT NULL THEN NULL
                               WHEN n.start_ymd_ok THEN replace(%(date_exists)s, chr(1), n.t_start)
                               ELSE replace(%(date_bad)s, chr(1), left(n.t_start, 30)) END),
    (7, 'gender', CASE WHEN n.t_gender IS NOT NULL AND n.gender_v IS NULL THEN %(gender)s END),
    (8, 'scheme', CASE WHEN n.t_scheme IS NOT NULL AND n.scheme_v IS NULL THEN %(scheme)s END),
    (9, 'months', CASE WHEN n.t_months IS NOT NULL AND n.months_num IS NULL
                       THEN replace(%(months_bad)s, chr(1), left(n.t_months, 20)) END),
    (10, 'commune_code', CASE WHEN n.t_commune IS NULL THEN NULL
                              WHEN n.commune_id IS NULL OR NOT n.commune_visible
                                  THEN replace(%(commune_none)s, chr(1), n.t_commune)
                              WHEN NOT n.commune_in_unit THEN replace(%(commune_unit)s, chr(1), n.commune_name) END),
    (11, 'collection_agent_code', CASE WHEN n.t_agent IS NOT NULL AND n.agent_id IS NULL
                                       THEN replace(%(agent_none)s, chr(1), n.t_agent) END),
    (12, 'months', CASE WHEN n.scheme_v IS NOT NULL AND n.months_num IS NOT NULL AND NOT (
                            (n.scheme_v = 'vsi' AND n.months_num = ANY(%(vsi_months)s::numeric[]))
                            OR (n.scheme_v = 'hi_family' AND n.months_num = ANY(%(hi_months)s::numeric[])))
                        THEN CASE n.scheme_v WHEN 'vsi' THEN %(months_vsi)s ELSE %(months_hi)s END END),
    (13, 'collection_agent_code',
        CASE WHEN k.commune_ok AND n.scheme_v IS NOT NULL AND n.months_num IS NOT NULL AND n.agent_id IS NOT NULL
                  AND (n.org_province_id <> n.unit_province_id
                       OR (n.org_unit_id IS NOT NULL AND n.org_unit_id <> n.unit_id))
             THEN replace(%(agent_unit)s, chr(1), n.unit_name) END),
    (14, 'date_of_birth', CASE WHEN n.dob IS NULL THEN NULL
                               WHEN n.dob > %(today)s::date THEN %(dob_future)s
                               WHEN extract(year FROM n.dob) < 1900 THEN %(dob_past)s
                               WHEN n.scheme_v = 'vsi' AND a.age < %(min_age)s
                                   THEN replace(%(dob_age)s, chr(1), a.age::text) END),
    (15, 'enrolled_on', CASE WHEN n.enrolled_on > %(today)s::date THEN %(enrolled_future)s END),
    (16, 'date_of_birth', CASE WHEN n.si IS NULL OR n.dob IS NULL THEN NULL
                               WHEN n.p_id IS NOT NULL AND n.p_dob <> n.dob THEN replace(%(dob_mismatch)s, chr(1), n.si)
                               WHEN n.p_id IS NULL AND n.first_row <> n.row_no AND n.first_dob <> n.dob
                                   THEN replace(%(dob_in_file)s, chr(1), n.first_row::text) END)
) AS e(seq, col, msg)
WHERE e.msg IS NOT NULL AND n.row_no NOT IN (SELECT row_no FROM bi_clean)
"""

# Rows without errors against the person's existing coverage: the first overlapping record in the row path's order.
EXISTING_SQL = """
CREATE TEMP TABLE bi_cand ON COMMIT DROP AS
SELECT n.row_no, n.si, n.scheme_v AS scheme, n.cov_start,
       (n.cov_start + make_interval(months => n.months_i))::date AS cov_end, n.months_i, n.p_id,
       x.id AS existing_id, x.coverage_start AS x_start, x.coverage_end AS x_end, x.months AS x_months,
       xd.name AS x_unit
FROM bi_norm n
LEFT JOIN LATERAL (
    SELECT e.id, e.coverage_start, e.coverage_end, e.months, e.unit_id
    FROM participants_enrollment e
    WHERE e.participant_id = n.p_id AND e.scheme = n.scheme_v
      AND e.coverage_start < (n.cov_start + make_interval(months => n.months_i))::date
      AND e.coverage_end > n.cov_start
    ORDER BY e.enrolled_on DESC, e.id DESC
    LIMIT 1
) x ON n.p_id IS NOT NULL
LEFT JOIN districts_district xd ON xd.id = x.unit_id
WHERE n.cov_start IS NOT NULL AND NOT EXISTS (SELECT 1 FROM bi_err r WHERE r.row_no = n.row_no)
"""

# Within the file, a row is compared with the earlier rows of the same person and scheme that were accepted, in
# file order: which earlier rows are accepted depends on the verdicts before, so each group is walked in order.
WITHIN_SQL = """
CREATE TEMP TABLE bi_multi ON COMMIT DROP AS
SELECT row_no, si, scheme, cov_start, cov_end, months_i, k
FROM (SELECT c.*, row_number() OVER (PARTITION BY si, scheme ORDER BY row_no) AS k,
             count(*) OVER (PARTITION BY si, scheme) AS size
      FROM bi_cand c WHERE existing_id IS NULL) g
WHERE size > 1;
CREATE INDEX ON bi_multi (si, scheme, k);
ANALYZE bi_multi;
CREATE TEMP TABLE bi_within ON COMMIT DROP AS
WITH RECURSIVE walk AS (
    SELECT si, scheme, k, row_no, 'create'::text AS outcome, NULL::int AS other_row,
           ARRAY[row_no] AS acc_rows, ARRAY[cov_start] AS acc_start, ARRAY[cov_end] AS acc_end,
           ARRAY[months_i] AS acc_months
    FROM bi_multi WHERE k = 1
    UNION ALL
    SELECT m.si, m.scheme, m.k, m.row_no,
           CASE WHEN h.i IS NULL THEN 'create'
                WHEN w.acc_start[h.i] = m.cov_start AND w.acc_months[h.i] = m.months_i THEN 'duplicate'
                ELSE 'overlap' END,
           w.acc_rows[h.i],
           CASE WHEN h.i IS NULL THEN w.acc_rows || m.row_no ELSE w.acc_rows END,
           CASE WHEN h.i IS NULL THEN w.acc_start || m.cov_start ELSE w.acc_start END,
           CASE WHEN h.i IS NULL THEN w.acc_end || m.cov_end ELSE w.acc_end END,
           CASE WHEN h.i IS NULL THEN w.acc_months || m.months_i ELSE w.acc_months END
    FROM walk w
    JOIN bi_multi m ON m.si = w.si AND m.scheme = w.scheme AND m.k = w.k + 1
    LEFT JOIN LATERAL (
        SELECT g.i FROM generate_subscripts(w.acc_rows, 1) AS g(i)
        WHERE w.acc_start[g.i] < m.cov_end AND w.acc_end[g.i] > m.cov_start
        ORDER BY g.i LIMIT 1
    ) h ON true
)
SELECT row_no, outcome, other_row FROM walk WHERE outcome <> 'create'
"""

STATUS_SQL = """
INSERT INTO bi_err (row_no, seq, col, msg)
SELECT c.row_no, 17, 'coverage_start',
       replace(replace(replace(replace(%(overlap_existing)s, chr(1), to_char(c.x_start, 'DD/MM/YYYY')),
               chr(2), to_char(c.x_end - 1, 'DD/MM/YYYY')), chr(3), c.existing_id::text), chr(4), c.x_unit)
FROM bi_cand c
WHERE c.existing_id IS NOT NULL AND NOT (c.x_start = c.cov_start AND c.x_months = c.months_i)
UNION ALL
SELECT w.row_no, 18, 'coverage_start', replace(%(overlap_file)s, chr(1), w.other_row::text)
FROM bi_within w WHERE w.outcome = 'overlap';
CREATE TEMP TABLE bi_status ON COMMIT DROP AS
SELECT n.row_no,
       CASE WHEN er.row_no IS NOT NULL THEN 'error'
            WHEN c.existing_id IS NOT NULL OR w.outcome = 'duplicate' THEN 'duplicate'
            ELSE 'create' END AS status,
       CASE WHEN er.row_no IS NULL THEN c.existing_id END AS existing_id,
       CASE WHEN er.row_no IS NOT NULL THEN ''
            WHEN c.existing_id IS NOT NULL THEN replace(%(dup_existing)s, chr(1), c.existing_id::text)
            WHEN w.outcome = 'duplicate' THEN replace(%(dup_file)s, chr(1), w.other_row::text)
            ELSE '' END AS note
FROM bi_norm n
LEFT JOIN (SELECT DISTINCT row_no FROM bi_err) er ON er.row_no = n.row_no
LEFT JOIN bi_cand c ON c.row_no = n.row_no
LEFT JOIN bi_within w ON w.row_no = n.row_no
"""


def _words(cursor) -> None:
    """The choice words (gender, scheme) of the list, each distinct spelling folded once as the row path folds it."""
    for kind, column, words in (("gender", "gender", GENDER_WORDS), ("scheme", "scheme", SCHEME_WORDS)):
        cursor.execute(f"SELECT DISTINCT {column} FROM bi_stage WHERE {column} IS NOT NULL")  # noqa: S608 # nosec B608 - column is one of two constant names
        pairs = [(kind, raw, str(words[_fold(raw)])) for (raw,) in cursor.fetchall() if _fold(raw) in words]
        if pairs:
            with cursor.copy("COPY bi_words (kind, raw, value) FROM STDIN") as copy:
                for pair in pairs:
                    copy.write_row(pair)


def _scope_tables(cursor, *, user) -> bool:
    """Materialises what `user` may see (communes; people with a visible enrollment) through the one scoping
    module; returns whether communes are limited at all."""
    cursor.execute("CREATE TEMP TABLE bi_communes (id bigint PRIMARY KEY) ON COMMIT DROP")
    if user is None:
        return False
    sql, params = visible_communes(user).values("id").query.sql_with_params()
    cursor.execute(f"INSERT INTO bi_communes {sql}", params)  # noqa: S608 # nosec B608 - SQL compiled by Django's ORM, values are parameters
    return True


def _scope_people(cursor, *, user) -> None:
    cursor.execute("CREATE TEMP TABLE bi_scope_people (participant_id bigint PRIMARY KEY) ON COMMIT DROP")
    cursor.execute("CREATE TEMP TABLE bi_people ON COMMIT DROP AS SELECT DISTINCT p_id FROM bi_norm WHERE p_id > 0")
    if user is None:
        cursor.execute("INSERT INTO bi_scope_people SELECT p_id FROM bi_people")
        return
    sql, params = visible_enrollments(user).values("participant_id").query.sql_with_params()
    cursor.execute(
        f"INSERT INTO bi_scope_people SELECT DISTINCT v.participant_id FROM ({sql}) v "  # noqa: S608 # nosec B608 - SQL compiled by Django's ORM, values are parameters
        "WHERE v.participant_id IN (SELECT p_id FROM bi_people)",
        params,
    )


def _stage(cursor, *, name: str, stream, progress=None, max_rows=None) -> int:
    _script(cursor, SETUP_SQL)
    count = 0
    with cursor.copy(f"COPY bi_stage ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
        for row in stream_rows(name=name, stream=stream, max_rows=max_rows):
            copy.write_row(row)
            count += 1
            if progress and count % 100_000 == 0:
                progress(count, 0)
    cursor.execute("ANALYZE bi_stage")
    return count


def _plan_sql(cursor, *, user, unit, today) -> None:
    messages = _messages(unit=unit)
    scoped = _scope_tables(cursor, user=user)
    _words(cursor)
    override = _enrollment_unit_override(user=user, unit=unit)
    _script(
        cursor,
        DISTINCT_SQL,
        {
            "ws": WHITESPACE,
            "scoped": scoped,
            "check_unit": unit.pk if unit is not None else None,
            "check_unit_po": bool(unit is not None and unit.is_provincial_office),
            "check_unit_province": unit.province_id if unit is not None else None,
            "override_unit": override.pk if override else None,
            "override_province": override.province_id if override else None,
            "override_name": override.name if override else None,
        },
    )
    cursor.execute("ANALYZE bi_dates, bi_months, bi_cref, bi_aref, bi_words")
    cursor.execute(NORM_SQL, {"ws": WHITESPACE, "ws_run": "[" + WHITESPACE + "]+"})
    cursor.execute("ANALYZE bi_norm")
    _scope_people(cursor, user=user)
    limits = {
        "today": today,
        "min_age": VSI_MIN_AGE,
        "vsi_months": list(ALLOWED_MONTHS[Scheme.VSI]),
        "hi_months": list(ALLOWED_MONTHS[Scheme.HI_FAMILY]),
    }
    cursor.execute(CLEAN_SQL, limits)
    cursor.execute(ERRORS_SQL, {**messages, **limits, "ws": WHITESPACE})
    cursor.execute("CREATE INDEX ON bi_err (row_no)")
    cursor.execute(EXISTING_SQL)
    _script(cursor, WITHIN_SQL)
    _script(cursor, STATUS_SQL, messages)


REPORT_SQL = """
SELECT s.row_no, s.status, s.existing_id, s.note,
       ARRAY[t.si_number, t.full_name, t.date_of_birth, t.gender, t.commune_code, t.scheme, t.enrolled_on,
             t.coverage_start, t.months, t.collection_agent_code],
       n.nul_mask, n.scheme_v,
       CASE WHEN n.p_id IS NOT NULL AND sp.participant_id IS NOT NULL AND n.p_dob = n.dob THEN
           jsonb_strip_nulls(jsonb_build_object(
               'full_name', CASE WHEN n.name IS NOT NULL AND n.name <> n.p_name THEN jsonb_build_array(n.p_name, n.name) END,
               'gender', CASE WHEN n.gender_v IS NOT NULL AND n.gender_v <> n.p_gender
                              THEN jsonb_build_array(n.p_gender, n.gender_v) END))
       END AS changes,
       (SELECT jsonb_agg(jsonb_build_array(r.col, r.msg) ORDER BY r.seq) FROM bi_err r WHERE r.row_no = s.row_no)
FROM (SELECT * FROM bi_status WHERE status = %s ORDER BY row_no LIMIT %s) s
JOIN bi_norm n ON n.row_no = s.row_no
JOIN bi_stage t ON t.row_no = s.row_no
LEFT JOIN bi_scope_people sp ON sp.participant_id = n.p_id
ORDER BY s.row_no
"""


def _row_check(record) -> RowCheck:
    row_no, status, existing_id, note, raw, _mask, scheme, changes, errors = record
    # Django's connection hands jsonb back as text (JSONField decodes it itself).
    changes = json.loads(changes) if isinstance(changes, str) else changes
    errors = json.loads(errors) if isinstance(errors, str) else errors
    values = {c: ("" if v is None or not v.strip() else v[:120]) for c, v in zip(COLUMNS, raw, strict=True)}
    check = RowCheck(number=row_no, values=values, status=status, existing_pk=existing_id, note=note or "")
    for column, message in errors or []:
        check.errors.setdefault(column, []).append(message)
    check.changes = changes or {}
    if scheme:
        check.cleaned["scheme"] = scheme
    return check


def _report(cursor, *, sample: int | None = None) -> BulkPlan:
    sample = sample or ERROR_SAMPLE
    cursor.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'create'), count(*) FILTER (WHERE status = 'duplicate'), "
        "count(*) FILTER (WHERE status = 'error') FROM bi_status"
    )
    rows, create, duplicate, error = cursor.fetchone()
    plan = BulkPlan(totals={"rows": rows, "create": create, "duplicate": duplicate, "error": error})
    for status, target, limit in (
        ("error", plan.errors, sample),
        ("duplicate", plan.duplicates, sample),
        ("create", plan.create_sample, PREVIEW_SAMPLE),
    ):
        cursor.execute(REPORT_SQL, [status, limit])
        target.extend(_row_check(record) for record in cursor.fetchall())
    return plan


# ------------------------------------------------------------------------------------------------------ writing

APPLY_SQL = """
CREATE TEMP TABLE bi_new ON COMMIT DROP AS
SELECT n.row_no, n.si, n.name, n.dob, n.gender_v AS gender, n.commune_id, n.p_id, n.scheme_v AS scheme,
       n.enrolled_on, n.cov_start, (n.cov_start + make_interval(months => n.months_i))::date AS cov_end, n.months_i,
       n.unit_id, n.agent_id, n.org_id
FROM bi_status s JOIN bi_norm n ON n.row_no = s.row_no
WHERE s.status = 'create';
ANALYZE bi_new;
-- People: a new SI number becomes a person with its last row's details; a known person takes the last row's name,
-- gender and commune where they differ (as participant_upsert does row after row).
CREATE TEMP TABLE bi_person_last ON COMMIT DROP AS
SELECT DISTINCT ON (si) si, name, dob, gender, commune_id, p_id, unit_id, scheme, enrolled_on, row_no
FROM bi_new ORDER BY si, row_no DESC;
-- A new person's id is drawn from the table's own sequence beforehand, numbered in the order in which the
-- enrollments are inserted below (unit, scheme, day): the indexes led by the person (one start per person and
-- scheme, the exclusion constraint's) are then filled from left to right rather than at a random page per row, and
-- no second pass looks the new people up again by SI number.
CREATE TEMP TABLE bi_person_new ON COMMIT DROP AS
SELECT nextval(%(person_seq)s::regclass) AS id, o.si, o.name, o.dob, o.gender, o.commune_id
FROM (SELECT * FROM bi_person_last WHERE p_id IS NULL ORDER BY unit_id, scheme, enrolled_on, row_no) o;
CREATE TEMP TABLE bi_person_known ON COMMIT DROP AS
SELECT p_id, name, gender, commune_id FROM bi_person_last WHERE p_id IS NOT NULL;
ANALYZE bi_person_new;
ANALYZE bi_person_known;
INSERT INTO participants_participant (id, si_number, full_name, date_of_birth, gender, commune_id, occupation,
                                      income_bracket, created_at)
SELECT id, si, name, dob, gender, commune_id, 'other', 'unknown', %(now)s FROM bi_person_new;
INSERT INTO participants_historicalparticipant (id, si_number, full_name, date_of_birth, gender, occupation,
    income_bracket, created_at, history_date, history_change_reason, history_type, commune_id, history_user_id)
SELECT id, si, name, dob, gender, 'other', 'unknown', %(now)s, %(now)s, NULL, '+', commune_id, NULL
FROM bi_person_new;
WITH upd AS (
    UPDATE participants_participant p SET full_name = l.name, gender = l.gender, commune_id = l.commune_id
    FROM bi_person_known l
    WHERE p.id = l.p_id
      AND (p.full_name <> l.name OR p.gender <> l.gender OR p.commune_id IS DISTINCT FROM l.commune_id)
    RETURNING p.*
)
INSERT INTO participants_historicalparticipant (id, si_number, full_name, date_of_birth, gender, occupation,
    income_bracket, created_at, history_date, history_change_reason, history_type, commune_id, history_user_id)
SELECT id, si_number, full_name, date_of_birth, gender, occupation, income_bracket, created_at, %(now)s, NULL, '~',
       commune_id, NULL
FROM upd;
-- Kinds: the running maximum of the person's earlier coverage in the scheme, existing records included (only a
-- person known before the import can have any: a new person's id was drawn just now).
CREATE TEMP TABLE bi_kinds ON COMMIT DROP AS
SELECT row_no, id, p_id, scheme, cov_start, kind, old_kind,
       CASE WHEN prev_end IS NULL THEN 'new' WHEN prev_end >= cov_start THEN 'renewal' ELSE 'resumed' END AS new_kind
FROM (
    SELECT u.*, max(u.cov_end) OVER (PARTITION BY u.p_id, u.scheme ORDER BY u.cov_start
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
    FROM (
        SELECT b.row_no, NULL::bigint AS id, coalesce(b.p_id, pn.id) AS p_id, b.scheme, b.cov_start, b.cov_end,
               NULL::text AS kind, NULL::text AS old_kind
        FROM bi_new b LEFT JOIN bi_person_new pn ON b.p_id IS NULL AND pn.si = b.si
        UNION ALL
        SELECT NULL, e.id, e.participant_id, e.scheme, e.coverage_start, e.coverage_end, e.kind, e.kind
        FROM participants_enrollment e
        WHERE (e.participant_id, e.scheme) IN (SELECT DISTINCT p_id, scheme FROM bi_new WHERE p_id IS NOT NULL)
    ) u
) w;
WITH ins AS (
    INSERT INTO participants_enrollment (participant_id, scheme, kind, enrolled_on, coverage_start, coverage_end,
        months, unit_id, commune_id, organisation_id, agent_id, recorded_by_id, created_at, updated_at)
    SELECT k.p_id, b.scheme, k.new_kind, b.enrolled_on, b.cov_start, b.cov_end, b.months_i, b.unit_id,
           b.commune_id, b.org_id, b.agent_id, %(user)s, %(now)s, %(now)s
    FROM bi_new b JOIN bi_kinds k ON k.row_no = b.row_no
    -- In the order of the largest index (unit, scheme, day), then of the new people's ids: the pages of every index
    -- but the commune's are touched once each, not once per row.
    ORDER BY b.unit_id, b.scheme, b.enrolled_on, k.p_id
    RETURNING *
)
INSERT INTO participants_historicalenrollment (id, scheme, kind, enrolled_on, coverage_start, coverage_end, months,
    created_at, updated_at, history_date, history_change_reason, history_type, agent_id, commune_id,
    history_user_id, organisation_id, recorded_by_id, unit_id, participant_id)
SELECT id, scheme, kind, enrolled_on, coverage_start, coverage_end, months, created_at, updated_at, %(now)s, NULL,
       '+', agent_id, commune_id, %(user)s, organisation_id, recorded_by_id, unit_id, participant_id
FROM ins;
"""

# An existing record's kind is re-derived (as enrollment_kinds_rederive does) only in the groups where the row path
# would have done it: a row of the list was back-dated before a record present when it was saved.
REDERIVE_SQL = """
WITH groups AS (
    SELECT DISTINCT b.p_id, b.scheme FROM bi_new b
    WHERE b.p_id IS NOT NULL  -- people known before the import: nobody else has records to re-derive
      AND (EXISTS (SELECT 1 FROM participants_enrollment e
                   WHERE e.participant_id = b.p_id AND e.scheme = b.scheme AND e.coverage_start > b.cov_start
                     AND e.id IN (SELECT id FROM bi_kinds WHERE id IS NOT NULL))
           OR EXISTS (SELECT 1 FROM bi_new m WHERE m.p_id = b.p_id AND m.scheme = b.scheme
                        AND m.cov_start > b.cov_start AND m.row_no < b.row_no))
), upd AS (
    UPDATE participants_enrollment e SET kind = k.new_kind, updated_at = %(now)s
    FROM bi_kinds k JOIN groups g ON g.p_id = k.p_id AND g.scheme = k.scheme
    WHERE k.id IS NOT NULL AND e.id = k.id AND k.old_kind <> k.new_kind
    RETURNING e.*
)
INSERT INTO participants_historicalenrollment (id, scheme, kind, enrolled_on, coverage_start, coverage_end, months,
    created_at, updated_at, history_date, history_change_reason, history_type, agent_id, commune_id,
    history_user_id, organisation_id, recorded_by_id, unit_id, participant_id)
SELECT id, scheme, kind, enrolled_on, coverage_start, coverage_end, months, created_at, updated_at, %(now)s, NULL,
       '~', agent_id, commune_id, NULL, organisation_id, recorded_by_id, unit_id, participant_id
FROM upd
"""


def _apply_sql(cursor, *, user) -> dict:
    cursor.execute("SELECT pg_get_serial_sequence('participants_participant', 'id')")
    person_seq = cursor.fetchone()[0]
    params = {"now": timezone.now(), "user": user.pk if user is not None else None, "person_seq": person_seq}
    _script(cursor, APPLY_SQL, params)
    cursor.execute(REDERIVE_SQL, params)
    cursor.execute(
        "SELECT array_agg(DISTINCT unit_id), array_agg(DISTINCT enrolled_on), array_agg(DISTINCT scheme), "
        "min(cov_start) FROM bi_new"
    )
    unit_ids, days, schemes, since = cursor.fetchone()
    # The records whose kind was re-derived moved their own day's counts: the signal lists their units and days.
    cursor.execute(
        "SELECT e.unit_id, e.enrolled_on FROM participants_enrollment e JOIN bi_kinds k ON k.id = e.id "
        "WHERE k.id IS NOT NULL AND k.old_kind <> k.new_kind AND e.kind = k.new_kind GROUP BY 1, 2"
    )
    rederived = cursor.fetchall()
    return {
        "unit_ids": set(unit_ids or []) | {u for u, _d in rederived},
        "days": set(days or []) | {d for _u, d in rederived},
        "schemes": set(schemes or []),
        "since": since,
    }


TEMP_TABLES = (
    "bi_stage, bi_err, bi_words, bi_dates, bi_months, bi_cref, bi_aref, bi_norm, bi_clean, bi_communes, "
    "bi_scope_people, bi_people, bi_cand, bi_multi, bi_within, bi_status, bi_new, bi_person_last, bi_person_new, "
    "bi_person_known, bi_kinds"
)


def _drop(cursor) -> None:
    """Drops the staging tables at once: inside an enclosing transaction (a test, a caller's atomic block) ON COMMIT
    DROP would come too late for the next import on the same connection."""
    cursor.execute(f"DROP TABLE IF EXISTS {TEMP_TABLES}")  # noqa: S608 # nosec B608 - constant table names


def bulk_import(
    *,
    name: str,
    stream,
    user=None,
    unit=None,
    commit: bool,
    progress: Callable[[int, int], None] | None = None,
    today: datetime.date | None = None,
    max_rows: int | None = None,
    _retried: bool = False,
) -> BulkPlan:
    """Checks (commit=False) or saves all or nothing (commit=True) a list streamed from `stream` (binary, seekable).

    Raises ImportFileError when the file as a whole cannot be read, BulkRejected (nothing saved) when a row is wrong.
    `max_rows` bounds the list (default MAX_BULK_IMPORT_ROWS; browser uploads keep MAX_IMPORT_ROWS).
    """
    today = today or timezone.localdate()
    try:
        with transaction.atomic(), connection.cursor() as django_cursor:
            cursor = django_cursor.cursor  # psycopg's own cursor: COPY
            started = time.perf_counter()
            # One big batch: JIT compiling these wide statements costs more than it saves, and sorts and hashes of a
            # million rows belong in memory (for this transaction only).
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '256MB'")
            total = _stage(cursor, name=name, stream=stream, progress=progress, max_rows=max_rows)
            staged = time.perf_counter()
            if progress:
                progress(0, total)
            _plan_sql(cursor, user=user, unit=unit, today=today)
            plan = _report(cursor)
            checked = time.perf_counter()
            plan.timings = {"read_and_copy": round(staged - started, 2), "check": round(checked - staged, 2)}
            if plan.totals["error"]:
                raise BulkRejected(plan)
            if not commit:
                transaction.set_rollback(True)
                return plan
            changed = _apply_sql(cursor, user=user)
            plan.timings["write"] = round(time.perf_counter() - checked, 2)
            plan.changed = changed
            enrollments_changed_on_commit(
                unit_ids=changed["unit_ids"],
                days=changed["days"],
                schemes=changed["schemes"],
                coverage_since=changed["since"],
            )
            if progress:
                progress(total, total)
            _drop(cursor)
    except IntegrityError:
        # Someone saved one of these people or coverages while the list was being checked: everything was rolled
        # back; check and save once more, seeing their rows now (a row that now clashes is reported as usual).
        if not commit or _retried:
            raise
        stream.seek(0)
        return bulk_import(
            name=name,
            stream=stream,
            user=user,
            unit=unit,
            commit=True,
            progress=progress,
            today=today,
            max_rows=max_rows,
            _retried=True,
        )
    return plan
