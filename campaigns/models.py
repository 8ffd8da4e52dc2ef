"""The delivery ledger: one row per recipient per channel per send — the unit of sending,
status and idempotency. Single messages (the eSputnik v1 message API) and campaign runs share it."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from config.core.external_keys import external_key_field
from config.core.partitions import period_of
from contacts.models import ChannelType


class SendKind(models.TextChoices):
    SMARTSEND = "smartsend", "Prepared message"
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    VIBER = "viber", "Viber"
    TEST = "test", "Test send"
    # A workflow's send step: marketing, so it counts towards frequency caps and keeps the
    # step's sending window (the other kinds are transactional).
    WORKFLOW = "workflow", "Workflow send"


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
    preheader = models.CharField(max_length=500, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    from_email = models.CharField(max_length=254, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    skip_personalisation = models.BooleanField(default=False)
    # Workflow sends: the step's allowed sending window (campaigns.send_rules), or null.
    send_window = models.JSONField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    external_request_id = models.CharField(max_length=255, blank=True, db_index=True)
    api_key = models.ForeignKey(
        "core.APIKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The integration to send through; none: the channel's default.
    integration = models.ForeignKey(
        "core.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A test send of a campaign: the campaign whose message it previews (its UTM tags and
    # email service apply, as in a run); null for every other send.
    campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
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


class LedgerPeriodField(models.DateField):
    """The month partition of a ledger row (config.core.partitions): when left empty, the
    row's own `ledger_period()` fills it as it is saved, bulk inserts included."""

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if value is None:
            value = model_instance.ledger_period()
            setattr(model_instance, self.attname, value)
        return value


class Delivery(models.Model):
    """One message to one recipient on one channel. `request_id` is what the API hands out;
    `message_id` is the stable RFC 5322 Message-ID, the same on every retry.

    The table is partitioned by month on `period` (config.core.partitions), a function of
    what the row belongs to, never of when it was written: the month its run started, or
    its send request was made. A retry or a second launch of the same run therefore always
    lands in the same partition, and the unique key (run, contact, channel, step, period)
    is exactly as strong as (run, contact, channel, step); a run's rows, and their history,
    are dropped together."""

    # Unique with `period` (the partition key must be in every unique key); a version 4
    # UUID is unique on its own, and lookups by it use this index.
    request_id = models.UUIDField(default=uuid.uuid4, editable=False)
    # No index of their own: the partial indexes below (send_request) and the run's unique
    # constraint and status index (run) lead with them.
    send_request = models.ForeignKey(
        SendRequest,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
    )
    run = models.ForeignKey(
        "CampaignRun",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
    )
    step = models.PositiveSmallIntegerField(default=0, help_text="Drip step position; 0 otherwise.")
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
    provider_message_id = models.CharField(max_length=255, blank=True)
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
    # Human engagement only: opened_at, clicked_at and these counters. Opens and clicks made
    # by machines (mail privacy proxies, link scanners: campaigns.engagement) are counted
    # apart and never move the status.
    open_count = models.PositiveIntegerField(default=0)
    click_count = models.PositiveIntegerField(default=0)
    # The A/B test variant (ABVariant.position) this row is in the test share of; NULL for
    # every other row, the winner's send to the rest of the audience included. A column of
    # its own rather than a per-variant TemplateVersion: a variant may only change the
    # subject, preheader or sender name over the campaign's template, and minting template
    # versions for those would rewrite the template's history; the column also tells the
    # test share apart from the rest when figures are counted (campaigns.abtest).
    ab_variant = models.PositiveSmallIntegerField(null=True, blank=True)
    machine_open_count = models.PositiveIntegerField(default=0, db_default=0)
    machine_click_count = models.PositiveIntegerField(default=0, db_default=0)
    period = LedgerPeriodField(blank=True, editable=False)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            # The idempotency key of campaign sending: a recipient is materialised once per run,
            # channel and step, however often launch or a retry runs. `period` is the run's
            # month, the same for every row of the run, so it narrows nothing.
            models.UniqueConstraint(
                fields=["run", "contact", "channel", "step", "period"],
                condition=Q(run__isnull=False),
                name="delivery_run_contact_channel_step_unique",
            ),
            models.UniqueConstraint(
                fields=["request_id", "period"], name="delivery_request_id_unique"
            ),
        ]
        # A sender writes every claimed row twice (claim, outcome), each time a new row
        # version with an entry in every index whose condition it meets: indexes here are
        # partial where most rows have nothing to index (campaign rows have no send
        # request and, over SMTP, no provider id).
        indexes = [
            models.Index(fields=["run", "status"], name="delivery_run_status"),
            # The campaign sender's claim: a run's unclaimed queued rows in id order, read
            # from the start and stopped after a batch; also counts all queued rows (health
            # page). claimed_at is in the key, and in the claim's ORDER BY, so that no other
            # index (the primary key) can deliver that order: else, with statistics that say
            # "all queued" (right after a launch), the planner walks the primary key past
            # every row already sent, on every claim.
            models.Index(
                fields=["run", "claimed_at", "id"],
                name="delivery_run_queued",
                condition=Q(status="queued"),
            ),
            models.Index(fields=["locator"], name="delivery_locator"),
            # A/B figures read the test share of a run only.
            models.Index(
                fields=["run", "ab_variant"],
                name="delivery_run_ab_variant",
                condition=Q(ab_variant__isnull=False),
            ),
            models.Index(
                fields=["send_request", "id"],
                name="delivery_request",
                condition=Q(send_request__isnull=False),
            ),
            # The single-message sender claims the queued rows of one send request.
            models.Index(
                fields=["send_request", "id"],
                name="delivery_request_queued",
                condition=Q(status="queued", send_request__isnull=False),
            ),
            # Frequency caps count each contact's messages sent in the last N days
            # (campaigns.delivery.rules): a range of this index per contact of a batch, instead
            # of every delivery the contact ever had. Partial: queued rows (the bulk of a
            # running campaign) are not in it, so claims do not maintain it.
            models.Index(
                fields=["contact", "sent_at"],
                name="delivery_contact_sent",
                condition=Q(sent_at__isnull=False),
            ),
            # Provider webhooks find a delivery by the id the provider gave it.
            models.Index(
                fields=["provider_message_id"],
                name="delivery_provider_message_id",
                condition=~Q(provider_message_id=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.locator} ({self.status})"

    def ledger_period(self):
        """The partition this row belongs in: its run's month, else its send request's."""
        if self.run_id is not None:
            run = self.run
            return period_of(run.started_at)
        if self.send_request_id is not None:
            return period_of(self.send_request.created_at)
        return period_of(None)


class DeliveryEvent(models.Model):
    """Status history of a delivery: every transition, open and click, with when and details."""

    # No database foreign key: PostgreSQL would want the delivery's partition key in it.
    # Django still deletes the history with its delivery; retention drops both together.
    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="events", db_constraint=False
    )
    status = models.CharField(max_length=15, choices=DeliveryStatus.choices)
    at = models.DateTimeField(auto_now_add=True)
    detail = models.TextField(blank=True)
    url = models.URLField(max_length=2000, blank=True)
    # The provider's id of the event this row records (webhook, DSN): the same event reported
    # twice is applied once (campaigns.ledger.deliveries_feedback).
    provider_event_id = models.CharField(max_length=255, blank=True, db_default="")
    # An open or click made by a machine (campaigns.engagement); `detail` names the rule.
    machine = models.BooleanField(default=False, db_default=False)
    # The delivery's `period`: the history is partitioned with its delivery, so the
    # provider event dedupe below (which must include it) is as strong as before.
    period = LedgerPeriodField(blank=True, editable=False)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "provider_event_id", "period"],
                condition=~Q(provider_event_id=""),
                name="delivery_event_provider_event_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["delivery", "at"], name="delivery_event_recent"),
            # Analytics refresh finds the runs with fresh opens/clicks by time. Events are
            # appended in time order, so a BRIN index answers "since T" for a few kilobytes
            # instead of a B-tree that grows with every open and click.
            BrinIndex(fields=["at"], name="delivery_event_at_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status} @ {self.at:%Y-%m-%d %H:%M:%S}"

    def ledger_period(self):
        """Its delivery's partition."""
        return self.delivery.period or self.delivery.ledger_period()


# --- Campaigns (the CRM campaigns API) ------------------------------------------------------------


def validate_send_window(value: object) -> None:
    """The send window rules of campaigns.send_rules, for forms built from the model (admin)."""
    from campaigns.send_rules import SendWindow  # it imports this module
    from config.core.errors import FieldError

    try:
        SendWindow.clean(value, field="window")
    except FieldError as exc:
        raise ValidationError(f"{exc.field}: {exc.message}") from None


class CampaignType(models.TextChoices):
    BLAST = "blast", "One-shot blast"
    DRIP = "drip", "Drip"
    RECURRING = "recurring", "Recurring"
    MILESTONE = "milestone", "Milestone"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class Campaign(models.Model):
    """What to send (template, channels), to whom (a segment or an inline filter), when
    (schedule, cron, drip steps, milestone). Status changes only through the lifecycle service."""

    name = models.CharField(max_length=200)
    # The integrator's own id (the CRM campaigns API's "camp-1"), accepted wherever the id is.
    external_key = external_key_field()
    type = models.CharField(max_length=15, choices=CampaignType.choices, default=CampaignType.BLAST)
    channels = ArrayField(models.CharField(max_length=20), default=list)
    segment = models.ForeignKey(
        "contacts.Segment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
    )
    # Inline audience: the CRM campaigns API's filter ({"tags": {"$in": [...]}}), used when
    # there is no segment.
    audience_filter = models.JSONField(null=True, blank=True)
    template = models.ForeignKey(
        "templates.MessageTemplate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
    )
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    cron = models.CharField(
        max_length=100, blank=True, help_text="recurring.cron, in the campaign's time zone"
    )
    # Milestone: {"fieldId": 12, "offsetDays": 0, "yearly": true, "sendAt": "09:00"}.
    milestone = models.JSONField(null=True, blank=True)
    # Recipient-local send time: each contact gets the message at this wall-clock time in its
    # own time zone (the organisation's when it has none), the next one after the launch.
    send_local_time = models.TimeField(null=True, blank=True)
    # Allowed sending window (campaigns.send_rules): {"from": "09:00", "to": "20:00",
    # "days": [1, 2, 3, 4, 5]} in each recipient's zone; null: any time.
    send_window = models.JSONField(null=True, blank=True, validators=[validate_send_window])
    status = models.CharField(
        max_length=15, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    status_reason = models.TextField(blank=True)
    # The django-celery-beat entry that launches it (clocked one-off or crontab).
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # "Email service": the integration the campaign goes through; none: each channel's default.
    integration = models.ForeignKey(
        "core.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error_threshold = models.PositiveIntegerField(
        default=50, help_text="Percent of failed sends (after 100 attempts) that pauses a run."
    )
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Automatic UTM tagging of tracked links (campaigns.utm): the values to add; a blank
    # utm_content means the template's name.
    utm_enabled = models.BooleanField(default=False)
    utm_source = models.CharField(max_length=100, blank=True)
    utm_medium = models.CharField(max_length=100, blank=True)
    utm_campaign = models.CharField(max_length=100, blank=True)
    utm_content = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"], name="campaign_status")]

    def __str__(self) -> str:
        return self.name


class CampaignStep(models.Model):
    """A drip step: after `delay` from entering (or from the previous step), send `template`."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    template = models.ForeignKey(
        "templates.MessageTemplate", on_delete=models.PROTECT, related_name="+"
    )
    delay = models.DurationField()

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="campaign_step_unique")
        ]

    def __str__(self) -> str:
        return f"{self.campaign} step {self.position}"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class RunKind(models.TextChoices):
    SEND = "send", "Send"
    RESEND = "resend", "Resend to non-openers"


class CampaignRun(models.Model):
    """One send of a campaign (a blast, a cron tick, a drip or milestone day): its own ledger."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=RunKind.choices, default=RunKind.SEND)
    # A follow-up run (resend to non-openers): the run whose recipients it follows up.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="follow_ups"
    )
    status = models.CharField(max_length=15, choices=RunStatus.choices, default=RunStatus.RUNNING)
    status_reason = models.TextField(blank=True)
    template_version = models.ForeignKey(
        "templates.TemplateVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reach = models.PositiveIntegerField(default=0, help_text="Recipients materialised at launch.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A run handed whole to a service (the provider contract's create campaign): the service's
    # id for it, the service's status, its last figures and when they were fetched.
    integration = models.ForeignKey(
        "core.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    external_id = models.CharField(max_length=255, blank=True)
    external_status = models.CharField(max_length=30, blank=True)
    external_stats = models.JSONField(default=dict, blank=True)
    external_stats_at = models.DateTimeField(null=True, blank=True)
    # When retention dropped the month of the ledger this run's rows were in
    # (campaigns.retention): from then on its figures are the rollups alone, frozen.
    ledger_dropped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "number"], name="campaign_run_number_unique"
            )
        ]
        indexes = [
            models.Index(fields=["status"], name="run_active", condition=Q(status="running")),
            models.Index(
                fields=["integration", "external_id"],
                name="run_external_id",
                condition=~Q(external_id=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} run {self.number}"


class RunStats(models.Model):
    """Rolled-up metrics of one run on one channel, refreshed by a beat task from the ledger
    so that report pages never scan deliveries."""

    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="stats")
    channel = models.CharField(max_length=20, choices=ChannelType.choices)
    recipients = models.PositiveIntegerField(default=0)
    sends = models.PositiveIntegerField(default=0)
    deliveries = models.PositiveIntegerField(default=0)
    opens = models.PositiveIntegerField(default=0)
    unique_opens = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    unique_clicks = models.PositiveIntegerField(default=0)
    # Opens and clicks by machines (campaigns.engagement), beside the human ones above.
    machine_opens = models.PositiveIntegerField(default=0, db_default=0)
    machine_clicks = models.PositiveIntegerField(default=0, db_default=0)
    replies = models.PositiveIntegerField(default=0)
    bounces = models.PositiveIntegerField(default=0)
    complaints = models.PositiveIntegerField(default=0)
    unsubscribes = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    # Deliveries the provider reported (delivered_at, no failure): the "delivered" figure of
    # the report (campaigns.analytics.campaign_delivered) once the run's ledger is dropped.
    reported_deliveries = models.PositiveIntegerField(default=0, db_default=0)
    conversions = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "run stats"
        constraints = [models.UniqueConstraint(fields=["run", "channel"], name="run_stats_unique")]

    def __str__(self) -> str:
        return f"{self.run} {self.channel}"


class MetricBucket(models.Model):
    """Opens and clicks per run, channel and hour: the report's timeline."""

    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="buckets")
    channel = models.CharField(max_length=20, choices=ChannelType.choices)
    hour = models.DateTimeField()
    opens = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "channel", "hour"], name="metric_bucket_unique")
        ]

    def __str__(self) -> str:
        return f"{self.run} {self.channel} {self.hour:%Y-%m-%d %H}:00"


class RunLinkClicks(models.Model):
    """Human clicks per link of one run, written when retention drops the run's ledger month
    (campaigns.retention): the report's per-link table reads them beside the live ledger."""

    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="link_clicks")
    url = models.URLField(max_length=2000)
    clicks = models.PositiveIntegerField(default=0)
    unique_clicks = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "run link clicks"
        constraints = [
            models.UniqueConstraint(fields=["run", "url"], name="run_link_clicks_unique")
        ]

    def __str__(self) -> str:
        return f"{self.run} {self.url}"


class ProviderRate(models.Model):
    """The adaptive send rate of one provider (an integration, or the environment's transport
    of a channel), shared by every worker: a token bucket refilled at `rate` messages a second.
    `rate` starts at `ceiling` (the configured limit), is cut when the provider throttles and
    grows back while it does not (campaigns.delivery.rate)."""

    key = models.CharField(max_length=60, primary_key=True)
    rate = models.FloatField(default=0)
    ceiling = models.FloatField(default=0)
    tokens = models.FloatField(default=0)
    refilled_at = models.DateTimeField(null=True, blank=True)
    throttled_at = models.DateTimeField(null=True, blank=True)
    throttles = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.rate:g}/s"


# --- A/B tests and resends (campaigns.abtest) ------------------------------------------------


class WinnerMetric(models.TextChoices):
    OPENS = "opens", "Unique opens"
    CLICKS = "clicks", "Unique clicks"
    REVENUE = "revenue", "Attributed revenue"


class WinnerSelection(models.TextChoices):
    AUTO = "auto", "Automatic"
    MANUAL = "manual", "The marketer picks"


class ABTest(models.Model):
    """A blast campaign's A/B test: its variants go to `test_percent` of the audience; after
    `wait` the winner (by `winner_metric`, or the marketer's pick) goes to the rest, in the
    same run."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="ab_test")
    test_percent = models.PositiveSmallIntegerField(default=20)
    winner_metric = models.CharField(
        max_length=10, choices=WinnerMetric.choices, default=WinnerMetric.OPENS
    )
    wait = models.DurationField()
    winner_selection = models.CharField(
        max_length=10, choices=WinnerSelection.choices, default=WinnerSelection.AUTO
    )
    # Set at launch: the run whose test share this is, and when the winner falls due.
    run = models.OneToOneField(
        CampaignRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="ab_test"
    )
    decide_at = models.DateTimeField(null=True, blank=True)
    # The winning variant's position; set once, with the send to the rest of the audience.
    winner = models.PositiveSmallIntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_how = models.CharField(max_length=200, blank=True)
    figures_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "A/B test"
        indexes = [
            # The beat task's "winners due": undecided tests of launched runs.
            models.Index(
                fields=["decide_at"],
                name="abtest_undecided",
                condition=Q(winner__isnull=True, run__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"A/B test of {self.campaign}"


class ABVariant(models.Model):
    """One variant: what it changes over the campaign's template (blank: unchanged), and its
    figures as last counted from the ledger (reports read these, never the ledger)."""

    test = models.ForeignKey(ABTest, on_delete=models.CASCADE, related_name="variants")
    position = models.PositiveSmallIntegerField(help_text="0 = A, 1 = B, …")
    subject = models.CharField(max_length=500, blank=True)
    preheader = models.CharField(max_length=500, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    template = models.ForeignKey(
        "templates.MessageTemplate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # The template version the variant's rows send (its own template's, else the run's).
    template_version = models.ForeignKey(
        "templates.TemplateVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    recipients = models.PositiveIntegerField(default=0)
    unique_opens = models.PositiveIntegerField(default=0)
    unique_clicks = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        ordering = ["test", "position"]
        verbose_name = "A/B variant"
        constraints = [
            models.UniqueConstraint(fields=["test", "position"], name="abvariant_position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.test.campaign} variant {self.letter}"

    @property
    def letter(self) -> str:
        return chr(ord("A") + self.position)


class CampaignResend(models.Model):
    """Resend to non-openers: `after` the first run finished, its recipients who did not
    open (human opens) get the same content with `subject`, as a follow-up run."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="resend")
    after = models.DurationField()
    subject = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Resend of {self.campaign}"


class FrequencyCap(models.Model):
    """An organisation setting: at most `limit` marketing messages on `channel` per contact in
    any `period_days` days. Campaign runs and workflow sends count; transactional messages
    (the eSputnik v1 message API, test sends) neither count nor are capped."""

    channel = models.CharField(max_length=20, choices=ChannelType.choices, unique=True)
    limit = models.PositiveIntegerField()
    period_days = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel"]
        constraints = [
            models.CheckConstraint(
                condition=Q(limit__gte=1) & Q(period_days__gte=1), name="frequency_cap_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}: {self.limit} in {self.period_days} days"


# Promo code pools live in their own module; imported here so Django registers them.
from campaigns.promo.models import PromoCode, PromoPool  # noqa: E402, F401
