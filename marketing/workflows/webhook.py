"""Webhook steps: a signed JSON POST to a URL a marketer typed, never into Herald's own
network. Addresses are checked and pinned with contacts.fetch (the SSRF rules of file
imports, and the same setting that relaxes them for development and tests)."""

import hashlib
import hmac
import http.client
import json
import ssl
import time
from urllib.parse import urlsplit

from config.core.errors import HeraldError
from contacts.fetch import (
    FetchError,
    _PinnedHTTPConnection,
    _PinnedHTTPSConnection,
    host_refusal,
    private_urls_allowed,
    resolve_checked,
)

TIMEOUT = 10.0  # seconds per socket operation: a slow receiver holds a worker, not a run
SIGNATURE_HEADER = "X-Herald-Signature"
TIMESTAMP_HEADER = "X-Herald-Timestamp"


class WebhookError(HeraldError):
    """The call failed; `permanent` says whether trying again can help."""

    # The receiver failed us, not the caller's input (only the workflow engine meets it).
    status = 502

    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


def webhook_url_refusal(url: str) -> str | None:
    """Why a webhook step may not call `url`, or None: asked where the URL is typed and when
    the workflow is activated, so a marketer learns it then rather than from a failed run.
    Not http(s), no host, a bad port, or an inside address in any spelling (the rules of
    contacts.fetch.host_refusal, lifted by the same setting). webhook_post checks again at
    each call: a name's DNS answer may change after the check."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return "the webhook URL must start with http:// or https://"
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return "the webhook URL has an invalid port"
    reason = host_refusal(parts.hostname, port)
    if reason:
        return f"the webhook URL must be a public internet address: {reason}"
    return None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>": the timestamp stops replays of old bodies."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def webhook_post(
    *, url: str, payload: dict, secret: str, idempotency_key: str, allow_private: bool | None = None
) -> int:
    """POST `payload` as JSON; returns the HTTP status of a 2xx answer, raises WebhookError
    otherwise. Redirects are not followed (a receiver must answer where it was configured)."""
    if allow_private is None:
        allow_private = private_urls_allowed()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"{url!r} is not an http(s) URL", permanent=True)
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise WebhookError(f"{url!r} has an invalid port", permanent=True) from None
    try:
        addresses = resolve_checked(parts.hostname, port, allow_private=allow_private)
    except FetchError as exc:
        message = str(exc).replace("download from", "call")
        message = message.replace("fetches files from", "calls webhooks at")
        # A refused address stays refused; a name that does not resolve may come back.
        return_permanent = "Refusing" in message
        raise WebhookError(message, permanent=return_permanent) from None
    body = json.dumps(payload, default=str, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    last_error: Exception | None = None
    for address in addresses:
        conn = connection_class(parts.hostname, port, address=address, timeout=TIMEOUT)
        try:
            conn.request(
                "POST",
                path,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "Herald-workflows/1",
                    TIMESTAMP_HEADER: timestamp,
                    SIGNATURE_HEADER: signature(secret, timestamp, body),
                    "Idempotency-Key": idempotency_key,
                },
            )
            response = conn.getresponse()
            response.read(64 * 1024)
        except ssl.SSLError as exc:
            conn.close()
            message = f"TLS error talking to {parts.hostname}: {exc}"
            raise WebhookError(message, permanent=False) from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            last_error = exc
            continue
        conn.close()
        if 200 <= response.status < 300:
            return response.status
        # Timeouts, throttling and server errors pass; other client errors will not.
        transient = response.status >= 500 or response.status in (408, 429)
        raise WebhookError(
            f"{parts.hostname} answered HTTP {response.status} {response.reason}",
            permanent=not transient,
        )
    raise WebhookError(f"cannot connect to {parts.hostname}:{port}: {last_error}", permanent=False)
