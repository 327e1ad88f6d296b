"""Writes on participants and enrollments. Every door (form, import, command, API) records through here."""

from __future__ import annotations

import datetime
import functools
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from participants.models import (
    ALLOWED_MONTHS,
    Enrollment,
    EnrollmentKind,
    Participant,
    Scheme,
    add_months,
)
from participants.signals import enrollments_changed_on_commit

VSI_MIN_AGE = 15
DEADLOCK_DETECTED = "40P01"  # PostgreSQL's SQLSTATE


def si_number_normalise(raw: str | None) -> str:
    """The 10-digit SI number inside what an officer typed or a spreadsheet holds.

    Spaces (also non-breaking), dots and dashes are dropped and full-width digits become ASCII (NFKC); anything
    else, or a number that is not exactly 10 digits, is refused with a message that says what was wrong.
    """
    text = unicodedata.normalize("NFKC", str(raw or "")).strip()
    if text.endswith(".0") and text[:-2].isdigit():
        # A spreadsheet that stored the number as a number hands it back as "1234567890.0".
        text = text[:-2]
    digits = "".join(ch for ch in text if ch not in " .-\u00a0\t")
    if not digits:
        raise ValidationError(_("Enter the social insurance number."), code="required")
    if not all("0" <= ch <= "9" for ch in digits):
        raise ValidationError(
            _("The social insurance number may contain only digits (%(value)s).") % {"value": text[:20]},
            code="invalid",
        )
    if len(digits) != 10:
        raise ValidationError(
            _("The social insurance number must have exactly 10 digits; this one has %(count)s.")
            % {"count": len(digits)},
            code="length",
        )
    return digits


def age_on(date_of_birth: datetime.date, day: datetime.date) -> int:
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def validate_dates(
    *,
    scheme: str | None,
    date_of_birth: datetime.date | None,
    enrolled_on: datetime.date | None,
    today: datetime.date | None = None,
) -> None:
    """Dates that cannot be right: a birth or a recording in the future, a VSI participant under 15."""
    today = today or timezone.localdate()
    errors = {}
    if date_of_birth is not None:
        if date_of_birth > today:
            errors["date_of_birth"] = _("The date of birth cannot be in the future.")
        elif date_of_birth.year < 1900:
            errors["date_of_birth"] = _("The date of birth is too far in the past; check the year.")
        elif scheme == Scheme.VSI and age_on(date_of_birth, enrolled_on or today) < VSI_MIN_AGE:
            errors["date_of_birth"] = _(
                "Voluntary social insurance is for people aged %(age)s or over; this person is %(actual)s."
            ) % {"age": VSI_MIN_AGE, "actual": age_on(date_of_birth, enrolled_on or today)}
    if enrolled_on is not None and enrolled_on > today:
        errors["enrolled_on"] = _("The date recorded cannot be in the future.")
    if errors:
        raise ValidationError(errors)


def derive_kind(*, previous_end: datetime.date | None, coverage_start: datetime.date) -> str:
    """New when there was no earlier coverage, renewal when it continues without a gap, else resumed."""
    if previous_end is None:
        return EnrollmentKind.NEW
    if previous_end >= coverage_start:
        return EnrollmentKind.RENEWAL
    return EnrollmentKind.RESUMED


def enrollment_kinds_rederive(*, participant: Participant, scheme: str) -> set[tuple[int, datetime.date]]:
    """Re-derives the kinds of one person's enrollments in one scheme, in coverage order.

    A back-dated entry, an edit or a deletion can change what the later ones are; one person has a handful of rows.
    Each change is saved through the model so that the history shows it. Returns the (unit id, entry day) of the
    rows whose kind changed: their day counts moved too, and the enrollments_changed signal must say so.
    """
    changed: set[tuple[int, datetime.date]] = set()
    previous_end = None
    for enrollment in Enrollment.objects.filter(participant=participant, scheme=scheme).order_by("coverage_start"):
        kind = derive_kind(previous_end=previous_end, coverage_start=enrollment.coverage_start)
        if kind != enrollment.kind:
            enrollment.kind = kind
            enrollment.save(update_fields=["kind", "updated_at"])
            changed.add((enrollment.unit_id, enrollment.enrolled_on))
        previous_end = max(previous_end, enrollment.coverage_end) if previous_end else enrollment.coverage_end
    return changed


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


def validate_enrollment_fields(*, scheme: str, months: int, unit, commune, agent=None) -> None:
    """The rules that span tables or schemes; each failure names the field it concerns."""
    errors = {}
    if scheme not in Scheme.values:
        errors["scheme"] = _("Choose voluntary social insurance or family health insurance.")
    elif months not in ALLOWED_MONTHS[scheme]:
        allowed = ", ".join(str(m) for m in ALLOWED_MONTHS[scheme])
        errors["months"] = _("For this scheme the months paid must be one of: %(allowed)s.") % {"allowed": allowed}
    if commune is not None and unit is not None and not unit.serves(commune):
        errors["commune"] = _("This commune is not in the unit %(unit)s.") % {"unit": unit.name}
    if agent is not None and unit is not None:
        organisation = agent.organisation
        if organisation.province_id != unit.province_id or (organisation.unit_id and organisation.unit_id != unit.pk):
            errors["agent"] = _("This collection agent does not work for the unit %(unit)s.") % {"unit": unit.name}
    if errors:
        raise ValidationError(errors)


def _save_or_refuse_overlap(enrollment: Enrollment) -> None:
    """Saves `enrollment`; when the database refuses it as overlapping coverage (the PostgreSQL exclusion constraint,
    reached only by a write path that skipped the participant lock), says which record it clashes with."""
    try:
        with transaction.atomic():
            enrollment.save()
    except IntegrityError as exc:
        existing = overlapping_enrollment(
            participant=enrollment.participant,
            scheme=enrollment.scheme,
            coverage_start=enrollment.coverage_start,
            coverage_end=enrollment.coverage_end,
            exclude_pk=enrollment.pk,
        )
        if existing is not None:
            raise duplicate_error(participant=enrollment.participant, existing=existing) from exc
        raise


def duplicate_error(*, participant: Participant, existing: Enrollment) -> ValidationError:
    """The refusal of an overlapping coverage: it names the existing record; `params["existing_pk"]` links to it."""
    last_day = existing.coverage_end - datetime.timedelta(days=1)
    return ValidationError(
        _(
            "%(name)s already has %(scheme)s coverage from %(start)s to %(end)s "
            "(record no. %(pk)s, recorded by %(unit)s)."
        )
        % {
            "name": participant.full_name,
            "scheme": existing.get_scheme_display(),
            "start": existing.coverage_start.strftime("%d/%m/%Y"),
            "end": last_day.strftime("%d/%m/%Y"),
            "pk": existing.pk,
            "unit": existing.unit.name,
        },
        code="duplicate",
        params={"existing_pk": existing.pk},
    )


def participant_upsert(
    *,
    si_number: str,
    full_name: str,
    date_of_birth: datetime.date,
    gender: str,
    commune=None,
) -> tuple[Participant, dict[str, tuple]]:
    """Finds the person by SI number or creates them; returns the person and the details changed {field: (old, new)}.

    A known number with another date of birth is refused: it is far more often a mistyped number than a corrected
    birth date, and overwriting a stranger's record must not be one keystroke away. Name, gender and commune are
    brought up to date (the history keeps the old values). Two officers creating the same new person at once: the
    second INSERT waits for the first transaction and then fails on the unique index; it then uses the first's row.
    """
    si_number = si_number_normalise(si_number)
    participant = Participant.objects.filter(si_number=si_number).first()
    if participant is None:
        try:
            with transaction.atomic():
                participant = Participant.objects.create(
                    si_number=si_number,
                    full_name=full_name.strip(),
                    date_of_birth=date_of_birth,
                    gender=gender,
                    commune=commune,
                )
            return participant, {}
        except IntegrityError:
            participant = Participant.objects.get(si_number=si_number)
    return participant, _participant_bring_up_to_date(
        participant,
        si_number=si_number,
        full_name=full_name,
        date_of_birth=date_of_birth,
        gender=gender,
        commune=commune,
    )


def _participant_bring_up_to_date(participant, *, si_number, full_name, date_of_birth, gender, commune) -> dict:
    """Refuses another date of birth; saves a changed name, gender or commune. Returns {field: (old, new)}."""
    if participant.date_of_birth != date_of_birth:
        raise ValidationError(
            {
                "date_of_birth": _(
                    "The social insurance number %(si)s belongs to a person with another date of birth. "
                    "Check the number and the date."
                )
                % {"si": si_number}
            },
            code="dob_mismatch",
        )
    changes = {}
    for field, value in (("full_name", full_name.strip()), ("gender", gender)):
        if value is not None and value != "" and getattr(participant, field) != value:
            changes[field] = (getattr(participant, field), value)
            setattr(participant, field, value)
    # Compared by id: the person's old commune is read only when it changes.
    if commune is not None and participant.commune_id != commune.pk:
        changes["commune"] = (participant.commune, commune)
        participant.commune = commune
    if changes:
        participant.save(update_fields=list(changes))
    return changes


def _previous_end(*, participant, scheme, coverage_start, exclude_pk=None):
    qs = Enrollment.objects.filter(participant=participant, scheme=scheme, coverage_start__lt=coverage_start)
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    return qs.order_by("-coverage_end").values_list("coverage_end", flat=True).first()


def _coverage_facts(*, participant, scheme, coverage_start, coverage_end) -> dict:
    """What a new coverage meets in the person's rows of the scheme, in one aggregate over the (participant, scheme)
    index: how many rows it overlaps, the latest end before it (its kind), and how many rows start after it."""
    return Enrollment.objects.filter(participant=participant, scheme=scheme).aggregate(
        overlapping=Count("pk", filter=Q(coverage_start__lt=coverage_end, coverage_end__gt=coverage_start)),
        previous_end=Max("coverage_end", filter=Q(coverage_start__lt=coverage_start)),
        later=Count("pk", filter=Q(coverage_start__gt=coverage_start)),
    )


def _enrollment_insert(
    *,
    participant: Participant,
    person_is_new: bool,
    scheme: str,
    enrolled_on: datetime.date,
    coverage_start: datetime.date,
    months: int,
    unit,
    commune,
    organisation,
    agent,
    recorded_by,
    savepoint: bool,
) -> Enrollment:
    """Records one enrollment of a person whose row this transaction has locked (or created: a person created in
    this transaction has no coverage yet, so there is nothing to check against and nothing to re-derive)."""
    validate_dates(scheme=scheme, date_of_birth=participant.date_of_birth, enrolled_on=enrolled_on)
    coverage_end = add_months(coverage_start, months)
    previous_end, later = None, 0
    if not person_is_new:
        facts = _coverage_facts(
            participant=participant, scheme=scheme, coverage_start=coverage_start, coverage_end=coverage_end
        )
        if facts["overlapping"]:
            existing = overlapping_enrollment(
                participant=participant, scheme=scheme, coverage_start=coverage_start, coverage_end=coverage_end
            )
            raise duplicate_error(participant=participant, existing=existing)
        previous_end, later = facts["previous_end"], facts["later"]
    enrollment = Enrollment(
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
    if recorded_by is not None:
        enrollment._history_user = recorded_by
    if savepoint:
        _save_or_refuse_overlap(enrollment)
    else:
        enrollment.save()
    rederived: set = set()
    if later:
        rederived = enrollment_kinds_rederive(participant=participant, scheme=scheme)
        enrollment.refresh_from_db(fields=["kind"])
    enrollments_changed_on_commit(
        unit_ids={unit.pk} | {u for u, _day in rederived},
        days={enrolled_on} | {day for _u, day in rederived},
        schemes={scheme},
        coverage_since=coverage_start,
    )
    return enrollment


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
    second sees the first's coverage (on PostgreSQL an exclusion constraint backs this up). The lock is FOR NO KEY
    UPDATE: it excludes another entry's lock but not another writer's foreign-key check (FOR KEY SHARE), so a writer
    that does not lock the person (an import) can commit its row, which this entry then finds, instead of the two
    waiting on each other until PostgreSQL aborts one as a deadlock.
    """
    validate_enrollment_fields(scheme=scheme, months=months, unit=unit, commune=commune, agent=agent)
    participant = Participant.objects.select_for_update(no_key=True).get(pk=participant.pk)
    return _enrollment_insert(
        participant=participant,
        person_is_new=False,
        scheme=scheme,
        enrolled_on=enrolled_on,
        coverage_start=coverage_start,
        months=months,
        unit=unit,
        commune=commune,
        organisation=organisation,
        agent=agent,
        recorded_by=recorded_by,
        savepoint=True,
    )


def enrollment_record_for_person(
    *,
    si_number: str,
    full_name: str,
    date_of_birth: datetime.date,
    gender: str,
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
    """The daily entry: finds the person by SI number or creates them, brings their details up to date
    (participant_upsert's rules) and records the enrollment (enrollment_record's rules), all or nothing.

    Built for the round trips of one save. On PostgreSQL a person the database does not know yet is created with
    the enrollment and both history records in one statement (_new_person_enrollment_insert; for a known person
    that attempt writes nothing and costs one round trip). Otherwise the person's row is locked as it is read,
    a person created here has no coverage to check, and there is no savepoint. When the database refuses a write
    (another officer created the same person at the same moment, or a write path that does not lock the person
    stored an overlapping coverage), the whole transaction is rolled back and run once more, and the second run
    finds the other's rows and says so.
    """
    si_number = si_number_normalise(si_number)
    validate_enrollment_fields(scheme=scheme, months=months, unit=unit, commune=commune, agent=agent)
    person = {"si_number": si_number, "full_name": full_name, "date_of_birth": date_of_birth, "gender": gender}
    entry = {
        "scheme": scheme,
        "enrolled_on": enrolled_on,
        "coverage_start": coverage_start,
        "months": months,
        "unit": unit,
        "commune": commune,
        "organisation": organisation,
        "agent": agent,
        "recorded_by": recorded_by,
    }
    if connection.vendor == "postgresql":
        enrollment = _new_person_enrollment_insert(person=person, entry=entry)
        if enrollment is not None:
            return enrollment
    try:
        return _record_for_person_once(person=person, entry=entry)
    except (IntegrityError, OperationalError) as exc:
        # A path that writes coverage without the person's lock holds the person's key lock until it commits (the
        # foreign key check is deferred), while this entry waits on that path's row: PostgreSQL breaks the deadlock
        # by rolling one of them back. Run again: the other's row is then there to be named.
        if isinstance(exc, OperationalError) and getattr(exc.__cause__, "sqlstate", None) != DEADLOCK_DETECTED:
            raise
        return _record_for_person_once(person=person, entry=entry)


# What simple-history writes in a history record besides the tracked fields (history_id is generated).
HISTORY_OWN_FIELDS = {"history_date", "history_change_reason", "history_type", "history_user_id"}


@functools.cache
def _new_person_statement() -> tuple[str, list, list, list, list] | None:
    """The one statement of _new_person_enrollment_insert and the fields whose values it takes, in their order:
    the person's, the person's history record's own, the enrollment's (all but the person, taken from the inserted
    row), its history record's own. Every table and column comes from the models, so a field added to a model is
    written too; None when a history record has a field this statement cannot fill (the ORM path is taken then).
    Built once per process: only its values change from one entry to the next."""
    qn = connection.ops.quote_name
    history_models = {model: model.history.model for model in (Participant, Enrollment)}

    def history_part(model, source):
        tracked = {f.attname for f in model._meta.concrete_fields}
        columns, expressions, own = [], [], []
        for field in history_models[model]._meta.concrete_fields:
            if field.primary_key:
                continue
            columns.append(qn(field.column))
            if field.attname in tracked:
                expressions.append(f"{source}.{qn(field.column)}")
            else:
                expressions.append("%s")
                own.append(field)
        return ", ".join(columns), ", ".join(expressions), own

    p_fields = [f for f in Participant._meta.concrete_fields if not f.primary_key]
    person_fk = Enrollment._meta.get_field("participant")
    e_fields = [f for f in Enrollment._meta.concrete_fields if not f.primary_key and f is not person_fk]
    hp_columns, hp_expressions, hp_own = history_part(Participant, "p")
    he_columns, he_expressions, he_own = history_part(Enrollment, "e")
    if any(f.attname not in HISTORY_OWN_FIELDS for f in (*hp_own, *he_own)):
        return None
    p_columns = ", ".join(qn(f.column) for f in p_fields)
    e_columns = ", ".join(qn(f.column) for f in [person_fk, *e_fields])
    person_id, si_number = qn(Participant._meta.pk.column), qn(Participant._meta.get_field("si_number").column)
    tables = [qn(model._meta.db_table) for model in (Participant, history_models[Participant])]
    tables += [qn(model._meta.db_table) for model in (Enrollment, history_models[Enrollment])]
    sql = (
        f"WITH p AS (INSERT INTO {tables[0]} ({p_columns}) VALUES ({', '.join(['%s'] * len(p_fields))}) "  # noqa: S608 # nosec B608 - names from models
        f"ON CONFLICT ({si_number}) DO NOTHING RETURNING *), "
        f"hp AS (INSERT INTO {tables[1]} ({hp_columns}) SELECT {hp_expressions} FROM p), "
        f"e AS (INSERT INTO {tables[2]} ({e_columns}) "
        f"SELECT p.{person_id}, {', '.join(['%s'] * len(e_fields))} FROM p RETURNING *), "
        f"he AS (INSERT INTO {tables[3]} ({he_columns}) SELECT {he_expressions} FROM e) "
        f"SELECT p.{person_id}, e.{qn(Enrollment._meta.pk.column)} FROM p, e"
    )
    return sql, p_fields, hp_own, e_fields, he_own


def _history_user_id(instance) -> int | None:
    """Who simple-history names on the record of `instance`: its `_history_user`, else the request's user."""
    from simple_history.models import HistoricalRecords

    user = getattr(instance, "_history_user", None)
    if user is None:
        request = getattr(HistoricalRecords.context, "request", None)
        request_user = getattr(request, "user", None)
        user = request_user if request_user is not None and request_user.is_authenticated else None
    return user.pk if user is not None else None


def _new_person_enrollment_insert(*, person: dict, entry: dict) -> Enrollment | None:
    """PostgreSQL: creates a person the database does not know yet, their enrollment (kind new: there is no earlier
    coverage) and the history record of each, as Participant.save, Enrollment.save and simple-history would write
    them, in one statement: a daily entry is mostly a new person, and four INSERTs plus a read and a transaction's
    two ends cost the save seven round trips. Returns None, having written nothing, when the SI number is taken
    (ON CONFLICT DO NOTHING; an officer creating the same person at the same moment is waited for): the caller then
    takes the locked path. No model signal is sent: the project has no receiver on these models' saves besides
    simple-history's, whose records this statement writes, and the audit trail's receiver of simple-history's own
    signals records changes and deletions, not creations. The enrollments_changed signal is sent, as for every
    entry."""
    statement = _new_person_statement()
    if statement is None or not getattr(settings, "SIMPLE_HISTORY_ENABLED", True):
        return None  # the ORM path, whose saves do what simple-history's settings say
    sql, p_fields, hp_own, e_fields, he_own = statement
    validate_dates(scheme=entry["scheme"], date_of_birth=person["date_of_birth"], enrolled_on=entry["enrolled_on"])
    agent = entry["agent"]
    participant = Participant(
        si_number=person["si_number"],
        full_name=person["full_name"].strip(),
        date_of_birth=person["date_of_birth"],
        gender=person["gender"],
        commune=entry["commune"],
    )
    enrollment = Enrollment(
        participant=participant,
        scheme=entry["scheme"],
        kind=EnrollmentKind.NEW,
        enrolled_on=entry["enrolled_on"],
        coverage_start=entry["coverage_start"],
        coverage_end=add_months(entry["coverage_start"], entry["months"]),
        months=entry["months"],
        unit=entry["unit"],
        commune=entry["commune"],
        organisation=entry["organisation"] or (agent.organisation if agent else None),
        agent=agent,
        recorded_by=entry["recorded_by"],
    )
    if entry["recorded_by"] is not None:
        enrollment._history_user = entry["recorded_by"]
    now = timezone.now()
    params = []
    for instance, fields, own in ((participant, p_fields, hp_own), (enrollment, e_fields, he_own)):
        # The values Model.save() would INSERT (auto_now fields set on the instance, as save does) ...
        params += [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
        # ... and those of simple-history's record of the creation.
        history = {
            "history_date": now,
            "history_change_reason": None,
            "history_type": "+",
            "history_user_id": _history_user_id(instance),
        }
        params += [f.get_db_prep_save(history[f.attname], connection) for f in own]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    participant.pk, enrollment.pk = row
    enrollment.participant = participant
    for instance in (participant, enrollment):
        instance._state.adding, instance._state.db = False, connection.alias
    enrollments_changed_on_commit(
        unit_ids={entry["unit"].pk},
        days={entry["enrolled_on"]},
        schemes={entry["scheme"]},
        coverage_since=entry["coverage_start"],
    )
    return enrollment


@transaction.atomic
def _record_for_person_once(*, person: dict, entry: dict) -> Enrollment:
    participant = Participant.objects.select_for_update(no_key=True).filter(si_number=person["si_number"]).first()
    person_is_new = participant is None
    if person_is_new:
        # No savepoint: a clash on the SI number rolls this whole transaction back, and the caller runs it again.
        participant = Participant.objects.create(
            si_number=person["si_number"],
            full_name=person["full_name"].strip(),
            date_of_birth=person["date_of_birth"],
            gender=person["gender"],
            commune=entry["commune"],
        )
    else:
        _participant_bring_up_to_date(participant, commune=entry["commune"], **person)
    return _enrollment_insert(participant=participant, person_is_new=person_is_new, savepoint=False, **entry)


@transaction.atomic
def enrollment_update(
    *,
    enrollment: Enrollment,
    scheme: str,
    enrolled_on: datetime.date,
    coverage_start: datetime.date,
    months: int,
    unit,
    commune,
    organisation=None,
    agent=None,
    changed_by=None,
) -> Enrollment:
    """Changes one enrollment through the same rules as a new one; kinds of the person's other rows follow."""
    validate_enrollment_fields(scheme=scheme, months=months, unit=unit, commune=commune, agent=agent)
    participant = Participant.objects.select_for_update(no_key=True).get(pk=enrollment.participant_id)
    enrollment = Enrollment.objects.select_for_update().get(pk=enrollment.pk)
    validate_dates(scheme=scheme, date_of_birth=participant.date_of_birth, enrolled_on=enrolled_on)
    old = {
        "unit": enrollment.unit_id,
        "day": enrollment.enrolled_on,
        "scheme": enrollment.scheme,
        "start": enrollment.coverage_start,
    }
    coverage_end = add_months(coverage_start, months)
    existing = overlapping_enrollment(
        participant=participant,
        scheme=scheme,
        coverage_start=coverage_start,
        coverage_end=coverage_end,
        exclude_pk=enrollment.pk,
    )
    if existing is not None:
        raise duplicate_error(participant=participant, existing=existing)
    previous_end = _previous_end(
        participant=participant, scheme=scheme, coverage_start=coverage_start, exclude_pk=enrollment.pk
    )
    enrollment.scheme = scheme
    enrollment.kind = derive_kind(previous_end=previous_end, coverage_start=coverage_start)
    enrollment.enrolled_on = enrolled_on
    enrollment.coverage_start = coverage_start
    enrollment.coverage_end = coverage_end
    enrollment.months = months
    enrollment.unit = unit
    enrollment.commune = commune
    enrollment.agent = agent
    enrollment.organisation = organisation or (agent.organisation if agent else None)
    if changed_by is not None:
        enrollment._history_user = changed_by
    _save_or_refuse_overlap(enrollment)
    rederived: set = set()
    for each_scheme in {scheme, old["scheme"]}:
        rederived |= enrollment_kinds_rederive(participant=participant, scheme=each_scheme)
    enrollment.refresh_from_db(fields=["kind"])
    enrollments_changed_on_commit(
        unit_ids={old["unit"], unit.pk} | {u for u, _day in rederived},
        days={old["day"], enrolled_on} | {day for _u, day in rederived},
        schemes={old["scheme"], scheme},
        coverage_since=min(old["start"], coverage_start),
    )
    return enrollment


@transaction.atomic
def enrollment_delete(*, enrollment: Enrollment, deleted_by=None) -> None:
    """Deletes one enrollment (the history keeps it) and re-derives the kinds of the person's later rows."""
    participant = Participant.objects.select_for_update(no_key=True).get(pk=enrollment.participant_id)
    enrollment = Enrollment.objects.select_for_update().get(pk=enrollment.pk)
    unit_id, day, scheme, start = (
        enrollment.unit_id,
        enrollment.enrolled_on,
        enrollment.scheme,
        enrollment.coverage_start,
    )
    if deleted_by is not None:
        enrollment._history_user = deleted_by
    enrollment.delete()
    rederived = enrollment_kinds_rederive(participant=participant, scheme=scheme)
    enrollments_changed_on_commit(
        unit_ids={unit_id} | {u for u, _day in rederived},
        days={day} | {d for _u, d in rederived},
        schemes={scheme},
        coverage_since=start,
    )
