import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.ChoiceFilter(label=_("Action"), choices=AuditEvent.Action.choices)
    username = django_filters.CharFilter(label=_("User"), lookup_expr="icontains", max_length=150)
    ip = django_filters.CharFilter(label=_("IP address"), lookup_expr="startswith", max_length=45)
    object_type = django_filters.CharFilter(label=_("Object type"), lookup_expr="icontains", max_length=100)
    object_id = django_filters.CharFilter(label=_("Object id"), max_length=64)
    date_from = django_filters.DateFilter(
        label=_("From"), field_name="at", lookup_expr="date__gte", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = django_filters.DateFilter(
        label=_("To"), field_name="at", lookup_expr="date__lte", widget=forms.DateInput(attrs={"type": "date"})
    )

    class Meta:
        model = AuditEvent
        fields = ["action", "username", "ip", "object_type", "object_id", "date_from", "date_to"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.form.fields.values():
            css = (
                "form-select form-select-sm"
                if isinstance(field.widget, forms.Select)
                else "form-control form-control-sm"
            )
            field.widget.attrs.setdefault("class", css)
