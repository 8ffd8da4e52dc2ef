"""Inbound webhook security, one table row per provider whose requests are signed: the
email services' Mailgun and Resend (Svix) webhooks, the contract service's webhook, the
generic HTTP gateway's HMAC webhook and Viber's callbacks. For each, a delivery report:

- with a bad signature, or a timestamp outside the replay window: 401, stored as refused,
  nothing applied;
- the same request again (a replay): refused where the provider signs a one-time value,
  applied once where it repeats its own callbacks (Viber);
- the same event in two different requests (the service's retry): applied once, one ledger
  event."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from campaigns.models import Delivery, DeliveryEvent
from config.core.models import Integration
from config.core.secrets import secrets_seal
from integrations.models import WebhookRequest
from tests.integrations.test_esp_webhooks import make_integration
from tests.support.esp_webhook_payloads import MAILGUN_KEY, SVIX_KEY, SVIX_SECRET
from tests.support.webhooks import post_applied

pytestmark = pytest.mark.django_db
SECRET = "hook-secret-Zq8"
WRONG = "not-the-secret"
STALE = 600  # seconds before now: past the five-minute replay window


@dataclass
class Hook:
    """How one provider reports a delivery and signs the request."""

    connect: Callable[[], Integration]
    channel: str
    # (delivery, event id) -> body
    event: Callable[[Delivery, str], bytes]
    # (body, key is right, seconds ago) -> headers; under "body", the body itself when the
    # signature travels inside it (Mailgun) or the timestamp does (Viber)
    sign: Callable[[bytes, bool, float], dict[str, str]]
    # Whether the same request twice is refused (a signed nonce) or applied once.
    nonce: bool = True


def _hmac_hex(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


# --- Mailgun: the signature signs a timestamp and a one-time token inside the body ----------


def _mailgun_event(delivery: Delivery, event_id: str) -> bytes:
    # Signed below: the token makes each request unique, the event id names the event.
    return json.dumps(
        {
            "event-data": {
                "id": event_id,
                "event": "delivered",
                "timestamp": time.time(),
                "recipient": delivery.locator,
                "message": {"headers": {"message-id": delivery.provider_message_id.strip("<>")}},
            }
        }
    ).encode()


def _mailgun_sign(body: bytes, right: bool, ago: float) -> dict[str, str]:
    data = json.loads(body)
    if "signature" not in data:
        stamp, token = str(int(time.time() - ago)), uuid.uuid4().hex
        key = MAILGUN_KEY if right else WRONG
        data["signature"] = {
            "timestamp": stamp,
            "token": token,
            "signature": _hmac_hex(key, f"{stamp}{token}".encode()),
        }
    return {"body": json.dumps(data).encode()}


# --- Resend (Svix): svix-id, svix-timestamp and the signature of both with the body --------


def _resend_event(delivery: Delivery, event_id: str) -> bytes:
    return json.dumps(
        {
            "type": "email.delivered",
            "created_at": "2026-12-08T01:00:00.000Z",
            "data": {
                "email_id": delivery.provider_message_id,
                "to": [delivery.locator],
                "from": "shop@example.com",
                "subject": "Hi",
                "created_at": "2026-12-08T01:00:00.000Z",
            },
            "_event": event_id,
        }
    ).encode()


def _svix_sign(body: bytes, right: bool, ago: float) -> dict[str, str]:
    msg_id, stamp = json.loads(body)["_event"], str(int(time.time() - ago))
    key = SVIX_KEY if right else b"another-key-entirely-32-bytes!!!"
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "HTTP_SVIX_ID": msg_id,
        "HTTP_SVIX_TIMESTAMP": stamp,
        "HTTP_SVIX_SIGNATURE": "v1," + base64.b64encode(digest).decode(),
    }


# --- the contract service and the generic gateway: HMAC of "<timestamp>.<body>" --------------


def _contract_event(delivery: Delivery, event_id: str) -> bytes:
    action = {
        "type": "UpdateDeliveryStatus",
        "status": "delivered",
        "heraldId": str(delivery.request_id),
        "eventId": event_id,
    }
    return json.dumps({"actions": [action]}).encode()


def _stamp_sign(stamp_header: str, signature_header: str, prefix: str = ""):
    def sign(body: bytes, right: bool, ago: float) -> dict[str, str]:
        stamp = str(int(time.time() - ago))
        digest = _hmac_hex(SECRET if right else WRONG, f"{stamp}.".encode() + body)
        return {stamp_header: stamp, signature_header: prefix + digest}

    return sign


def _gateway_event(delivery: Delivery, event_id: str) -> bytes:
    event = {"msg": delivery.provider_message_id, "state": "dlvrd", "uid": event_id}
    return json.dumps({"events": [event]}).encode()


def _gateway() -> Integration:
    from integrations.providers.http_generic import GenericHttpProvider

    values = {
        "send_url": "https://gateway.example/v1/messages",
        "method": "POST",
        "auth_header_name": "Authorization",
        "auth_header_value": "Bearer t",
        "body_template": json.dumps({"to": "{{to}}"}),
        "response_id_pointer": "/id",
        "success_codes": "200-299",
        "webhook_events_pointer": "/events",
        "webhook_message_id_pointer": "/msg",
        "webhook_status_pointer": "/state",
        "webhook_event_id_pointer": "/uid",
        "webhook_status_map": json.dumps({"dlvrd": "delivered"}),
        "webhook_auth": "hmac",
        "webhook_auth_header": "X-Gw-Signature",
        "webhook_signature_encoding": "hex",
        "webhook_signature_prefix": "sha256=",
        "webhook_timestamp_header": "X-Gw-Timestamp",
        "webhook_secret": SECRET,
    }
    cleaned = GenericHttpProvider.settings_validate(values)
    secret_names = {f.name for f in GenericHttpProvider.fields if f.secret}
    return Integration.objects.create(
        kind="http",
        name="Gateway",
        channels=["email"],
        settings={k: v for k, v in cleaned.items() if k not in secret_names},
        secrets_sealed=secrets_seal({k: v for k, v in cleaned.items() if k in secret_names}),
    )


# --- Viber: the signature covers the body, whose timestamp (ms) bounds a replay ------------


def _viber_event(delivery: Delivery, event_id: str) -> bytes:
    # Viber's callbacks carry no event id; a repeat is the same body.
    return json.dumps(
        {
            "event": "delivered",
            "timestamp": int(time.time() * 1000),
            "message_token": int(delivery.provider_message_id),
            "user_id": delivery.locator,
        }
    ).encode()


def _viber_sign(body: bytes, right: bool, ago: float) -> dict[str, str]:
    if ago:
        data = json.loads(body)
        data["timestamp"] -= int(ago * 1000)
        body = json.dumps(data).encode()
    return {
        "body": body,
        "HTTP_X_VIBER_CONTENT_SIGNATURE": _hmac_hex(SECRET if right else WRONG, body),
    }


def _integration(kind: str, channel: str, secrets: dict) -> Callable[[], Integration]:
    def connect() -> Integration:
        return Integration.objects.create(
            kind=kind,
            name=kind,
            channels=[channel],
            settings={"api_url": "https://viber.example/pa", "base_url": "https://c.example"},
            secrets_sealed=secrets_seal(secrets),
        )

    return connect


HOOKS = {
    "mailgun": Hook(
        lambda: make_integration("mailgun", MAILGUN_KEY), "email", _mailgun_event, _mailgun_sign
    ),
    "resend": Hook(
        lambda: make_integration("resend", SVIX_SECRET), "email", _resend_event, _svix_sign
    ),
    "contract service": Hook(
        _integration("external", "email", {"api_key": "k", "webhook_secret": SECRET}),
        "email",
        _contract_event,
        _stamp_sign("HTTP_X_TIMESTAMP", "HTTP_X_SIGNATURE"),
    ),
    "http gateway": Hook(
        _gateway,
        "email",
        _gateway_event,
        _stamp_sign("HTTP_X_GW_TIMESTAMP", "HTTP_X_GW_SIGNATURE", "sha256="),
    ),
    "viber": Hook(
        _integration("viber", "viber", {"auth_token": SECRET}),
        "viber",
        _viber_event,
        _viber_sign,
        nonce=False,
    ),
}


def sent(hook: Hook) -> Delivery:
    number = uuid.uuid4().int % 10**15
    locator = "ann@example.com" if hook.channel == "email" else "vb-ann=="
    provider_id = str(number) if hook.channel == "viber" else f"<m.{number}@mail.example>"
    return Delivery.objects.create(
        channel=hook.channel, locator=locator, status="sent", provider_message_id=provider_id
    )


def deliver(client, integration: Integration, body: bytes, headers: dict):
    headers = dict(headers)
    body = headers.pop("body", body)
    return post_applied(
        client,
        f"/webhooks/{integration.webhook_key}/",
        data=body,
        content_type="application/json",
        **headers,
    )


def status_of(delivery: Delivery) -> str:
    delivery.refresh_from_db()
    return delivery.status


@pytest.mark.parametrize("provider", list(HOOKS))
def test_a_bad_signature_or_a_stale_timestamp_is_401_and_applies_nothing(client, provider):
    hook = HOOKS[provider]
    integration = hook.connect()
    delivery = sent(hook)
    body = hook.event(delivery, f"ev-{uuid.uuid4().hex}")
    forged = deliver(client, integration, body, hook.sign(body, False, 0))
    stale = deliver(client, integration, body, hook.sign(body, True, STALE))
    print(f"\n{provider}: forged -> {forged.status_code} {forged.content[:80]!r}")
    print(f"{provider}: stale  -> {stale.status_code} {stale.content[:80]!r}")
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert status_of(delivery) == "sent"
    assert not DeliveryEvent.objects.exists()
    assert list(WebhookRequest.objects.values_list("outcome", flat=True)) == ["refused"] * 2


@pytest.mark.parametrize("provider", list(HOOKS))
def test_the_same_request_twice_is_refused_or_applied_once(client, provider):
    hook = HOOKS[provider]
    integration = hook.connect()
    delivery = sent(hook)
    body = hook.event(delivery, f"ev-{uuid.uuid4().hex}")
    headers = hook.sign(body, True, 0)
    first = deliver(client, integration, body, headers)
    again = deliver(client, integration, body, headers)
    print(f"\n{provider}: first -> {first.status_code}, replayed -> {again.status_code}")
    assert first.status_code == 200, first.content
    assert again.status_code == (401 if hook.nonce else 200), again.content
    assert status_of(delivery) == "delivered"
    assert DeliveryEvent.objects.filter(delivery=delivery, status="delivered").count() == 1


@pytest.mark.parametrize("provider", list(HOOKS))
def test_the_same_event_in_two_requests_is_applied_once(client, provider):
    hook = HOOKS[provider]
    integration = hook.connect()
    delivery = sent(hook)
    event_id = f"ev-{uuid.uuid4().hex}"
    body = hook.event(delivery, event_id)
    assert deliver(client, integration, body, hook.sign(body, True, 0)).status_code == 200
    # The service's retry: a later request (new timestamp, token or signature), same event.
    retry = hook.event(delivery, event_id)
    answer = deliver(client, integration, retry, hook.sign(retry, True, -1))
    print(f"\n{provider}: retry of the event -> {answer.status_code}")
    assert answer.status_code == 200, answer.content
    assert status_of(delivery) == "delivered"
    assert DeliveryEvent.objects.filter(delivery=delivery).count() == 1
