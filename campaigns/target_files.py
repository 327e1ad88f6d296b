"""The downloadable target templates (XLSX and CSV): every unit of the campaign with its current targets, in the
format that campaigns.importing reads back."""

from __future__ import annotations

import csv
import io

from django.utils.translation import gettext as _

from campaigns.importing import CODE, EN_HEADERS, NAME, VI_HEADERS
from campaigns.models import Campaign
from campaigns.selectors import campaign_targets, campaign_units
from participants.models import Scheme

COLUMNS = (CODE, NAME, Scheme.VSI.value, Scheme.HI_FAMILY.value)


def _neutral(text: str) -> str:
    # A text cell that starts like a formula would become a live formula in Excel (CSV/formula injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def template_rows(campaign: Campaign) -> list[list]:
    """One row per unit of the campaign (code, name, current targets or empty), then the province-level row."""
    values = campaign_targets(campaign)
    rows = [
        [unit.code, _neutral(unit.name), values.get((unit.pk, Scheme.VSI)), values.get((unit.pk, Scheme.HI_FAMILY))]
        for unit in campaign_units(campaign)
    ]
    province = campaign.province
    rows.append(
        [province.code, _neutral(province.name), values.get((None, Scheme.VSI)), values.get((None, Scheme.HI_FAMILY))]
    )
    return rows


def template_file_name(campaign: Campaign, extension: str) -> str:
    return f"chi-tieu-{campaign.slug}.{extension}"


def instructions(campaign: Campaign) -> list[str]:
    return [
        _("Targets of the campaign “%(name)s” (%(province)s), %(start)s–%(end)s.")
        % {
            "name": campaign.name,
            "province": campaign.province.name,
            "start": f"{campaign.start_date:%d/%m/%Y}",
            "end": f"{campaign.end_date:%d/%m/%Y}",
        },
        "",
        _("One row per unit. Columns:"),
        _("%(vi)s (%(en)s): the unit's official code; keep it as it is.")
        % {"vi": VI_HEADERS[CODE], "en": EN_HEADERS[CODE]},
        _(
            "%(vi)s (%(en)s): the unit's name; used only when the code is empty. Case, accents and prefixes such as "
            "Huyện, Thị xã, Thành phố, Quận do not matter."
        )
        % {"vi": VI_HEADERS[NAME], "en": EN_HEADERS[NAME]},
        _("%(vi)s (%(en)s): the target for voluntary social insurance, a whole number of people.")
        % {"vi": VI_HEADERS[Scheme.VSI], "en": EN_HEADERS[Scheme.VSI]},
        _("%(vi)s (%(en)s): the target for family health insurance, a whole number of people.")
        % {"vi": VI_HEADERS[Scheme.HI_FAMILY], "en": EN_HEADERS[Scheme.HI_FAMILY]},
        "",
        _(
            "The last row, with the province's code (%(code)s), is the province-level target; it need not equal the "
            "sum of the units. Delete it if you do not set one."
        )
        % {"code": campaign.province.code},
        _("An empty target cell leaves that target as it is; a unit missing from the file keeps its targets."),
        _("Type numbers, not formulas. Each unit may appear only once."),
        _(
            "Upload the file on the campaign's import page: you will see what would change before anything is saved, "
            "and nothing is saved if any row has a problem."
        ),
        _("A CSV file must be saved as “CSV UTF-8”."),
    ]


def template_xlsx(campaign: Campaign) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Chỉ tiêu"
    sheet.append([VI_HEADERS[c] for c in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in template_rows(campaign):
        sheet.append(row)
    # Codes are text: "001" must not turn into 1.
    for (cell,) in sheet.iter_rows(min_row=2, max_col=1):
        cell.number_format = "@"
        cell.data_type = "s"
        cell.value = str(cell.value)
    for letter, width in zip("ABCD", (14, 32, 18, 20), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"

    notes = workbook.create_sheet("Hướng dẫn")
    for line in instructions(campaign):
        notes.append([_neutral(line)])
    notes.column_dimensions["A"].width = 120
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def template_csv(campaign: Campaign) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([VI_HEADERS[c] for c in COLUMNS])
    for row in template_rows(campaign):
        writer.writerow(["" if v is None else v for v in row])
    # The BOM makes Excel open the file as UTF-8 rather than in the Windows code page.
    return ("\ufeff" + out.getvalue()).encode("utf-8")
