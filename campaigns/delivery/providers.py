"""Providers: what the engine sends through, one class per kind of integration.

An `Integration` row (config.core.models) is a configured instance: its `kind` names a
`Provider` subclass registered here (`provider_register`, from an app's `ready()`; the
implementations live in the integrations app). A provider:

- makes senders for the channels it serves (`sender()` → campaigns.delivery.senders.Sender);
- tests its connection (`connection_test()`, raising ProviderError with the provider's own
  message);
- turns a webhook request into feedback actions (`webhook_authenticate()`,
  `webhook_parse()` → campaigns.delivery.feedback.WebhookResult);
- where it is an email-marketing service or a messenger that takes whole campaigns, it
  implements the provider contract of the CRM marketing workspace's email-service and
  messenger modules: templates_import (offset/limit paging), contacts_export,
  campaign_prepare (in slices), campaign_create (→ the external id), campaign_stats,
  template_html, template_html_set, and for messengers messenger_campaign_create,
  messenger_types, messenger_bots.

Which integration a send goes through: the one its campaign or send request names, else the
channel's default (`integration_for`), else the transport from the environment (the senders
registered in campaigns.delivery.senders).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from campaigns.delivery.senders import Sender
from config.core.models import Integration

if TYPE_CHECKING:
    from campaigns.delivery.content import SendContent
    from campaigns.delivery.feedback import WebhookResult
    from contacts.models import CustomField


class ProviderError(Exception):
    """A provider's refusal, in its own words. `permanent`: asking again will not help (bad
    credentials, an unknown template); otherwise it may (the service is down, throttling).
    `throttled`: the provider asked us to slow down (HTTP 429, SMTP 421/454, SES
    Throttling)."""

    def __init__(self, message: str, *, permanent: bool = False, throttled: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.throttled = throttled


class NotSupported(ProviderError):
    """This kind of provider does not offer the function (e.g. template import over SMTP)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"this provider does not support {what}", permanent=True)


class WebhookRefused(Exception):
    """The webhook request is not the provider's (bad signature, wrong secret, replayed or
    too old). Answered 401; nothing is applied."""


# --- the provider contract's types ----------------------------------------------------------


class CampaignStatus(enum.StrEnum):
    """A campaign's status at the service (UpdateCampaign action, campaign_stats)."""

    DRAFT = "draft"
    PREPARING = "preparing"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FAILED = "failed"


class CampaignType(enum.StrEnum):
    """What a campaign handed to a service sends."""

    EMAIL = "email"
    SMS = "sms"
    MESSENGER = "messenger"


class DeliveryStatus(enum.StrEnum):
    """A message's status reported by a provider (UpdateDeliveryStatus action). Each maps
    onto the ledger's status of the same name; `soft_bounced` is a bounce that does not
    suppress at once."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    SOFT_BOUNCED = "soft_bounced"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"


class SubscriberStatus(enum.StrEnum):
    """A subscriber's status at the service."""

    SUBSCRIBED = "subscribed"
    UNCONFIRMED = "unconfirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


@dataclass
class ImportedTemplate:
    """One template of the service (templates_import)."""

    external_id: str
    name: str
    subject: str = ""
    html: str = ""
    text: str = ""
    from_name: str = ""
    from_email: str = ""


@dataclass
class CampaignRequest:
    """What campaign_create / messenger_campaign_create receive."""

    campaign_id: str
    name: str
    type: CampaignType
    subject: str = ""
    html: str = ""
    text: str = ""
    from_name: str = ""
    from_email: str = ""
    template_external_id: str = ""
    send_at: datetime | None = None
    # Messenger campaigns: the bot or community to post from, and the messenger type.
    bot_id: str = ""
    messenger_type: str = ""


@dataclass
class CampaignStats:
    """A campaign's figures at the service (campaign_stats, UpdateCampaignStats)."""

    status: CampaignStatus | None = None
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    failed: int = 0

    FIGURES: ClassVar[tuple[str, ...]] = (
        "sent",
        "delivered",
        "opened",
        "clicked",
        "bounced",
        "complained",
        "unsubscribed",
        "failed",
    )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in self.FIGURES}
        data["status"] = str(self.status) if self.status else ""
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CampaignStats:
        """The figures of `as_dict` or of a service's answer (missing ones are 0). Raises
        ValueError for a figure that is not a count or a status that is not a
        CampaignStatus."""
        figures = {}
        for name in cls.FIGURES:
            value = data.get(name, 0) or 0
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a count")
            figures[name] = value
        status = data.get("status") or None
        return cls(status=CampaignStatus(status) if status else None, **figures)


@dataclass
class MessengerBot:
    """A bot or community a messenger campaign may post from."""

    id: str
    name: str
    messenger_type: str
    link: str = ""


@dataclass(frozen=True)
class SocialAccount:
    """A social account a connected provider publishes to (the CRM campaigns API's
    social-profiles: "which account a post is published from")."""

    id: str
    name: str
    platform: str


@dataclass
class WebhookCall:
    """An HTTP request to an integration's webhook, as stored (integrations.WebhookRequest):
    what parsers read, the same for a live request and a replay."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    remote_addr: str = ""
    received_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        import json

        return json.loads(self.body.decode("utf-8"))


# --- the provider ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingField:
    """One setting of a provider kind, as its connect form shows it. `secret` values are
    sealed (Integration.secrets_sealed) and never shown back; the rest go to
    Integration.settings. `kind`: text, url, email, int, float, bool, choice, textarea."""

    name: str
    label: str
    kind: str = "text"
    secret: bool = False
    required: bool = True
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    default: Any = None


class Provider:
    """One kind of integration. Instances wrap an Integration row for one use."""

    #: Registry key, stored in Integration.kind.
    kind: ClassVar[str] = ""
    #: Shown in the "connect a provider" list.
    label: ClassVar[str] = ""
    #: The channels this kind can serve (a row picks some of them).
    channels: ClassVar[frozenset[str]] = frozenset()
    #: The settings its connect form asks for (secret ones are sealed).
    fields: ClassVar[tuple[SettingField, ...]] = ()
    #: Hands whole campaigns to the service (prepare → create → stats) instead of sending
    #: row by row.
    accepts_campaigns: ClassVar[bool] = False
    #: Offers templates_import / template_html / template_html_set.
    has_templates: ClassVar[bool] = False

    def __init__(self, integration: Integration) -> None:
        self.integration = integration
        self.settings: dict[str, Any] = dict(integration.settings or {})
        self._secrets: dict[str, str] | None = None

    @property
    def secrets(self) -> dict[str, str]:
        if self._secrets is None:
            self._secrets = self.integration.secrets()
        return self._secrets

    def setting(self, name: str, default: Any = None) -> Any:
        """A setting or secret by name (secrets first), else the field's default."""
        if name in self.secrets and self.secrets[name] != "":
            return self.secrets[name]
        if name in self.settings and self.settings[name] not in (None, ""):
            return self.settings[name]
        for spec in self.fields:
            if spec.name == name and spec.default is not None:
                return spec.default
        return default

    @property
    def name(self) -> str:
        """Written on the deliveries it sent: kind and integration id ("sendgrid#3")."""
        return provider_label(self.integration)

    # Sending ----------------------------------------------------------------------------

    def sender(self, content: SendContent, custom_fields: list[CustomField]) -> Sender:
        raise NotSupported("sending messages one by one")

    def connection_test(self) -> str:
        """Check the credentials and reachability; return what the provider said. Raises
        ProviderError with the provider's own message."""
        raise NotSupported("a connection test")

    # Webhooks ---------------------------------------------------------------------------

    def webhook_authenticate(self, call: WebhookCall) -> None:
        """Raise WebhookRefused unless the request is the provider's. The default accepts
        what reached the integration's unguessable webhook URL."""

    def webhook_parse(self, call: WebhookCall) -> WebhookResult:
        raise NotSupported("webhooks")

    # The provider contract --------------------------------------------------------------

    def templates_import(self, offset: int, limit: int) -> list[ImportedTemplate]:
        raise NotSupported("template import")

    def contacts_export(self, contact_ids: list[int]) -> None:
        raise NotSupported("contact export")

    def campaign_prepare(self, campaign_id: str, type: CampaignType, contacts: list[str]) -> None:
        raise NotSupported("whole campaigns")

    def campaign_create(self, request: CampaignRequest) -> str:
        raise NotSupported("whole campaigns")

    def campaign_stats(self, external_id: str) -> CampaignStats:
        raise NotSupported("campaign statistics")

    def template_html(self, external_id: str) -> str:
        raise NotSupported("template preview")

    def template_html_set(self, html: str, name: str, external_id: str = "") -> str:
        raise NotSupported("template publishing")

    def messenger_campaign_create(self, request: CampaignRequest) -> str:
        raise NotSupported("messenger campaigns")

    def messenger_types(self) -> list[str]:
        raise NotSupported("messenger types")

    def messenger_bots(self) -> list[MessengerBot]:
        raise NotSupported("messenger bots")

    # Social publishing ------------------------------------------------------------------

    def social_accounts(self, platform: str) -> list[SocialAccount]:
        """The accounts on `platform` (one of the row's channels) posts may go from."""
        raise NotSupported("social accounts")


_PROVIDERS: dict[str, type[Provider]] = {}


def provider_register(cls: type[Provider]) -> type[Provider]:
    """Register a provider kind (usable as a class decorator)."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no kind")
    _PROVIDERS[cls.kind] = cls
    return cls


def provider_kinds() -> dict[str, type[Provider]]:
    return dict(_PROVIDERS)


class UnknownProvider(ProviderError):
    def __init__(self, kind: str) -> None:
        super().__init__(f"no provider of kind {kind!r} is installed", permanent=True)


def provider_of(integration: Integration) -> Provider:
    cls = _PROVIDERS.get(integration.kind)
    if cls is None:
        raise UnknownProvider(integration.kind)
    return cls(integration)


def provider_label(integration: Integration) -> str:
    return f"{integration.kind}#{integration.pk}"


def integration_for(channel: str, integration_id: int | None = None) -> Integration | None:
    """The integration a message on `channel` goes through: the named one when it is enabled
    and serves the channel, else the channel's default, else the first enabled integration
    serving it; None means the transport configured in the environment."""
    enabled = Integration.objects.filter(enabled=True, channels__contains=[channel])
    if integration_id is not None:
        named = enabled.filter(pk=integration_id).first()
        if named is not None:
            return named
    return enabled.order_by("-is_default", "pk").first()


def social_accounts(platform: str | None = None) -> list[SocialAccount]:
    """The accounts of every enabled integration connecting `platform` (every social
    platform its channels hold, when None), defaults first; kinds that list no accounts
    contribute none."""
    rows = Integration.objects.filter(enabled=True).order_by("-is_default", "pk")
    if platform is not None:
        rows = rows.filter(channels__contains=[platform])
    accounts: list[SocialAccount] = []
    for integration in rows:
        provider = _PROVIDERS.get(integration.kind)
        if provider is None or provider.social_accounts is Provider.social_accounts:
            continue
        instance = provider(integration)
        for channel in integration.channels:
            if channel in provider.channels and (platform is None or channel == platform):
                accounts.extend(instance.social_accounts(channel))
    return accounts


def channel_integrations(channel: str) -> list[Integration]:
    return list(
        Integration.objects.filter(enabled=True, channels__contains=[channel]).order_by(
            "-is_default", "pk"
        )
    )
