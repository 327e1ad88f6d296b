"""The entry form (one enrollment per submit) and the upload form."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.forms.models import ModelChoiceIterator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from districts.models import Commune
from districts.scoping import scope_of, visible_communes, visible_provinces, visible_units
from participants.models import (
    ALLOWED_MONTHS,
    CollectionAgent,
    CollectionOrganisation,
    Participant,
    Scheme,
)
from participants.services import si_number_normalise, validate_dates, validate_enrollment_fields

DATE_INPUT_FORMATS = ["%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d"]
MONTH_CHOICES = [(m, str(m)) for m in sorted({m for months in ALLOWED_MONTHS.values() for m in months})]


class DateInput(forms.DateInput):
    """A text box for DD/MM/YYYY: typing eight digits is faster than any date picker."""

    def __init__(self, **attrs):
        super().__init__(
            format="%d/%m/%Y",
            attrs={"placeholder": "dd/mm/yyyy", "inputmode": "numeric", "autocomplete": "off", **attrs},
        )


def collection_agents_for(user, unit=None):
    qs = CollectionAgent.objects.filter(is_active=True, organisation__province__in=visible_provinces(user))
    units = visible_units(user)
    qs = qs.filter(Q(organisation__unit__isnull=True) | Q(organisation__unit__in=units))
    if unit is not None:
        qs = qs.filter(Q(organisation__unit__isnull=True) | Q(organisation__unit=unit))
    return qs.select_related("organisation")


def collection_organisations_for(user, unit=None):
    qs = CollectionOrganisation.objects.filter(is_active=True, province__in=visible_provinces(user))
    qs = qs.filter(Q(unit__isnull=True) | Q(unit__in=visible_units(user)))
    if unit is not None:
        qs = qs.filter(Q(unit__isnull=True) | Q(unit=unit))
    return qs


class _LazyChoiceIterator(ModelChoiceIterator):
    """The options of a LazyChoiceField: its queryset is asked for when the options are drawn, not before."""

    def __init__(self, field):
        self.field = field

    @property
    def queryset(self):
        return self.field.queryset


class LazyChoiceField(forms.ModelChoiceField):
    """A ModelChoiceField whose queryset is built by `build_queryset` (set by the form) the first time it is used:
    drawing the options or cleaning a chosen value. A submitted entry that leaves the field empty never builds it:
    every queryset built costs the save its ORM work even when it is never run."""

    iterator = _LazyChoiceIterator
    build_queryset = None

    def __init__(self, **kwargs):
        super().__init__(queryset=None, **kwargs)

    def __deepcopy__(self, memo):
        # Not ModelChoiceField's: it copies the class field's queryset into each form's copy.
        result = super(forms.ChoiceField, self).__deepcopy__(memo)
        result.widget.choices = result.choices  # the options of this copy, not of the class's field
        return result

    def _get_queryset(self):
        if self.build_queryset is not None:
            build, self.build_queryset = self.build_queryset, None
            self._queryset = build().all()
        return self._queryset

    def _set_queryset(self, queryset):
        self.build_queryset = None
        super()._set_queryset(queryset)

    queryset = property(_get_queryset, _set_queryset)


class LookedUpChoiceField(LazyChoiceField):
    """A lazy choice field that takes the instance the form already looked up for the same value from the same rows,
    instead of asking the database a second time."""

    looked_up = None

    def to_python(self, value):
        if self.looked_up is not None and value not in self.empty_values and str(value) == str(self.looked_up.pk):
            return self.looked_up
        return super().to_python(value)


class EnrollmentForm(forms.Form):
    """One enrollment and the person it is for. The unit is the officer's; a province-wide officer picks it first."""

    unit = LookedUpChoiceField(label=_("Unit"), required=False, empty_label=_("Choose a unit"))
    si_number = forms.CharField(
        label=_("SI number"),
        max_length=40,
        help_text=_("10 digits; spaces and dots are ignored."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "autofocus": True}),
    )
    full_name = forms.CharField(
        label=_("Full name"), max_length=120, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    date_of_birth = forms.DateField(label=_("Date of birth"), input_formats=DATE_INPUT_FORMATS, widget=DateInput())
    gender = forms.ChoiceField(label=_("Gender"), choices=Participant.Gender.choices)
    commune = LazyChoiceField(label=_("Commune"), empty_label=_("Choose a commune"))
    scheme = forms.ChoiceField(label=_("Scheme"), choices=Scheme.choices, initial=Scheme.VSI)
    enrolled_on = forms.DateField(label=_("Date recorded"), input_formats=DATE_INPUT_FORMATS, widget=DateInput())
    coverage_start = forms.DateField(label=_("Coverage start"), input_formats=DATE_INPUT_FORMATS, widget=DateInput())
    months = forms.TypedChoiceField(label=_("Months paid"), choices=MONTH_CHOICES, coerce=int, initial=12)
    organisation = LazyChoiceField(label=_("Collection organisation"), required=False, empty_label=_("None"))
    agent = LazyChoiceField(label=_("Collection agent"), required=False, empty_label=_("None"))

    error_messages = {
        "invalid_date": _("Write the date as DD/MM/YYYY, for example 31/03/2024."),
    }

    def __init__(self, *args, user, enrollment=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.enrollment = enrollment
        today = timezone.localdate()
        self.fields["enrolled_on"].initial = today
        self.fields["coverage_start"].initial = today
        for name in ("date_of_birth", "enrolled_on", "coverage_start"):
            self.fields[name].error_messages["invalid"] = self.error_messages["invalid_date"]
        scope = scope_of(user)
        self.fixed_unit = scope.unit if scope is not None and scope.unit_id else None
        if self.fixed_unit is not None:
            del self.fields["unit"]
        else:
            self.fields["unit"].build_queryset = lambda: visible_units(user).current()
            self.fields["unit"].required = True
            self.fields["unit"].widget.attrs.update({"autofocus": True})
            self.fields["si_number"].widget.attrs.pop("autofocus", None)
        unit = self.selected_unit()
        if self.fixed_unit is None and unit is not None and unit.ceased_on is None:
            # selected_unit() read it from the user's units; the field's choices are the current ones among them.
            self.fields["unit"].looked_up = unit
        # Built when first used (options drawn, a value cleaned): a save that leaves a field empty never builds it.
        self.fields["commune"].build_queryset = lambda: (
            visible_communes(user).filter(pk__in=unit.served_communes()).current()
            if unit is not None
            else Commune.objects.none()
        )
        self.fields["agent"].build_queryset = lambda: collection_agents_for(user, unit)
        self.fields["organisation"].build_queryset = lambda: collection_organisations_for(user, unit)
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
        # The drop-down offers only the months the chosen scheme allows (static/js/forms.js); clean() checks them.
        self.fields["months"].widget.attrs.update(
            {
                "data-months-by-scheme": json.dumps({str(s): list(m) for s, m in ALLOWED_MONTHS.items()}),
                "data-scheme-field": self.add_prefix("scheme"),
            }
        )
        if enrollment is not None:
            self.fields["si_number"].disabled = True
            self.fields["si_number"].widget.attrs.pop("autofocus", None)

    def _post_clean(self):
        super()._post_clean()
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["class"] += " is-invalid"
                self.fields[name].widget.attrs["aria-describedby"] = f"{self[name].auto_id}_error"

    def selected_unit(self):
        if self.fixed_unit is not None:
            return self.fixed_unit
        raw = self.data.get(self.add_prefix("unit")) if self.is_bound else self.initial.get("unit")
        if hasattr(raw, "pk"):
            raw = raw.pk
        if not raw:
            return None
        try:
            return visible_units(self.user).get(pk=int(raw))
        except (ValueError, TypeError, visible_units(self.user).model.DoesNotExist):
            return None

    def clean_si_number(self):
        if self.enrollment is not None:
            return self.enrollment.participant.si_number
        return si_number_normalise(self.cleaned_data["si_number"])

    def clean_full_name(self):
        name = " ".join(self.cleaned_data["full_name"].split())
        if not name:
            raise ValidationError(_("Enter the full name."))
        return name

    def clean(self):
        data = super().clean()
        unit = self.fixed_unit or data.get("unit")
        scheme, months = data.get("scheme"), data.get("months")
        try:
            validate_dates(scheme=scheme, date_of_birth=data.get("date_of_birth"), enrolled_on=data.get("enrolled_on"))
        except ValidationError as exc:
            for field, errors in exc.error_dict.items():
                if field not in self.errors:
                    self.add_error(field, errors)
        if scheme and months is not None and unit is not None:
            try:
                validate_enrollment_fields(
                    scheme=scheme, months=months, unit=unit, commune=data.get("commune"), agent=data.get("agent")
                )
            except ValidationError as exc:
                for field, errors in exc.error_dict.items():
                    self.add_error(field if field in self.fields else None, errors)
        agent, organisation = data.get("agent"), data.get("organisation")
        if agent and organisation and agent.organisation_id != organisation.pk:
            self.add_error("agent", _("This collection agent works for another organisation."))
        data["unit_obj"] = unit
        return data


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("List of enrollments (CSV or XLSX)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.MAX_UPLOAD_BYTES:
            raise ValidationError(
                _("The file is too large (%(size)s MB); the limit is %(limit)s MB.")
                % {"size": round(upload.size / 1048576, 1), "limit": round(settings.MAX_UPLOAD_BYTES / 1048576, 1)}
            )
        if not upload.name.lower().endswith((".csv", ".xlsx")):
            raise ValidationError(_("Upload a .csv or .xlsx file."))
        return upload
