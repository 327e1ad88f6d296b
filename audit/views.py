from django.core.exceptions import PermissionDenied
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from audit.filters import AuditEventFilter
from audit.models import AuditEvent
from audit.tables import AuditEventTable
from config.tables import TableColumnsSortMixin
from districts.scoping import ROLE_ADMIN, role_of, scope_queryset


@method_decorator(never_cache, name="dispatch")
class AuditEventListView(TableColumnsSortMixin, SingleTableMixin, FilterView):
    """The audit trail of the admin's province (everything for a superuser), newest first, with filters."""

    table_class = AuditEventTable
    filterset_class = AuditEventFilter
    template_name = "audit/event_list.html"
    # The table paginates (django-tables2); ListView's own pagination would count the rows a second time.
    table_pagination = {"per_page": 50}

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            from django.contrib.auth.views import redirect_to_login

            return redirect_to_login(request.get_full_path())
        if role_of(request.user) != ROLE_ADMIN:
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        return scope_queryset(AuditEvent.objects.all(), self.request.user, province_field="province")
