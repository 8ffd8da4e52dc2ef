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
