"""Charts as pure functions: selector output in, a plotly figure out — as the plain {"data", "layout"} dict that
plotly.js draws (building plotly.graph_objects figures and their "plotly_white" template cost most of a dashboard's
time: ~10 ms per chart, and 8 kB of template per chart in the page).

Names that reach hover text are HTML-escaped: plotly renders hover labels as HTML.
"""

from __future__ import annotations

import datetime
import html
import json
import uuid

from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from participants.models import Scheme

SCHEME_COLOURS = {Scheme.VSI: "#0d6efd", Scheme.HI_FAMILY: "#198754"}
ON_TRACK = "#198754"
BEHIND = "#dc3545"
NO_TARGET = "#6c757d"
# What the charts took from plotly's "plotly_white" template: white ground, light grid, dark blue-grey text.
GRID = "#EBF0F8"
AXIS = {"gridcolor": GRID, "linecolor": GRID, "zerolinecolor": GRID, "automargin": True, "ticks": ""}


def _figure(data: list[dict], *, title: str, height: int = 360, xaxis=None, yaxis=None, **layout) -> dict:
    return {
        "data": data,
        "layout": {
            "title": {"text": html.escape(title), "x": 0},
            "height": height,
            "margin": {"l": 40, "r": 10, "t": 50, "b": 40},
            # Vietnamese writes 1.234,5; plotly's `separators` is "<decimal><thousands>".
            "separators": ",." if (get_language() or "vi").startswith("vi") else ".,",
            "legend": {"orientation": "h", "y": -0.15},
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "font": {"color": "#2a3f5f"},
            "hoverlabel": {"align": "left"},
            "xaxis": {**AXIS, **(xaxis or {})},
            "yaxis": {**AXIS, **(yaxis or {})},
            **layout,
        },
    }


def cumulative_chart(
    *,
    series: dict[str, list[tuple[datetime.date, int]]],
    targets: dict[str, int],
    start: datetime.date,
    end: datetime.date,
    scheme_labels: dict[str, str],
) -> dict:
    """Cumulative enrolled per scheme against its target and the even-pace line from 0 at the start to the target
    at the end."""
    data = []
    day_before = start - datetime.timedelta(days=1)
    even_pace_label = html.escape(_("even pace"))
    target_label = html.escape(_("target"))
    for scheme, points in series.items():
        label = html.escape(str(scheme_labels.get(scheme, scheme)))
        colour = SCHEME_COLOURS.get(scheme)
        data.append(
            {
                "type": "scatter",
                "x": [day_before.isoformat()] + [p[0].isoformat() for p in points],  # no JSON default per point
                "y": [0] + [p[1] for p in points],
                "mode": "lines+markers",
                "name": label,
                "line": {"color": colour, "shape": "hv"},
                "hovertemplate": f"{label}<br>%{{x|%d/%m/%Y}}: %{{y:,}}<extra></extra>",
            }
        )
        target = targets.get(scheme)
        if target:
            data.append(
                {
                    "type": "scatter",
                    "x": [day_before, end],
                    "y": [0, target],
                    "mode": "lines",
                    "name": f"{label} – {even_pace_label}",
                    "line": {"color": colour, "dash": "dot", "width": 1},
                    "hoverinfo": "skip",
                }
            )
            data.append(
                {
                    "type": "scatter",
                    "x": [day_before, end],
                    "y": [target, target],
                    "mode": "lines",
                    "name": f"{label} – {target_label}",
                    "line": {"color": colour, "dash": "dash", "width": 1},
                    "hovertemplate": f"{label} – {target_label}: %{{y:,}}<extra></extra>",
                }
            )
    return _figure(
        data,
        title=_("Cumulative enrolled against target"),
        xaxis={"tickformat": "%d/%m", "range": [day_before, end]},
        yaxis={"rangemode": "tozero", "tickformat": ",d"},  # 10.000 in Vietnamese, never plotly's "10k"
    )


def attainment_bar_chart(*, rows: list, scheme_label: str) -> dict:
    """Attained % per unit, highest first, green when on track and red when behind (grey: no target).

    `rows` are snapshot rows of one scheme with `.unit.name`, `.attained_pct`, `.on_track`, `.enrolled`, `.target`.
    """
    ordered = sorted(rows, key=lambda r: (r.attained_pct is None, -(r.attained_pct or 0), r.unit.name))
    bar = {
        "type": "bar",
        "x": [float(r.attained_pct) if r.attained_pct is not None else 0 for r in ordered],
        "y": [html.escape(r.unit.name) for r in ordered],
        "orientation": "h",
        "marker": {
            "color": [NO_TARGET if r.attained_pct is None else ON_TRACK if r.on_track else BEHIND for r in ordered]
        },
        "customdata": [[r.achieved, r.target] for r in ordered],
        "hovertemplate": "%{y}: %{x:.2f}% (%{customdata[0]:,} / %{customdata[1]:,})<extra></extra>",
    }
    title = _("Attained %% per unit – %(scheme)s") % {"scheme": scheme_label}
    return _figure(
        [bar],
        title=title,
        height=max(240, 28 * len(ordered) + 100),
        xaxis={"ticksuffix": "%", "rangemode": "tozero"},
        yaxis={"autorange": "reversed"},
    )


def breakdown_chart(*, groups: list[dict], labels: dict[str, str], title: str) -> dict:
    """Horizontal bars per group (age band, gender, occupation), one bar per scheme."""
    names = [html.escape(str(labels.get(g["group"], g["group"]))) for g in groups]
    data = [
        {
            "type": "bar",
            "x": [g.get(scheme, 0) for g in groups],
            "y": names,
            "orientation": "h",
            "name": html.escape(str(Scheme(scheme).label)),
            "marker": {"color": SCHEME_COLOURS[scheme]},
            "hovertemplate": "%{y}: %{x:,}<extra></extra>",
        }
        for scheme in Scheme.values
    ]
    return _figure(
        data,
        title=title,
        height=max(220, 40 * len(groups) + 100),
        barmode="group",
        xaxis={"tickformat": ",d"},
        yaxis={"autorange": "reversed"},
    )


def _json_default(value):
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_html(fig: dict) -> str:
    """A div for a template, and the figure beside it as a JSON data block (<script type="application/json">, never
    run by the browser), so the Content-Security-Policy needs no inline script: static/js/charts.js draws every block
    once plotly (static/vendor/plotly/plotly-basic.min.js, included by the page) has loaded."""
    chart_id = f"chart-{uuid.uuid4().hex}"
    config = {"displaylogo": False, "responsive": True}
    payload = json.dumps(
        {"figure": fig, "config": config}, default=_json_default, separators=(",", ":"), ensure_ascii=False
    )
    # Nothing inside the block may close it or open a comment: "<", ">" and "&" travel as JSON escapes.
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    height = fig.get("layout", {}).get("height")
    return format_html(
        '<div><div id="{}" class="plotly-graph-div" style="height:{}; width:100%;"></div>'
        '<script type="application/json" data-plotly-figure="{}">{}</script></div>',
        chart_id,
        f"{height}px" if height else "100%",
        chart_id,
        mark_safe(payload),  # noqa: S308 # nosec B308 B703 - JSON with <, > and & escaped above: it stays data
    )
