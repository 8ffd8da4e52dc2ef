from django.contrib import admin

from marketing.workflows.models import (
    Workflow,
    WorkflowMessage,
    WorkflowRun,
    WorkflowSend,
    WorkflowVersion,
)


class WorkflowVersionInline(admin.TabularInline):
    model = WorkflowVersion
    extra = 0
    fields = ["number", "created_at"]
    readonly_fields = ["number", "created_at"]
    can_delete = False
    show_change_link = True


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "trigger_kind", "event_type", "segment", "re_entry"]
    list_filter = ["status", "trigger_kind"]
    search_fields = ["name"]
    raw_id_fields = ["event_type", "segment", "current_version", "created_by"]
    readonly_fields = ["webhook_secret", "button_key", "segment_checked_at", "date_fired_on"]
    inlines = [WorkflowVersionInline]


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(admin.ModelAdmin):
    list_display = ["workflow", "number", "created_at"]
    readonly_fields = ["workflow", "number", "graph", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False  # versions are immutable: runs depend on them


class WorkflowMessageInline(admin.TabularInline):
    model = WorkflowMessage
    extra = 0
    raw_id_fields = ["delivery"]
    readonly_fields = ["step_id", "delivery", "created_at"]


class WorkflowSendInline(admin.TabularInline):
    """The run's message steps: channel chosen, send request, the names its messages got."""

    model = WorkflowSend
    extra = 0
    fields = ["step_id", "visit", "channel", "send_request", "names", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # written by the engine only


@admin.register(WorkflowRun)
class WorkflowRunAdmin(admin.ModelAdmin):
    list_display = [
        "workflow",
        "contact",
        "status",
        "current_step",
        "exit_reason",
        "wake_at",
        "started_at",
    ]
    list_filter = ["status", "workflow"]
    raw_id_fields = ["workflow", "version", "contact", "event"]
    readonly_fields = ["path", "error", "exit_reason", "attempts", "claimed_at", "finished_at"]
    inlines = [WorkflowMessageInline, WorkflowSendInline]
