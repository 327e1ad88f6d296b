from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("", views.province_overview, name="province_overview"),
    path("runs/<int:pk>/", views.run_progress, name="run_progress"),
    path("<slug:slug>/", views.campaign_dashboard, name="campaign_dashboard"),
    path("<slug:slug>/recompute/", views.recompute_start, name="recompute_start"),
    path("<slug:slug>/units/<str:code>/", views.unit_detail, name="unit_detail"),
]
