"""Generic HTTP: an email or SMS service Herald does not know, connected without code.

The marketer describes the service's JSON API in the integration's settings:

- Sending: one request per message to `send_url` (`method`, extra `headers`, and an
  optional secret header, e.g. `Authorization: Bearer …`, sealed with the credentials). The
  body is `body_template`, a JSON document whose strings may hold placeholders — {{to}},
  {{subject}}, {{html}}, {{text}}, {{from}}, {{from_email}}, {{from_name}}, {{message_id}},
  {{request_id}}, {{sms_text}} — replaced inside the parsed document, so a value is always
  a JSON string and can never change the document's shape. The service's message id is read
  from its answer at `response_id_pointer` (a JSON pointer, RFC 6901, e.g. /id or
  /data/0/messageId). An answer outside `success_codes` is a refusal: 429, 408, 5xx and
  timeouts are transient (429 also slows the provider down), any other status permanent,
  with the service's body in the reason.
- Webhook: the events are at `webhook_events_pointer` in the JSON body (empty: the body is
  the list, or a single event). Per event, pointers name the provider's message id,
  Herald's id (the Message-ID or request id, when the service echoes one back), the status,
  an event id, the address, the time, a detail and a clicked URL; `webhook_status_map`
  maps the service's status words onto Herald's delivery statuses (delivered, bounced,
  soft_bounced, complained, opened, clicked, unsubscribed, failed, sent); an event whose
  status is not in the map is ignored. Requests authenticate with a shared secret in a
  header, or an HMAC-SHA256 signature of the raw body (hex or base64, optionally over
  "<timestamp>.<body>" with a timestamp header inside the 5-minute window); a signature
  seen before is refused as a replay.

`settings_validate` checks all of this when the integration is saved: a template that is
not JSON, a pointer that is not one, a status mapped to nothing Herald knows, each is a
FieldError naming the setting.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any, ClassVar
from urllib.parse import urlsplit

from campaigns.delivery.content import SendContent, email_sender, sms_sender
from campaigns.delivery.feedback import Action, UpdateDeliveryStatus, WebhookResult
from campaigns.delivery.policy import http_status_permanent
from campaigns.delivery.providers import (
    DeliveryStatus,
    Provider,
    ProviderError,
    SettingField,
    WebhookCall,
    WebhookRefused,
    provider_register,
)
from campaigns.delivery.senders import Message, Outcome, Sender, accepted, permanent, transient
from config.core.errors import FieldError
from contacts.models import ChannelType, CustomField
from integrations.webhook_auth import (
    hmac_b64,
    hmac_hex,
    nonce_check,
    secret_equal,
    shared_secret_check,
    timestamp_check,
)
from integrations.webhooks import WebhookMalformed

# Seconds to wait for a service's answer unless the integration says otherwise.
DEFAULT_TIMEOUT = 10.0
# How much of a service's answer is kept in a refusal's reason (and read at all).
BODY_EXCERPT = 500
ANSWER_MAX_BYTES = 1024 * 1024

PLACEHOLDERS = (
    "to",
    "subject",
    "html",
    "text",
    "from",
    "from_email",
    "from_name",
    "message_id",
    "request_id",
    "sms_text",
)
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


# --- a small JSON-over-HTTP client, shared with the external-campaign provider ---------------


@dataclass
class HttpAnswer:
    status: int
    body: bytes
    headers: dict[str, str]

    def excerpt(self) -> str:
        return self.body[:BODY_EXCERPT].decode("utf-8", "replace").strip()

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body.strip() else None


class HttpUnreachable(ProviderError):
    """No answer: refused connection, DNS, TLS, timeout. Always worth another attempt."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=False)


class HttpClient:
    """Requests to one service over a kept-alive connection per host (one per sender, so per
    task). A reused connection the server has closed meanwhile is opened again and the
    request sent once more: the server closed it idle, so it never saw the request."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def _connection(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        key = (scheme, host, port)
        connection = self._connections.get(key)
        if connection is None:
            if scheme == "https":
                connection = http.client.HTTPSConnection(
                    host, port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
            self._connections[key] = connection
        return connection

    def request(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> HttpAnswer:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProviderError(f"not an http(s) URL: {url}", permanent=True)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent_headers = {"Accept": "application/json", **(headers or {})}
        if body:
            sent_headers.setdefault("Content-Type", "application/json")
        key = (parts.scheme, parts.hostname, port)
        for attempt in (1, 2):
            reused = key in self._connections
            connection = self._connection(*key)
            try:
                connection.request(method, target, body=body or None, headers=sent_headers)
                response = connection.getresponse()
                data = response.read(ANSWER_MAX_BYTES)
                answer = HttpAnswer(
                    response.status, data, {k.lower(): v for k, v in response.getheaders()}
                )
                if response.will_close or len(data) >= ANSWER_MAX_BYTES:
                    self._drop(key)
                return answer
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(key)
                if reused and attempt == 1:
                    continue
                raise HttpUnreachable(f"{parts.hostname} closed the connection: {exc}") from None
            except TimeoutError:
                self._drop(key)
                raise HttpUnreachable(
                    f"{parts.hostname} did not answer within {self.timeout:g} s"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop(key)
                raise HttpUnreachable(f"{parts.hostname} unreachable: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _drop(self, key: tuple[str, str, int]) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for key in list(self._connections):
            self._drop(key)


def answer_error(answer: HttpAnswer, what: str) -> ProviderError:
    """A service's refusal as a ProviderError: 408/429/5xx transient (429 throttled), any
    other status permanent; the service's own words are in the message."""
    return ProviderError(
        f"{what} answered {answer.status}: {answer.excerpt() or '(empty body)'}",
        permanent=http_status_permanent(answer.status),
        throttled=answer.status == 429,
    )


# --- JSON pointers and the body template -----------------------------------------------------


class PointerMissing(LookupError):
    pass


def pointer_check(field: str, pointer: str, *, required: bool = False) -> str:
    pointer = (pointer or "").strip()
    if not pointer:
        if required:
            raise FieldError(field, "A JSON pointer is required, e.g. /id.")
        return ""
    if not pointer.startswith("/"):
        raise FieldError(field, f"{pointer!r} is not a JSON pointer: it must start with '/'.")
    if re.search(r"~(?![01])", pointer):
        raise FieldError(field, f"{pointer!r}: '~' must be followed by 0 or 1 (RFC 6901).")
    return pointer


def pointer_get(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901); '' is the document itself. Raises
    PointerMissing."""
    if not pointer:
        return document
    value = document
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            raise PointerMissing(pointer)
    return value


def body_template_parse(source: str, field: str = "body_template") -> Any:
    """The body template as a JSON document, its placeholders checked."""
    try:
        document = json.loads(source)
    except (TypeError, ValueError) as exc:
        raise FieldError(field, f"Not valid JSON: {exc}.") from None
    unknown = sorted(
        {name for text in _strings(document) for name in _PLACEHOLDER.findall(text)}
        - set(PLACEHOLDERS)
    )
    if unknown:
        raise FieldError(
            field,
            f"Unknown placeholder {{{{{unknown[0]}}}}}; known: "
            + ", ".join(f"{{{{{name}}}}}" for name in PLACEHOLDERS)
            + ".",
        )
    return document


def _strings(document: Any) -> list[str]:
    if isinstance(document, str):
        return [document]
    if isinstance(document, dict):
        return [s for key, value in document.items() for s in (*_strings(key), *_strings(value))]
    if isinstance(document, list):
        return [s for value in document for s in _strings(value)]
    return []


def body_render(document: Any, values: dict[str, str]) -> Any:
    """The template with its placeholders replaced, inside the parsed document: a string
    that is one placeholder becomes the value, placeholders within a longer string are
    replaced in it; either way the value stays a JSON string."""
    if isinstance(document, str):
        return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), ""), document)
    if isinstance(document, dict):
        return {body_render(key, values): body_render(v, values) for key, v in document.items()}
    if isinstance(document, list):
        return [body_render(value, values) for value in document]
    return document


def _json_object(field: str, source: Any, *, values: str = "string") -> dict[str, Any]:
    if source in (None, ""):
        return {}
    if isinstance(source, dict):
        data = source
    else:
        try:
            data = json.loads(source)
        except (TypeError, ValueError) as exc:
            raise FieldError(field, f"Not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise FieldError(field, "Must be a JSON object.")
    if values == "string":
        for key, value in data.items():
            if not isinstance(value, str):
                raise FieldError(field, f"The value of {key!r} must be a string.")
    return data


def success_codes_parse(source: str, field: str = "success_codes") -> list[tuple[int, int]]:
    """'200-299' or '200,201,202' → ranges."""
    ranges = []
    for part in (source or "200-299").replace(" ", "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise FieldError(
                field, f"{part!r} is not a status code or a range like 200-299."
            ) from None
        if not (100 <= first <= last <= 599):
            raise FieldError(field, f"{part!r} is not within 100-599.")
        ranges.append((first, last))
    if not ranges:
        raise FieldError(field, "Name at least one status code.")
    return ranges


def timeout_check(field: str, value: Any) -> float:
    if value in (None, ""):
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise FieldError(field, "Must be a number of seconds.") from None
    if not 0 < seconds <= 120:
        raise FieldError(field, "Must be more than 0 and at most 120 seconds.")
    return seconds


def url_check(field: str, value: Any, *, required: bool = True) -> str:
    url = str(value or "").strip()
    if not url:
        if required:
            raise FieldError(field, "This field is required.")
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FieldError(field, "Must be an http:// or https:// URL.")
    return url


# --- the provider ---------------------------------------------------------------------------

WEBHOOK_POINTERS = (
    ("webhook_message_id_pointer", "Webhook: provider message id", "/message_id"),
    ("webhook_herald_id_pointer", "Webhook: Herald's id (Message-ID or request id)", ""),
    ("webhook_status_pointer", "Webhook: status", "/status"),
    ("webhook_event_id_pointer", "Webhook: event id", ""),
    ("webhook_email_pointer", "Webhook: recipient address", "/email"),
    ("webhook_timestamp_pointer", "Webhook: event time (Unix seconds or ISO 8601)", ""),
    ("webhook_detail_pointer", "Webhook: detail (bounce reason)", ""),
    ("webhook_url_pointer", "Webhook: clicked URL", ""),
)

AUTH_NONE = "none"
AUTH_HEADER = "header"
AUTH_HMAC = "hmac"


@provider_register
class GenericHttpProvider(Provider):
    kind = "http"
    label = "Generic HTTP API (email or SMS)"
    channels = frozenset({ChannelType.EMAIL, ChannelType.SMS})
    fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField("send_url", "Send URL", kind="url", help="One request per message."),
        SettingField(
            "method",
            "Method",
            kind="choice",
            choices=(("POST", "POST"), ("PUT", "PUT")),
            default="POST",
        ),
        SettingField(
            "headers",
            "Headers (JSON object)",
            kind="textarea",
            required=False,
            help='Extra request headers, e.g. {"X-Account": "shop"}.',
        ),
        SettingField(
            "auth_header_name",
            "Authentication header",
            required=False,
            help="e.g. Authorization",
            default="Authorization",
        ),
        SettingField(
            "auth_header_value",
            "Authentication header value",
            secret=True,
            required=False,
            help="e.g. Bearer <token>; stored encrypted.",
        ),
        SettingField(
            "body_template",
            "Body template (JSON)",
            kind="textarea",
            help="Placeholders: " + ", ".join(f"{{{{{name}}}}}" for name in PLACEHOLDERS),
            default='{"to": "{{to}}", "from": "{{from}}", "subject": "{{subject}}", '
            '"html": "{{html}}", "text": "{{text}}", "messageId": "{{message_id}}"}',
        ),
        SettingField(
            "response_id_pointer",
            "Message id in the answer (JSON pointer)",
            required=False,
            default="/id",
        ),
        SettingField("success_codes", "Success status codes", required=False, default="200-299"),
        SettingField("timeout", "Timeout (seconds)", kind="float", required=False, default=10),
        SettingField(
            "test_url",
            "Connection test URL (GET)",
            kind="url",
            required=False,
            help="Without it the test sends OPTIONS to the send URL.",
        ),
        SettingField(
            "webhook_events_pointer",
            "Webhook: events (JSON pointer)",
            required=False,
            help="Empty: the body is the list of events (or one event).",
            default="",
        ),
        *(
            SettingField(name, label, required=False, default=default)
            for name, label, default in WEBHOOK_POINTERS
        ),
        SettingField(
            "webhook_status_map",
            "Webhook: status mapping (JSON object)",
            kind="textarea",
            required=False,
            help='The service\'s status → Herald\'s, e.g. {"hard_bounce": "bounced"}; '
            "a status mapped to nothing is ignored.",
        ),
        SettingField(
            "webhook_auth",
            "Webhook authentication",
            kind="choice",
            choices=(
                (AUTH_HEADER, "Shared secret in a header"),
                (AUTH_HMAC, "HMAC-SHA256 signature of the body"),
                (AUTH_NONE, "None (the secret webhook URL only)"),
            ),
            default=AUTH_HEADER,
        ),
        SettingField(
            "webhook_auth_header",
            "Webhook: secret or signature header",
            required=False,
            default="X-Webhook-Secret",
        ),
        SettingField("webhook_secret", "Webhook secret", secret=True, required=False),
        SettingField(
            "webhook_signature_encoding",
            "Webhook: signature encoding",
            kind="choice",
            choices=(("hex", "hex"), ("base64", "base64")),
            default="hex",
        ),
        SettingField(
            "webhook_signature_prefix",
            "Webhook: signature prefix",
            required=False,
            help="e.g. sha256=",
            default="",
        ),
        SettingField(
            "webhook_timestamp_header",
            "Webhook: timestamp header",
            required=False,
            help="When set, the request must be at most 5 minutes old and the signature "
            "covers '<timestamp>.<body>'.",
            default="",
        ),
    )

    @classmethod
    def settings_validate(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise the settings a connect form submitted (secrets included);
        raise FieldError naming the first bad one."""
        cleaned = dict(values)
        cleaned["send_url"] = url_check("send_url", values.get("send_url"))
        cleaned["test_url"] = url_check("test_url", values.get("test_url"), required=False)
        method = str(values.get("method") or "POST").upper()
        if method not in ("POST", "PUT"):
            raise FieldError("method", "Must be POST or PUT.")
        cleaned["method"] = method
        headers = _json_object("headers", values.get("headers"))
        for name in headers:
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
                raise FieldError("headers", f"{name!r} is not a valid header name.")
        cleaned["headers"] = json.dumps(headers) if headers else ""
        auth_name = str(values.get("auth_header_name") or "").strip()
        if auth_name and not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", auth_name):
            raise FieldError("auth_header_name", f"{auth_name!r} is not a valid header name.")
        source = values.get("body_template") or ""
        if not str(source).strip():
            raise FieldError("body_template", "This field is required.")
        body_template_parse(str(source))
        cleaned["response_id_pointer"] = pointer_check(
            "response_id_pointer", str(values.get("response_id_pointer") or "")
        )
        success_codes_parse(str(values.get("success_codes") or ""))
        cleaned["timeout"] = timeout_check("timeout", values.get("timeout"))
        cleaned["webhook_events_pointer"] = pointer_check(
            "webhook_events_pointer", str(values.get("webhook_events_pointer") or "")
        )
        for name, _label, _default in WEBHOOK_POINTERS:
            cleaned[name] = pointer_check(name, str(values.get(name) or ""))
        status_map = _json_object("webhook_status_map", values.get("webhook_status_map"))
        known = {status.value for status in DeliveryStatus}
        for service_status, herald in status_map.items():
            if herald not in known:
                raise FieldError(
                    "webhook_status_map",
                    f"{service_status!r} maps to {herald!r}, which is not one of: "
                    + ", ".join(sorted(known))
                    + ".",
                )
        cleaned["webhook_status_map"] = json.dumps(status_map) if status_map else ""
        auth = str(values.get("webhook_auth") or AUTH_HEADER)
        if auth not in (AUTH_NONE, AUTH_HEADER, AUTH_HMAC):
            raise FieldError("webhook_auth", "Must be header, hmac or none.")
        if auth != AUTH_NONE:
            if not str(values.get("webhook_secret") or ""):
                raise FieldError("webhook_secret", "Required for this webhook authentication.")
            header = str(values.get("webhook_auth_header") or "").strip()
            if not header:
                raise FieldError("webhook_auth_header", "Name the header the service sends.")
        encoding = str(values.get("webhook_signature_encoding") or "hex")
        if encoding not in ("hex", "base64"):
            raise FieldError("webhook_signature_encoding", "Must be hex or base64.")
        return cleaned

    # Settings as used ------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {
            str(k): str(v) for k, v in _json_object("headers", self.setting("headers")).items()
        }
        value = self.setting("auth_header_value")
        if value:
            headers[str(self.setting("auth_header_name") or "Authorization")] = str(value)
        return headers

    def _timeout(self) -> float:
        return timeout_check("timeout", self.setting("timeout"))

    # Sending ---------------------------------------------------------------------------

    def sender(self, content: SendContent, custom_fields: list[CustomField]) -> Sender:
        return GenericHttpSender(self, content, custom_fields)

    def connection_test(self) -> str:
        client = HttpClient(self._timeout())
        url = self.setting("test_url") or self.setting("send_url")
        method = "GET" if self.setting("test_url") else "OPTIONS"
        try:
            answer = client.request(method, url, headers=self._headers())
        finally:
            client.close()
        if answer.status >= 400 and not (method == "OPTIONS" and answer.status in (404, 405)):
            raise answer_error(answer, f"{method} {url}")
        return f"{method} {url} answered {answer.status}"

    # Webhooks --------------------------------------------------------------------------

    def webhook_authenticate(self, call: WebhookCall) -> None:
        auth = self.setting("webhook_auth", AUTH_HEADER)
        if auth == AUTH_NONE:
            return
        secret = str(self.setting("webhook_secret") or "")
        if not secret:
            raise WebhookRefused("no webhook secret is configured for this integration")
        given = call.header(str(self.setting("webhook_auth_header") or ""))
        stamp_header = str(self.setting("webhook_timestamp_header") or "")
        stamp = call.header(stamp_header) if stamp_header else ""
        if stamp_header:
            if not stamp:
                raise WebhookRefused(f"missing {stamp_header} header")
            timestamp_check(stamp, call)
        if auth == AUTH_HEADER:
            shared_secret_check(given, secret)
            return
        signed = f"{stamp}.".encode() + call.body if stamp_header else call.body
        encoding = self.setting("webhook_signature_encoding", "hex")
        expected = hmac_b64(secret, signed) if encoding == "base64" else hmac_hex(secret, signed)
        prefix = str(self.setting("webhook_signature_prefix") or "")
        if not given or not secret_equal(given.strip(), prefix + expected):
            raise WebhookRefused("wrong or missing webhook signature")
        nonce_check(self.integration, f"sig:{given.strip()}", call)

    def webhook_parse(self, call: WebhookCall) -> WebhookResult:
        try:
            data = call.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookMalformed(f"the body is not JSON: {exc}") from None
        try:
            events = pointer_get(data, str(self.setting("webhook_events_pointer") or ""))
        except PointerMissing:
            raise WebhookMalformed(
                f"no events at {self.setting('webhook_events_pointer')} in the body"
            ) from None
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list):
            raise WebhookMalformed("the events are neither a list nor an object")
        status_map = _json_object("webhook_status_map", self.setting("webhook_status_map"))
        known = {status.value for status in DeliveryStatus}
        actions: list[Action] = []
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                raise WebhookMalformed(f"event {index} is not an object")
            raw_status = self._pick(event, "webhook_status_pointer")
            status = status_map.get(raw_status, raw_status)
            if status not in known:
                continue  # a status the marketer did not map (e.g. "processed")
            action = UpdateDeliveryStatus(
                status=DeliveryStatus(status),
                email=self._pick(event, "webhook_email_pointer"),
                message_id=self._pick(event, "webhook_message_id_pointer"),
                herald_id=self._pick(event, "webhook_herald_id_pointer"),
                event_id=self._pick(event, "webhook_event_id_pointer"),
                detail=self._pick(event, "webhook_detail_pointer"),
                url=self._pick(event, "webhook_url_pointer"),
                at=_when(self._pick(event, "webhook_timestamp_pointer")),
            )
            if not (action.message_id or action.herald_id):
                raise WebhookMalformed(f"event {index} names no message (message id or Herald id)")
            actions.append(action)
        return WebhookResult(actions=actions)

    def _pick(self, event: dict[str, Any], setting: str) -> str:
        pointer = str(self.setting(setting) or "")
        if not pointer:
            return ""
        try:
            value = pointer_get(event, pointer)
        except PointerMissing:
            return ""
        return "" if value is None else str(value)


def _when(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


class GenericHttpSender(Sender):
    """One request per message through a kept-alive connection."""

    def __init__(
        self, provider: GenericHttpProvider, content: SendContent, custom_fields: list[CustomField]
    ) -> None:
        super().__init__(content, custom_fields)
        self.provider = provider
        self.name = provider.name
        self.channels = frozenset(provider.integration.channels) & provider.channels
        self.url = str(provider.setting("send_url"))
        self.method = str(provider.setting("method") or "POST")
        self.headers = provider._headers()
        self.template = body_template_parse(str(provider.setting("body_template") or ""))
        self.id_pointer = str(provider.setting("response_id_pointer") or "")
        self.success = success_codes_parse(str(provider.setting("success_codes") or ""))
        self.client = HttpClient(provider._timeout())
        self.from_header, _ = email_sender(content)
        self.from_name, self.from_email = parseaddr(self.from_header)
        self.sms_from = ""

    def _values(self, message: Message) -> dict[str, str]:
        delivery, rendered = message.delivery, message.rendered
        sms = delivery.channel == ChannelType.SMS
        if sms and not self.sms_from:
            self.sms_from = sms_sender(self.content)
        return {
            "to": delivery.locator,
            "subject": rendered.subject,
            "html": rendered.html,
            "text": rendered.text,
            "sms_text": rendered.text,
            "from": self.sms_from if sms else self.from_header,
            "from_email": "" if sms else self.from_email,
            "from_name": self.sms_from if sms else self.from_name,
            "message_id": delivery.message_id,
            "request_id": delivery.request_id.hex,
        }

    def _one(self, message: Message) -> Outcome:
        body = json.dumps(body_render(self.template, self._values(message))).encode()
        try:
            answer = self.client.request(self.method, self.url, headers=self.headers, body=body)
        except ProviderError as exc:
            if exc.permanent:
                return permanent(exc.message)
            return transient(exc.message, throttled=exc.throttled)
        if not any(low <= answer.status <= high for low, high in self.success):
            error = answer_error(answer, "the service")
            if error.permanent:
                return permanent(error.message)
            return transient(error.message, throttled=error.throttled)
        provider_id = ""
        if self.id_pointer:
            try:
                provider_id = str(pointer_get(answer.json(), self.id_pointer) or "")
            except (ValueError, UnicodeDecodeError, PointerMissing):
                provider_id = ""
        return accepted(provider_id)

    def send(self, batch: list[Message]) -> dict[int, Outcome]:
        return {message.delivery.pk: self._one(message) for message in batch}

    def close(self) -> None:
        self.client.close()
