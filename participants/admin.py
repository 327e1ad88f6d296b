from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from participants.models import CollectionAgent, CollectionOrganisation, Enrollment, Participant


@admin.register(CollectionOrganisation)
class CollectionOrganisationAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "province", "unit", "is_active"]
    list_filter = ["kind", "is_active", "province"]
    search_fields = ["code", "name"]
    raw_id_fields = ["unit"]


@admin.register(CollectionAgent)
class CollectionAgentAdmin(admin.ModelAdmin):
    list_display = ["code", "full_name", "organisation", "is_active"]
    list_filter = ["is_active", "organisation__province"]
    search_fields = ["code", "full_name"]
    raw_id_fields = ["organisation"]


@admin.register(Participant)
class ParticipantAdmin(SimpleHistoryAdmin):
    list_display = ["si_number", "full_name", "date_of_birth", "gender", "occupation"]
    list_filter = ["gender", "occupation", "income_bracket"]
    search_fields = ["si_number", "full_name"]
    raw_id_fields = ["commune"]


@admin.register(Enrollment)
class EnrollmentAdmin(SimpleHistoryAdmin):
    list_display = ["participant", "scheme", "kind", "enrolled_on", "coverage_start", "months", "unit"]
    list_filter = ["scheme", "kind", "unit__province"]
    search_fields = ["participant__si_number", "participant__full_name", "unit__name"]
    date_hierarchy = "enrolled_on"
    list_select_related = ["participant", "unit"]
    raw_id_fields = ["participant", "unit", "commune", "organisation", "agent", "recorded_by"]
    readonly_fields = ["kind", "coverage_end"]
