"""SMS gateways: one small interface, a generic HTTP gateway and a file outbox (the default);
and the delivery engine's SMS sender, which hands rendered texts to the configured gateway.

Settings: HERALD_SMS_URL (the HTTP gateway's endpoint; without it SMS go to the outbox),
HERALD_SMS_TOKEN (optional bearer token), HERALD_SMS_TIMEOUT (seconds, default 10).
"""

import json
import threading
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from campaigns.delivery.content import SendContent, sms_sender
from campaigns.delivery.policy import SendError, TransientSendError, http_error
from campaigns.delivery.senders import Message, Outcome, Sender, accepted, permanent, transient
from contacts.models import ChannelType, CustomField

# What a gateway raises when sending failed: the delivery policy's error, whose `permanent`
# says whether retrying the same SMS can succeed (bad number, refused content: no; gateway
# down, timeout, overload: yes).
SMSError = SendError


class SMSGateway:
    name = "sms"

    def send(self, to: str, text: str, sender: str) -> str:
        """Hand one SMS to the gateway; return the gateway's message id. Raises SMSError."""
        raise NotImplementedError


class HTTPGateway(SMSGateway):
    """POSTs `{"to", "text", "from"}` as JSON; expects 2xx with an optional JSON body carrying
    `id` (or `messageId`). 4xx are permanent (except 408/429), 5xx and timeouts transient."""

    name = "http"

    def __init__(self, url: str, token: str = "", timeout: float = 10.0) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout

    def send(self, to: str, text: str, sender: str) -> str:
        body = json.dumps({"to": to, "text": text, "from": sender}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310 (URL from settings)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read(65536)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace").strip()
            raise http_error(exc.code, f"gateway answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransientSendError(f"gateway unreachable: {reason}") from None
        try:
            answer = json.loads(raw) if raw.strip() else {}
        except ValueError:
            answer = {}
        if isinstance(answer, dict):
            found = answer.get("id") or answer.get("messageId")
            if found:
                return str(found)
        return ""


class OutboxGateway(SMSGateway):
    """Development and demo default: one JSON line per SMS in VAR_DIR/outbox/sms.jsonl."""

    name = "outbox"
    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, to: str, text: str, sender: str) -> str:
        message_id = uuid.uuid4().hex
        line = json.dumps(
            {
                "id": message_id,
                "to": to,
                "from": sender,
                "text": text,
                "at": datetime.now(UTC).isoformat(),
            },
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND writes of one line are atomic enough between worker processes; the lock
        # covers threads of one process.
        with self._lock, self.path.open("a", encoding="utf-8") as outbox:
            outbox.write(line + "\n")
        return message_id


def sms_gateway() -> SMSGateway:
    url = settings.HERALD_SMS_URL
    if url:
        return HTTPGateway(url, settings.HERALD_SMS_TOKEN, settings.HERALD_SMS_TIMEOUT)
    return OutboxGateway(Path(settings.VAR_DIR) / "outbox" / "sms.jsonl")


class SMSSender(Sender):
    """The engine's sender for SMS: each rendered text to the configured gateway."""

    channels = frozenset({ChannelType.SMS})

    def __init__(self, content: SendContent, custom_fields: list[CustomField]) -> None:
        super().__init__(content, custom_fields)
        self.gateway = sms_gateway()
        self.name = self.gateway.name
        self.sender = sms_sender(content)

    def send(self, batch: list[Message]) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        for message in batch:
            delivery = message.delivery
            text = message.rendered.text
            if not text.strip():
                outcomes[delivery.pk] = permanent("the message text is empty for this recipient")
                continue
            try:
                provider_id = self.gateway.send(delivery.locator, text, self.sender)
            except SendError as exc:
                outcomes[delivery.pk] = (
                    permanent(str(exc))
                    if exc.permanent
                    else transient(str(exc), throttled=exc.throttled)
                )
                continue
            outcomes[delivery.pk] = accepted(provider_id)
        return outcomes
