"""The ranking table of a campaign's units (django-tables2; sortable; exported as CSV or XLSX)."""

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from reports import formatting
from reports.models import AttainmentTotal


class NumberColumn(tables.Column):
    attrs = {"td": {"class": "text-end text-nowrap"}, "th": {"class": "text-end"}}

    def render(self, value):
        return formatting.fmt_int(value)

    def value(self, value):
        return value


class DecimalColumn(NumberColumn):
    def render(self, value):
        return formatting.fmt_dec(value)

    def value(self, value):
        return float(value) if value is not None else ""


class PercentColumn(DecimalColumn):
    def render(self, value):
        return formatting.fmt_pct(value)


class RankingTable(tables.Table):
    rank_enrolled = NumberColumn(verbose_name=_("Rank"), order_by=("rank_enrolled", "unit__code"))
    unit = tables.Column(verbose_name=_("Unit"), order_by=("unit__name",))
    scheme = tables.Column(verbose_name=_("Scheme"))
    target = NumberColumn(verbose_name=_("Target"))
    enrolled = NumberColumn(verbose_name=_("Enrolled"))
    new = NumberColumn(verbose_name=_("New"))
    resumed = NumberColumn(verbose_name=_("Resumed"))
    achieved = NumberColumn(verbose_name=_("Active participants"))  # shown for campaigns on the stock only
    attained_pct = PercentColumn(verbose_name=_("Attained"))
    rank_attained = NumberColumn(verbose_name=_("Rank by attained"))
    remaining = NumberColumn(verbose_name=_("Remaining"))
    required_daily_pace = DecimalColumn(verbose_name=_("Required per day"))
    current_daily_pace = DecimalColumn(verbose_name=_("Current per day"))
    projected_at_end = DecimalColumn(verbose_name=_("Projected at end"))
    on_track = tables.Column(verbose_name=_("On track"))

    class Meta:
        model = AttainmentTotal
        fields = ()
        sequence = (
            "rank_enrolled",
            "unit",
            "scheme",
            "target",
            "enrolled",
            "new",
            "resumed",
            "achieved",
            "attained_pct",
            "rank_attained",
            "remaining",
            "required_daily_pace",
            "current_daily_pace",
            "projected_at_end",
            "on_track",
        )
        order_by = ("scheme", "rank_enrolled")
        attrs = {"class": "table table-sm table-striped table-hover align-middle"}
        per_page = 100

    def __init__(self, *args, campaign=None, show_achieved=False, **kwargs):
        self.campaign = campaign
        if not show_achieved:
            kwargs.setdefault("exclude", ("achieved",))
        super().__init__(*args, **kwargs)

    def render_unit(self, record):
        url = reverse("reports:unit_detail", kwargs={"slug": self.campaign.slug, "code": record.unit.code})
        return format_html('<a href="{}">{}</a>', url, record.unit.name)

    def value_unit(self, record):
        name = record.unit.name
        # A spreadsheet treats a cell starting with = + - @ as a formula.
        return f"'{name}" if name[:1] in "=+-@" else name

    def render_scheme(self, record):
        return record.get_scheme_display()

    def value_scheme(self, record):
        return str(record.get_scheme_display())

    def render_on_track(self, value, record):
        if record.attained_pct is None and not record.has_target:
            return "–"
        label = formatting.fmt_bool_track(value)
        css = "text-bg-success" if value else "text-bg-danger"
        return format_html('<span class="badge {}">{}</span>', css, label)

    def value_on_track(self, value):
        return str(formatting.fmt_bool_track(value))
