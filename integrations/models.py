from auditlog.registry import auditlog
from django.conf import settings
from django.db import models


class APIRight(models.TextChoices):
    FULL = "full", "Full access"
    EVENTS = "events", "Events"
    EVENTS_CONTACTS = "events_contacts", "Events and contacts"
    CONTACTS = "contacts", "Contacts add/update"
    MESSAGES = "messages", "Messages"


class Scope(models.TextChoices):
    """What an endpoint needs; a key's right grants a set of scopes."""

    EVENTS = "events"
    CONTACTS = "contacts"
    MESSAGES = "messages"
    ACCOUNT = "account"  # any valid key may read the account it belongs to
    MANAGE = "manage"  # everything else: campaigns, templates, segments, orders…


RIGHT_SCOPES: dict[str, frozenset[str]] = {
    APIRight.FULL: frozenset(Scope.values),
    APIRight.EVENTS: frozenset({Scope.EVENTS, Scope.ACCOUNT}),
    APIRight.EVENTS_CONTACTS: frozenset({Scope.EVENTS, Scope.CONTACTS, Scope.ACCOUNT}),
    APIRight.CONTACTS: frozenset({Scope.CONTACTS, Scope.ACCOUNT}),
    APIRight.MESSAGES: frozenset({Scope.MESSAGES, Scope.ACCOUNT}),
}


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
