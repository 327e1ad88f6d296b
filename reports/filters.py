import django_filters
from django.utils.translation import gettext_lazy as _

from participants.models import Scheme
from reports.models import AttainmentTotal


class RankingFilter(django_filters.FilterSet):
    scheme = django_filters.ChoiceFilter(label=_("Scheme"), choices=Scheme.choices, empty_label=_("All schemes"))
    on_track = django_filters.ChoiceFilter(
        label=_("Progress"),
        choices=(("yes", _("On track")), ("no", _("Behind"))),
        empty_label=_("All"),
        method="filter_on_track",
    )
    unit_name = django_filters.CharFilter(label=_("Unit name"), field_name="unit__name", lookup_expr="icontains")

    class Meta:
        model = AttainmentTotal
        fields = ["scheme", "on_track", "unit_name"]

    def filter_on_track(self, queryset, name, value):
        return queryset.filter(on_track=(value == "yes"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.form.fields.values():
            css = "form-select form-select-sm" if hasattr(field, "choices") else "form-control form-control-sm"
            field.widget.attrs.setdefault("class", css)
