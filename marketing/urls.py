from django.contrib.auth import views as auth_views
from django.urls import include, path

from marketing import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("settings/", views.settings_home, name="settings_home"),
    path("settings/audit-log/", views.audit_log, name="audit_log"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("marketing.urls_pages")),
    path("automation/", include("marketing.workflows.urls")),
]
