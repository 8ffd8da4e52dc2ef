import zoneinfo

from auditlog.registry import auditlog
from django.core.exceptions import ValidationError
from django.db import models


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (e.g. Europe/Berlin).")


class Organisation(models.Model):
    """The one organisation of this deployment (a singleton row, pk=1)."""

    name = models.CharField(max_length=200, default="My organisation")
    default_sender_name = models.CharField(max_length=200, blank=True)
    default_sender_email = models.EmailField(blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="organisation_singleton")
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def load(cls) -> "Organisation":
        organisation, _ = cls.objects.get_or_create(pk=1)
        return organisation


class Heartbeat(models.Model):
    """Last time a background process proved it is alive (beat → broker → worker → database)."""

    name = models.CharField(max_length=50, primary_key=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


auditlog.register(Organisation)


class EventType(models.Model):
    """A kind of event (`eventTypeKey`); created on first use."""

    key = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name or self.key


class Event(models.Model):
    """One occurrence: Generate event, or emitted by Herald (subscribe, new contacts, orders)."""

    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="events")
    key_value = models.CharField(max_length=300, blank=True)
    params = models.JSONField(default=dict, blank=True)
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["event_type", "-created_at"], name="event_type_recent")]

    def __str__(self) -> str:
        return f"{self.event_type.key} {self.key_value}"
