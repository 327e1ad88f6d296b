from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from campaigns.models import Campaign, Target


class TargetInline(admin.TabularInline):
    model = Target
    extra = 0
    raw_id_fields = ["unit"]


@admin.register(Campaign)
class CampaignAdmin(SimpleHistoryAdmin):
    list_display = ["name", "province", "start_date", "end_date", "status", "measure"]
    list_filter = ["status", "measure", "province"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    date_hierarchy = "start_date"
    inlines = [TargetInline]


@admin.register(Target)
class TargetAdmin(SimpleHistoryAdmin):
    list_display = ["campaign", "unit", "scheme", "value"]
    list_filter = ["scheme", "campaign__province", "campaign"]
    search_fields = ["campaign__name", "unit__name", "unit__code"]
    list_select_related = ["campaign", "unit"]
    raw_id_fields = ["unit"]
