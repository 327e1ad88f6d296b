"""Campaign pages: the list (an admin's home), create and edit, the detail with its targets, the targets grid,
the template downloads and the target import (upload → preview → confirm). Thin doors onto selectors, services and
campaigns.importing."""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from campaigns import importing, selectors
from campaigns.forms import CampaignForm, TargetGridForm, TargetUploadForm
from campaigns.models import TargetImport
from campaigns.selectors import campaign_list_for, campaign_units, target_grid
from campaigns.services import targets_save_grid
from campaigns.target_files import template_csv, template_file_name, template_xlsx
from districts.scoping import ROLE_ADMIN, ROLE_MANAGER, role_of, scope_of, visible_campaigns, visible_units

READERS = (ROLE_ADMIN, ROLE_MANAGER)
GRID_CHANGE_REASON = "targets grid"


def _require_role(request, roles):
    role = role_of(request.user)
    if role not in roles:
        raise PermissionDenied
    return role


def _campaign(request, slug):
    """The campaign, if the user may see it: another province's is a 404, not a 403 (its existence is not told)."""
    return get_object_or_404(visible_campaigns(request.user).select_related("province"), slug=slug)


def can_manage_targets(user, campaign) -> bool:
    """Only an admin of the campaign's province (or a superuser) changes its targets."""
    if role_of(user) != ROLE_ADMIN:
        return False
    if user.is_superuser:
        return True
    scope = scope_of(user)
    return scope is not None and scope.province_id == campaign.province_id


def _manageable_campaign(request, slug):
    campaign = _campaign(request, slug)
    if not can_manage_targets(request.user, campaign):
        raise PermissionDenied
    return campaign


def dashboard_url(campaign) -> str | None:
    try:
        return reverse("reports:campaign_dashboard", kwargs={"slug": campaign.slug})
    except NoReverseMatch:
        return None


def _grid_units(request, campaign):
    # A district manager sees only their own unit's row; the sums stay the province's.
    units = campaign_units(campaign)
    if role_of(request.user) == ROLE_ADMIN:
        return units
    return units.filter(pk__in=visible_units(request.user).values("pk"))


@login_required
@require_safe  # read-only: a POST is a wrong method (405), not a second GET
def campaign_list(request):
    role = _require_role(request, READERS)
    campaigns = list(campaign_list_for(visible_campaigns(request.user)))
    for campaign in campaigns:
        campaign.dashboard_url = dashboard_url(campaign)
    return render(
        request,
        "campaigns/campaign_list.html",
        {"campaigns": campaigns, "can_create": role == ROLE_ADMIN},
    )


@login_required
@require_http_methods(["GET", "POST"])
def campaign_create(request):
    _require_role(request, (ROLE_ADMIN,))
    scope = scope_of(request.user)
    if not request.user.is_superuser and scope is None:
        raise PermissionDenied
    form = CampaignForm(request.POST or None, user=request.user)
    if not request.user.is_superuser:
        form.instance.province = scope.province
    if request.method == "POST" and form.is_valid():
        campaign = form.save()
        messages.success(request, _("The campaign “%(name)s” was created. Now set its targets.") % {"name": campaign})
        return redirect("campaigns:campaign_targets", slug=campaign.slug)
    return render(request, "campaigns/campaign_form.html", {"form": form, "campaign": None})


@login_required
@require_http_methods(["GET", "POST"])
def campaign_edit(request, slug):
    _require_role(request, (ROLE_ADMIN,))
    campaign = _manageable_campaign(request, slug)
    form = CampaignForm(request.POST or None, instance=campaign, user=request.user)
    if request.method == "POST" and form.is_valid():
        campaign = form.save()
        messages.success(request, _("The campaign was saved."))
        return redirect("campaigns:campaign_detail", slug=campaign.slug)
    return render(request, "campaigns/campaign_form.html", {"form": form, "campaign": campaign})


@login_required
@require_safe  # read-only: a POST is a wrong method (405), not a second GET
def campaign_detail(request, slug):
    _require_role(request, READERS)
    campaign = _campaign(request, slug)
    grid = target_grid(campaign, units=_grid_units(request, campaign))
    can_manage = can_manage_targets(request.user, campaign)
    imports = (
        campaign.target_imports.filter(applied_at__isnull=False).select_related("uploaded_by")[:10]
        if can_manage
        else []
    )
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "campaign": campaign,
            "grid": grid,
            "can_manage": can_manage,
            "imports": imports,
            "dashboard_url": dashboard_url(campaign),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def campaign_targets(request, slug):
    """The editable grid for an admin of the province; a manager gets the same figures read-only."""
    _require_role(request, READERS)
    campaign = _campaign(request, slug)
    if not can_manage_targets(request.user, campaign):
        if request.method == "POST":
            raise PermissionDenied
        return render(
            request,
            "campaigns/campaign_targets.html",
            {"campaign": campaign, "grid": target_grid(campaign, units=_grid_units(request, campaign)), "form": None},
        )
    units = list(campaign_units(campaign))
    form = TargetGridForm(request.POST or None, units=units, values=selectors.campaign_targets(campaign))
    if request.method == "POST" and form.is_valid():
        counts = targets_save_grid(
            campaign=campaign,
            values=form.changed_values(),
            history_user=request.user,
            change_reason=GRID_CHANGE_REASON,
        )
        messages.success(
            request,
            _("Targets saved: %(created)d new, %(changed)d changed, %(removed)d removed.") % counts,
        )
        return redirect("campaigns:campaign_targets", slug=campaign.slug)
    return render(
        request,
        "campaigns/campaign_targets.html",
        {"campaign": campaign, "grid": target_grid(campaign, units=units), "form": form},
    )


@login_required
@require_safe  # read-only: a POST is a wrong method (405), not a second GET
def template_download(request, slug, fmt):
    campaign = _manageable_campaign(request, slug)
    if fmt == "xlsx":
        body = template_xlsx(campaign)
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        body = template_csv(campaign)
        content_type = "text/csv; charset=utf-8"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{template_file_name(campaign, fmt)}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def target_import(request, slug):
    campaign = _manageable_campaign(request, slug)
    form = TargetUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > importing.max_file_bytes():
                raise importing.FileRejected(
                    _("The file is too large (%(size)s kB; at most %(max)s kB). A target file has one row per unit.")
                    % {"size": upload.size // 1024, "max": importing.max_file_bytes() // 1024}
                )
            data = upload.read(importing.max_file_bytes() + 1)
            table = importing.read_table(data, upload.name)
        except importing.FileRejected as exc:
            form.add_error("file", exc.message)
        else:
            with transaction.atomic():
                # One pending upload per admin and campaign: a new one replaces the last unconfirmed one.
                TargetImport.objects.filter(
                    campaign=campaign, uploaded_by=request.user, applied_at__isnull=True
                ).delete()
                pending = TargetImport.objects.create(
                    campaign=campaign,
                    uploaded_by=request.user,
                    file_name=upload.name[:255],
                    sha256=hashlib.sha256(data).hexdigest(),
                    table=table.to_json(),
                )
            return redirect("campaigns:target_import_preview", slug=campaign.slug, pk=pending.pk)
    return render(
        request,
        "campaigns/target_import.html",
        {"campaign": campaign, "form": form, "max_kb": importing.max_file_bytes() // 1024},
    )


@login_required
@require_http_methods(["GET", "POST"])
def target_import_preview(request, slug, pk):
    """GET shows what the upload would change; POST (the admin's confirmation) imports it, all rows or none."""
    campaign = _manageable_campaign(request, slug)
    pending = get_object_or_404(TargetImport, pk=pk, campaign=campaign, uploaded_by=request.user)
    if pending.applied_at is not None:
        messages.info(request, _("This file was already imported."))
        return redirect("campaigns:campaign_detail", slug=campaign.slug)
    table = importing.Table.from_json(pending.table)
    if request.method == "POST":
        try:
            with transaction.atomic():
                locked = TargetImport.objects.select_for_update().get(pk=pending.pk)
                if locked.applied_at is not None:
                    messages.info(request, _("This file was already imported."))
                    return redirect("campaigns:campaign_detail", slug=campaign.slug)
                preview = importing.import_apply(
                    campaign=campaign, table=table, user=request.user, file_name=pending.file_name
                )
                locked.applied_at = timezone.now()
                locked.summary = preview.counts
                locked.save(update_fields=["applied_at", "summary"])
        except importing.ImportInvalid as exc:
            messages.error(request, str(exc))
            preview = exc.preview
        else:
            counts = preview.counts
            messages.success(
                request,
                _("Imported “%(file)s”: %(new)d new, %(changed)d changed, %(unchanged)d unchanged targets.")
                % {"file": pending.file_name, **counts},
            )
            return redirect("campaigns:campaign_detail", slug=campaign.slug)
    else:
        preview = importing.build_preview(campaign, table)
    same_file = (
        TargetImport.objects.filter(campaign=campaign, sha256=pending.sha256, applied_at__isnull=False)
        .select_related("uploaded_by")
        .first()
    )
    return render(
        request,
        "campaigns/target_import_preview.html",
        {"campaign": campaign, "pending": pending, "preview": preview, "same_file": same_file},
    )


@login_required
@require_POST
def target_import_cancel(request, slug, pk):
    campaign = _manageable_campaign(request, slug)
    TargetImport.objects.filter(pk=pk, campaign=campaign, uploaded_by=request.user, applied_at__isnull=True).delete()
    messages.info(request, _("The upload was discarded; nothing was saved."))
    return redirect("campaigns:campaign_detail", slug=campaign.slug)
