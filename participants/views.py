"""Pages for recording enrollments one at a time, listing and correcting them, and uploading lists.

Thin doors onto participants.services / selectors / importing; every query starts from districts.scoping.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin
from django_tables2.export import ExportMixin

from config.tables import TableColumnsSortMixin
from districts.scoping import ROLE_ADMIN, ROLE_MANAGER, ROLE_STAFF, role_of, scope_of, visible_communes, visible_units
from participants import importing, selectors
from participants.filters import EnrollmentFilter, search_redirect
from participants.forms import EnrollmentForm, UploadForm
from participants.models import Enrollment, EnrollmentUpload
from participants.services import (
    enrollment_delete,
    enrollment_record_for_person,
    enrollment_update,
    participant_upsert,
    si_number_normalise,
)
from participants.tables import EnrollmentTable, KeysFirstQuerysetData, SafeTableExport

logger = logging.getLogger(__name__)

# Labels of this app's links in templates/inc/nav_items.html, kept in this app's catalogue.
NAV_LABELS = (gettext_lazy("Record"), gettext_lazy("Enrollments"), gettext_lazy("Upload a list"))

WRITERS = (ROLE_STAFF, ROLE_ADMIN)
READERS = (ROLE_STAFF, ROLE_MANAGER, ROLE_ADMIN)
# Files up to this size are checked within the request; larger ones go to a Celery task with a progress bar.
SYNC_CHECK_BYTES = 256 * 1024
SYNC_CONFIRM_ROWS = 500
EXPORT_MAX_ROWS = 100_000
MAX_PER_PAGE = 500
# Fields kept from one entry to the next, so that a day's list is typed without repeating them.
STICKY_FIELDS = ("unit", "commune", "scheme", "enrolled_on", "coverage_start", "months", "organisation", "agent")


def _require(request, roles):
    if role_of(request.user) not in roles:
        raise PermissionDenied
    if scope_of(request.user) is None and not request.user.is_superuser:
        raise PermissionDenied


def can_change(user, enrollment) -> bool:
    """The officer who recorded an enrollment may correct it; an admin of its province may too."""
    role = role_of(user)
    return role == ROLE_ADMIN or (role == ROLE_STAFF and enrollment.recorded_by_id == user.pk)


def _apply_service_errors(form, exc: ValidationError) -> int | None:
    """Puts a service's ValidationError on the form; returns the pk of the existing record for a duplicate."""
    duplicate_pk = None
    for error in exc.error_list if not hasattr(exc, "error_dict") else []:
        if error.code == "duplicate":
            duplicate_pk = (error.params or {}).get("existing_pk")
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)
    return duplicate_pk


def _duplicate_context(user, pk):
    if pk is None:
        return None
    visible = selectors.enrollment_list(user=user).filter(pk=pk).exists()
    return {"pk": pk, "url": reverse("participants:enrollment_detail", args=[pk]) if visible else None}


@login_required
@require_http_methods(["GET", "POST"])
def enrollment_create(request):
    _require(request, WRITERS)
    duplicate = None
    if request.method == "POST":
        form = EnrollmentForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            unit = data["unit_obj"]
            try:
                enrollment = enrollment_record_for_person(
                    si_number=data["si_number"],
                    full_name=data["full_name"],
                    date_of_birth=data["date_of_birth"],
                    gender=data["gender"],
                    scheme=data["scheme"],
                    enrolled_on=data["enrolled_on"],
                    coverage_start=data["coverage_start"],
                    months=data["months"],
                    unit=unit,
                    commune=data["commune"],
                    organisation=data.get("organisation"),
                    agent=data.get("agent"),
                    recorded_by=request.user,
                )
            except ValidationError as exc:
                duplicate = _duplicate_context(request.user, _apply_service_errors(form, exc))
            else:
                sticky = {
                    k: (v.pk if hasattr(v, "pk") else v.strftime("%d/%m/%Y") if hasattr(v, "strftime") else v)
                    for k, v in ((k, data.get(k)) for k in STICKY_FIELDS)
                    if v not in (None, "")
                } | ({"unit": unit.pk} if form.fixed_unit is None else {})
                # A day's list keeps the same values from one entry to the next: rewriting the session with what
                # it already holds would cost a database write per save.
                if request.session.get("enrollment_sticky") != sticky:
                    request.session["enrollment_sticky"] = sticky
                return redirect(f"{reverse('participants:enrollment_create')}?saved={enrollment.pk}")
    else:
        form = EnrollmentForm(user=request.user, initial=request.session.get("enrollment_sticky", {}))
    saved = None
    if request.GET.get("saved", "").isdigit():
        saved = selectors.enrollment_list(user=request.user).filter(pk=int(request.GET["saved"])).first()
    return render(
        request,
        "participants/enrollment_form.html",
        {"form": form, "saved": saved, "duplicate": duplicate, "editing": None},
    )


@login_required
@require_POST
def participant_lookup(request):
    """htmx: a notice about the SI number; for a known person the user may see, their details replace the inputs.

    For anyone else the inputs are left alone, so nothing the officer typed meanwhile is overwritten. A POST (read
    only) so that the SI number travels in the body, never in an address that access logs and proxies keep.
    """
    _require(request, WRITERS)
    participant, number_error, enrollments = None, None, []
    try:
        si_number = si_number_normalise(request.POST.get("si_number", ""))
    except ValidationError as exc:
        si_number = None
        if request.POST.get("si_number", "").strip():
            number_error = exc.messages[0]
    if si_number:
        participant = selectors.participant_for_lookup(user=request.user, si_number=si_number)
    values = {}
    if participant is not None:
        values = {
            "full_name": participant.full_name,
            "date_of_birth": participant.date_of_birth.strftime("%d/%m/%Y"),
            "gender": participant.gender,
        }
        enrollments = selectors.participant_visible_enrollments(user=request.user, participant=participant)[:5]
    # Unbound, with the values as initial data: rendering must not validate (no errors while typing).
    form = EnrollmentForm(user=request.user, initial=values)
    return render(
        request,
        "participants/inc/person_lookup.html",
        {
            "form": form,
            "values": values,
            "participant": participant,
            "looked_up": bool(si_number),
            "number_error": number_error,
            "known_enrollments": enrollments,
        },
    )


@login_required
@require_GET
def unit_communes(request):
    """htmx: the commune choices of the unit a province-wide officer picked (only units they may see)."""
    _require(request, WRITERS)
    unit = None
    if request.GET.get("unit", "").isdigit():
        unit = visible_units(request.user).filter(pk=int(request.GET["unit"])).first()
    communes = visible_communes(request.user).filter(pk__in=unit.served_communes()).current() if unit else []
    return render(request, "participants/inc/commune_options.html", {"communes": communes})


@method_decorator(login_required, name="dispatch")
class EnrollmentListView(TableColumnsSortMixin, ExportMixin, SingleTableMixin, FilterView):
    table_class = EnrollmentTable
    filterset_class = EnrollmentFilter
    template_name = "participants/enrollment_list.html"
    # The table paginates (django-tables2); ListView's own pagination would count the rows a second time.
    table_pagination = {"per_page": 50}
    export_class = SafeTableExport
    export_formats = ("csv", "xlsx")
    export_name = "enrollments"

    def dispatch(self, request, *args, **kwargs):
        _require(request, READERS)
        per_page = request.GET.get("per_page")
        if per_page is not None:
            # django-tables2 obeys ?per_page= as given; a negative or huge value must not reach the paginator.
            request.GET = request.GET.copy()
            try:
                request.GET["per_page"] = str(min(max(int(per_page), 1), MAX_PER_PAGE))
            except ValueError:
                del request.GET["per_page"]
        return super().dispatch(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        # The filter form: its search term goes into the session, not into the address (participants.filters).
        return search_redirect(request)

    def get_queryset(self):
        return selectors.enrollment_list(user=self.request.user)

    def get_table_data(self):
        return KeysFirstQuerysetData(super().get_table_data(), seek_field="enrolled_on")

    def get_table_kwargs(self):
        scope = scope_of(self.request.user)
        return {"exclude": ("unit",)} if scope is not None and scope.unit_id else {}

    def create_export(self, export_format):
        # An export is built in memory: past this many rows the officer narrows the filters first.
        if self.object_list.count() > EXPORT_MAX_ROWS:
            messages.error(
                self.request,
                _("The export is limited to %(limit)s rows; narrow the filters (for example the dates).")
                % {"limit": f"{EXPORT_MAX_ROWS:,}".replace(",", ".")},
            )
            query = self.request.GET.copy()
            query.pop(self.export_trigger_param, None)
            return redirect(f"{self.request.path}?{query.urlencode()}")
        return super().create_export(export_format)

    def get_export_filename(self, export_format):
        from django.utils import timezone

        return f"enrollments-{timezone.localdate():%Y%m%d}.{export_format}"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_write"] = role_of(self.request.user) in WRITERS
        query = self.request.GET.copy()
        query.pop("page", None)
        query.pop("_export", None)
        context["export_query"] = query.urlencode()
        return context


enrollment_list = EnrollmentListView.as_view()


def _visible_or_404(request, pk):
    try:
        return selectors.enrollment_get(user=request.user, pk=pk)
    except Enrollment.DoesNotExist as exc:
        raise Http404 from exc


@login_required
@require_GET
def enrollment_detail(request, pk):
    _require(request, READERS)
    enrollment = _visible_or_404(request, pk)
    return render(
        request,
        "participants/enrollment_detail.html",
        {
            "enrollment": enrollment,
            "history": selectors.enrollment_history(enrollment=enrollment),
            "can_change": can_change(request.user, enrollment),
            "other_enrollments": selectors.participant_visible_enrollments(
                user=request.user, participant=enrollment.participant
            ).exclude(pk=enrollment.pk)[:20],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def enrollment_edit(request, pk):
    _require(request, WRITERS)
    enrollment = _visible_or_404(request, pk)
    if not can_change(request.user, enrollment):
        raise PermissionDenied
    duplicate = None
    person = enrollment.participant
    initial = {
        "unit": enrollment.unit_id,
        "si_number": person.si_number,
        "full_name": person.full_name,
        "date_of_birth": person.date_of_birth,
        "gender": person.gender,
        "commune": enrollment.commune_id,
        "scheme": enrollment.scheme,
        "enrolled_on": enrollment.enrolled_on,
        "coverage_start": enrollment.coverage_start,
        "months": enrollment.months,
        "organisation": enrollment.organisation_id,
        "agent": enrollment.agent_id,
    }
    if request.method == "POST":
        form = EnrollmentForm(request.POST, user=request.user, enrollment=enrollment, initial=initial)
        if form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    participant_upsert(
                        si_number=person.si_number,
                        full_name=data["full_name"],
                        date_of_birth=person.date_of_birth,
                        gender=data["gender"],
                    )
                    if data["date_of_birth"] != person.date_of_birth:
                        raise ValidationError(
                            {"date_of_birth": _("A date of birth is corrected by an administrator, not here.")}
                        )
                    enrollment_update(
                        enrollment=enrollment,
                        scheme=data["scheme"],
                        enrolled_on=data["enrolled_on"],
                        coverage_start=data["coverage_start"],
                        months=data["months"],
                        unit=data["unit_obj"],
                        commune=data["commune"],
                        organisation=data.get("organisation"),
                        agent=data.get("agent"),
                        changed_by=request.user,
                    )
            except ValidationError as exc:
                duplicate = _duplicate_context(request.user, _apply_service_errors(form, exc))
            else:
                messages.success(request, _("The enrollment was changed."))
                return redirect("participants:enrollment_detail", pk=enrollment.pk)
    else:
        form = EnrollmentForm(user=request.user, enrollment=enrollment, initial=initial)
    return render(
        request,
        "participants/enrollment_form.html",
        {"form": form, "saved": None, "duplicate": duplicate, "editing": enrollment},
    )


@login_required
@require_http_methods(["GET", "POST"])
def enrollment_remove(request, pk):
    _require(request, WRITERS)
    enrollment = _visible_or_404(request, pk)
    if not can_change(request.user, enrollment):
        raise PermissionDenied
    if request.method == "POST":
        enrollment_delete(enrollment=enrollment, deleted_by=request.user)
        messages.success(request, _("The enrollment no. %(pk)s was deleted; its history is kept.") % {"pk": pk})
        return redirect("participants:enrollment_list")
    return render(request, "participants/enrollment_confirm_delete.html", {"enrollment": enrollment})


# ------------------------------------------------------------------------------------------------------ uploads


def _enqueue(task, upload):
    """Starts a task after the upload row is committed; a broker that is down marks the upload failed."""

    def send():
        try:
            result = task.delay(str(upload.pk))
        except Exception:
            logger.exception("could not enqueue %s for upload %s", task.name, upload.pk)
            EnrollmentUpload.objects.filter(pk=upload.pk).update(status=EnrollmentUpload.Status.FAILED)
            return
        EnrollmentUpload.objects.filter(pk=upload.pk).update(task_id=result.id or "")

    transaction.on_commit(send)


@login_required
@require_http_methods(["GET", "POST"])
def enrollment_upload(request):
    from participants import tasks

    _require(request, WRITERS)
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            file = form.cleaned_data["file"]
            try:
                upload = importing.upload_create(user=request.user, name=file.name, data=file.read())
            except importing.ImportFileError as exc:
                form.add_error("file", str(exc))
            else:
                if upload.size <= SYNC_CHECK_BYTES:
                    importing.upload_check(upload=upload)
                else:
                    _enqueue(tasks.enrollment_upload_check, upload)
                return redirect("participants:enrollment_upload_detail", pk=upload.pk)
    else:
        form = UploadForm()
    uploads = EnrollmentUpload.objects.filter(uploaded_by=request.user).defer("content", "report")[:10]
    return render(
        request,
        "participants/upload_form.html",
        {"form": form, "uploads": uploads, "columns": importing.COLUMNS, "labels": importing.COLUMN_LABELS},
    )


def _own_upload(request, pk):
    return get_object_or_404(EnrollmentUpload.objects.defer("content"), pk=pk, uploaded_by=request.user)


def _progress(upload):
    if not upload.task_id or upload.status not in (EnrollmentUpload.Status.CHECKING, EnrollmentUpload.Status.IMPORTING):
        return None
    from celery.result import AsyncResult

    try:
        result = AsyncResult(upload.task_id)
        if result.state == "PROGRESS" and isinstance(result.info, dict):
            done, total = int(result.info.get("done", 0)), int(result.info.get("total", 0))
            return {"done": done, "total": total, "pct": round(100 * done / total) if total else 0}
    except Exception:  # the result backend is a courtesy for the bar
        logger.warning("could not read upload progress", exc_info=True)
    return None


@login_required
@require_GET
def enrollment_upload_detail(request, pk):
    _require(request, WRITERS)
    upload = _own_upload(request, pk)
    template = "participants/inc/upload_status.html" if request.htmx else "participants/upload_detail.html"
    context = {
        "upload": upload,
        "report": upload.report,
        "progress": _progress(upload),
        "retention_days": settings.UPLOAD_RETENTION_DAYS,
    }
    response = render(request, template, context)
    busy = upload.status in (EnrollmentUpload.Status.CHECKING, EnrollmentUpload.Status.IMPORTING)
    if request.htmx and not busy:
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def enrollment_upload_confirm(request, pk):
    from participants import tasks

    _require(request, WRITERS)
    upload = _own_upload(request, pk)
    # Claiming the upload first makes a double click (or two tabs) save it once.
    claimed = EnrollmentUpload.objects.filter(pk=upload.pk, status=EnrollmentUpload.Status.READY).update(
        status=EnrollmentUpload.Status.IMPORTING
    )
    if not claimed:
        messages.error(request, _("This upload cannot be saved (it has errors or was saved already)."))
        return redirect("participants:enrollment_upload_detail", pk=upload.pk)
    if (upload.report.get("counts") or {}).get("create", 0) <= SYNC_CONFIRM_ROWS:
        importing.upload_confirm(upload=upload, claimed=True)
        upload.refresh_from_db()
        if upload.status == EnrollmentUpload.Status.DONE:
            messages.success(request, _("%(count)s enrollments were saved.") % {"count": upload.created_count})
        else:
            messages.error(request, _("Nothing was saved: the list has errors now. See below."))
    else:
        _enqueue(tasks.enrollment_upload_confirm, upload)
    return redirect("participants:enrollment_upload_detail", pk=upload.pk)


@login_required
@require_GET
def enrollment_upload_template(request):
    """A CSV with the headers (English column names, as the command reads them) and one example row."""
    import csv

    _require(request, WRITERS)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="enrollments-template.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(importing.COLUMNS)
    writer.writerow(["0123456789", "Nguyễn Văn A", "01/06/1985", "male", "", "vsi", "", "", "12", ""])
    return response
