import uuid

from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models.functions import Now
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class InvalidEventMode(models.TextChoices):
    """What Generate event does with an event that breaks its type's declared params."""

    REFUSE = "refuse", _("Refuse it (HTTP 400, nothing stored)")
    FLAG = "flag", _("Store it, flagged invalid")


class EventType(models.Model):
    """A kind of event (`eventTypeKey`); created on first use.

    A type may declare its params (marketing.event_params): [{"name", "type", "required"}].
    Undeclared types take any params.
    """

    key = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    params_declared = models.JSONField(
        default=list, blank=True, db_default=models.Value([], models.JSONField())
    )
    invalid_mode = models.CharField(
        max_length=10,
        choices=InvalidEventMode.choices,
        default=InvalidEventMode.REFUSE,
        db_default=InvalidEventMode.REFUSE,
    )
    # Flagged events are stored for the record but start no workflow (an automation fed
    # with a broken event sends a broken message), unless the type says otherwise.
    flagged_start_workflows = models.BooleanField(default=False, db_default=False)
    # A new value on every save: each web process caches declarations by key and stores an
    # event only while the type's token is the one it checked against (marketing.events).
    declaration_token = models.UUIDField(default=uuid.uuid4, db_default=RandomUUID())

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name or self.key

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is None or {"params_declared", "invalid_mode"} & set(update_fields):
            self.declaration_token = uuid.uuid4()
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "declaration_token"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("event_type_detail", args=[self.pk])


class Event(models.Model):
    """One occurrence: Generate event, or emitted by Herald (subscribe, new contacts, orders).

    The table is partitioned by month on `created_at` (config.core.partitions; retention in
    marketing.retention): its primary key in the database is (id, created_at)."""

    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="events")
    key_value = models.CharField(max_length=300, blank=True)
    params = models.JSONField(default=dict, blank=True)
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When it happened: the sender's `occurredAt` for a past event, else its arrival.
    # Analytics count by it; created_at stays the arrival time.
    occurred_at = models.DateTimeField(default=timezone.now, db_default=Now())
    processed_at = models.DateTimeField(null=True, blank=True)
    # The ways the event broke its type's declared params, when the type flags rather than
    # refuses ([{"param", "problem"}]); null when it met them (or none were declared).
    problems = models.JSONField(null=True, blank=True)
    # Events Herald derives from something else (an engagement event from the delivery
    # ledger, marketing.engagement): what they were derived from. Stored once through
    # EventSourceKey: a unique key here would have to include the partition key, and two
    # runs of the engagement emit may stamp the same source with different times.
    source_key = models.CharField(max_length=100, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # A contact's activity timeline pages through its events by time.
            models.Index(fields=["contact", "-created_at"], name="event_contact_recent"),
            models.Index(fields=["event_type", "-created_at"], name="event_type_recent"),
            # Event history is searched by keyValue (an order id, an email) more than browsed.
            models.Index(fields=["key_value"], name="event_key_value"),
            # Event analytics: per type and day by occurrence, unique contacts per type, over
            # a date range; contact last so both counts are index-only scans.
            models.Index(fields=["occurred_at", "event_type", "contact"], name="event_occurred"),
            # The history's "flagged invalid" filter reads only the few flagged rows.
            models.Index(
                fields=["-created_at"],
                name="event_flagged",
                condition=models.Q(problems__isnull=False),
            ),
            # The sweep that re-enqueues unprocessed events reads only this small part.
            models.Index(
                fields=["created_at"],
                name="event_unprocessed",
                condition=models.Q(processed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type.key} {self.key_value}"

    def get_absolute_url(self) -> str:
        return reverse("event_detail", args=[self.pk])


class EventSourceKey(models.Model):
    """The source keys of derived events already stored (marketing.engagement): inserting
    the key first, ON CONFLICT DO NOTHING, is what makes each derived event once. Keys older
    than the events retention are forgotten with their events (marketing.retention)."""

    key = models.CharField(max_length=100, primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.key


class EventRollup(models.Model):
    """Events of a type per hour (UTC) and contact, for months of events that retention
    dropped (marketing.retention): event analytics adds them to the events still stored,
    so totals, days and unique contacts stay exact. Hours rather than days: days are the
    workspace's time zone's, which may change; hours convert to any whole-hour zone."""

    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    # The contact's id as it was (no foreign key: a contact deleted later keeps its count).
    contact_id = models.BigIntegerField(null=True, blank=True)
    events = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event_type", "hour", "contact_id"],
                name="event_rollup_unique",
                nulls_distinct=False,
            ),
        ]
        indexes = [models.Index(fields=["hour", "event_type"], name="event_rollup_hour")]

    def __str__(self) -> str:
        return f"{self.event_type_id} {self.hour:%Y-%m-%d %H}:00 {self.events}"


class OrderStatus(models.TextChoices):
    INITIALIZED = "INITIALIZED", "Initialized"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    DELIVERED = "DELIVERED", "Delivered"
    CANCELLED = "CANCELLED", "Cancelled"
    ABANDONED_SHOPPING_CART = "ABANDONED_SHOPPING_CART", "Abandoned shopping cart"


class Order(models.Model):
    """An order sent by a shop (POST /v1/orders); upserted by `external_order_id`."""

    external_order_id = models.CharField(max_length=255, unique=True)
    external_customer_id = models.CharField(max_length=255, db_index=True)
    # The contact the order was linked to (found or created when it arrived); never updated
    # from the order's own names/email/phone.
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    status = models.CharField(max_length=30, choices=OrderStatus.choices)
    status_description = models.CharField(max_length=1000, blank=True)
    total_cost = models.DecimalField(max_digits=16, decimal_places=2)
    currency = models.CharField(max_length=3)
    date = models.DateTimeField()
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=20, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    shipping = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    discount = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    taxes = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    restore_url = models.CharField(max_length=2000, blank=True)
    store_id = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=255, blank=True)
    delivery_method = models.CharField(max_length=255, blank=True)
    payment_method = models.CharField(max_length=255, blank=True)
    delivery_address = models.CharField(max_length=1000, blank=True)
    additional_info = models.JSONField(null=True, blank=True)
    # The order exactly as the client last sent it (the JSON view of the order page).
    raw = models.JSONField(default=dict, blank=True)
    # Revenue attribution (marketing.attribution): the message the contact last clicked within
    # HERALD_ATTRIBUTION_WINDOW_DAYS before the order, or the campaign named in its UTM data.
    # No database foreign key to the partitioned ledger; retention clears it.
    attributed_delivery = models.ForeignKey(
        "campaigns.Delivery",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attributed_orders",
        db_constraint=False,
    )
    attributed_campaign = models.ForeignKey(
        "campaigns.Campaign",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attributed_orders",
    )
    # db_default: the order upsert inserts with raw SQL that does not name this column.
    attribution = models.CharField(
        max_length=5,
        blank=True,
        default="",
        db_default="",
        choices=[("click", "Click"), ("utm", "UTM")],
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "-id"]
        indexes = [
            models.Index(fields=["-date"], name="order_date_recent"),
            models.Index(fields=["status", "date"], name="order_status_date"),
            models.Index(fields=["contact", "status"], name="order_contact_status"),
            # The conversions rollup reads only attributed, delivered orders.
            models.Index(
                fields=["attributed_campaign"],
                name="order_attributed_delivered",
                condition=models.Q(status="DELIVERED") & ~models.Q(attribution=""),
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.external_order_id}"

    def get_absolute_url(self) -> str:
        return reverse("order_detail", args=[self.pk])


class OrderItem(models.Model):
    """A line of an order; an order's items are replaced whole on every upsert."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(default=0)
    external_item_id = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=500, blank=True)
    category = models.CharField(max_length=255, blank=True)
    quantity = models.DecimalField(max_digits=12, decimal_places=3, default=1)
    cost = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    url = models.CharField(max_length=2000, blank=True)
    image_url = models.CharField(max_length=2000, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["order", "position"]

    def __str__(self) -> str:
        return self.name or self.external_item_id or f"Item {self.pk}"


class RFMScore(models.Model):
    """A contact's RFM scores (1-5) from DELIVERED orders; the table is recomputed whole."""

    contact = models.OneToOneField(
        "contacts.Contact", primary_key=True, on_delete=models.CASCADE, related_name="rfm"
    )
    recency = models.PositiveSmallIntegerField()
    frequency = models.PositiveSmallIntegerField()
    monetary = models.PositiveSmallIntegerField()
    last_order_at = models.DateTimeField()
    orders_count = models.PositiveIntegerField()
    revenue = models.DecimalField(max_digits=18, decimal_places=2)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = "RFM score"
        indexes = [models.Index(fields=["recency", "frequency"], name="rfm_cell")]

    def __str__(self) -> str:
        return f"R{self.recency} F{self.frequency} M{self.monetary}"


# Django looks for an app's models in its models module; the workflow models live in their own
# module of this app (as do the subscription forms) and are named here so that it finds them.
from marketing.signup.models import (  # noqa: E402, F401
    SignupDailyStat,
    SignupForm,
    SignupRateWindow,
    SignupSubmission,
)
from marketing.workflows.models import (  # noqa: E402, F401
    Workflow,
    WorkflowMessage,
    WorkflowRun,
    WorkflowSegmentMember,
    WorkflowVersion,
)
