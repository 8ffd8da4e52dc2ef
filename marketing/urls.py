from django.urls import include, path

from marketing import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("settings/", views.settings_home, name="settings_home"),
    path("settings/audit-log/", views.audit_log, name="audit_log"),
    path("", include("marketing.urls_pages")),
    path("automation/", include("marketing.workflows.urls")),
]
