"""The read-only HTTP API (DESIGN.md "Interfaces that must exist"): session-authenticated, scoped like the pages.

Unauthenticated -> 401, no role -> 403, a campaign outside the user's scope -> 404; all answers are JSON.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.http import JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from districts.scoping import role_of, visible_campaigns
from reports import selectors
from reports.models import AttainmentTotal

FIGURES = (
    "target",
    "enrolled",
    "new",
    "resumed",
    "attained_pct",
    "remaining",
    "days_left",
    "required_daily_pace",
    "current_daily_pace",
    "projected_at_end",
    "on_track",
    "rank",
)
STOCK_FIGURES = (
    "active",
    "change_vs_prev_month",
    "change_vs_prev_month_pct",
    "change_vs_year_end",
    "change_vs_year_end_pct",
    "change_vs_same_day_last_year",
    "change_vs_same_day_last_year_pct",
)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _guard(request):
    if not request.user.is_authenticated:
        response = _error(401, _("Sign in first."))
        response["WWW-Authenticate"] = 'Session realm="api"'
        return response
    if role_of(request.user) is None:
        return _error(403, _("Your account has no role."))
    return None


def _number(value):
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value.quantize(Decimal("0.01")))
    return value


def figure_dict(row, *, stock: bool, computed_at) -> dict:
    """One unit's (or the province's) figures for one scheme, under DESIGN.md's names."""
    data = {"scheme": row.scheme}
    if row.unit_id is not None:
        data["unit_code"] = row.unit.code
        data["unit_name"] = row.unit.name
    for name in FIGURES:
        if name == "rank":
            data["rank"] = row.rank_enrolled
            data["rank_by_attained_pct"] = row.rank_attained
        else:
            data[name] = _number(getattr(row, name))
    if stock:
        data["active"] = row.active
        for suffix in ("prev_month", "year_end", "same_day_last_year"):
            then = getattr(
                row,
                {"prev_month": "active_prev_month_end", "year_end": "active_prev_year_end"}.get(
                    suffix, "active_same_day_last_year"
                ),
            )
            data[f"change_vs_{suffix}"] = AttainmentTotal._change(row.active, then)
            data[f"change_vs_{suffix}_pct"] = _number(AttainmentTotal._change_pct(row.active, then))
    data["computed_at"] = computed_at.isoformat() if computed_at else None
    return data


def _campaign_dict(request, campaign) -> dict:
    return {
        "slug": campaign.slug,
        "name": campaign.name,
        "province_code": campaign.province.code,
        "province_name": campaign.province.name,
        "start_date": campaign.start_date.isoformat(),
        "end_date": campaign.end_date.isoformat(),
        "status": campaign.status,
        "measure": campaign.measure,
        "attainment_url": request.build_absolute_uri(
            reverse("api:campaign_attainment", kwargs={"slug": campaign.slug})
        ),
    }


@require_GET
def campaign_list(request):
    if (denied := _guard(request)) is not None:
        return denied
    campaigns = visible_campaigns(request.user).select_related("province").order_by("-start_date", "slug")
    return JsonResponse({"campaigns": [_campaign_dict(request, c) for c in campaigns]})


@require_GET
def campaign_attainment(request, slug):
    if (denied := _guard(request)) is not None:
        return denied
    campaign = visible_campaigns(request.user).select_related("province").filter(slug=slug).first()
    if campaign is None:
        return _error(404, _("No such campaign."))
    as_of = None
    if request.GET.get("as_of"):
        try:
            as_of = datetime.date.fromisoformat(request.GET["as_of"])
        except ValueError:
            return _error(400, _("as_of must be a date written YYYY-MM-DD, for example 2024-03-31."))
    data = selectors.attainment_for_campaign(user=request.user, campaign=campaign, as_of=as_of)
    stock = campaign.is_stock
    computed_at = data["computed_at"]
    province = {r.scheme: figure_dict(r, stock=stock, computed_at=computed_at) for r in data["province"]}
    return JsonResponse(
        {
            "campaign": _campaign_dict(request, campaign),
            "as_of": data["as_of"].isoformat(),
            "computed_at": computed_at.isoformat() if computed_at else None,
            "province": province or None,
            "units": [figure_dict(r, stock=stock, computed_at=computed_at) for r in data["units"]],
        },
        json_dumps_params={"ensure_ascii": False},
    )


def _figure_schema(stock_fields: bool = True) -> dict:
    number = {"type": "number", "nullable": True}
    integer = {"type": "integer"}
    props = {
        "scheme": {"type": "string", "enum": ["vsi", "hi_family"]},
        "unit_code": {"type": "string", "description": "absent on the province's rows"},
        "unit_name": {"type": "string"},
        "target": integer,
        "enrolled": {**integer, "description": "new + resumed enrollments from the start to min(as_of, end)"},
        "new": integer,
        "resumed": integer,
        "attained_pct": {
            **number,
            "description": "enrolled (or active, on the stock) / target × 100, 2 decimals; null when the target is 0",
        },
        "remaining": integer,
        "days_left": {**integer, "description": "days from as_of to the end, both inclusive"},
        "required_daily_pace": {**number, "description": "remaining / days_left; null after the end"},
        "current_daily_pace": number,
        "projected_at_end": number,
        "on_track": {"type": "boolean"},
        "rank": {"type": "integer", "nullable": True, "description": "RANK() among the units by enrolled"},
        "rank_by_attained_pct": {"type": "integer", "nullable": True},
        "computed_at": {"type": "string", "format": "date-time", "nullable": True},
    }
    if stock_fields:
        props["active"] = {"type": "integer", "description": "campaigns on the stock only"}
        for name in STOCK_FIGURES[1:]:
            props[name] = number if name.endswith("_pct") else {"type": "integer", "nullable": True}
    return {"type": "object", "properties": props, "required": ["scheme", *FIGURES, "computed_at"]}


def openapi_document(request) -> dict:
    campaign = {
        "type": "object",
        "properties": {
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "province_code": {"type": "string"},
            "province_name": {"type": "string"},
            "start_date": {"type": "string", "format": "date"},
            "end_date": {"type": "string", "format": "date"},
            "status": {"type": "string", "enum": ["draft", "active", "closed"]},
            "measure": {"type": "string", "enum": ["window", "stock"]},
            "attainment_url": {"type": "string", "format": "uri"},
        },
    }
    error = {"type": "object", "properties": {"error": {"type": "string"}}}
    errors = {
        "401": {"description": "not signed in", "content": {"application/json": {"schema": error}}},
        "403": {"description": "the account has no role", "content": {"application/json": {"schema": error}}},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Enrollment campaign tracker – read-only API",
            "version": "1",
            "description": "Attainment of the campaigns the signed-in user may see (session cookie). A staff user "
            "sees their own unit only; another province's campaign answers 404.",
        },
        "servers": [{"url": request.build_absolute_uri("/api/v1/")}],
        "components": {
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "sessionid"}},
            "schemas": {"Campaign": campaign, "Figures": _figure_schema(), "Error": error},
        },
        "security": [{"session": []}],
        "paths": {
            "/campaigns/": {
                "get": {
                    "operationId": "listCampaigns",
                    "summary": "The campaigns of the user's province",
                    "responses": {
                        "200": {
                            "description": "campaigns",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "campaigns": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Campaign"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        **errors,
                    },
                }
            },
            "/campaigns/{slug}/attainment/": {
                "get": {
                    "operationId": "campaignAttainment",
                    "summary": "Every figure of a campaign, for the province and per unit and scheme",
                    "parameters": [
                        {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}},
                        {
                            "name": "as_of",
                            "in": "query",
                            "required": False,
                            "description": "YYYY-MM-DD; default: the snapshot's date (today, or the end)",
                            "schema": {"type": "string", "format": "date"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "figures",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "campaign": {"$ref": "#/components/schemas/Campaign"},
                                            "as_of": {"type": "string", "format": "date"},
                                            "computed_at": {"type": "string", "format": "date-time", "nullable": True},
                                            "province": {
                                                "type": "object",
                                                "nullable": True,
                                                "description": "per scheme; null for a user tied to one unit",
                                                "additionalProperties": {"$ref": "#/components/schemas/Figures"},
                                            },
                                            "units": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Figures"},
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        "400": {"description": "bad as_of", "content": {"application/json": {"schema": error}}},
                        "404": {
                            "description": "no such campaign in scope",
                            "content": {"application/json": {"schema": error}},
                        },
                        **errors,
                    },
                }
            },
        },
    }


@require_GET
def openapi(request):
    # The document describes the interface only (no data), so tools may fetch it without signing in.
    return JsonResponse(openapi_document(request), json_dumps_params={"ensure_ascii": False})
