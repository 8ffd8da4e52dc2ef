"""Admin for campaigns, runs and the delivery ledger. Status changes go through the lifecycle
services (actions), never through the change form: status fields are read-only here."""

from django import forms
from django.contrib import admin, messages

from campaigns import abtest, lifecycle
from campaigns.lifecycle_input import RESERVED_KEYS
from campaigns.models import (
    ABTest,
    ABVariant,
    Campaign,
    CampaignResend,
    CampaignRun,
    CampaignStep,
    Delivery,
    DeliveryEvent,
    FrequencyCap,
    PromoCode,
    PromoPool,
    RunStats,
    SendRequest,
)
from campaigns.promo.services import promo_pool_create, promo_pool_delete, promo_pool_update
from campaigns.purge import PurgeRefused, campaign_purge
from campaigns.utm import FIELDS as UTM_FIELDS
from campaigns.utm import UtmInvalid, utm_value_check
from config.core.errors import HeraldError
from config.core.external_keys import external_key_problem


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
        except (lifecycle.IllegalTransition, lifecycle.LaunchRefused, PurgeRefused) as exc:
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


@admin.action(description="Purge selected deleted campaigns for good (runs and ledger rows too)")
def purge_for_good(modeladmin, request, queryset):
    _act(modeladmin, request, queryset, campaign_purge, "Purged")


class CampaignAdminForm(forms.ModelForm):
    """UTM values follow the campaign body's rule (campaigns.utm); the external key the
    body's too (a format, uniqueness, and no API path word)."""

    class Meta:
        model = Campaign
        # The admin adds its other fields (ModelAdmin.get_form).
        fields = ("external_key", "utm_enabled", *UTM_FIELDS.values())

    def clean(self):
        cleaned = super().clean()
        key_value = cleaned.get("external_key")
        if key_value and key_value.lower() in RESERVED_KEYS:
            self.add_error("external_key", external_key_problem(key_value, reserved=RESERVED_KEYS))
        for key, field in UTM_FIELDS.items():
            try:
                cleaned[field] = utm_value_check(cleaned.get(field), f"utm.{key}")
            except UtmInvalid as exc:
                self.add_error(field, exc.message)
        return cleaned


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignAdminForm
    list_display = [
        "name",
        "external_key",
        "type",
        "status",
        "start_at",
        "end_at",
        "created_at",
        "deleted_at",
    ]
    list_filter = ["status", "type"]
    search_fields = ["name", "=external_key"]
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
    actions = [pause, resume, cancel, purge_for_good]


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
        "machine_opens",
        "machine_clicks",
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
    list_display = ["campaign", "number", "kind", "status", "reach", "started_at", "finished_at"]
    list_filter = ["status", "kind"]
    search_fields = ["campaign__name"]
    list_select_related = ["campaign"]
    readonly_fields = [
        "campaign",
        "number",
        "kind",
        "parent",
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
    readonly_fields = ["status", "at", "machine", "detail", "url"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["locator", "channel", "status", "run", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "channel"]
    search_fields = ["locator", "=request_id", "=message_id"]
    raw_id_fields = ["send_request", "run", "contact", "template_version"]
    # Machine opens and clicks are counted by the tracking endpoints (campaigns.engagement).
    readonly_fields = [
        "request_id",
        "message_id",
        "provider_message_id",
        "claimed_at",
        "machine_open_count",
        "machine_click_count",
    ]
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
    list_display = ["delivery", "status", "machine", "at"]
    list_filter = ["status", "machine"]
    raw_id_fields = ["delivery"]
    show_full_result_count = False


# --- A/B tests and resends: set up on the campaign's page or through the API (the lifecycle
# checks them); here they are read, and a due winner can be chosen now.


class ABVariantInline(admin.TabularInline):
    model = ABVariant
    extra = 0
    can_delete = False
    fields = [
        "position",
        "subject",
        "preheader",
        "from_name",
        "template",
        "template_version",
        "recipients",
        "unique_opens",
        "unique_clicks",
        "conversions",
        "revenue",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.action(description="Choose the winner now (by the test's metric)")
def choose_winner(modeladmin, request, queryset):
    for test in queryset:
        try:
            abtest.ab_winner_choose(test=test, how=f"chosen in admin by {request.user}")
        except HeraldError as exc:
            modeladmin.message_user(request, f"{test}: {exc}", messages.WARNING)
        else:
            modeladmin.message_user(request, f"{test}: winner chosen.", messages.SUCCESS)


@admin.register(ABTest)
class ABTestAdmin(admin.ModelAdmin):
    list_display = [
        "campaign",
        "test_percent",
        "winner_metric",
        "winner_selection",
        "decide_at",
        "winner",
        "decided_at",
    ]
    list_filter = ["winner_metric", "winner_selection"]
    search_fields = ["campaign__name"]
    list_select_related = ["campaign"]
    readonly_fields = [
        "campaign",
        "test_percent",
        "winner_metric",
        "wait",
        "winner_selection",
        "run",
        "decide_at",
        "winner",
        "decided_at",
        "decided_how",
        "figures_at",
    ]
    inlines = [ABVariantInline]
    actions = [choose_winner]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(CampaignResend)
class CampaignResendAdmin(admin.ModelAdmin):
    list_display = ["campaign", "after", "subject", "updated_at"]
    search_fields = ["campaign__name", "subject"]
    list_select_related = ["campaign"]
    readonly_fields = ["campaign", "after", "subject", "created_at", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(PromoPool)
class PromoPoolAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "expires_at", "created_at"]
    search_fields = ["name", "key"]
    readonly_fields = ["created_at"]
    fields = ["name", "key", "description", "expires_at", "created_at"]

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in ("name", "key", "description")}
        data["expires_at"] = form.cleaned_data["expires_at"]
        try:
            if change:
                promo_pool_update(pool=PromoPool.objects.get(pk=obj.pk), **data)
            else:
                obj.pk = promo_pool_create(**data).pk
        except HeraldError as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def get_actions(self, request):
        # The bulk delete would skip the rule that keeps pools which handed out codes.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request, obj):
        try:
            promo_pool_delete(pool=obj)
        except HeraldError as exc:
            self.message_user(request, str(exc), messages.ERROR)


@admin.register(PromoCode)
class PromoCodeAdmin(admin.ModelAdmin):
    list_display = ["code", "pool", "source", "contact", "delivery", "assigned_at"]
    list_filter = ["pool", "source"]
    search_fields = ["code"]
    list_select_related = ["pool", "contact", "delivery"]
    # Handing out is the sending engine's or a workflow's job: read-only here.
    readonly_fields = [
        "pool",
        "code",
        "source",
        "contact",
        "delivery",
        "workflow_run_id",
        "assigned_at",
        "created_at",
    ]

    def has_add_permission(self, request):
        return False


@admin.register(FrequencyCap)
class FrequencyCapAdmin(admin.ModelAdmin):
    """The organisation's frequency caps (also on the settings page and the API)."""

    list_display = ["channel", "limit", "period_days", "updated_at"]
