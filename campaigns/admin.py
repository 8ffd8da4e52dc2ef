"""Admin for campaigns, runs and the delivery ledger. Status changes go through the lifecycle
services (actions), never through the change form: status fields are read-only here."""

from django.contrib import admin, messages

from campaigns import lifecycle
from campaigns.models import (
    Campaign,
    CampaignRun,
    CampaignStep,
    Delivery,
    DeliveryEvent,
    FrequencyCap,
    RunStats,
    SendRequest,
)


class CampaignStepInline(admin.TabularInline):
    model = CampaignStep
    extra = 0
    raw_id_fields = ["template"]


def _act(modeladmin, request, queryset, service, verb: str) -> None:
    done = 0
    for campaign in queryset:
        try:
            service(campaign=campaign)
            done += 1
        except (lifecycle.IllegalTransition, lifecycle.LaunchRefused) as exc:
            modeladmin.message_user(request, f"{campaign}: {exc}", messages.WARNING)
    if done:
        modeladmin.message_user(request, f"{verb} {done} campaign(s).", messages.SUCCESS)


@admin.action(description="Pause selected campaigns")
def pause(modeladmin, request, queryset):
    _act(modeladmin, request, queryset, lifecycle.campaign_pause, "Paused")


@admin.action(description="Resume selected campaigns")
def resume(modeladmin, request, queryset):
    _act(modeladmin, request, queryset, lifecycle.campaign_resume, "Resumed")


@admin.action(description="Cancel selected campaigns")
def cancel(modeladmin, request, queryset):
    _act(modeladmin, request, queryset, lifecycle.campaign_cancel, "Cancelled")


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "status", "start_at", "end_at", "created_at", "deleted_at"]
    list_filter = ["status", "type"]
    search_fields = ["name"]
    raw_id_fields = ["segment", "template", "created_by"]
    readonly_fields = [
        "status",
        "status_reason",
        "periodic_task",
        "created_at",
        "updated_at",
        "deleted_at",
    ]
    inlines = [CampaignStepInline]
    actions = [pause, resume, cancel]


class RunStatsInline(admin.TabularInline):
    model = RunStats
    extra = 0
    can_delete = False
    readonly_fields = [
        "channel",
        "recipients",
        "sends",
        "deliveries",
        "opens",
        "unique_opens",
        "clicks",
        "unique_clicks",
        "bounces",
        "complaints",
        "unsubscribes",
        "failures",
        "skipped",
        "updated_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CampaignRun)
class CampaignRunAdmin(admin.ModelAdmin):
    list_display = ["campaign", "number", "status", "reach", "started_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["campaign__name"]
    list_select_related = ["campaign"]
    readonly_fields = [
        "campaign",
        "number",
        "status",
        "status_reason",
        "template_version",
        "reach",
        "started_at",
        "finished_at",
    ]
    inlines = [RunStatsInline]

    def has_add_permission(self, request) -> bool:
        return False


class DeliveryEventInline(admin.TabularInline):
    model = DeliveryEvent
    extra = 0
    can_delete = False
    readonly_fields = ["status", "at", "detail", "url"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["locator", "channel", "status", "run", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "channel"]
    search_fields = ["locator", "=request_id", "=message_id"]
    raw_id_fields = ["send_request", "run", "contact", "template_version"]
    readonly_fields = ["request_id", "message_id", "provider_message_id", "claimed_at"]
    inlines = [DeliveryEventInline]
    # The ledger holds millions of rows: no exact count on every page view.
    show_full_result_count = False
    list_select_related = ["run__campaign"]


@admin.register(SendRequest)
class SendRequestAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "external_request_id", "created_at"]
    list_filter = ["kind"]
    search_fields = ["=external_request_id"]
    raw_id_fields = ["template_version", "api_key"]


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(admin.ModelAdmin):
    list_display = ["delivery", "status", "at"]
    list_filter = ["status"]
    raw_id_fields = ["delivery"]
    show_full_result_count = False


@admin.register(FrequencyCap)
class FrequencyCapAdmin(admin.ModelAdmin):
    """The organisation's frequency caps (also on the settings page and the API)."""

    list_display = ["channel", "limit", "period_days", "updated_at"]
