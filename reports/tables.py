"""The ranking table of a campaign's units (django-tables2; sortable; exported as CSV or XLSX)."""

import copy
from html import escape as html_escape  # the same five characters as Django's escape, without its lazy wrapper
from operator import attrgetter
from types import SimpleNamespace

import django_tables2 as tables
from django.urls import reverse
from django.utils.formats import get_format
from django.utils.html import conditional_escape, escape, format_html
from django.utils.safestring import SafeData, mark_safe
from django.utils.translation import gettext_lazy as _
from django_tables2.data import TableListData
from django_tables2.utils import Accessor, AttributeDict, OrderBy

from participants.models import Scheme
from reports import formatting
from reports.models import AttainmentTotal


class ShallowColumn(tables.Column):
    """A column that a table copies shallowly. django-tables2 deep-copies every declared column for each table it
    builds (~0.4 ms of the dashboard's first view for the ranking's fifteen): its columns hold nothing a table
    changes in place (a table sets attributes on its own copy: accessor, visible), so a copy of the attributes is
    enough."""

    def __deepcopy__(self, memo):
        return copy.copy(self)


class NumberColumn(ShallowColumn):
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


class RankingData(TableListData):
    """A list of rows that sorts as django-tables2's TableListData does, faster: its comparator resolves every
    accessor of both rows at each comparison (~0.3 ms for a province's 60 rows, at each first view of a dashboard).
    Here each row's values are read once per key, and the keys sorted one after the other, least significant first
    (Python's sort is stable, also in reverse): the same order, None first when ascending and last when descending,
    equal rows in the order given. tests/reports/test_dash_ranking_sort.py holds both the same."""

    def order_by(self, aliases):
        keys = []
        for alias in aliases:  # as TableListData.order_by: the column's own order_by, or its opposite
            bound_column = self.table.columns[OrderBy(alias).bare]
            if alias[0] != bound_column.order_by_alias[0]:
                keys += bound_column.order_by.opposite
            else:
                keys += bound_column.order_by
        for key in reversed(keys):
            get = _value_getter(key.bare)
            self.data.sort(
                key=lambda record, get=get: ((value := get(record)) is not None, value), reverse=key.is_descending
            )


def _attrs_html(attrs) -> str:
    """AttributeDict.as_html() (django-tables2) without format_html_join's per-value machinery: the attributes
    with a value, callables called, the table-part keys left out, each escaped unless already safe."""
    parts = []
    for key, value in attrs.items():
        value = value() if callable(value) else value
        if key not in AttributeDict.blacklist and value is not None:
            parts.append(f'{_escaped(key)}="{_escaped(value)}"')
    return " ".join(parts)


def _escaped(value) -> str:
    """conditional_escape's text, without its lazy wrapper."""
    return str(value) if isinstance(value, SafeData) else html_escape(str(value))


def _value_getter(path: str):
    """What Accessor(path).resolve(record, quiet=True) gives, by attribute look-ups when they answer a plain value."""
    accessor = Accessor(path)
    attributes = attrgetter(path.replace("__", "."))

    def get(record):
        try:
            value = attributes(record)
        except AttributeError:
            return accessor.resolve(record, quiet=True)
        return accessor.resolve(record, quiet=True) if callable(value) else value

    return get


class RankingTable(tables.Table):
    rank_enrolled = NumberColumn(verbose_name=_("Rank"), order_by=("rank_enrolled", "unit__code"))
    unit = ShallowColumn(verbose_name=_("Unit"), order_by=("unit__name",))
    scheme = ShallowColumn(verbose_name=_("Scheme"))
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
    on_track = ShallowColumn(verbose_name=_("On track"))

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
        if args and isinstance(args[0], list):  # rows in hand (not a queryset, which the database sorts)
            args = (RankingData(args[0]), *args[1:])
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

    # Fast HTML --------------------------------------------------------------------------------------------------
    # django-tables2 renders each cell through its template machinery (signature inspection, context lookups):
    # ~2 ms per row, 130 ms for a province's 60 rows, most of the dashboard's time. `fast_html` writes the same markup
    # (bootstrap5-responsive) in plain Python for one page of rows; the sorting, filtering, pagination and exports
    # stay django-tables2's. tests/reports/test_dashboard_queries.py checks that both give the same cells.
    _INTEGERS = frozenset(
        ("rank_enrolled", "target", "enrolled", "new", "resumed", "achieved", "rank_attained", "remaining")
    )
    _DECIMALS = frozenset(("required_daily_pace", "current_daily_pace", "projected_at_end"))

    def fast_html(self):
        """The table's markup, or None when it needs django-tables2's own template (several pages)."""
        if getattr(self, "page", None) is not None and self.paginator.num_pages > 1:
            return None
        # "1,234.50" written the locale's way, as reports.formatting does, in one str.replace or str.translate.
        thousands = get_format("THOUSAND_SEPARATOR")
        local = str.maketrans({",": thousands, ".": get_format("DECIMAL_SEPARATOR")})

        def fmt_int(value) -> str:
            return f"{int(value):_}".replace("_", thousands)

        def fmt_dec(value) -> str:
            text = f"{value:,f}"  # every stored place, none added or rounded
            if text[-3:-2] != ".":  # not the two places the snapshot stores: formatting's own, exact path
                return formatting.fmt_dec(value)
            return text.translate(local)

        columns = [c for c in self.columns if c.visible]
        params = self.request.GET.copy() if getattr(self, "request", None) else None
        records = self.data.data if isinstance(self.data.data, list) else [row.record for row in self.rows]
        unit_url = reverse("reports:unit_detail", kwargs={"slug": self.campaign.slug, "code": "__code__"})
        schemes = {value: html_escape(str(label)) for value, label in Scheme.choices}
        shown = SimpleNamespace(attained_pct=0, has_target=True)  # a row whose badge shows
        track = {flag: str(self.render_on_track(flag, shown)) for flag in (True, False)}
        heads = []
        cells = []  # per column, one <td> per record: built a column at a time, then joined row by row
        for column in columns:
            attrs = column.attrs  # django-tables2 builds a fresh dict at every read
            label = conditional_escape(column.header)
            if column.orderable and params is not None:
                params[self.prefixed_order_by_field] = column.order_by_alias.next
                label = f'<a href="?{html_escape(params.urlencode())}">{label}</a>'
            heads.append(f'<th {_attrs_html(attrs["th"])} scope="col">{label}</th>')
            name = column.name
            opening = f"<td {_attrs_html(attrs['td'])}>"
            default = f"{opening}{escape(column.default)}</td>"
            values = [getattr(r, name) for r in records] if name not in ("unit", "scheme", "on_track") else None
            if name == "unit":
                texts = [
                    f'{opening}<a href="{html_escape(unit_url.replace("__code__", r.unit.code))}">'
                    f"{html_escape(r.unit.name)}</a></td>"
                    for r in records
                ]
            elif name == "scheme":
                texts = [f"{opening}{schemes.get(r.scheme) or escape(r.get_scheme_display())}</td>" for r in records]
            elif name == "on_track":
                texts = [
                    f"{opening}–</td>"
                    if r.attained_pct is None and not r.has_target
                    else f"{opening}{track[r.on_track]}</td>"
                    for r in records
                ]
            elif name in self._INTEGERS:
                texts = [default if v is None else f"{opening}{fmt_int(v)}</td>" for v in values]
            elif name in self._DECIMALS:
                texts = [default if v is None else f"{opening}{fmt_dec(v)}</td>" for v in values]
            else:  # attained_pct
                texts = [default if v is None else f"{opening}{fmt_dec(v)}%</td>" for v in values]
            cells.append(texts)
        body = "".join(
            f'<tr class="{"odd" if i % 2 else "even"}">{"".join(row)}</tr>'
            for i, row in enumerate(zip(*cells, strict=True))
        )
        return mark_safe(  # noqa: S308 # nosec B308 B703 - every value escaped above
            f'<div class="table-container table-responsive"><table {_attrs_html(self.attrs)}><thead><tr>'
            f"{''.join(heads)}</tr></thead><tbody>{body}</tbody></table></div>"
        )
