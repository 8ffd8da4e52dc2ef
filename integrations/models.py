"""What the integrations keep besides the Integration rows themselves (config.core.models):
every webhook request as received, and the progress of template imports."""

from django.db import models


class WebhookOutcome(models.TextChoices):
    RECEIVED = "received", "Received, not yet parsed"
    QUEUED = "queued", "Parsed, waiting to be applied"
    APPLIED = "applied", "Applied"
    REFUSED = "refused", "Refused (authentication)"
    FAILED = "failed", "Parser failed (kept for replay)"


class WebhookRequest(models.Model):
    """One HTTP request to an integration's webhook, stored raw before anything parses it, so
    that a parser bug loses nothing: the request can be replayed from admin once fixed.

    Partitioned by month on `received_at` (config.core.partitions), kept
    HERALD_RETENTION_WEBHOOK_REQUESTS_DAYS."""

    integration = models.ForeignKey(
        "core.Integration",
        null=True,
        on_delete=models.SET_NULL,
        related_name="webhook_requests",
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    query = models.JSONField(default=dict, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField()
    remote_addr = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(
        max_length=10, choices=WebhookOutcome.choices, default=WebhookOutcome.RECEIVED
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    actions = models.PositiveIntegerField(default=0, help_text="Actions the parser yielded.")
    applied = models.PositiveIntegerField(default=0, help_text="Changes they made.")
    processed_at = models.DateTimeField(null=True, blank=True)
    replays = models.PositiveSmallIntegerField(default=0)
    # The parser's actions while the request waits to be applied (outcome "queued"), as
    # integrations.webhooks writes them; cleared once applied (a replay parses the body).
    pending = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["integration", "-received_at"], name="webhook_recent"),
            # The apply queue (integrations.webhooks: drains claim the oldest queued rows).
            models.Index(
                fields=["id"], name="webhook_queued", condition=models.Q(outcome="queued")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.outcome})"


class ImportState(models.TextChoices):
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed (resumable)"


class TemplateImport(models.Model):
    """A template import from a provider, page by page (offset/limit). `offset` is where the
    next page starts, saved after every page: an interrupted import resumes there, and the
    templates it already brought in are found again by their external id (no duplicates)."""

    integration = models.ForeignKey(
        "core.Integration", on_delete=models.CASCADE, related_name="template_imports"
    )
    state = models.CharField(
        max_length=10, choices=ImportState.choices, default=ImportState.RUNNING
    )
    offset = models.PositiveIntegerField(default=0)
    limit = models.PositiveIntegerField(default=50)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"import from {self.integration_id} at {self.offset} ({self.state})"


class WebhookNonce(models.Model):
    """A signed webhook request already accepted (its signature or delivery id): the same one
    again within the replay window is refused (integrations.webhook_auth)."""

    integration = models.ForeignKey("core.Integration", on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=255)
    seen_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "nonce"], name="webhook_nonce_unique")
        ]

    def __str__(self) -> str:
        return self.nonce
