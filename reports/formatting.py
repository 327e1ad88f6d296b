"""Numbers as an officer writes them: 36.421 and 89,93% in Vietnamese, 36,421 and 89.93% in English."""

from decimal import Decimal

from django.utils import numberformat
from django.utils.formats import get_format
from django.utils.translation import gettext as _


def number_format(value, decimal_pos):
    # Django's vi locale sets no NUMBER_GROUPING, so group by thousands explicitly with the locale's separators.
    return numberformat.format(
        value,
        get_format("DECIMAL_SEPARATOR"),
        decimal_pos=decimal_pos,
        grouping=3,
        thousand_sep=get_format("THOUSAND_SEPARATOR"),
        force_grouping=True,
    )


def fmt_int(value) -> str:
    if value is None or value == "":
        return "–"
    return number_format(int(value), 0)


def fmt_dec(value, places: int = 2) -> str:
    if value is None or value == "":
        return "–"
    return number_format(Decimal(value), places)


def fmt_pct(value, places: int = 2) -> str:
    if value is None or value == "":
        return "–"
    return f"{fmt_dec(value, places)}%"


def fmt_signed(value) -> str:
    if value is None:
        return "–"
    return f"+{fmt_int(value)}" if value > 0 else fmt_int(value)


def fmt_bool_track(value) -> str:
    return _("On track") if value else _("Behind")
