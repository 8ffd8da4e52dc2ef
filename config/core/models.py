"""The ground floor's data: the organisation, background heartbeats, API keys and the
connected providers (integrations).

Every app may use these; nothing here imports an app.
"""

import secrets
import zoneinfo

from auditlog.registry import auditlog
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from config.core.secrets import secrets_open


class Language(models.TextChoices):
    """The workspace's languages (settings.LANGUAGES), each named in itself."""

    EN = "en", "English"
    UK = "uk", "Українська"
    RU = "ru", "Русский"


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("%(value)s is not a known IANA time zone (e.g. Europe/Berlin)."),
            params={"value": repr(value)},
        )


class Organisation(models.Model):
    """The one organisation of this deployment (a singleton row, pk=1)."""

    name = models.CharField(_("name"), max_length=200, default="My organisation")
    default_sender_name = models.CharField(_("default sender name"), max_length=200, blank=True)
    default_sender_email = models.EmailField(_("default sender email"), blank=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_time_zone]
    )
    # The language of the mail Herald itself sends (double opt-in confirmation …).
    language = models.CharField(
        _("language"),
        max_length=8,
        choices=Language.choices,
        default=Language.EN,
        help_text=_("The language of the emails Herald sends on its own, e.g. confirmations."),
    )
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


class UserPreference(models.Model):
    """A workspace user's own choices; the language wins over the browser's
    (config.core.i18n.UserLanguageMiddleware)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    language = models.CharField(max_length=8, choices=Language.choices, blank=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.language or 'browser'})"


class Heartbeat(models.Model):
    """Last time a background process proved it is alive (beat → broker → worker → database)."""

    name = models.CharField(max_length=50, primary_key=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


auditlog.register(Organisation)


class APIRight(models.TextChoices):
    """A key's right, as the eSputnik v1 API names its key permissions. What each opens is
    RIGHT_SCOPES below; the README's API section lists the endpoints."""

    FULL = "full", "Full access"
    EVENTS = "events", "Events"
    EVENTS_CONTACTS = "events_contacts", "Events and contacts"
    CONTACTS = "contacts", "Contacts add/update"
    MESSAGES = "messages", "Messages"


class Scope(models.TextChoices):
    """What an endpoint needs; a key's right grants a set of scopes."""

    EVENTS = "events"
    # Adding and updating contacts, and nothing that reads them back or removes them: what a
    # subscribe form or a shop's sync may hold without being able to read or erase the base.
    CONTACTS_ADD_UPDATE = "contacts_add_update"
    # Every contact endpoint: search, read, delete and erase, segments, the custom field
    # catalog, the unsubscribed list.
    CONTACTS = "contacts_all"
    MESSAGES = "messages"
    ACCOUNT = "account"  # any valid key may read the account it belongs to
    MANAGE = "manage"  # everything else: campaigns, templates, orders, Herald's own API…


RIGHT_SCOPES: dict[str, frozenset[str]] = {
    APIRight.FULL: frozenset(Scope.values),
    APIRight.EVENTS: frozenset({Scope.EVENTS, Scope.ACCOUNT}),
    APIRight.EVENTS_CONTACTS: frozenset(
        {Scope.EVENTS, Scope.CONTACTS, Scope.CONTACTS_ADD_UPDATE, Scope.ACCOUNT}
    ),
    APIRight.CONTACTS: frozenset({Scope.CONTACTS_ADD_UPDATE, Scope.ACCOUNT}),
    APIRight.MESSAGES: frozenset({Scope.MESSAGES, Scope.ACCOUNT}),
}


def rights_granting(scope: str) -> list[str]:
    return [right for right in APIRight.values if scope in RIGHT_SCOPES[right]]


class APIKey(models.Model):
    """An integrator's key. Only a SHA-256 of the secret is stored; the secret is shown once."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise the key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    rights = models.CharField(max_length=20, choices=APIRight.choices, default=APIRight.FULL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def grants(self, scope: str) -> bool:
        return scope in RIGHT_SCOPES[self.rights]


auditlog.register(APIKey, exclude_fields=["key_hash", "last_used_at"])


def webhook_key_new() -> str:
    return secrets.token_urlsafe(24)


class Integration(models.Model):
    """A connected provider: an SMTP server, an email service, an HTTP gateway, a messenger
    bot or a service that takes whole campaigns. `kind` names its implementation (the
    registry of campaigns.delivery.providers); `settings` holds what may be shown, the
    credentials are sealed in `secrets_sealed` (config.core.secrets) and never shown back.

    A campaign or template may name its integration; otherwise a channel goes through its
    default integration (`is_default`), else the first enabled one for the channel, else the
    transport configured in the environment (EMAIL_URL, HERALD_SMS_URL, the local outbox)."""

    kind = models.CharField(max_length=40)
    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    channels = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    is_default = models.BooleanField(
        default=False, help_text="The integration its channels go through unless one is named."
    )
    settings = models.JSONField(default=dict, blank=True)
    secrets_sealed = models.TextField(blank=True, editable=False)
    # The secret part of the integration's webhook URL (/webhooks/<key>/).
    webhook_key = models.CharField(
        max_length=64, unique=True, default=webhook_key_new, editable=False
    )
    rate_limit = models.FloatField(
        default=0, help_text="Messages per second across all workers; 0 = no limit."
    )
    last_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    stats_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def secrets(self) -> dict[str, str]:
        """The credentials, opened (env: references resolved)."""
        return secrets_open(self.secrets_sealed)


auditlog.register(Integration, exclude_fields=["secrets_sealed", "updated_at"])


class StoredFile(models.Model):
    """A file kept by config.core.storage.DatabaseStorage: uploads and editor images live in
    PostgreSQL, which every web and worker machine already reaches, so no process reads a
    file another one wrote to its own disk. The bytes are in StoredFileChunk rows."""

    name = models.CharField(max_length=255, unique=True)
    size = models.BigIntegerField(default=0, help_text="Bytes.")
    chunk_size = models.PositiveIntegerField(help_text="Bytes per chunk (the last may be shorter).")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.name


class StoredFileChunk(models.Model):
    """One piece of a stored file: reading and writing hold a chunk in memory, never the
    whole file."""

    file = models.ForeignKey(StoredFile, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["file", "number"], name="stored_file_chunk_unique")
        ]

    def __str__(self) -> str:
        return f"{self.file_id}#{self.number}"
