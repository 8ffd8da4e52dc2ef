"""Automation workflows: a trigger, a graph of steps (snapshotted per version), and one run
per contact that walks the graph. Made visible to Django by an import in marketing.models."""

from django.db import models
from django.db.models import Q
from django.urls import reverse

__all__ = [
    "ReEntry",
    "TriggerKind",
    "Workflow",
    "WorkflowMessage",
    "WorkflowRun",
    "WorkflowRunStatus",
    "WorkflowSegmentMember",
    "WorkflowSend",
    "WorkflowStatus",
    "WorkflowVersion",
]


class WorkflowStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


class TriggerKind(models.TextChoices):
    EVENT = "event", "An event happens"
    SEGMENT_ENTER = "segment_enter", "A contact enters a segment"
    SEGMENT_LEAVE = "segment_leave", "A contact leaves a segment"
    DATE = "date", "A date in a contact field (yearly)"
    IMPORT = "import", "Contacts are imported into a segment"
    SCHEDULE = "schedule", "On a schedule, for everyone in a segment"
    BUTTON = "button", "A button in a message or an API call"


class ReEntry(models.TextChoices):
    ONCE = "once", "Once ever"
    EVERY_TIME = "every_time", "Every time"
    AFTER_DAYS = "after_days", "Again after N days"


class Workflow(models.Model):
    """What starts a run (trigger) and the editable draft of its steps; runs follow the
    immutable WorkflowVersion they started on."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=10, choices=WorkflowStatus.choices, default=WorkflowStatus.DRAFT
    )
    trigger_kind = models.CharField(
        max_length=20, choices=TriggerKind.choices, default=TriggerKind.EVENT
    )
    event_type = models.ForeignKey(
        "marketing.EventType",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="workflows",
    )
    # [{"param": "status", "op": "eq", "value": "DELIVERED"}, ...]: all must hold.
    trigger_conditions = models.JSONField(default=list, blank=True)
    segment = models.ForeignKey(
        "contacts.Segment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="workflows",
    )
    # Date milestone: {"field": "<custom field id>", "offset_days": 0, "time": "09:00"}.
    date_trigger = models.JSONField(default=dict, blank=True)
    re_entry = models.CharField(max_length=12, choices=ReEntry.choices, default=ReEntry.ONCE)
    re_entry_days = models.PositiveIntegerField(default=30)
    # The steps being edited: {"start": "s1", "steps": [{"id": "s1", "kind": ..., "next": ...}]}.
    draft_graph = models.JSONField(default=dict, blank=True)
    current_version = models.ForeignKey(
        "WorkflowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scenario = models.CharField(max_length=50, blank=True, help_text="Ready-made scenario used.")
    # Webhook steps sign their body with this (HMAC-SHA256) so the receiver can trust it.
    webhook_secret = models.CharField(max_length=64, blank=True)
    # Segment triggers compare the segment with a snapshot; import triggers read the imports
    # finished since this time; date and schedule triggers fire once a day (occurrence).
    segment_checked_at = models.DateTimeField(null=True, blank=True)
    date_fired_on = models.DateField(null=True, blank=True)
    # Group schedule: {"every": "day" | "week", "time": "09:00", "weekday": 1} (ISO weekday,
    # organisation time zone); one run per member of `segment` per occurrence.
    schedule = models.JSONField(default=dict, blank=True)
    # The workflow's own public link, /w/<button_key>/?c=<signed contact token>.
    button_key = models.CharField(max_length=32, blank=True, db_index=True)
    # When a run leaves early: [{"type": "event", "event_type_id": 5},
    # {"type": "segment_leave", "segment_id": 3}, {"type": "unsubscribed"}]; any one stops it.
    stop_conditions = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["trigger_kind", "status"], name="workflow_trigger")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("workflow_detail", args=[self.pk])


class WorkflowVersion(models.Model):
    """An immutable snapshot of a workflow's graph, taken at activation."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="workflow_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.workflow} v{self.number}"


class WorkflowRunStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    EXITED = "exited", "Exited"
    FAILED = "failed", "Failed"


class WorkflowRun(models.Model):
    """One contact's way through one version of a workflow."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="workflow_runs"
    )
    # No database foreign key to the partitioned events; retention clears it (SET_NULL).
    event = models.ForeignKey(
        "marketing.Event",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    # The triggering event's params: $data in the run's messages and condition input.
    params = models.JSONField(default=dict, blank=True)
    current_step = models.CharField(max_length=40, blank=True)
    status = models.CharField(
        max_length=10, choices=WorkflowRunStatus.choices, default=WorkflowRunStatus.WAITING
    )
    # [{"step": "s1", "at": iso, "kind": "send", "note": "..."}], in the order taken.
    path = models.JSONField(default=list, blank=True)
    wake_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Why an exited run stopped early (a stop condition). A database default: runs are
    # inserted set-based (triggers.runs_insert) without naming it.
    exit_reason = models.CharField(max_length=300, blank=True, default="", db_default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            # The wake-up claim reads only waiting rows, earliest first.
            models.Index(fields=["wake_at"], name="wfrun_due", condition=Q(status="waiting")),
            # Claims of dead workers are found among the (few) running rows.
            models.Index(
                fields=["claimed_at"], name="wfrun_running", condition=Q(status="running")
            ),
            # Re-entry checks and per-workflow statistics.
            models.Index(fields=["workflow", "contact", "started_at"], name="wfrun_contact"),
            models.Index(fields=["workflow", "status"], name="wfrun_status"),
        ]
        constraints = [
            # An event starts a workflow at most once, however often its processing is retried.
            models.UniqueConstraint(
                fields=["workflow", "event"],
                condition=Q(event__isnull=False),
                name="wfrun_event_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow} / contact {self.contact_id} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("workflow_run_detail", args=[self.pk])


class WorkflowMessage(models.Model):
    """A message a run sent: the link from a run's step to its row in the delivery ledger."""

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="messages")
    step_id = models.CharField(max_length=40)
    # No database foreign key to the partitioned ledger (it would need the partition key);
    # Django cascades, and retention deletes these with the month they point into.
    delivery = models.ForeignKey(
        "campaigns.Delivery",
        on_delete=models.CASCADE,
        related_name="workflow_messages",
        db_constraint=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["run", "step_id"], name="wfmessage_run_step")]

    def __str__(self) -> str:
        return f"run {self.run_id} step {self.step_id}"


class WorkflowSegmentMember(models.Model):
    """Who was in a segment-triggered workflow's segment at the last check: the difference
    with the segment now is who entered or left."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "contact"], name="workflow_segment_member_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id}/{self.contact_id}"


class WorkflowSend(models.Model):
    """One visit of a run to a message step ("Messages" and "Message to a group" blocks):
    the channel it chose, the send request it queued (none when no channel could reach the
    contact) and the further template names its messages get (`$order`, `$event`,
    `$workflowContact`), taken once when the step ran (marketing.workflows.send_blocks)."""

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="sends")
    step_id = models.CharField(max_length=40)
    # How many times the run had passed this step before (a loop through a wait comes back).
    visit = models.PositiveIntegerField(default=0)
    channel = models.CharField(max_length=20, blank=True)
    send_request = models.ForeignKey(
        "campaigns.SendRequest",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="workflow_sends",
    )
    names = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # A retried step finds its send instead of queueing the messages twice.
            models.UniqueConstraint(
                fields=["run", "step_id", "visit"], name="wfsend_run_step_visit"
            )
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} step {self.step_id} #{self.visit}"
