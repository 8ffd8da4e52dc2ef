"""Marketing's marketer pages: the workspace (dashboard, settings, audit log), event history
and types (under /automation/), orders and the RFM grid, and the workflows (under
/automation/). The APIs are in marketing.api.urls."""

from django.urls import include, path

from marketing.views import activity, events_orders, workflow_button, workflows, workspace

# Mounted at /automation/; /automation/events/ and /automation/event-types/ are event pages.
workflow_urlpatterns = [
    path("", workflows.workflow_list, name="automation_home"),
    path("workflows/<int:pk>/", workflows.workflow_detail, name="workflow_detail"),
    path(
        "workflows/event-type/",
        workflows.workflow_event_type_picker,
        name="workflow_event_type_picker",
    ),
    path("workflows/param-row/", workflows.workflow_param_row, name="workflow_param_row"),
    path("workflows/contact-row/", workflows.workflow_contact_row, name="workflow_contact_row"),
    path("workflows/<int:pk>/settings/", workflows.workflow_settings, name="workflow_settings"),
    path("workflows/<int:pk>/steps/add/", workflows.workflow_step_add, name="workflow_step_add"),
    path(
        "workflows/<int:pk>/steps/<str:step_id>/",
        workflows.workflow_step_save,
        name="workflow_step_save",
    ),
    path(
        "workflows/<int:pk>/steps/<str:step_id>/delete/",
        workflows.workflow_step_delete,
        name="workflow_step_delete",
    ),
    path("workflows/<int:pk>/activate/", workflows.workflow_activate, name="workflow_activate"),
    path("workflows/<int:pk>/pause/", workflows.workflow_pause, name="workflow_pause"),
    path("workflows/<int:pk>/delete/", workflows.workflow_delete, name="workflow_delete"),
    path("workflows/<int:pk>/simulate/", workflows.workflow_simulate, name="workflow_simulate"),
    path("workflows/<int:pk>/runs/", workflows.workflow_runs, name="workflow_runs"),
    path("runs/<int:pk>/", workflows.workflow_run_detail, name="workflow_run_detail"),
]

urlpatterns = [
    path("", workspace.dashboard, name="dashboard"),
    path("settings/", workspace.settings_home, name="settings_home"),
    path("settings/audit-log/", workspace.audit_log, name="audit_log"),
    path("settings/frequency-caps/", workspace.frequency_caps, name="frequency_caps"),
    path("automation/events/", events_orders.event_history, name="event_history"),
    path(
        "automation/events/analytics/",
        events_orders.event_analytics_page,
        name="event_analytics",
    ),
    path("automation/events/<int:pk>/", events_orders.event_detail, name="event_detail"),
    path("automation/events/<int:pk>/delete/", events_orders.event_delete, name="event_delete"),
    path("automation/event-types/", events_orders.event_types, name="event_types"),
    path(
        "automation/event-types/<int:pk>/",
        events_orders.event_type_edit,
        name="event_type_edit",
    ),
    path(
        "automation/event-types/<int:pk>/declaration/",
        events_orders.event_type_detail,
        name="event_type_detail",
    ),
    path(
        "contacts/<int:pk>/activity/",
        activity.contact_activity_page,
        name="contact_activity",
    ),
    path("orders/", events_orders.order_list, name="orders_home"),
    path("orders/rfm/", events_orders.rfm_grid, name="rfm_grid"),
    path("orders/rfm/recompute/", events_orders.rfm_recompute, name="rfm_recompute"),
    path("orders/rfm/segment/", events_orders.rfm_segment, name="rfm_segment"),
    path("orders/<int:pk>/", events_orders.order_detail, name="order_detail"),
    path("automation/", include(workflow_urlpatterns)),
    # A workflow's public button link (no login; signed per contact).
    path("w/<str:key>/", workflow_button.workflow_button, name="workflow_button"),
]
