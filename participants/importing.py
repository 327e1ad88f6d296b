"""Bulk enrollment lists (CSV or XLSX in the `import_enrollments` format): read safely, check, preview, save all or none.

A hand-written reader and checker rather than django-import-export: one row here is not one model row but a person
(found or created) plus an enrollment recorded through `enrollment_record` (lock, derived kind, overlap refusal),
the unit comes from the commune, duplicates of existing records are skipped rather than failed, and every message
must name the row and the column in an officer's words. import-export's Resource would need each of those
overridden; what is left of it (tablib) would not help with the zip-bomb checks that must run before openpyxl.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from districts.models import Commune
from districts.scoping import scope_of, visible_communes, visible_enrollments
from participants.models import ALLOWED_MONTHS, CollectionAgent, Enrollment, Participant, Scheme, add_months
from participants.services import (
    enrollment_record,
    participant_upsert,
    si_number_normalise,
    validate_dates,
    validate_enrollment_fields,
)
from participants.signals import enrollments_changed_batch
from participants.workbooks import UnsafeWorkbook, workbook_check

COLUMNS = (
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
)
REQUIRED = set(COLUMNS) - {"collection_agent_code"}

# Column labels in the officer's words (also the Vietnamese headers of the downloadable template).
COLUMN_LABELS = {
    "si_number": gettext_lazy("SI number"),
    "full_name": gettext_lazy("Full name"),
    "date_of_birth": gettext_lazy("Date of birth"),
    "gender": gettext_lazy("Gender"),
    "commune_code": gettext_lazy("Commune code"),
    "scheme": gettext_lazy("Scheme"),
    "enrolled_on": gettext_lazy("Date recorded"),
    "coverage_start": gettext_lazy("Coverage start"),
    "months": gettext_lazy("Months paid"),
    "collection_agent_code": gettext_lazy("Collection agent code"),
}
TEMPLATE_HEADERS_VI = {
    "si_number": "Mã số BHXH",
    "full_name": "Họ và tên",
    "date_of_birth": "Ngày sinh",
    "gender": "Giới tính",
    "commune_code": "Mã xã",
    "scheme": "Loại hình",
    "enrolled_on": "Ngày ghi nhận",
    "coverage_start": "Từ ngày",
    "months": "Số tháng đóng",
    "collection_agent_code": "Mã nhân viên thu",
}

# Bounds checked before any parser sees the bytes.
MAX_XLSX_ENTRIES = 200
MAX_XLSX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_XLSX_RATIO = 200
# Previews keep every problem row but only a sample of the rows to create.
PREVIEW_SAMPLE = 200


def _fold(text: str) -> str:
    """Lower case, no diacritics, single spaces: how headers and words are compared."""
    text = unicodedata.normalize("NFKD", str(text).replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[\s_]+", " ", text).strip()


HEADER_ALIASES = {_fold(c): c for c in COLUMNS} | {_fold(v): k for k, v in TEMPLATE_HEADERS_VI.items()}
HEADER_ALIASES |= {
    _fold("Họ tên"): "full_name",
    _fold("Số sổ BHXH"): "si_number",
    _fold("Mã BHXH"): "si_number",
    _fold("Số tháng"): "months",
    _fold("Ngày bắt đầu"): "coverage_start",
    _fold("Mã đại lý thu"): "collection_agent_code",
}
GENDER_WORDS = {"male": "male", "m": "male", "nam": "male", "female": "female", "f": "female", "nu": "female"}
SCHEME_WORDS = {
    "vsi": Scheme.VSI,
    _fold("BHXH tự nguyện"): Scheme.VSI,
    _fold("BHXH TN"): Scheme.VSI,
    "hi family": Scheme.HI_FAMILY,
    "hi_family": Scheme.HI_FAMILY,
    _fold("BHYT hộ gia đình"): Scheme.HI_FAMILY,
    _fold("BHYT HGĐ"): Scheme.HI_FAMILY,
}


class ImportFileError(Exception):
    """The file as a whole cannot be read; its message is for the officer."""


# ----------------------------------------------------------------------------------------------- reading the file


def read_table(*, name: str, data: bytes) -> list[dict]:
    """Rows of the file as {column: raw value, "_row": spreadsheet row number}; refuses hostile or broken files."""
    if len(data) > settings.MAX_UPLOAD_BYTES:
        raise ImportFileError(
            _("The file is too large (%(size)s MB); the limit is %(limit)s MB.")
            % {"size": round(len(data) / 1048576, 1), "limit": round(settings.MAX_UPLOAD_BYTES / 1048576, 1)}
        )
    if not data.strip():
        raise ImportFileError(_("The file is empty."))
    lower = name.lower()
    if data[:4] == b"PK\x03\x04":
        matrix = _read_xlsx(data)
    elif lower.endswith((".xlsx", ".xlsm", ".xls")):
        raise ImportFileError(
            _("This file is not a real Excel workbook (.xlsx). Save it again from Excel as .xlsx or as CSV UTF-8.")
        )
    else:
        matrix = _read_csv(data)
    return _rows_from_matrix(matrix)


def _check_zip(data: bytes, *, max_uncompressed: int = MAX_XLSX_UNCOMPRESSED) -> None:
    try:
        workbook_check(data, max_entries=MAX_XLSX_ENTRIES, max_uncompressed=max_uncompressed)
    except UnsafeWorkbook as exc:
        messages = {
            UnsafeWorkbook.DAMAGED: _("This file is damaged or is not an Excel workbook (.xlsx)."),
            UnsafeWorkbook.BOMB: _(
                "This workbook would unpack to far more data than it holds (a “zip bomb”); it was refused."
            ),
            UnsafeWorkbook.ENCRYPTED: _(
                "The workbook is password-protected. Save a copy without a password and upload that."
            ),
            UnsafeWorkbook.UNSAFE_NAMES: _(
                "This workbook is malformed (its parts have unsafe or repeated names); it was refused."
            ),
            UnsafeWorkbook.LINKS_OR_MACROS: _(
                "This workbook links to other files or holds macros; save the list as a plain .xlsx or CSV file."
            ),
            UnsafeWorkbook.NOT_XLSX: _("This file is a zip archive but not an Excel workbook (.xlsx)."),
        }
        raise ImportFileError(messages[exc.reason]) from exc


def _read_xlsx(data: bytes) -> list[list]:
    _check_zip(data)
    import openpyxl  # defusedxml is installed, so openpyxl parses the XML without entity expansion

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on malformed parts; all mean the same to the officer
        raise ImportFileError(_("This Excel workbook could not be read; save it again as .xlsx or CSV.")) from exc
    try:
        sheet = workbook.worksheets[0]
        matrix = []
        for values in sheet.iter_rows(values_only=True):
            matrix.append(list(values))
            if len(matrix) > settings.MAX_IMPORT_ROWS + 1:
                raise ImportFileError(_too_many_rows())
        return matrix
    except ImportFileError:
        raise
    except Exception as exc:
        raise ImportFileError(_("This Excel workbook could not be read; save it again as .xlsx or CSV.")) from exc
    finally:
        workbook.close()


def _read_csv(data: bytes) -> list[list]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            _("This file is neither an Excel workbook nor a CSV file in UTF-8. In Excel choose “CSV UTF-8”.")
        ) from exc
    if "\x00" in text:
        raise ImportFileError(_("This file is not a CSV text file."))
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    matrix = []
    try:
        # newline="" lets the csv module see a line break inside a quoted name as part of the name, and report a
        # stray one elsewhere as an error instead of a crash.
        for values in csv.reader(io.StringIO(text, newline=""), dialect):
            matrix.append(values)
            if len(matrix) > settings.MAX_IMPORT_ROWS + 1:
                raise ImportFileError(_too_many_rows())
    except csv.Error as exc:
        raise ImportFileError(
            _("Line %(line)s of the CSV file could not be read; save the list again as “CSV UTF-8”.")
            % {"line": len(matrix) + 1}
        ) from exc
    return matrix


def _too_many_rows() -> str:
    return _("The file has more than %(limit)s rows; split it into smaller files.") % {
        "limit": f"{settings.MAX_IMPORT_ROWS:,}".replace(",", ".")
    }


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def header_positions(header: list) -> dict[str, int]:
    """{column: position} of the header row's known columns (first spelling wins); refuses a file missing one."""
    positions = {}
    for position, label in enumerate(header):
        column = HEADER_ALIASES.get(_fold(label)) if not _blank(label) else None
        if column and column not in positions:
            positions[column] = position
    missing = [c for c in COLUMNS if c in REQUIRED and c not in positions]
    if missing:
        raise ImportFileError(
            _("These columns are missing from the first row: %(columns)s. Use the template's headers.")
            % {"columns": ", ".join(f"{COLUMN_LABELS[c]} ({c})" for c in missing)}
        )
    return positions


def _rows_from_matrix(matrix: list[list]) -> list[dict]:
    header_index = next((i for i, values in enumerate(matrix) if any(not _blank(v) for v in values)), None)
    if header_index is None:
        raise ImportFileError(_("The file has no rows."))
    positions = header_positions(matrix[header_index])
    rows = []
    for offset, values in enumerate(matrix[header_index + 1 :], start=header_index + 2):
        if all(_blank(v) for v in values):
            continue
        row = {c: (values[p] if p < len(values) else None) for c, p in positions.items()}
        row["_row"] = offset
        rows.append(row)
    if not rows:
        raise ImportFileError(_("The file has a header row but no enrollments."))
    return rows


# ------------------------------------------------------------------------------------------------ checking rows


def parse_date(value) -> datetime.date:
    """ISO YYYY-MM-DD, or DD/MM/YYYY (also D/M/YYYY, with dots or dashes) as Vietnamese spreadsheets write it."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    text = str(value or "").strip()
    try:
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", text):
            return datetime.date(*map(int, text.split("-")))
        match = re.fullmatch(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})", text)
        if match:
            day, month, year = map(int, match.groups())
            return datetime.date(year, month, day)
    except ValueError as exc:
        raise ValueError(_("%(value)s is not a date that exists.") % {"value": text}) from exc
    raise ValueError(_("%(value)s is not a date; write DD/MM/YYYY or YYYY-MM-DD.") % {"value": text[:30]})


def _parse_months(value) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value or "").strip()
    if re.fullmatch(r"\d+(\.0+)?", text):
        return int(float(text))
    raise ValueError(_("%(value)s is not a whole number of months.") % {"value": text[:20]})


def _code(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value or "").strip()


@dataclass
class RowCheck:
    number: int
    values: dict
    status: str = "create"  # create, duplicate, error
    errors: dict = field(default_factory=dict)  # column -> [messages]
    changes: dict = field(default_factory=dict)  # person field -> [old, new]
    existing_pk: int | None = None
    note: str = ""
    cleaned: dict = field(default_factory=dict)

    def error(self, column: str, message) -> None:
        self.status = "error"
        self.errors.setdefault(column, []).append(str(message))

    def as_json(self) -> dict:
        return {
            "number": self.number,
            "status": self.status,
            "values": self.values,
            "errors": [
                {"column": c, "label": str(COLUMN_LABELS.get(c, c)), "messages": m} for c, m in self.errors.items()
            ],
            "changes": self.changes,
            "existing_pk": self.existing_pk,
            "note": self.note,
            "scheme_label": str(Scheme(self.cleaned["scheme"]).label) if self.cleaned.get("scheme") else "",
        }


@dataclass
class ImportPlan:
    rows: list[RowCheck]

    @property
    def to_create(self) -> list[RowCheck]:
        return [r for r in self.rows if r.status == "create"]

    @property
    def duplicates(self) -> list[RowCheck]:
        return [r for r in self.rows if r.status == "duplicate"]

    @property
    def errors(self) -> list[RowCheck]:
        return [r for r in self.rows if r.status == "error"]

    def counts(self) -> dict:
        return {
            "rows": len(self.rows),
            "create": len(self.to_create),
            "duplicate": len(self.duplicates),
            "error": len(self.errors),
        }

    def as_json(self) -> dict:
        creates = self.to_create
        return {
            "counts": self.counts(),
            "errors": [r.as_json() for r in self.errors],
            "duplicates": [r.as_json() for r in self.duplicates],
            "create_sample": [r.as_json() for r in creates[:PREVIEW_SAMPLE]],
        }


FIELD_TO_COLUMN = {
    "scheme": "scheme",
    "months": "months",
    "commune": "commune_code",
    "agent": "collection_agent_code",
    "date_of_birth": "date_of_birth",
    "enrolled_on": "enrolled_on",
    "__all__": "coverage_start",
}


def _chunks(values: list, size: int = 2000):
    """Slices for IN (...) lists: SQLite allows a bounded number of parameters per statement."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _error_dict(exc: ValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {k: [str(m) for e in v for m in e.messages] for k, v in exc.error_dict.items()}
    return {"__all__": exc.messages}


def enrollment_unit(*, commune, user=None, unit=None):
    """The unit an imported enrollment belongs to: the commune's district, except for the provincial office (given
    as --unit, or the uploader's own unit), which records people from every commune of its province as its own."""
    if unit is not None and unit.is_provincial_office:
        return unit
    scope = scope_of(user) if user is not None else None
    if scope is not None and scope.unit_id and scope.unit.is_provincial_office:
        return scope.unit
    return commune.district


def import_plan(*, rows: list[dict], user=None, unit=None, today=None) -> ImportPlan:
    """Checks every row without writing: what would be created, what exists already, what is wrong and where.

    `user` limits communes (and so units) to what that user may see; `unit` (the command's --unit) limits them to
    one unit. The unit of each enrollment is its commune's unit, or the provincial office (enrollment_unit).
    """
    si_numbers, commune_codes, agent_codes = set(), set(), set()
    checks = []
    for raw in rows:
        values = {c: ("" if _blank(raw.get(c)) else str(raw.get(c))[:120].replace("\x00", "\ufffd")) for c in COLUMNS}
        check = RowCheck(number=raw["_row"], values=values)
        checks.append((check, raw))
        # A NUL character cannot be stored (nor looked up) in PostgreSQL text: the cell is wrong, say so.
        bad = [c for c in COLUMNS if isinstance(raw.get(c), str) and "\x00" in raw[c]]
        for column in bad:
            check.error(column, _("This cell contains an invalid (null) character."))
        if bad:
            raw = {k: v for k, v in raw.items() if k not in bad}
        for column in REQUIRED:
            if column not in bad and _blank(raw.get(column)):
                check.error(column, _("This cell is empty."))
        cleaned = check.cleaned
        if not _blank(raw.get("si_number")):
            try:
                value = raw["si_number"]
                if isinstance(value, int | float) and float(value).is_integer() and 0 <= value < 10**10:
                    # A number cell cannot keep a leading zero: 0123456789 comes back as 123456789.
                    value = f"{int(value):010d}"
                cleaned["si_number"] = si_number_normalise(_code(value))
                si_numbers.add(cleaned["si_number"])
            except ValidationError as exc:
                check.error("si_number", exc.messages[0])
        if not _blank(raw.get("full_name")):
            cleaned["full_name"] = " ".join(str(raw["full_name"]).split())[:120]
        for column in ("date_of_birth", "enrolled_on", "coverage_start"):
            if not _blank(raw.get(column)):
                try:
                    cleaned[column] = parse_date(raw[column])
                except ValueError as exc:
                    check.error(column, exc.args[0])
        if not _blank(raw.get("gender")):
            gender = GENDER_WORDS.get(_fold(raw["gender"]))
            if gender is None:
                check.error("gender", _("Write male or female (nam / nữ)."))
            cleaned["gender"] = gender
        if not _blank(raw.get("scheme")):
            scheme = SCHEME_WORDS.get(_fold(raw["scheme"]))
            if scheme is None:
                check.error(
                    "scheme", _("Write vsi (voluntary social insurance) or hi_family (family health insurance).")
                )
            cleaned["scheme"] = scheme
        if not _blank(raw.get("months")):
            try:
                cleaned["months"] = _parse_months(raw["months"])
            except ValueError as exc:
                check.error("months", exc.args[0])
        if not _blank(raw.get("commune_code")):
            cleaned["commune_code"] = _code(raw["commune_code"])
            commune_codes.add(cleaned["commune_code"])
        if not _blank(raw.get("collection_agent_code")):
            cleaned["agent_code"] = _code(raw["collection_agent_code"])
            agent_codes.add(cleaned["agent_code"])

    # Everything the rows refer to, in a handful of queries.
    communes = {c.code: c for c in Commune.objects.filter(code__in=commune_codes).select_related("district")}
    allowed_communes = (
        set(visible_communes(user).filter(code__in=commune_codes).values_list("code", flat=True))
        if user is not None
        else set(communes)
    )
    agents = {a.code: a for a in CollectionAgent.objects.filter(code__in=agent_codes).select_related("organisation")}
    people = {}
    for chunk in _chunks(sorted(si_numbers)):
        people.update({p.si_number: p for p in Participant.objects.filter(si_number__in=chunk)})
    person_ids = sorted(p.pk for p in people.values())
    existing_by_key: dict[tuple, list[Enrollment]] = {}
    in_scope_people = set() if user is not None else set(person_ids)
    for chunk in _chunks(person_ids):
        for enrollment in Enrollment.objects.filter(participant_id__in=chunk).select_related("unit"):
            existing_by_key.setdefault((enrollment.participant_id, enrollment.scheme), []).append(enrollment)
        if user is not None:
            in_scope_people.update(
                visible_enrollments(user).filter(participant_id__in=chunk).values_list("participant_id", flat=True)
            )

    today = today or timezone.localdate()
    people_in_file: dict[str, tuple[int, dict]] = {}
    planned: dict[tuple, list[tuple[datetime.date, datetime.date, int, int]]] = {}
    for check, _raw in checks:
        cleaned = check.cleaned
        commune = None
        if "commune_code" in cleaned:
            commune = communes.get(cleaned["commune_code"])
            if commune is None or cleaned["commune_code"] not in allowed_communes:
                check.error(
                    "commune_code",
                    _("There is no commune with code %(code)s in your area.") % {"code": cleaned["commune_code"]},
                )
                commune = None
            elif unit is not None and not unit.serves(commune):
                check.error(
                    "commune_code",
                    _("The commune %(commune)s is not in the unit %(unit)s.")
                    % {"commune": commune.name, "unit": unit.name},
                )
                commune = None
        agent = None
        if "agent_code" in cleaned:
            agent = agents.get(cleaned["agent_code"])
            if agent is None:
                check.error(
                    "collection_agent_code",
                    _("There is no collection agent with code %(code)s.") % {"code": cleaned["agent_code"]},
                )
        cleaned["commune"], cleaned["agent"] = commune, agent
        scheme, months = cleaned.get("scheme"), cleaned.get("months")
        if scheme and months is not None and months not in ALLOWED_MONTHS[scheme]:
            check.error(
                "months",
                _("For this scheme the months paid must be one of: %(allowed)s.")
                % {"allowed": ", ".join(str(m) for m in ALLOWED_MONTHS[scheme])},
            )
        if commune is not None and scheme and months is not None:
            try:
                validate_enrollment_fields(
                    scheme=scheme,
                    months=months,
                    unit=enrollment_unit(commune=commune, user=user, unit=unit),
                    commune=commune,
                    agent=agent,
                )
            except ValidationError as exc:
                for key, messages in _error_dict(exc).items():
                    if key != "months":  # already said above
                        for message in messages:
                            check.error(FIELD_TO_COLUMN.get(key, "coverage_start"), message)
        try:
            validate_dates(
                scheme=scheme,
                date_of_birth=cleaned.get("date_of_birth"),
                enrolled_on=cleaned.get("enrolled_on"),
                today=today,
            )
        except ValidationError as exc:
            for key, messages in _error_dict(exc).items():
                for message in messages:
                    check.error(FIELD_TO_COLUMN.get(key, key), message)

        si = cleaned.get("si_number")
        if si is None or "date_of_birth" not in cleaned:
            continue
        person = people.get(si)
        person_details = {k: cleaned.get(k) for k in ("full_name", "date_of_birth", "gender")}
        if person is not None:
            if person.date_of_birth != cleaned["date_of_birth"]:
                check.error(
                    "date_of_birth",
                    _(
                        "The social insurance number %(si)s belongs to a person with another date of birth. "
                        "Check the number and the date."
                    )
                    % {"si": si},
                )
            elif person.pk in in_scope_people:
                for key in ("full_name", "gender"):
                    if person_details.get(key) and getattr(person, key) != person_details[key]:
                        check.changes[key] = [str(getattr(person, key)), str(person_details[key])]
        elif si in people_in_file:
            first_row, first = people_in_file[si]
            if first["date_of_birth"] != cleaned["date_of_birth"]:
                check.error(
                    "date_of_birth",
                    _("Row %(row)s has the same SI number with another date of birth.") % {"row": first_row},
                )
        else:
            people_in_file[si] = (check.number, person_details)

        if check.status == "error" or "coverage_start" not in cleaned:
            continue
        start = cleaned["coverage_start"]
        end = add_months(start, months)
        for existing in existing_by_key.get((person.pk if person else None, scheme), []):
            if existing.coverage_start < end and existing.coverage_end > start:
                if existing.coverage_start == start and existing.months == months:
                    check.status, check.existing_pk = "duplicate", existing.pk
                    check.note = _("Already recorded (record no. %(pk)s).") % {"pk": existing.pk}
                else:
                    check.error(
                        "coverage_start",
                        _(
                            "This person already has coverage in this scheme from %(start)s to %(end)s "
                            "(record no. %(pk)s, %(unit)s) that overlaps this one."
                        )
                        % {
                            "start": existing.coverage_start.strftime("%d/%m/%Y"),
                            "end": (existing.coverage_end - datetime.timedelta(days=1)).strftime("%d/%m/%Y"),
                            "pk": existing.pk,
                            "unit": existing.unit.name,
                        },
                    )
                break
        if check.status != "create":
            continue
        for other_start, other_end, other_months, other_row in planned.get((si, scheme), []):
            if other_start < end and other_end > start:
                if other_start == start and other_months == months:
                    check.status = "duplicate"
                    check.note = _("The same enrollment as row %(row)s.") % {"row": other_row}
                else:
                    check.error(
                        "coverage_start",
                        _("The coverage overlaps the one in row %(row)s for the same person.") % {"row": other_row},
                    )
                break
        if check.status == "create":
            planned.setdefault((si, scheme), []).append((start, end, months, check.number))
    return ImportPlan(rows=[c for c, _raw in checks])


class ImportRejected(Exception):
    """Raised inside the import's transaction so that nothing is saved; carries the plan with its errors."""

    def __init__(self, plan: ImportPlan):
        super().__init__("import rejected")
        self.plan = plan


def import_apply(
    *,
    rows: list[dict],
    user=None,
    unit=None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportPlan:
    """Saves every row to create, or none: the plan is re-checked inside the transaction, and any row that fails
    (for example a duplicate saved by someone else meanwhile) rolls the whole import back with ImportRejected."""
    with enrollments_changed_batch(), transaction.atomic():
        plan = import_plan(rows=rows, user=user, unit=unit)
        if plan.errors:
            raise ImportRejected(plan)
        creates = plan.to_create
        for done, check in enumerate(creates, start=1):
            cleaned = check.cleaned
            commune = cleaned["commune"]
            try:
                participant, _changes = participant_upsert(
                    si_number=cleaned["si_number"],
                    full_name=cleaned["full_name"],
                    date_of_birth=cleaned["date_of_birth"],
                    gender=cleaned["gender"],
                    commune=commune,
                )
                enrollment_record(
                    participant=participant,
                    scheme=cleaned["scheme"],
                    enrolled_on=cleaned["enrolled_on"],
                    coverage_start=cleaned["coverage_start"],
                    months=cleaned["months"],
                    unit=enrollment_unit(commune=commune, user=user, unit=unit),
                    commune=commune,
                    agent=cleaned["agent"],
                    recorded_by=user,
                )
            except ValidationError as exc:
                for key, messages in _error_dict(exc).items():
                    for message in messages:
                        check.error(FIELD_TO_COLUMN.get(key, "coverage_start"), message)
                raise ImportRejected(plan) from exc
            if progress and (done % 100 == 0 or done == len(creates)):
                progress(done, len(creates))
    return plan


# ------------------------------------------------------------------------------------------ uploads (browser door)


def upload_create(*, user, name: str, data: bytes):
    """Keeps an uploaded file for its uploader's preview and confirmation (size checked before anything else)."""
    import hashlib

    from participants.models import EnrollmentUpload

    if len(data) > settings.MAX_UPLOAD_BYTES:
        raise ImportFileError(
            _("The file is too large (%(size)s MB); the limit is %(limit)s MB.")
            % {"size": round(len(data) / 1048576, 1), "limit": round(settings.MAX_UPLOAD_BYTES / 1048576, 1)}
        )
    return EnrollmentUpload.objects.create(
        uploaded_by=user,
        original_name=name[-255:],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content=data,
    )


def upload_check(*, upload) -> None:
    """Reads and checks an upload without saving any enrollment; the report is what the preview page shows."""
    from participants import bulk_import
    from participants.models import EnrollmentUpload

    try:
        if bulk_import.available():
            # PostgreSQL: the set-based path (same checks, same report), streamed from the stored bytes.
            try:
                plan = bulk_import.bulk_import(
                    name=upload.original_name,
                    stream=io.BytesIO(bytes(upload.content)),
                    user=upload.uploaded_by,
                    commit=False,
                    max_rows=settings.MAX_IMPORT_ROWS,
                )
            except bulk_import.BulkRejected as exc:
                plan = exc.plan
        else:
            rows = read_table(name=upload.original_name, data=bytes(upload.content))
            plan = import_plan(rows=rows, user=upload.uploaded_by)
    except ImportFileError as exc:
        upload.status, upload.report = EnrollmentUpload.Status.INVALID, {"file_error": str(exc)}
    except Exception:
        # An unexpected failure must not leave the page polling "being checked" for ever.
        upload.status = EnrollmentUpload.Status.FAILED
        upload.save(update_fields=["status"])
        raise
    else:
        upload.report = plan.as_json()
        upload.status = EnrollmentUpload.Status.INVALID if plan.errors else EnrollmentUpload.Status.READY
    upload.save(update_fields=["status", "report"])


def upload_confirm(*, upload, progress=None, claimed: bool = False) -> bool:
    """Saves a checked upload, all rows or none. Returns False when it was not ready (or is being saved already).

    `claimed` means the caller has already moved it from READY to IMPORTING (the view does, so that a second click
    finds it taken); otherwise this claims it.
    """
    from participants.models import EnrollmentUpload

    if not claimed:
        claimed = EnrollmentUpload.objects.filter(pk=upload.pk, status=EnrollmentUpload.Status.READY).update(
            status=EnrollmentUpload.Status.IMPORTING
        )
    if not claimed:
        return False
    upload.refresh_from_db()
    from participants import bulk_import

    try:
        if bulk_import.available():
            plan = bulk_import.bulk_import(
                name=upload.original_name,
                stream=io.BytesIO(bytes(upload.content)),
                user=upload.uploaded_by,
                commit=True,
                progress=progress,
                max_rows=settings.MAX_IMPORT_ROWS,
            )
        else:
            rows = read_table(name=upload.original_name, data=bytes(upload.content))
            plan = import_apply(rows=rows, user=upload.uploaded_by, progress=progress)
    except (ImportRejected, bulk_import.BulkRejected) as exc:
        upload.status, upload.report = EnrollmentUpload.Status.INVALID, exc.plan.as_json()
        upload.save(update_fields=["status", "report"])
        return True
    except Exception:
        upload.status = EnrollmentUpload.Status.FAILED
        upload.save(update_fields=["status"])
        raise
    upload.status = EnrollmentUpload.Status.DONE
    upload.report = plan.as_json()
    upload.created_count = plan.counts()["create"]
    upload.finished_at = timezone.now()
    upload.save(update_fields=["status", "report", "created_count", "finished_at"])
    return True
