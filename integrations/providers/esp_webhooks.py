"""Tracking webhooks of the email services Herald reaches through django-anymail:
authentication as each service defines it, and Anymail's normalised tracking events turned
into feedback actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaigns.delivery.providers import NotSupported, WebhookCall

if TYPE_CHECKING:
    from campaigns.delivery.feedback import WebhookResult
    from campaigns.delivery.providers import Provider


def esp_webhook_authenticate(esp: str, provider: Provider, call: WebhookCall) -> None:
    """Raise WebhookRefused unless `call` is the service's (`esp`: the Anymail ESP name)."""
    raise NotSupported(f"{esp} webhooks")


def esp_webhook_parse(esp: str, provider: Provider, call: WebhookCall) -> WebhookResult:
    raise NotSupported(f"{esp} webhooks")
