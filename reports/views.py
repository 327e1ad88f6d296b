"""Dashboards: thin doors onto reports.selectors, scoped through districts.scoping (out of scope -> 404)."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import floatformat
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.formats import get_format
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe
from django_tables2 import RequestConfig
from django_tables2.export import TableExport

from districts.scoping import ROLE_ADMIN, role_of, visible_campaigns, visible_units
from participants.filters import KIND_GROWTH
from participants.models import Participant, Scheme
from reports import charts, engine, selectors
from reports.filters import RankingFilter
from reports.formatting import fmt_dec, fmt_int, fmt_pct, fmt_signed
from reports.models import AttainmentTotal, PendingRefresh, RecomputeRun
from reports.tables import RankingTable


def filter_fields_html(params) -> str:
    """The ranking filter's fields, the markup reports/inc/ranking_filter_fields.html gives for RankingFilter's form
    bound to `params`, written directly: building and rendering the form cost ~1.5 ms of a dashboard's first view.
    tests/reports/test_dashboard_queries.py holds both the same."""
    parts = []
    for name, declared in RankingFilter.base_filters.items():
        label = escape(declared.label)
        value = params.get(name)
        if "choices" in declared.extra:  # a ChoiceFilter: django's Select, the empty choice first
            current = "" if value is None else str(value)
            options = [("", declared.extra.get("empty_label")), *declared.extra["choices"]]
            if current not in {str(v) for v, _text in options}:  # an invalid choice: the form marks it up
                form = RankingFilter(params, queryset=AttainmentTotal.objects.none()).form
                return render_to_string(
                    "reports/inc/ranking_filter_fields.html", {"filter": SimpleNamespace(form=form)}
                )
            field = "".join(
                [
                    f'<select name="{name}" class="form-select form-select-sm" id="id_{name}">\n',
                    *(
                        f'  <option value="{escape(v)}"{" selected" if str(v) == current else ""}>{escape(text)}'
                        "</option>\n\n"
                        for v, text in options
                    ),
                    "</select>",
                ]
            )
        else:  # a CharFilter: django's TextInput, no value attribute when empty
            shown = f' value="{escape(value)}"' if value not in (None, "") else ""
            field = f'<input type="text" name="{name}"{shown} class="form-control form-control-sm" id="id_{name}">'
        parts.append(
            f'\n      <div class="col-12 col-sm-auto">\n        <label class="form-label small mb-0" for="id_{name}">'
            f"{label}</label>\n        {field}\n      </div>\n"
        )
    return mark_safe("\n" + "".join(parts) + "\n")  # noqa: S308 # nosec B308 B703 - every value escaped above


def cards_html(rows, campaign) -> str:
    """The headline cards, the markup reports/inc/cards.html gives for `rows` (snapshot rows) and `campaign`, written
    directly: the template's sixty-odd tags and filters cost ~0.5 ms of a dashboard's first view.
    tests/reports/test_dash_cards.py holds both the same; the unit page still includes the template."""
    stock = campaign.is_stock
    attained = escape(_("Attained"))
    parts = ['\n<div class="row g-3 mb-3">\n']
    for row in rows:
        ok = "success" if row.on_track else "danger"
        scheme = escape(row.get_scheme_display())
        badge = ""
        if row.has_target:
            badge = f'<span class="badge text-bg-{ok}">{escape(_("On track") if row.on_track else _("Behind"))}</span>'
        width = floatformat(0 if row.attained_pct is None else row.attained_pct, "0u")
        figure = escape(_("active participants / plan") if stock else _("enrolled / target"))
        new_resumed = ""
        if not stock:
            new_resumed = (
                f'\n          <dt class="col-7">{escape(_("New / resumed"))}</dt><dd class="col-5 num">'
                f"{fmt_int(row.new)} / {fmt_int(row.resumed)}</dd>\n          "
            )
        rank = ""
        if row.unit_id:
            rank = f'<dt class="col-7">{escape(_("Rank"))}</dt><dd class="col-5 num">{fmt_int(row.rank_enrolled)}</dd>'
        changes = ""
        if stock:
            changes = "".join(
                f'\n          <dt class="col-7">{escape(label)}</dt><dd class="col-5 num">{fmt_signed(change)} '
                f"({fmt_pct(change_pct)})</dd>"
                for label, change, change_pct in (
                    (_("Against the end of last month"), row.change_vs_prev_month, row.change_vs_prev_month_pct),
                    (_("Against the end of last year"), row.change_vs_year_end, row.change_vs_year_end_pct),
                    (
                        _("Against the same day last year"),
                        row.change_vs_same_day_last_year,
                        row.change_vs_same_day_last_year_pct,
                    ),
                )
            )
            changes += "\n          "
        parts.append(
            f'\n  <div class="col-12 col-lg-6">\n'
            f'    <section class="card h-100 border-{ok}" aria-label="{scheme}">\n'
            f'      <div class="card-header d-flex justify-content-between align-items-center">\n'
            f'        <h2 class="h6 mb-0">{scheme}</h2>\n'
            f"        {badge}\n"
            f"      </div>\n"
            f'      <div class="card-body">\n'
            f'        <p class="mb-1"><span class="card-figure">{fmt_int(row.achieved)}</span> / {fmt_int(row.target)}\n'
            f'          <span class="text-body-secondary small">{figure}</span></p>\n'
            f'        <div class="progress mb-2" role="progressbar" aria-label="{attained}" aria-valuenow="{width}" '
            f'aria-valuemin="0" aria-valuemax="100">\n'
            f'          <div class="progress-bar bg-{ok}" style="width: {width}%"></div>\n'
            f"        </div>\n"
            f'        <dl class="row small mb-0">\n'
            f'          <dt class="col-7">{attained}</dt><dd class="col-5 num">{fmt_pct(row.attained_pct)}</dd>\n'
            f"          {new_resumed}\n"
            f'          <dt class="col-7">{escape(_("Remaining"))}</dt><dd class="col-5 num">{fmt_int(row.remaining)}</dd>\n'
            f'          <dt class="col-7">{escape(_("Days left"))}</dt><dd class="col-5 num">{fmt_int(row.days_left)}</dd>\n'
            f'          <dt class="col-7">{escape(_("Required per day"))}</dt><dd class="col-5 num">'
            f"{fmt_dec(row.required_daily_pace)}</dd>\n"
            f'          <dt class="col-7">{escape(_("Current per day"))}</dt><dd class="col-5 num">'
            f"{fmt_dec(row.current_daily_pace)}</dd>\n"
            f'          <dt class="col-7">{escape(_("Projected at end"))}</dt><dd class="col-5 num">'
            f"{fmt_dec(row.projected_at_end)}</dd>\n"
            f"          {rank}\n"
            f"          {changes}\n"
            f"        </dl>\n"
            f"      </div>\n"
            f"    </section>\n"
            f"  </div>\n"
        )
    if not rows:
        parts.append(
            f'\n  <div class="col-12"><p class="text-body-secondary">'
            f"{escape(_('No figures have been computed for this campaign yet.'))}</p></div>\n"
        )
    parts.append("\n</div>\n")
    return mark_safe("".join(parts))  # noqa: S308 # nosec B308 B703 - every text escaped above, figures are digits


def _role(request, allowed=None) -> str:
    role = role_of(request.user)
    if role is None or (allowed and role not in allowed):
        raise PermissionDenied
    return role


def _scheme_labels():
    return {value: str(label) for value, label in Scheme.choices}


def enrollment_list_url(*, campaign, as_of, unit=None, scheme=None, commune=None, agent=None, stock=False):
    """The participants app's enrollment list filtered to the records behind a figure (its filters: the window's
    dates and new or resumed only, as the growth figures count; with `stock`, an annual plan's people on the stock,
    the enrollments covering its day; and unit, commune, scheme, agent)."""
    try:
        base = reverse("participants:enrollment_list")
    except NoReverseMatch:
        return None
    day = min(as_of, campaign.end_date).isoformat()
    if stock:
        params = {"covered_on": day}
    else:
        params = {"enrolled_from": campaign.start_date.isoformat(), "enrolled_to": day, "kind": KIND_GROWTH}
    for key, value in (
        ("unit", unit.pk if unit else None),
        ("scheme", scheme),
        ("commune", commune),
        ("agent", agent),
    ):
        if value:
            params[key] = value
    return f"{base}?{urlencode(params)}"


def _int_text(value, thousands: str) -> str:
    """A whole number as reports.formatting.fmt_int writes it (36.421 in Vietnamese, 36,421 in English; – if none)."""
    return "–" if value is None or value == "" else f"{int(value):,}".replace(",", thousands)


def _breakdown_context(user, campaign, as_of, unit=None):
    data, live = selectors.breakdown_for_page(user, campaign, as_of, unit=unit)
    age_labels = {
        "under_25": _("Under 25"),
        "25_34": _("25–34"),
        "35_44": _("35–44"),
        "45_54": _("45–54"),
        "55_plus": _("55 and over"),
        "unknown": _("Unknown"),
    }
    thousands = get_format("THOUSAND_SEPARATOR")
    gender_labels = {value: str(label) for value, label in Participant.Gender.choices}
    occupation_labels = {value: str(label) for value, label in Participant.Occupation.choices}
    sections = []
    for key, title, labels in (
        ("age", _("By age band (at the start of the campaign)"), age_labels),
        ("gender", _("By gender"), gender_labels),
        ("occupation", _("By occupation"), occupation_labels),
    ):
        groups = [
            {
                **g,
                "label": labels.get(g["group"], g["group"]),
                # Written here, as the template's |num writes them, at a fraction of its cost per figure.
                **{f"{name}_text": _int_text(g.get(name), thousands) for name in ("vsi", "hi_family", "total")},
            }
            for g in data[key]
        ]
        sections.append({"key": key, "title": title, "groups": groups})
    chart = None
    if data["age"]:
        chart = charts.to_html(charts.breakdown_chart(groups=data["age"], labels=age_labels, title=_("By age band")))
    return {
        "breakdown": sections,
        "breakdown_chart": chart,
        "breakdown_live": live,
        "breakdown_pending": data.get("pending", False),
    }


def breakdown_html(context: dict) -> str:
    """The "who responds" section, the markup reports/inc/breakdown.html gives for _breakdown_context's `context`,
    written directly for the dashboard (its loops and translations cost ~0.3 ms of every view).
    tests/reports/test_dash_cards.py holds both the same; the unit page still includes the template."""
    parts = [
        '<section class="mb-4" aria-labelledby="breakdown-title">\n'
        f'  <h2 class="h5" id="breakdown-title">{escape(_("Who responds"))}</h2>\n  '
    ]
    if context["breakdown_live"]:
        text = _(
            "Counted from the enrollments just now: no stored breakdown exists for this date yet, so these counts "
            "may be newer than the figures above."
        )
        parts.append(f'<p class="small text-body-secondary" data-testid="breakdown-live">{escape(text)}</p>')
    parts.append("\n  ")
    if context["breakdown_pending"]:
        text = _("Being updated after recent changes: these counts are from before them.")
        parts.append(f'<p class="small text-body-secondary" data-testid="breakdown-pending">{escape(text)}</p>')
    parts.append("\n  ")
    if context["breakdown_chart"]:
        parts.append(f'<div class="chart">{context["breakdown_chart"]}</div>')
    parts.append('\n  <div class="row g-3">\n  ')
    head = (
        f'<thead><tr><th scope="col">{escape(_("Group"))}</th><th scope="col" class="num">{escape(_("VSI"))}</th>'
        f'<th scope="col" class="num">{escape(_("Family HI"))}</th><th scope="col" class="num">'
        f"{escape(_('Total'))}</th></tr></thead>"
    )
    for section in context["breakdown"]:
        rows = "".join(
            f'<tr><td>{escape(g["label"])}</td><td class="num">{escape(g["vsi_text"])}</td><td class="num">'
            f'{escape(g["hi_family_text"])}</td><td class="num">{escape(g["total_text"])}</td></tr>\n        '
            for g in section["groups"]
        )
        if not section["groups"]:
            rows = f'<tr><td colspan="4" class="text-body-secondary">{escape(_("No enrollments yet."))}</td></tr>'
        parts.append(
            f'\n    <div class="col-12 col-xl-4">\n      <h3 class="h6">{escape(section["title"])}</h3>\n'
            f'      <div class="table-responsive"><table class="table table-sm">\n        {head}\n        <tbody>\n'
            f"        {rows}\n        </tbody>\n      </table></div>\n    </div>\n  "
        )
    parts.append("\n  </div>\n</section>\n")
    return mark_safe("".join(parts))  # noqa: S308 # nosec B308 B703 - every text escaped above, the chart is to_html's


@login_required
@require_safe  # read-only: a POST is a wrong method (405), not a second GET
def province_overview(request):
    """The manager's home: every campaign of the province, active first, with its headline figures."""
    _role(request)
    campaigns = list(selectors.campaigns_for_overview(request.user))
    headlines = selectors.headline_rows(request.user, campaigns)
    pending = set(
        PendingRefresh.objects.filter(campaign__in=campaigns).values_list("campaign_id", flat=True).distinct()
    )
    items = [{"campaign": c, "rows": headlines.get(c.pk, []), "pending": c.pk in pending} for c in campaigns]
    return render(request, "reports/province_overview.html", {"items": items})


# Snapshot-derived fragments of the dashboard, per process: a bounded in-memory cache (never the shared Redis, whose
# outage must not slow a page), keyed by the snapshot's version so that a new run is never hidden. At most 200
# entries of ~60 kB (12 MB); a unit renamed between runs shows its old name for up to FRAGMENTS_SECONDS.
_FRAGMENTS = LocMemCache("reports-dashboard-fragments", {"OPTIONS": {"MAX_ENTRIES": 200, "CULL_FREQUENCY": 4}})
FRAGMENTS_SECONDS = 600


def _fragments_key(request, campaign, unit_id) -> str:
    """The version of what the fragments show: the campaign (and its slug, in the links), the snapshot rows the
    user sees (their count and latest computation time, from dashboard_campaign: every run rewrites the province
    row, or the unit's own), the user's unit, the language and the query string (sort, filters, page)."""
    params = sorted((k, tuple(request.GET.getlist(k))) for k in request.GET)
    version = (
        campaign.pk,
        campaign.slug,
        str(campaign.snapshot_at),
        campaign.snapshot_rows,
        unit_id,
        get_language(),
        params,
    )
    return "dash:" + hashlib.sha256(repr(version).encode()).hexdigest()


def _snapshot_fragments(request, campaign, table, headline, unit_rows, unit_id, series) -> dict:
    """The headline cards, the ranking's markup, the cumulative chart (of `series`, the daily series of a window
    campaign), the bar charts and the user's own unit (its id and name)."""
    labels = _scheme_labels()
    cumulative = None
    if series is not None:
        cumulative = charts.to_html(
            charts.cumulative_chart(
                series=series,
                targets={r.scheme: r.target for r in headline},
                start=campaign.start_date,
                end=campaign.end_date,
                scheme_labels=labels,
            )
        )
    bar_charts = []
    if len({r.unit_id for r in unit_rows}) > 1:
        for scheme in Scheme.values:
            rows = [r for r in unit_rows if r.scheme == scheme]
            if rows:
                bar_charts.append(charts.to_html(charts.attainment_bar_chart(rows=rows, scheme_label=labels[scheme])))
    own = next((r.unit for r in unit_rows if r.unit_id == unit_id), None) if unit_id else None
    return {
        "cards": cards_html(headline, campaign),
        "ranking": table.fast_html(),
        "cumulative": cumulative,
        "bar_charts": bar_charts,
        "own_unit": SimpleNamespace(pk=own.pk, name=own.name) if own else None,
    }


@login_required
@require_safe  # read-only: a POST is a wrong method (405), not a second GET
def campaign_dashboard(request, slug):
    """A campaign's dashboard: 8 queries at most with the middleware's — the campaign with its freshness, its
    snapshot rows with the daily series (window campaigns) in the same round trip, and the stored breakdown;
    tests/reports/test_dashboard_queries.py holds it there. The first view of a snapshot reads its rows without
    model instances (selectors.dashboard_snapshot) and writes the cards and the ranking in Python (cards_html,
    RankingTable.fast_html); the views after it reuse those fragments (_FRAGMENTS)."""
    role = _role(request)
    campaign = selectors.dashboard_campaign(request.user, slug)
    if campaign is None:
        raise Http404
    unit_id = selectors.user_unit_id(request.user)
    fresh = selectors.freshness_from(campaign)
    as_of = fresh.as_of or engine.default_as_of(campaign)
    export_format = request.GET.get("_export")
    exporting = TableExport.is_valid_format(export_format)
    # Everything drawn from the snapshot rows (cards, ranking and its filter, charts) depends on nothing but those
    # rows and the request's sort/filter/page: kept per snapshot version (see _fragments_key), the next view of the same
    # snapshot reads neither the rows nor the daily series, nor renders them again.
    key = None if exporting else _fragments_key(request, campaign, unit_id)
    fragments = _FRAGMENTS.get(key) if key else None
    table = None
    if fragments is None:
        # Every snapshot row the user may see, once: the cards, the ranking and the bar charts.
        # With the daily series of the cumulative chart (window campaigns) in the same round trip.
        all_rows, series = selectors.dashboard_snapshot(
            request.user, campaign, series=not campaign.is_stock and not exporting
        )
        headline = sorted(
            (r for r in all_rows if (r.unit_id == unit_id if unit_id else r.unit_id is None)), key=lambda r: r.scheme
        )
        unit_rows = [r for r in all_rows if r.unit_id is not None]
        filtered = any(request.GET.get(name) for name in RankingFilter.base_filters)
        # The filter's own query only when the ranking is filtered; otherwise the rows already read.
        if filtered:
            ranking = RankingFilter(request.GET, queryset=selectors.unit_rows(request.user, campaign)).qs
        table = RankingTable(ranking if filtered else unit_rows, campaign=campaign, show_achieved=campaign.is_stock)
        RequestConfig(request, paginate={"per_page": 100}).configure(table)
        if exporting:
            exporter = TableExport(export_format, table)
            return exporter.response(f"{campaign.slug}-{as_of:%Y%m%d}.{export_format}")
        fragments = _snapshot_fragments(request, campaign, table, headline, unit_rows, unit_id, series)
        fragments["filter_fields"] = filter_fields_html(request.GET)
        if fragments["ranking"] is not None:  # several pages: django-tables2's own template, not kept
            _FRAGMENTS.set(key, fragments, FRAGMENTS_SECONDS)
    own_unit = fragments["own_unit"]
    context = {
        "campaign": campaign,
        "cards": fragments["cards"],
        "fresh": fresh,
        "as_of": as_of,
        "table": table,
        "ranking": fragments["ranking"],
        "filter_fields": fragments["filter_fields"],
        "cumulative_chart": fragments["cumulative"],
        "bar_charts": fragments["bar_charts"],
        "own_unit": own_unit,
        "can_recompute": role == ROLE_ADMIN,
        "enrollments_url": enrollment_list_url(campaign=campaign, as_of=as_of, unit=own_unit, stock=campaign.is_stock),
        "breakdown_html": breakdown_html(_breakdown_context(request.user, campaign, as_of, unit=own_unit)),
    }
    return render(request, "reports/campaign_dashboard.html", context)


@login_required
@require_safe  # read-only: a POST is a wrong method (405), not a second GET
def unit_detail(request, slug, code):
    """One unit of a campaign: its figures, communes, collection organisations and agents, and the records behind."""
    _role(request)
    campaign = get_object_or_404(visible_campaigns(request.user).select_related("province"), slug=slug)
    unit = get_object_or_404(visible_units(request.user), code=code, province_id=campaign.province_id)
    fresh = selectors.freshness(campaign, unit_id=unit.pk)
    as_of = fresh.as_of or engine.default_as_of(campaign)
    rows = list(selectors.unit_rows(request.user, campaign).filter(unit=unit).order_by("scheme"))
    labels = _scheme_labels()
    cumulative = None
    if not campaign.is_stock:
        cumulative = charts.to_html(
            charts.cumulative_chart(
                series=selectors.cumulative_series(campaign, unit_id=unit.pk),
                targets={r.scheme: r.target for r in rows},
                start=campaign.start_date,
                end=campaign.end_date,
                scheme_labels=labels,
            )
        )
    communes = selectors.unit_communes(request.user, campaign, as_of, unit)
    for c in communes:
        c["url"] = enrollment_list_url(campaign=campaign, as_of=as_of, unit=unit, commune=c["pk"])
    collectors = selectors.unit_collectors(request.user, campaign, as_of, unit)
    for c in collectors:
        c["url"] = (
            enrollment_list_url(campaign=campaign, as_of=as_of, unit=unit, agent=c["agent_id"])
            if c["agent_id"]
            else None
        )
    for r in rows:
        r.enrollments_url = enrollment_list_url(
            campaign=campaign, as_of=as_of, unit=unit, scheme=r.scheme, stock=campaign.is_stock
        )
    context = {
        "campaign": campaign,
        "unit": unit,
        "rows": rows,
        "fresh": fresh,
        "as_of": as_of,
        "cumulative_chart": cumulative,
        "communes": communes,
        "collectors": collectors,
        "schemes": Scheme.choices,
        **_breakdown_context(request.user, campaign, as_of, unit=unit),
    }
    return render(request, "reports/unit_detail.html", context)


@login_required
@require_POST
def recompute_start(request, slug):
    """An admin starts a full recompute of one campaign; the page then polls its progress."""
    _role(request, allowed={ROLE_ADMIN})
    campaign = get_object_or_404(visible_campaigns(request.user), slug=slug)
    from reports.tasks import enqueue, recompute_campaign

    run = (
        RecomputeRun.objects.filter(
            campaign=campaign, status__in=[RecomputeRun.Status.QUEUED, RecomputeRun.Status.RUNNING]
        )
        .order_by("-pk")
        .first()
    )
    if run is None or (run.queued_at and (timezone.now() - run.queued_at).total_seconds() > 3600):
        run = RecomputeRun.objects.create(campaign=campaign, kind=RecomputeRun.Kind.FULL, started_by=request.user)

        def publish(run=run):
            if not enqueue(recompute_campaign, campaign.pk, run.pk):
                # Still queued means it never started (a run that started and failed records its own error).
                RecomputeRun.objects.filter(pk=run.pk, status=RecomputeRun.Status.QUEUED).update(
                    status=RecomputeRun.Status.FAILED, error=_("The task queue is unavailable; try again later.")
                )

        transaction.on_commit(publish)
    run.refresh_from_db()
    if request.htmx:
        return render(request, "reports/inc/run_progress.html", _run_context(run))
    messages.info(request, _("The recompute has been started."))
    return redirect("reports:campaign_dashboard", slug=campaign.slug)


def _run_context(run):
    done, total = engine.run_progress(run)
    pct = 100 if run.status == RecomputeRun.Status.SUCCEEDED else (round(100 * done / total) if total else 0)
    return {"run": run, "done": done, "total": total, "pct": pct}


@login_required
def run_progress(request, pk):
    _role(request, allowed={ROLE_ADMIN})
    run = get_object_or_404(
        RecomputeRun.objects.filter(campaign__in=visible_campaigns(request.user)).select_related("campaign"), pk=pk
    )
    return render(request, "reports/inc/run_progress.html", _run_context(run))
