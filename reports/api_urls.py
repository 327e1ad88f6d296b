from django.urls import path

from reports import api

app_name = "api"

urlpatterns = [
    path("campaigns/", api.campaign_list, name="campaign_list"),
    path("campaigns/<slug:slug>/attainment/", api.campaign_attainment, name="campaign_attainment"),
    path("openapi.json", api.openapi, name="openapi"),
    path("schema/", api.openapi, name="schema"),
]
