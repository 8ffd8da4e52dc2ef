from django.contrib import admin

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


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "created_at"]
    search_fields = ["key", "name"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["event_type", "key_value", "contact", "created_at", "processed_at"]
    list_filter = ["event_type"]
    search_fields = ["=key_value"]
    raw_id_fields = ["contact"]
    list_select_related = ["event_type", "contact"]
    # Millions of rows: no COUNT(*) for the paginator.
    show_full_result_count = False


@admin.register(RFMScore)
class RFMScoreAdmin(admin.ModelAdmin):
    list_display = ["contact", "recency", "frequency", "monetary", "orders_count", "revenue"]
    list_filter = ["recency", "frequency", "monetary"]
    raw_id_fields = ["contact"]
    show_full_result_count = False


import marketing.workflows.admin  # noqa: E402, F401  (registers the workflow models)
