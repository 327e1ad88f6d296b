"""Whole numbers as an officer writes them: 1.350 in Vietnamese, 1,350 in English.

Django's Vietnamese locale sets no NUMBER_GROUPING, so intcomma and number_format print 1350; this groups by three."""

from django import template
from django.utils.translation import get_language

register = template.Library()


def group_thousands(value) -> str:
    if value is None or value == "":
        return "—"
    text = f"{int(value):,}"
    return text.replace(",", ".") if (get_language() or "vi").startswith("vi") else text


@register.filter
def num(value):
    return group_thousands(value)
