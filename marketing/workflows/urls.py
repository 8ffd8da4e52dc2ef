from django.urls import path

from marketing.workflows import views

# Mounted at /automation/ (marketing.urls); /automation/events/ belongs to the event pages.
urlpatterns = [
    path("", views.workflow_list, name="automation_home"),
    path("workflows/<int:pk>/", views.workflow_detail, name="workflow_detail"),
    path("workflows/<int:pk>/settings/", views.workflow_settings, name="workflow_settings"),
    path("workflows/<int:pk>/steps/add/", views.workflow_step_add, name="workflow_step_add"),
    path(
        "workflows/<int:pk>/steps/<str:step_id>/",
        views.workflow_step_save,
        name="workflow_step_save",
    ),
    path(
        "workflows/<int:pk>/steps/<str:step_id>/delete/",
        views.workflow_step_delete,
        name="workflow_step_delete",
    ),
    path("workflows/<int:pk>/activate/", views.workflow_activate, name="workflow_activate"),
    path("workflows/<int:pk>/pause/", views.workflow_pause, name="workflow_pause"),
    path("workflows/<int:pk>/delete/", views.workflow_delete, name="workflow_delete"),
    path("workflows/<int:pk>/simulate/", views.workflow_simulate, name="workflow_simulate"),
    path("workflows/<int:pk>/runs/", views.workflow_runs, name="workflow_runs"),
    path("runs/<int:pk>/", views.workflow_run_detail, name="workflow_run_detail"),
]
