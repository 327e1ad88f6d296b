"""Writes on participants and enrollments. Every door (form, import, command, API) records through here."""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from participants.models import (
    ALLOWED_MONTHS,
    Enrollment,
    EnrollmentKind,
    Participant,
    Scheme,
    add_months,
)


def derive_kind(*, previous_end: datetime.date | None, coverage_start: datetime.date) -> str:
    """New when there was no earlier coverage, renewal when it continues without a gap, else resumed."""
    if previous_end is None:
        return EnrollmentKind.NEW
    if previous_end >= coverage_start:
        return EnrollmentKind.RENEWAL
    return EnrollmentKind.RESUMED


def enrollment_kinds_rederive(*, participant: Participant, scheme: str) -> None:
    """Re-derives the kinds of one person's enrollments in one scheme, in coverage order.

    A back-dated entry or a deletion can change what the later ones are; one person has a handful of rows.
    """
    previous_end = None
    for enrollment in Enrollment.objects.filter(participant=participant, scheme=scheme).order_by("coverage_start"):
        kind = derive_kind(previous_end=previous_end, coverage_start=enrollment.coverage_start)
        if kind != enrollment.kind:
            Enrollment.objects.filter(pk=enrollment.pk).update(kind=kind)
        previous_end = max(previous_end, enrollment.coverage_end) if previous_end else enrollment.coverage_end


def overlapping_enrollment(
    *,
    participant: Participant,
    scheme: str,
    coverage_start: datetime.date,
    coverage_end: datetime.date,
    exclude_pk: int | None = None,
) -> Enrollment | None:
    qs = Enrollment.objects.filter(
        participant=participant, scheme=scheme, coverage_start__lt=coverage_end, coverage_end__gt=coverage_start
    )
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    return qs.order_by("coverage_start").first()


def validate_enrollment_fields(*, scheme: str, months: int, unit, commune) -> None:
    """The rules that span tables or schemes; each failure names the field it concerns."""
    errors = {}
    if scheme not in Scheme.values:
        errors["scheme"] = _("Choose voluntary social insurance or family health insurance.")
    elif months not in ALLOWED_MONTHS[scheme]:
        allowed = ", ".join(str(m) for m in ALLOWED_MONTHS[scheme])
        errors["months"] = _("For this scheme the months paid must be one of: %(allowed)s.") % {"allowed": allowed}
    if commune is not None and unit is not None and commune.district_id != unit.pk:
        errors["commune"] = _("This commune is not in the unit %(unit)s.") % {"unit": unit.name}
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def enrollment_record(
    *,
    participant: Participant,
    scheme: str,
    enrolled_on: datetime.date,
    coverage_start: datetime.date,
    months: int,
    unit,
    commune,
    organisation=None,
    agent=None,
    recorded_by=None,
) -> Enrollment:
    """Records one enrollment, deriving its kind; refuses a coverage that overlaps one the person already has.

    The participant's row is locked first, so two officers saving the same person at once are serialised and the
    second sees the first's coverage.
    """
    validate_enrollment_fields(scheme=scheme, months=months, unit=unit, commune=commune)
    participant = Participant.objects.select_for_update().get(pk=participant.pk)
    coverage_end = add_months(coverage_start, months)
    existing = overlapping_enrollment(
        participant=participant, scheme=scheme, coverage_start=coverage_start, coverage_end=coverage_end
    )
    if existing is not None:
        raise ValidationError(
            _("%(name)s already has %(scheme)s coverage from %(start)s to %(end)s (record no. %(pk)s).")
            % {
                "name": participant.full_name,
                "scheme": existing.get_scheme_display(),
                "start": existing.coverage_start.strftime("%d/%m/%Y"),
                "end": existing.coverage_end.strftime("%d/%m/%Y"),
                "pk": existing.pk,
            },
            code="duplicate",
            params={"existing_pk": existing.pk},
        )
    previous_end = (
        Enrollment.objects.filter(participant=participant, scheme=scheme, coverage_start__lt=coverage_start)
        .order_by("-coverage_end")
        .values_list("coverage_end", flat=True)
        .first()
    )
    enrollment = Enrollment.objects.create(
        participant=participant,
        scheme=scheme,
        kind=derive_kind(previous_end=previous_end, coverage_start=coverage_start),
        enrolled_on=enrolled_on,
        coverage_start=coverage_start,
        coverage_end=coverage_end,
        months=months,
        unit=unit,
        commune=commune,
        organisation=organisation or (agent.organisation if agent else None),
        agent=agent,
        recorded_by=recorded_by,
    )
    if Enrollment.objects.filter(participant=participant, scheme=scheme, coverage_start__gt=coverage_start).exists():
        enrollment_kinds_rederive(participant=participant, scheme=scheme)
        enrollment.refresh_from_db(fields=["kind"])
    return enrollment
