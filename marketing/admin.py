from django import forms
from django.contrib import admin

from marketing.event_params import DeclarationError, declaration_parse
from marketing.events import EVENTS_DELETE_MAX, events_delete
from marketing.models import Event, EventType, Order, OrderItem, RFMScore
from marketing.signup import admin as signup_admin  # noqa: F401 (registers its admin)


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["external_order_id", "status", "total_cost", "currency", "date", "contact"]
    list_filter = ["status", "currency"]
    search_fields = ["=external_order_id", "=external_customer_id", "=email"]
    date_hierarchy = "date"
    raw_id_fields = ["contact"]
    inlines = [OrderItemInline]


class EventTypeAdminForm(forms.ModelForm):
    class Meta:
        model = EventType
        fields = ["key", "name", "params_declared", "invalid_mode", "flagged_start_workflows"]
        help_texts = {
            "params_declared": 'Declared params: [{"name": "amount", "type": "number", '
            '"required": true}, ...]; types string, number, integer, boolean, date, datetime, '
            "email, url. [] takes any params.",
        }

    def clean_params_declared(self):
        # The rule of marketing.event_params.event_type_declare, on the admin's form.
        try:
            declared = declaration_parse(self.cleaned_data.get("params_declared"))
        except DeclarationError as exc:
            raise forms.ValidationError(f"{exc.field}: {exc.message}") from None
        return [param.as_json() for param in declared]


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    form = EventTypeAdminForm
    list_display = ["key", "name", "invalid_mode", "created_at"]
    search_fields = ["key", "name"]


class FlaggedFilter(admin.SimpleListFilter):
    title = "declared params"
    parameter_name = "invalid"

    def lookups(self, request, model_admin):
        return [("true", "flagged invalid"), ("false", "valid")]

    def queryset(self, request, queryset):
        if self.value() in ("true", "false"):
            return queryset.filter(problems__isnull=self.value() == "false")
        return queryset


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = [
        "event_type",
        "key_value",
        "contact",
        "occurred_at",
        "created_at",
        "processed_at",
    ]
    list_filter = ["event_type", FlaggedFilter]
    search_fields = ["=key_value"]
    raw_id_fields = ["contact"]
    list_select_related = ["event_type", "contact"]
    readonly_fields = ["problems", "created_at"]
    # Millions of rows: no COUNT(*) for the paginator.
    show_full_result_count = False

    # Deletions go through the service, which writes each one to the audit log.
    def delete_model(self, request, obj):
        events_delete(event_ids=[obj.pk], actor_id=request.user.pk)

    def delete_queryset(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        for start in range(0, len(ids), EVENTS_DELETE_MAX):
            chunk = ids[start : start + EVENTS_DELETE_MAX]
            events_delete(event_ids=chunk, actor_id=request.user.pk)


@admin.register(RFMScore)
class RFMScoreAdmin(admin.ModelAdmin):
    list_display = ["contact", "recency", "frequency", "monetary", "orders_count", "revenue"]
    list_filter = ["recency", "frequency", "monetary"]
    raw_id_fields = ["contact"]
    show_full_result_count = False


import marketing.workflows.admin  # noqa: E402, F401  (registers the workflow models)
