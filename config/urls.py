from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from districts import views as district_views

urlpatterns = [
    path("", district_views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("accounts.urls")),
    path("audit/", include("audit.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("units/", include("districts.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("enrollments/", include("participants.urls")),
    path("reports/", include("reports.urls")),
    path("api/v1/", include("reports.api_urls")),
]
