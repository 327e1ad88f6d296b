"""Reads on enrollments that span rows or relations; every one starts from the user's visible enrollments."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from districts.models import Commune, District
from districts.scoping import visible_enrollments
from participants.models import CollectionAgent, CollectionOrganisation, Enrollment, EnrollmentKind, Participant, Scheme


def enrollment_list(*, user) -> QuerySet[Enrollment]:
    """The user's enrollments with everything a table row shows joined in (one query per page)."""
    return visible_enrollments(user).select_related(
        "participant", "unit", "commune", "agent", "organisation", "recorded_by"
    )


def enrollment_get(*, user, pk) -> Enrollment:
    """One visible enrollment; raises Enrollment.DoesNotExist for anything outside the user's scope."""
    return enrollment_list(user=user).get(pk=pk)


def participant_for_lookup(*, user, si_number: str) -> Participant | None:
    """The person with this SI number, only if they have an enrollment the user may see.

    Someone recorded only by another unit (or province) is not revealed: the officer types their details as for a
    new person, and the service then attaches the enrollment to the existing person (refusing a different date of
    birth), so nothing is duplicated and nothing leaks.
    """
    if not visible_enrollments(user).filter(participant__si_number=si_number).exists():
        return None
    return Participant.objects.filter(si_number=si_number).select_related("commune").first()


def participant_visible_enrollments(*, user, participant) -> QuerySet[Enrollment]:
    return visible_enrollments(user).filter(participant=participant).select_related("unit").order_by("-coverage_start")


def enrollment_recorders(*, user):
    """People who recorded enrollments the user may see (the "recorded by" filter's choices)."""
    ids = visible_enrollments(user).exclude(recorded_by__isnull=True).values("recorded_by")
    return get_user_model().objects.filter(pk__in=ids).order_by("username")


def enrollment_history(*, enrollment: Enrollment) -> list[dict]:
    """Every saved version of the record, newest first, each with who, when and the fields changed (old -> new)."""
    records = list(enrollment.history.select_related("history_user").order_by("history_date", "history_id"))
    labels = {f.name: f.verbose_name for f in Enrollment._meta.fields}
    related = {"unit": District, "commune": Commune, "agent": CollectionAgent, "organisation": CollectionOrganisation}
    ids: dict[str, set] = {name: set() for name in related}
    ids["recorded_by"] = set()
    for record in records:
        for name in ids:
            ids[name].add(getattr(record, f"{name}_id"))
    names = {
        name: {obj.pk: str(obj) for obj in model.objects.filter(pk__in=[i for i in ids[name] if i])}
        for name, model in related.items()
    }
    names["recorded_by"] = {
        u.pk: u.get_full_name() or u.username
        for u in get_user_model().objects.filter(pk__in=[i for i in ids["recorded_by"] if i])
    }
    choices = {"scheme": dict(Scheme.choices), "kind": dict(EnrollmentKind.choices)}

    def show(field, value):
        if value is None or value == "":
            return "—"
        if field in names:
            return names[field].get(value, f"#{value}")
        if field in choices:
            return choices[field].get(value, value)
        if hasattr(value, "strftime"):
            return value.strftime("%d/%m/%Y")
        return str(value)

    skip = {"updated_at", "created_at"}
    out = []
    previous = None
    for record in records:
        changes = []
        if previous is not None and record.history_type == "~":
            delta = record.diff_against(previous, excluded_fields=skip)
            for change in delta.changes:
                changes.append(
                    {
                        "field": labels.get(change.field, change.field),
                        "old": show(change.field, change.old),
                        "new": show(change.field, change.new),
                    }
                )
        out.append({"record": record, "changes": changes})
        previous = record
    return list(reversed(out))
