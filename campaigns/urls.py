from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="campaign_list"),
    path("new/", views.campaign_create, name="campaign_create"),
    path("<slug:slug>/", views.campaign_detail, name="campaign_detail"),
    path("<slug:slug>/edit/", views.campaign_edit, name="campaign_edit"),
    path("<slug:slug>/targets/", views.campaign_targets, name="campaign_targets"),
    path(
        "<slug:slug>/targets/template.xlsx",
        views.template_download,
        {"fmt": "xlsx"},
        name="target_template_xlsx",
    ),
    path("<slug:slug>/targets/template.csv", views.template_download, {"fmt": "csv"}, name="target_template_csv"),
    path("<slug:slug>/targets/import/", views.target_import, name="target_import"),
    path("<slug:slug>/targets/import/<int:pk>/", views.target_import_preview, name="target_import_preview"),
    path("<slug:slug>/targets/import/<int:pk>/cancel/", views.target_import_cancel, name="target_import_cancel"),
]
