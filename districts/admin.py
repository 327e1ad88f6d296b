from django.contrib import admin

from districts.models import Commune, District, Province, UserScope


@admin.register(Province)
class ProvinceAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "ceased_on"]
    list_filter = ["kind"]
    search_fields = ["code", "name", "codename"]


@admin.register(District)
class DistrictAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "province", "ceased_on", "merged_into"]
    list_filter = ["kind", "province", "ceased_on"]
    search_fields = ["code", "name"]
    list_select_related = ["province", "merged_into"]
    raw_id_fields = ["merged_into"]


@admin.register(Commune)
class CommuneAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "district", "ceased_on"]
    list_filter = ["kind", "district__province"]
    search_fields = ["code", "name", "district__name"]
    list_select_related = ["district"]
    raw_id_fields = ["district"]


@admin.register(UserScope)
class UserScopeAdmin(admin.ModelAdmin):
    list_display = ["user", "province", "unit"]
    list_filter = ["province"]
    search_fields = ["user__username", "unit__name"]
    raw_id_fields = ["unit"]
