"""The delivery ledger: one row per recipient per channel per send — the unit of sending,
status and idempotency. Single messages (seed message API) and campaign runs share it."""

import uuid

from django.db import models
from django.db.models import Q

from contacts.models import ChannelType


class SendKind(models.TextChoices):
    SMARTSEND = "smartsend", "Prepared message"
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    TEST = "test", "Test send"


class SendRequest(models.Model):
    """One call of the message API (or a test send): what to send, to whom is in Delivery."""

    kind = models.CharField(max_length=10, choices=SendKind.choices)
    template_version = models.ForeignKey(
        "templates.TemplateVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # Content given inline (POST /v1/message/email and /sms): Velocity source, like a template.
    subject = models.CharField(max_length=500, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    from_email = models.CharField(max_length=254, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    skip_personalisation = models.BooleanField(default=False)
    tags = models.JSONField(default=list, blank=True)
    external_request_id = models.CharField(max_length=255, blank=True, db_index=True)
    api_key = models.ForeignKey(
        "integrations.APIKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


# Statuses after which nothing more is sent for the row.
FINAL_FAILURES = (DeliveryStatus.FAILED, DeliveryStatus.SKIPPED, DeliveryStatus.BOUNCED)


class Delivery(models.Model):
    """One message to one recipient on one channel. `request_id` is what the API hands out;
    `message_id` is the stable RFC 5322 Message-ID, the same on every retry."""

    request_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    send_request = models.ForeignKey(
        SendRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    contact = models.ForeignKey(
        "contacts.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    channel = models.CharField(max_length=20, choices=ChannelType.choices)
    locator = models.CharField(max_length=254, help_text="The address: email or E.164 phone.")
    template_version = models.ForeignKey(
        "templates.TemplateVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # Per-recipient data ($data in templates: jsonParam, event params).
    params = models.JSONField(default=dict, blank=True)
    language_code = models.CharField(max_length=10, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=50, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    status = models.CharField(
        max_length=15, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Claim of a sender task (pipeline): set when a worker takes the row, cleared on outcome.
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    click_count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            # The sender's claim query: queued rows, oldest first.
            models.Index(
                fields=["created_at"], name="delivery_queued", condition=Q(status="queued")
            ),
            models.Index(fields=["locator"], name="delivery_locator"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.locator} ({self.status})"


class DeliveryEvent(models.Model):
    """Status history of a delivery: every transition, open and click, with when and details."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=15, choices=DeliveryStatus.choices)
    at = models.DateTimeField(auto_now_add=True)
    detail = models.TextField(blank=True)
    url = models.URLField(max_length=2000, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["delivery", "at"], name="delivery_event_recent")]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status} @ {self.at:%Y-%m-%d %H:%M:%S}"
