"""Filters of the enrollment table; every choice list is limited to what the user may see."""

import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from districts.scoping import scope_of, visible_communes, visible_provinces, visible_units
from participants.forms import DATE_INPUT_FORMATS, DateInput
from participants.models import CollectionAgent, Enrollment, EnrollmentKind, Scheme
from participants.selectors import enrollment_recorders


def _communes(request):
    return visible_communes(request.user).select_related("district")


def _units(request):
    return visible_units(request.user)


def _agents(request):
    user = request.user
    return CollectionAgent.objects.filter(organisation__province__in=visible_provinces(user)).filter(
        Q(organisation__unit__isnull=True) | Q(organisation__unit__in=visible_units(user))
    )


def _recorders(request):
    return enrollment_recorders(user=request.user)


class EnrollmentFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("SI number or name"), method="filter_q")
    enrolled_from = django_filters.DateFilter(
        field_name="enrolled_on",
        lookup_expr="gte",
        label=_("Recorded from"),
        input_formats=DATE_INPUT_FORMATS,
        widget=DateInput(),
    )
    enrolled_to = django_filters.DateFilter(
        field_name="enrolled_on",
        lookup_expr="lte",
        label=_("Recorded until"),
        input_formats=DATE_INPUT_FORMATS,
        widget=DateInput(),
    )
    unit = django_filters.ModelChoiceFilter(queryset=_units, label=_("Unit"))
    commune = django_filters.ModelChoiceFilter(queryset=_communes, label=_("Commune"))
    scheme = django_filters.ChoiceFilter(choices=Scheme.choices, label=_("Scheme"))
    kind = django_filters.ChoiceFilter(choices=EnrollmentKind.choices, label=_("Kind"))
    agent = django_filters.ModelChoiceFilter(queryset=_agents, label=_("Collection agent"))
    recorded_by = django_filters.ModelChoiceFilter(queryset=_recorders, label=_("Recorded by"))

    class Meta:
        model = Enrollment
        fields = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        scope = scope_of(self.request.user) if self.request is not None else None
        if scope is not None and scope.unit_id:
            self.filters.pop("unit")  # one unit: nothing to choose
        for f in self.form.fields.values():
            css = "form-select form-select-sm" if isinstance(f.widget, forms.Select) else "form-control form-control-sm"
            f.widget.attrs.setdefault("class", css)

    def filter_q(self, queryset, name, value):
        value = value.strip()
        digits = "".join(ch for ch in value if ch.isdigit())
        if digits and len(digits) == len(value.replace(" ", "").replace(".", "")):
            return queryset.filter(participant__si_number__startswith=digits)
        return queryset.filter(participant__full_name__icontains=value)
