from django.urls import path

from participants import views

app_name = "participants"

urlpatterns = [
    path("", views.enrollment_list, name="enrollment_list"),
    path("new/", views.enrollment_create, name="enrollment_create"),
    path("new/person/", views.participant_lookup, name="participant_lookup"),
    path("new/communes/", views.unit_communes, name="unit_communes"),
    path("<int:pk>/", views.enrollment_detail, name="enrollment_detail"),
    path("<int:pk>/edit/", views.enrollment_edit, name="enrollment_edit"),
    path("<int:pk>/delete/", views.enrollment_remove, name="enrollment_delete"),
    path("uploads/", views.enrollment_upload, name="enrollment_upload"),
    path("uploads/template.csv", views.enrollment_upload_template, name="enrollment_upload_template"),
    path("uploads/<uuid:pk>/", views.enrollment_upload_detail, name="enrollment_upload_detail"),
    path("uploads/<uuid:pk>/confirm/", views.enrollment_upload_confirm, name="enrollment_upload_confirm"),
]
