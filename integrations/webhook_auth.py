"""How webhook requests prove they come from the provider, the checks every provider shares:
constant-time comparison of secrets, HMAC signatures, HTTP basic auth, and the replay window
(a timestamped request older than REPLAY_WINDOW, or one already accepted, is refused)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.delivery.providers import WebhookCall, WebhookRefused
from config.core.models import Integration
from integrations.models import WebhookNonce

REPLAY_WINDOW = timedelta(minutes=5)
# Headers that carry a credential itself (basic auth, a bearer token, a shared secret, a
# cookie), as opposed to a signature derived from one: a stored request keeps them masked, so
# neither the database nor its backups hold a service's password. Signatures stay, so a
# replay checks them again.
_CREDENTIAL_HEADER = re.compile(r"authorization|cookie|secret|token|key|password")
CREDENTIAL_MASK = "[masked]"


def headers_storable(headers: dict[str, str]) -> dict[str, str]:
    """`headers` as a stored request keeps them: each credential header masked."""
    return {
        name: CREDENTIAL_MASK if _CREDENTIAL_HEADER.search(name) else value
        for name, value in headers.items()
    }


def secret_equal(given: str | bytes, expected: str | bytes) -> bool:
    """Constant-time comparison (hmac.compare_digest), for any secret a request presents."""
    if isinstance(given, str):
        given = given.encode()
    if isinstance(expected, str):
        expected = expected.encode()
    return bool(expected) and hmac.compare_digest(given, expected)


def hmac_hex(key: str | bytes, message: bytes, digest: str = "sha256") -> str:
    key_bytes = key.encode() if isinstance(key, str) else key
    return hmac.new(key_bytes, message, getattr(hashlib, digest)).hexdigest()


def hmac_b64(key: str | bytes, message: bytes, digest: str = "sha256") -> str:
    key_bytes = key.encode() if isinstance(key, str) else key
    return base64.b64encode(
        hmac.new(key_bytes, message, getattr(hashlib, digest)).digest()
    ).decode()


def basic_auth_check(call: WebhookCall, credentials: str) -> None:
    """Refuse unless the request carries HTTP basic auth `user:password` = `credentials`."""
    header = call.header("authorization")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise WebhookRefused("basic authentication required")
    try:
        given = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise WebhookRefused("malformed basic authentication") from None
    if not secret_equal(given, credentials):
        raise WebhookRefused("wrong webhook credentials")


def shared_secret_check(given: str, expected: str, what: str = "webhook secret") -> None:
    if not secret_equal(given or "", expected or ""):
        raise WebhookRefused(f"wrong or missing {what}")


def timestamp_check(when: datetime | float | int | str, call: WebhookCall) -> None:
    """Refuse a request signed more than REPLAY_WINDOW before (or after) it arrived. A
    replay from admin (call.extra["replay"]) skips the window: it was checked when it came."""
    if call.extra.get("replay"):
        return
    try:
        stamp = when if isinstance(when, datetime) else datetime.fromtimestamp(float(when), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise WebhookRefused("malformed timestamp") from None
    received = call.received_at or timezone.now()
    if abs(received - stamp) > REPLAY_WINDOW:
        raise WebhookRefused("timestamp outside the 5-minute replay window")


def nonce_check(integration: Integration, nonce: str, call: WebhookCall) -> None:
    """Refuse a signed request whose nonce (signature, delivery id) was accepted before.
    Nonces older than the window are forgotten (the timestamp check refuses those requests)."""
    if call.extra.get("replay") or not nonce:
        return
    try:
        with transaction.atomic():
            WebhookNonce.objects.create(integration=integration, nonce=nonce[:255])
    except IntegrityError:
        raise WebhookRefused("this request was already received (replay)") from None


def nonces_forget(older_than: timedelta = REPLAY_WINDOW * 2) -> int:
    deleted, _ = WebhookNonce.objects.filter(seen_at__lt=timezone.now() - older_than).delete()
    return deleted
