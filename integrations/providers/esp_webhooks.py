"""Tracking webhooks of the email services Herald reaches through django-anymail:
authentication as each service defines it, and Anymail's normalised tracking events turned
into feedback actions.

Decisions:
- Parsing is Anymail's own (`<Esp>TrackingWebhookView.parse_events`), fed a Django request
  rebuilt from the stored WebhookCall, so a replay from admin parses exactly what arrived.
  Anymail's own checks are not run: they read one global ANYMAIL WEBHOOK_SECRET, while each
  Herald integration has its own secret, checked here first.
- Authentication: HTTP basic auth (SendGrid, Postmark, Brevo, SparkPost, Amazon SES via SNS);
  Mailgun's HMAC-SHA256 of timestamp + token with the signing key; Resend's Svix signature.
  The signed ones also go through the 5-minute window and a nonce. Mailgun's nonce is its
  token; Resend's is svix-id with svix-timestamp, because Svix signs every retry of an
  event anew under the same svix-id (a retry after our 500 must get through), while the very
  same signed request twice is refused.
- Statuses: a bounce the service types as temporary (SES Transient/Undetermined, SendGrid
  "blocked", Postmark SoftBounce/Transient/DnsError bounce records, Mailgun "old" (gave up
  retrying temporary failures), Brevo soft_bounce, SparkPost bounce classes other than
  10/30/90, Resend Transient) is a soft bounce: it counts toward the soft-bounce limit
  instead of suppressing at once. A delay notice the service follows with its own retries
  (SendGrid/Brevo "deferred", Mailgun failures of "temporary" severity, SparkPost "delay",
  Resend "delivery_delayed") changes nothing: on the ledger a bounce is final, and the
  message may still be delivered.
- A body that is not the service's format is WebhookMalformed (stored, 400, nothing
  applied); anything else that fails is a parser bug (500, kept for replay).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable
from functools import cache
from io import BytesIO
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from anymail.exceptions import AnymailError
from anymail.signals import AnymailTrackingEvent, EventType
from django.core.handlers.wsgi import WSGIRequest
from django.utils.module_loading import import_string

from campaigns.delivery.feedback import (
    Action,
    Unsubscribe,
    UpdateDeliveryStatus,
    WebhookResult,
)
from campaigns.delivery.providers import (
    DeliveryStatus,
    NotSupported,
    ProviderError,
    WebhookCall,
    WebhookRefused,
)
from integrations.providers.outbound import provider_urlopen
from integrations.webhook_auth import (
    basic_auth_check,
    hmac_b64,
    hmac_hex,
    nonce_check,
    secret_equal,
    timestamp_check,
)
from integrations.webhooks import WebhookMalformed

if TYPE_CHECKING:
    from campaigns.delivery.providers import Provider

# The Anymail tracking view of each service, by Anymail's ESP name.
TRACKING_VIEWS: dict[str, str] = {
    "amazon_ses": "anymail.webhooks.amazon_ses.AmazonSESTrackingWebhookView",
    "sendgrid": "anymail.webhooks.sendgrid.SendGridTrackingWebhookView",
    "mailgun": "anymail.webhooks.mailgun.MailgunTrackingWebhookView",
    "postmark": "anymail.webhooks.postmark.PostmarkTrackingWebhookView",
    "brevo": "anymail.webhooks.brevo.BrevoTrackingWebhookView",
    "sparkpost": "anymail.webhooks.sparkpost.SparkPostTrackingWebhookView",
    "resend": "anymail.webhooks.resend.ResendTrackingWebhookView",
}
LABELS: dict[str, str] = {
    "amazon_ses": "Amazon SES",
    "sendgrid": "SendGrid",
    "mailgun": "Mailgun",
    "postmark": "Postmark",
    "brevo": "Brevo",
    "sparkpost": "SparkPost",
    "resend": "Resend",
}
BASIC_AUTH = frozenset({"amazon_ses", "sendgrid", "postmark", "brevo", "sparkpost"})

# SparkPost bounce classes that say the address itself is bad (Invalid Recipient, No RCPT,
# Unsubscribe); the rest (soft, block, admin, undetermined) may pass.
SPARKPOST_HARD_CLASSES = frozenset({"10", "30", "90"})
POSTMARK_SOFT_TYPES = frozenset({"SoftBounce", "Transient", "DnsError"})
# Where Amazon SNS sends subscription confirmations from (the SubscribeURL's host).
SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
SNS_CONFIRM_TIMEOUT = 10  # seconds; SNS waits 15 s for our answer

_STATUSES: dict[str, DeliveryStatus] = {
    EventType.QUEUED: DeliveryStatus.SENT,
    EventType.SENT: DeliveryStatus.SENT,
    EventType.DELIVERED: DeliveryStatus.DELIVERED,
    EventType.OPENED: DeliveryStatus.OPENED,
    EventType.CLICKED: DeliveryStatus.CLICKED,
    EventType.BOUNCED: DeliveryStatus.BOUNCED,
    EventType.COMPLAINED: DeliveryStatus.COMPLAINED,
    EventType.UNSUBSCRIBED: DeliveryStatus.UNSUBSCRIBED,
    EventType.REJECTED: DeliveryStatus.FAILED,
    EventType.FAILED: DeliveryStatus.FAILED,
}

# What a payload that is not the service's makes Anymail's parsers raise.
_MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, AnymailError)


class WebhookChallenge(WebhookRefused):
    """Refused, with the headers a 401 should carry (WWW-Authenticate: Amazon SNS sends its
    credentials only after such a challenge)."""

    def __init__(self, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = headers


# --- authentication -------------------------------------------------------------------------


def esp_webhook_authenticate(esp: str, provider: Provider, call: WebhookCall) -> None:
    """Raise WebhookRefused unless `call` is the service's (`esp`: the Anymail ESP name)."""
    if esp not in TRACKING_VIEWS:
        raise NotSupported(f"{esp} webhooks")
    secret = str(provider.setting("webhook_secret") or "")
    if not secret:
        raise WebhookRefused("no webhook secret is configured for this integration")
    if esp in BASIC_AUTH:
        if not call.header("authorization"):
            raise WebhookChallenge(
                "basic authentication required",
                {"WWW-Authenticate": 'Basic realm="Herald webhook", charset="UTF-8"'},
            )
        basic_auth_check(call, secret)
    elif esp == "mailgun":
        _mailgun_check(provider, call, secret)
    elif esp == "resend":
        _svix_check(provider, call, secret)


def _mailgun_check(provider: Provider, call: WebhookCall, key: str) -> None:
    """Mailgun signs HMAC-SHA256(signing key, timestamp + token), hex; in the JSON body's
    "signature" block, or among the form fields of its legacy webhooks."""
    try:
        request = django_request(call)
        if request.content_type == "application/json":
            block = json.loads(call.body.decode("utf-8"))["signature"]
        else:
            block = request.POST
        token, timestamp, signature = (str(block[k]) for k in ("token", "timestamp", "signature"))
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookRefused("no Mailgun signature in the request") from exc
    if not secret_equal(signature, hmac_hex(key, f"{timestamp}{token}".encode())):
        raise WebhookRefused("wrong Mailgun signature")
    timestamp_check(timestamp, call)
    nonce_check(provider.integration, f"mailgun:{token}", call)


def _svix_check(provider: Provider, call: WebhookCall, secret: str) -> None:
    """Svix (Resend): svix-signature holds "v1,<base64 HMAC-SHA256>" entries, separated by
    spaces, of "<svix-id>.<svix-timestamp>.<body>" under the base64 key after "whsec_"."""
    message_id, stamp = call.header("svix-id"), call.header("svix-timestamp")
    signatures = call.header("svix-signature")
    if not (message_id and stamp and signatures):
        raise WebhookRefused("svix-id, svix-timestamp and svix-signature headers required")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRefused("the integration's signing secret is not a Svix secret") from None
    expected = hmac_b64(key, f"{message_id}.{stamp}.".encode() + call.body)
    given = [part.partition(",")[2] for part in signatures.split() if part.startswith("v1,")]
    if not any(secret_equal(signature, expected) for signature in given):
        raise WebhookRefused("wrong Svix signature")
    timestamp_check(stamp, call)
    nonce_check(provider.integration, f"svix:{message_id}:{stamp}", call)


# --- parsing --------------------------------------------------------------------------------


def django_request(call: WebhookCall) -> WSGIRequest:
    """The Django request Anymail's views read, rebuilt from a stored call (cached on it)."""
    cached = call.extra.get("django_request")
    if isinstance(cached, WSGIRequest):
        return cached
    environ: dict[str, Any] = {
        "REQUEST_METHOD": (call.method or "POST").upper(),
        "PATH_INFO": call.path or "/",
        "SCRIPT_NAME": "",
        "QUERY_STRING": urlencode(
            [(name, value) for name, values in call.query.items() for value in values]
        ),
        "REMOTE_ADDR": call.remote_addr,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "443",
        "wsgi.url_scheme": "https",
        "wsgi.input": BytesIO(call.body),
    }
    for name, value in call.headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    environ["CONTENT_LENGTH"] = str(len(call.body))
    request = WSGIRequest(environ)
    # Read already: DATA_UPLOAD_MAX_MEMORY_SIZE (for forms) must not cut off a batch.
    request._body = call.body
    call.extra["django_request"] = request
    return request


@cache
def tracking_view(esp: str) -> Any:
    """Anymail's tracking view of `esp`, without its __init__: that reads the global ANYMAIL
    settings (secrets, boto3 sessions) Herald does not use; parse_events needs none of it."""
    cls = import_string(TRACKING_VIEWS[esp])
    return cls.__new__(cls)


def esp_webhook_parse(esp: str, provider: Provider, call: WebhookCall) -> WebhookResult:
    """The actions of a tracking webhook request of `esp`; WebhookMalformed for a body that is
    not the service's."""
    if esp not in TRACKING_VIEWS:
        raise NotSupported(f"{esp} webhooks")
    if esp == "amazon_ses":
        return _ses_parse(provider, call)
    events = _events_read(esp, call)
    return WebhookResult(actions=tracking_actions(esp, events, source=provider.integration.name))


def _malformed(esp: str, exc: BaseException | str) -> WebhookMalformed:
    what = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return WebhookMalformed(f"not a {LABELS[esp]} tracking webhook payload ({what})"[:500])


def _events_read(esp: str, call: WebhookCall) -> list[AnymailTrackingEvent]:
    view = tracking_view(esp)
    request = django_request(call)
    try:
        if esp == "brevo" and call.body.lstrip()[:1] == b"[":
            # Brevo's batched webhooks post a JSON array of its usual events.
            events = [view.esp_to_anymail_event(item) for item in json.loads(call.body)]
        else:
            events = view.parse_events(request)
    except _MALFORMED as exc:
        raise _malformed(esp, exc) from exc
    required = {"postmark": "RecordType", "brevo": "event"}.get(esp)
    for event in events:
        if required and not (isinstance(event.esp_event, dict) and required in event.esp_event):
            raise _malformed(esp, f'an event without "{required}"')
    return events


def _ses_parse(provider: Provider, call: WebhookCall) -> WebhookResult:
    """Amazon SES posts through Amazon SNS: a SubscriptionConfirmation (confirmed by loading
    its SubscribeURL), then Notifications whose "Message" is the SES event."""
    try:
        sns = call.json()
        kind = sns["Type"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _malformed("amazon_ses", exc) from exc
    for header, field in (
        ("x-amz-sns-message-type", "Type"),
        ("x-amz-sns-message-id", "MessageId"),
    ):
        if call.header(header) != str(sns.get(field, "")):
            raise _malformed("amazon_ses", f"the {header} header does not match {field}")
    if kind == "SubscriptionConfirmation":
        sns_subscription_confirm(provider, str(sns.get("SubscribeURL") or ""))
        return WebhookResult()
    if kind != "Notification":
        return WebhookResult()  # UnsubscribeConfirmation: nothing to do
    message = sns.get("Message")
    if message == "Successfully validated SNS topic for Amazon SES event publishing.":
        return WebhookResult()
    view = tracking_view("amazon_ses")
    try:
        ses_event = json.loads(message)
        events = view.esp_to_anymail_events(ses_event, sns)
    except _MALFORMED as exc:
        raise _malformed("amazon_ses", exc) from exc
    actions = tracking_actions("amazon_ses", events, source=provider.integration.name)
    return WebhookResult(actions=actions)


def sns_subscription_confirm(provider: Provider, url: str) -> None:
    """Confirm an SNS subscription by loading its SubscribeURL: an Amazon SNS address over
    https, or one under the integration's `sns_endpoint_url` setting (a private endpoint)."""
    parts = urlsplit(url)
    endpoint = str(provider.setting("sns_endpoint_url") or "")
    official = parts.scheme == "https" and bool(SNS_HOST.fullmatch(parts.hostname or ""))
    if not (official or (endpoint and url.startswith(endpoint.rstrip("/") + "/"))):
        raise _malformed("amazon_ses", "the SubscribeURL is not an Amazon SNS address")
    try:
        with provider_urlopen(url, timeout=SNS_CONFIRM_TIMEOUT) as answer:
            answer.read()
    except OSError as exc:
        # Not confirmed: a 500 makes SNS send the confirmation again; the request is kept.
        raise ProviderError(f"confirming the SNS subscription failed: {exc}") from exc


# --- events → actions -----------------------------------------------------------------------


def _bounce_is_soft(esp: str, raw: Any) -> bool:
    raw = raw if isinstance(raw, dict) else {}
    if esp == "amazon_ses":
        return raw.get("bounce", {}).get("bounceType") in ("Transient", "Undetermined")
    if esp == "sendgrid":
        return raw.get("type") == "blocked"
    if esp == "mailgun":
        return raw.get("event-data", {}).get("reason") == "old"
    if esp == "postmark":
        return raw.get("Type") in POSTMARK_SOFT_TYPES
    if esp == "brevo":
        return raw.get("event") == "soft_bounce"
    if esp == "sparkpost":
        inner: dict[str, Any] = next(iter(raw.get("msys", {}).values()), {})
        return str(inner.get("bounce_class", "")) not in SPARKPOST_HARD_CLASSES
    if esp == "resend":
        bounce = (raw.get("data") or {}).get("bounce") or {}
        return bounce.get("type") in ("Transient", "Undetermined")
    return False


def tracking_status(esp: str, event: AnymailTrackingEvent) -> DeliveryStatus | None:
    """The delivery status an Anymail tracking event reports, or None for one that changes
    nothing (deferred, autoresponder, subscribed, unknown)."""
    raw = event.esp_event
    if (
        esp == "postmark"
        and isinstance(raw, dict)
        and raw.get("RecordType") == "Bounce"
        and raw.get("Type") in POSTMARK_SOFT_TYPES
    ):
        # A bounce record Postmark types as temporary (Anymail calls two of them deferred).
        return DeliveryStatus.SOFT_BOUNCED
    status = _STATUSES.get(event.event_type)
    if status == DeliveryStatus.BOUNCED and _bounce_is_soft(esp, raw):
        return DeliveryStatus.SOFT_BOUNCED
    return status


def _event_hash(esp: str, event: AnymailTrackingEvent) -> str:
    """A stable id for an event the service gives none (Brevo): the same report again hashes
    the same."""
    raw = event.esp_event
    body = json.dumps(raw, sort_keys=True, default=str) if isinstance(raw, dict | list) else ""
    seed = f"{esp}|{event.event_type}|{event.message_id}|{event.recipient}|{event.timestamp}|{body}"
    return f"{esp}:{hashlib.sha256(seed.encode()).hexdigest()[:40]}"


def _detail(event: AnymailTrackingEvent) -> str:
    parts = [str(p).strip() for p in (event.description, event.mta_response) if p]
    text = "; ".join(dict.fromkeys(p for p in parts if p))
    return (text or str(event.reject_reason or ""))[:2000]


def tracking_actions(
    esp: str, events: Iterable[AnymailTrackingEvent], *, source: str = ""
) -> list[Action]:
    """Feedback actions for Anymail tracking events: a status change per event (found by
    metadata["herald_id"], else the service's message id), and an Unsubscribe for each
    unsubscribe."""
    actions: list[Action] = []
    for event in events:
        status = tracking_status(esp, event)
        if status is None:
            continue
        metadata = event.metadata if isinstance(event.metadata, dict) else {}
        recipient = str(event.recipient or "")
        actions.append(
            UpdateDeliveryStatus(
                status=status,
                email=recipient,
                message_id=str(event.message_id or ""),
                herald_id=str(metadata.get("herald_id") or ""),
                event_id=str(event.event_id or "") or _event_hash(esp, event),
                detail=_detail(event),
                url=str(event.click_url or "") if status == DeliveryStatus.CLICKED else "",
                at=event.timestamp,
            )
        )
        if status == DeliveryStatus.UNSUBSCRIBED and recipient:
            raw = event.esp_event if isinstance(event.esp_event, dict) else {}
            group = str(raw.get("asm_group_id") or "")  # SendGrid's unsubscribe groups
            where = f"at {source or LABELS[esp]}"
            actions.append(
                Unsubscribe(
                    email=recipient,
                    external_id=group,
                    all=not group,
                    reason=f"unsubscribed from group {group} {where}"
                    if group
                    else f"unsubscribed {where}",
                )
            )
    return actions
