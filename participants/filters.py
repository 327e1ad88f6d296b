"""Filters of the enrollment table; every choice list is limited to what the user may see.

The "SI number or name" search never travels in an address: the filter form is POSTed, the term is kept in the
session under a short random token, and the list's address (and so its sorting, paging and export links, which
repeat the query string) carries only `s=<token>` with the other, non-personal filters.
"""

import secrets

import django_filters
from django import forms
from django.db.models import Q
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _

from districts.scoping import scope_of, visible_communes, visible_provinces, visible_units
from participants.forms import DATE_INPUT_FORMATS, DateInput
from participants.models import GROWTH_KINDS, CollectionAgent, Enrollment, EnrollmentKind, Scheme
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


# The kind filter's choice "new or resumed", the kinds a campaign's figures count: the lists linked from them use it.
KIND_GROWTH = "growth"

SEARCH_PARAM = "s"
SEARCHES_SESSION_KEY = "enrollment_searches"
MAX_SEARCHES = 20


def search_redirect(request):
    """The answer to the POSTed filter form: the search term into the session, a redirect to an address without it."""
    query = request.POST.copy()
    for name in ("csrfmiddlewaretoken", "page", SEARCH_PARAM, "_export"):
        query.pop(name, None)
    term = (query.pop("q", None) or [""])[-1].strip()
    if term:
        token = secrets.token_urlsafe(6)
        searches = {**request.session.get(SEARCHES_SESSION_KEY, {}), token: term}
        request.session[SEARCHES_SESSION_KEY] = dict(list(searches.items())[-MAX_SEARCHES:])
        query[SEARCH_PARAM] = token
    for name in [name for name, values in query.lists() if not any(values)]:
        del query[name]
    return redirect(f"{request.path}?{query.urlencode()}" if query else request.path)


def _with_search_term(data, request):
    """`data` with the term its search token stands for in this session (an unknown token searches nothing)."""
    token = data.get(SEARCH_PARAM) if data is not None else None
    if not token or data.get("q") or request is None:
        return data
    term = request.session.get(SEARCHES_SESSION_KEY, {}).get(token)
    if not term:
        return data
    data = data.copy()
    data["q"] = term
    return data


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
    covered_on = django_filters.DateFilter(
        label=_("Covered on"),
        method="filter_covered_on",
        input_formats=DATE_INPUT_FORMATS,
        widget=DateInput(),
    )
    unit = django_filters.ModelChoiceFilter(queryset=_units, label=_("Unit"))
    commune = django_filters.ModelChoiceFilter(queryset=_communes, label=_("Commune"))
    scheme = django_filters.ChoiceFilter(choices=Scheme.choices, label=_("Scheme"))
    kind = django_filters.ChoiceFilter(
        choices=[(KIND_GROWTH, _("New or resumed (campaign growth)")), *EnrollmentKind.choices],
        label=_("Kind"),
        method="filter_kind",
    )
    agent = django_filters.ModelChoiceFilter(queryset=_agents, label=_("Collection agent"))
    recorded_by = django_filters.ModelChoiceFilter(queryset=_recorders, label=_("Recorded by"))

    class Meta:
        model = Enrollment
        fields = ()

    def __init__(self, data=None, *args, request=None, **kwargs):
        super().__init__(_with_search_term(data, request), *args, request=request, **kwargs)
        scope = scope_of(self.request.user) if self.request is not None else None
        if scope is not None and scope.unit_id:
            self.filters.pop("unit")  # one unit: nothing to choose
        for f in self.form.fields.values():
            css = "form-select form-select-sm" if isinstance(f.widget, forms.Select) else "form-control form-control-sm"
            f.widget.attrs.setdefault("class", css)

    def filter_covered_on(self, queryset, name, value):
        """The enrollments whose coverage includes that day (coverage_end is the first day no longer covered): an
        annual plan's people on the stock."""
        return queryset.filter(coverage_start__lte=value, coverage_end__gt=value)

    def filter_kind(self, queryset, name, value):
        if value == KIND_GROWTH:
            return queryset.filter(kind__in=GROWTH_KINDS)
        return queryset.filter(kind=value)

    def filter_q(self, queryset, name, value):
        value = value.strip()
        digits = "".join(ch for ch in value if ch.isdigit())
        if digits and len(digits) == len(value.replace(" ", "").replace(".", "")):
            return queryset.filter(participant__si_number__startswith=digits)
        return queryset.filter(participant__full_name__icontains=value)
