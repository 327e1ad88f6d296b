"""The enrollment table and its exports (CSV, XLSX), with text cells made harmless for spreadsheets."""

import django_tables2 as tables
from django.utils.translation import gettext_lazy as _
from django_tables2.export import TableExport

from participants.models import Enrollment

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeTableExport(TableExport):
    def table_to_dataset(self, table, exclude_columns, dataset_kwargs=None):
        dataset = super().table_to_dataset(table, exclude_columns, dataset_kwargs)
        safe = type(dataset)(title=dataset.title)
        safe.headers = [neutralise(h) for h in dataset.headers or []]
        for row in dataset:
            safe.append([neutralise(v) for v in row])
        return safe


class EnrollmentTable(tables.Table):
    pk = tables.Column(verbose_name=_("No."), linkify=True, attrs={"td": {"class": "text-end"}})
    enrolled_on = tables.DateColumn(format="d/m/Y", verbose_name=_("Date recorded"))
    si_number = tables.Column(accessor="participant__si_number", verbose_name=_("SI number"))
    full_name = tables.Column(accessor="participant__full_name", verbose_name=_("Full name"))
    scheme = tables.Column(verbose_name=_("Scheme"))
    kind = tables.Column(verbose_name=_("Kind"))
    coverage_start = tables.DateColumn(format="d/m/Y", verbose_name=_("Coverage start"))
    months = tables.Column(verbose_name=_("Months paid"), attrs={"td": {"class": "text-end"}})
    unit = tables.Column(accessor="unit__name", verbose_name=_("Unit"))
    commune = tables.Column(accessor="commune__name", verbose_name=_("Commune"))
    agent = tables.Column(accessor="agent__full_name", verbose_name=_("Collection agent"), default="")
    recorded_by = tables.Column(accessor="recorded_by__username", verbose_name=_("Recorded by"), default="")

    class Meta:
        model = Enrollment
        fields = ()
        sequence = (
            "pk",
            "enrolled_on",
            "si_number",
            "full_name",
            "scheme",
            "kind",
            "coverage_start",
            "months",
            "unit",
            "commune",
            "agent",
            "recorded_by",
        )
        order_by = ("-enrolled_on", "-pk")
        attrs = {"class": "table table-sm table-hover align-middle"}
        empty_text = _("No enrollments match.")
