"""Bounce intake: delivery status notifications (DSN, RFC 3464), complaint reports (ARF,
RFC 5965) and mail to the List-Unsubscribe address, read from a mailbox
(integrations.providers.bounce_mailbox) or the built-in SMTP receiver
(`manage.py bounce_receiver`), turned into feedback actions and applied once.

`mail_read` only reads (no database): what one message says. `mails_process` reads a batch
and applies everything it found in one transaction (campaigns.delivery.feedback
`actions_apply`, and campaigns.tracking `delivery_unsubscribe` for unsubscribe mail);
`mail_process` is the same for one message.

Decisions:
- The message a report is about is found by, in this order: the VERP address it was sent to
  (bounces+<request id>@…, in the envelope recipients we are given or the Delivered-To /
  X-Original-To / Envelope-To / To headers, or an ARF report's Original-Mail-From), the DSN's
  Original-Envelope-Id, the Message-ID of the returned message (message/rfc822 or
  text/rfc822-headers part), then the report's own In-Reply-To / References. For a complaint
  that names none of them, the recipient (Original-Rcpt-To, or the returned message's To)
  stands for the latest message Herald sent that address: the report is about mail from our
  servers, and what matters is that the address stops getting mail.
- DSN, per recipient: Action failed with a 5.x.x Status is a hard bounce, with 4.x.x a soft
  one; 5.2.2 / 4.2.2 (mailbox full) is soft whatever the class, because the address exists.
  Without a Status the Diagnostic-Code's SMTP reply decides (4xx soft, else hard). "delayed"
  is a warning, not a bounce: ignored, as are "relayed" and "expanded"; "delivered" (a DSN
  asked for with NOTIFY=SUCCESS) marks the message delivered.
- The event id of a bounce is the report's own Message-ID and the recipient, of a complaint
  the report's Message-ID: the same report read twice (a mailbox re-read after a crash, an
  MTA that retried) changes nothing. A report without a Message-ID uses a hash of its bytes.
- Non-standard bounces (qmail's "failure notice", a plain "Undelivered Mail Returned to
  Sender", …): a message from MAILER-DAEMON/postmaster or with a bounce-like subject, that
  names one of our messages (VERP or a quoted Message-ID) and carries an enhanced status code
  (5.1.1) or an SMTP reply after "said:" / "error", is read as a failed DSN. Anything else
  (auto-replies, "out of office", spam to the bounce address) is counted as ignored.
- ARF Feedback-Type abuse, fraud, virus and other are complaints (the address is
  suppressed); not-spam and auth-failure are ignored.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import hashlib
import logging
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email.utils import getaddresses

from django.db import connection, transaction

from campaigns.delivery.feedback import ApplyReport, UpdateDeliveryStatus, actions_apply
from campaigns.delivery.providers import DeliveryStatus
from campaigns.delivery.verp import verp_request_id
from campaigns.models import Delivery
from campaigns.tracking import delivery_unsubscribe, unsubscribe_address_check
from config.core.models import Integration
from contacts.models import ChannelType

logger = logging.getLogger(__name__)

# The email package's legacy parser: a report is read for a few fields, never rendered, and
# policy.default's header objects cost about nine times as much per message (every header
# the reader touches is parsed into a structured object). Encoded words and stray 8-bit bytes
# are dealt with where a value is read (`_text`).
POLICY = email.policy.compat32

KIND_DSN = "dsn"
KIND_BOUNCE = "bounce"  # a non-standard bounce, read as a DSN
KIND_COMPLAINT = "complaint"
KIND_UNSUBSCRIBE = "unsubscribe"
KIND_IGNORED = "ignored"

# Headers that say which of our addresses a message was delivered to.
_RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to")
_COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_REPLY = re.compile(r"^\s*([245])\d\d\b")
_SAID = re.compile(r"(?:said|error|response|reply)[^\n]{0,80}?\b([45])\d\d[ -]", re.IGNORECASE)
_MESSAGE_ID_LINE = re.compile(r"^message-id:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_ANGLE_ADDRESS_LINE = re.compile(r"^<([^>\s@]+@[^>\s]+)>:", re.MULTILINE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned to sender|delivery (?:status notification|failure|failed|problem)"
    r"|failure notice|mail delivery failed|non-?delivery|could not be delivered"
    r"|delivery has failed|returned mail",
    re.IGNORECASE,
)
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon")
_WS = re.compile(r"\s+")
_DETAIL_MAX = 1000


@dataclass
class InboundMail:
    """One message as received: its bytes and, when an SMTP session gave them, the envelope
    recipients (a mailbox has only the headers)."""

    raw: bytes
    recipients: Sequence[str] = ()


@dataclass
class MailReading:
    """What one message says: its kind, the status changes it reports, the delivery a mail
    to the List-Unsubscribe address is about, and for complaints that name no message of
    ours, the recipient addresses (resolved to their latest delivery when applied)."""

    kind: str
    actions: list[UpdateDeliveryStatus] = field(default_factory=list)
    unsubscribe_delivery_id: int | None = None
    note: str = ""


@dataclass
class IntakeReport:
    """What a batch of mail did: messages by kind, what applying changed, deliveries
    unsubscribed by mail, and the indexes of messages that could not be read (a bug: they
    are left where they came from)."""

    kinds: Counter[str] = field(default_factory=Counter)
    applied: ApplyReport = field(default_factory=ApplyReport)
    unsubscribed: int = 0
    unreadable: list[int] = field(default_factory=list)

    @property
    def mails(self) -> int:
        return sum(self.kinds.values())


# --- reading --------------------------------------------------------------------------------


def _text(value: object) -> str:
    """A header or field value as one line of text PostgreSQL can store: RFC 2047 encoded
    words decoded, undecodable bytes replaced, no NUL, folding whitespace collapsed."""
    if value is None:
        return ""
    text = str(value)
    if "=?" in text:
        # An encoded word Python cannot decode is kept as it is.
        with contextlib.suppress(ValueError, LookupError, UnicodeError):
            text = str(make_header(decode_header(text)))
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _WS.sub(" ", text.replace("\x00", "")).strip()


def _addresses(values: Iterable[object]) -> list[str]:
    found: list[str] = []
    for value in values:
        if value is None:
            continue
        pairs = getaddresses([_text(value)])
        found.extend(address.strip() for _, address in pairs if address and "@" in address)
    return found


def _header_values(message: Message, names: Iterable[str]) -> list[str]:
    values = []
    for name in names:
        for value in message.get_all(name) or []:
            values.append(_text(value))
    return values


def _own_addresses(message: Message, recipients: Sequence[str]) -> list[str]:
    """Where the message was delivered: the envelope first, then the headers."""
    return [r.strip().strip("<>") for r in recipients] + _addresses(
        _header_values(message, _RECIPIENT_HEADERS)
    )


def _verp_hex(addresses: Iterable[str]) -> str:
    for address in addresses:
        request_id = verp_request_id(address)
        if request_id is not None:
            return request_id.hex
    return ""


def _event_stem(message: Message, raw: bytes) -> str:
    message_id = _text(message.get("message-id")).strip("<>")
    return message_id[:200] if message_id else "sha256:" + hashlib.sha256(raw).hexdigest()[:40]


def _field_value(value: object) -> str:
    """A DSN/ARF field's value after its type (`rfc822; a@b` → `a@b`)."""
    text = _text(value)
    if ";" in text:
        text = text.split(";", 1)[1]
    return text.strip().strip("<>").strip()


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    parser = HeaderParser(policy=POLICY)
    return [parser.parsestr(chunk.strip() + "\n") for chunk in re.split(r"\n\s*\n", text)]


def _returned_headers(message: Message) -> Message | None:
    """The headers of the message a report returns (message/rfc822 or text/rfc822-headers)."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        elif content_type == "text/rfc822-headers":
            body = part.get_payload(decode=True) or b""
            return BytesHeaderParser(policy=POLICY).parsebytes(bytes(body))
    return None


def _id_in_message_ids(values: Iterable[str]) -> str:
    """The first Message-ID among `values` that holds a request id (32 hex digits)."""
    for value in values:
        for candidate in re.findall(r"<[^<>\s]+>", value) or [value]:
            candidate = candidate.strip()
            if re.search(r"[0-9a-f]{32}", candidate.lower().replace("-", "")):
                return candidate
    return ""


def _herald_id(
    message: Message,
    own: Sequence[str],
    returned: Message | None,
    extra_addresses: Sequence[str] = (),
    envelope_id: str = "",
) -> str:
    """Herald's id of the message a report is about (a request id or a Message-ID), or ''."""
    verp = _verp_hex([*own, *extra_addresses])
    if verp:
        return verp
    if envelope_id and re.fullmatch(r"[0-9a-fA-F-]{32,36}", envelope_id):
        return envelope_id
    if returned is not None:
        verp = _verp_hex(_addresses(_header_values(returned, ("return-path",))))
        if verp:
            return verp
        found = _id_in_message_ids(_header_values(returned, ("message-id",)))
        if found:
            return found
    return _id_in_message_ids(_header_values(message, ("in-reply-to", "references")))


def _bounce_status(action: str, status: str, diagnostic: str) -> DeliveryStatus | None:
    if action == "delivered":
        return DeliveryStatus.DELIVERED
    if action != "failed":
        return None  # delayed (a warning), relayed, expanded
    match = _STATUS.search(status)
    if match:
        if (match.group(2), match.group(3)) == ("2", "2"):  # mailbox full
            return DeliveryStatus.SOFT_BOUNCED
        if match.group(1) == "4":
            return DeliveryStatus.SOFT_BOUNCED
        return DeliveryStatus.BOUNCED
    reply = _SMTP_REPLY.match(_field_value(diagnostic))
    if reply and reply.group(1) == "4":
        return DeliveryStatus.SOFT_BOUNCED
    return DeliveryStatus.BOUNCED


def _dsn_read(message: Message, raw: bytes, own: Sequence[str]) -> MailReading:
    status_part = next(
        (p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None
    )
    if status_part is None:
        return MailReading(KIND_IGNORED, note="a delivery report without its status part")
    blocks = _blocks(status_part)
    envelope_id = next(
        (_text(b.get("original-envelope-id")) for b in blocks if b.get("original-envelope-id")), ""
    )
    herald_id = _herald_id(message, own, _returned_headers(message), envelope_id=envelope_id)
    stem = _event_stem(message, raw)
    actions = []
    for block in blocks:
        action = _text(block.get("action")).lower().split(" ")[0]
        if not action:
            continue
        status_text = _text(block.get("status"))
        diagnostic = _text(block.get("diagnostic-code"))
        status = _bounce_status(action, status_text, diagnostic)
        if status is None:
            continue
        recipient = _field_value(block.get("final-recipient") or block.get("original-recipient"))
        detail = " ".join(x for x in (status_text, _field_value(diagnostic)) if x)
        actions.append(
            UpdateDeliveryStatus(
                status=status,
                email=recipient,
                herald_id=herald_id,
                event_id=f"dsn:{stem}:{recipient.lower()}",
                detail=detail[:_DETAIL_MAX],
            )
        )
    if not actions:
        return MailReading(KIND_IGNORED, note="a delivery report with no failed recipient")
    if not herald_id:
        return MailReading(KIND_IGNORED, note="a delivery report about no message of ours")
    return MailReading(KIND_DSN, actions=actions)


def _complaint_read(message: Message, raw: bytes) -> MailReading:
    report = next(
        (p for p in message.walk() if p.get_content_type() == "message/feedback-report"), None
    )
    if report is None:
        return MailReading(KIND_IGNORED, note="a feedback report without its report part")
    fields = Message()
    for block in _blocks(report):
        for name, value in block.items():
            fields[name] = value
    feedback_type = _text(fields.get("feedback-type")).lower()
    if feedback_type not in _COMPLAINT_TYPES:
        return MailReading(KIND_IGNORED, note=f"feedback type {feedback_type or 'missing'}")
    returned = _returned_headers(message)
    mail_from = _addresses(_header_values(fields, ("original-mail-from",)))
    herald_id = _herald_id(message, [], returned, extra_addresses=mail_from)
    rcpt = _addresses(_header_values(fields, ("original-rcpt-to",)))
    if not rcpt and returned is not None:
        rcpt = _addresses(_header_values(returned, ("to",)))
    recipient = rcpt[0] if len(rcpt) == 1 else ""
    agent = _text(fields.get("user-agent")) or _text(message.get("from"))
    detail = f"{feedback_type} report from {agent}"[:_DETAIL_MAX]
    if not herald_id and not recipient:
        return MailReading(KIND_IGNORED, note="a complaint about no message of ours")
    return MailReading(
        KIND_COMPLAINT,
        actions=[
            UpdateDeliveryStatus(
                status=DeliveryStatus.COMPLAINED,
                email=recipient,
                herald_id=herald_id,
                event_id=f"arf:{_event_stem(message, raw)}",
                detail=detail,
            )
        ],
    )


def _looks_like_bounce(message: Message) -> bool:
    sender = " ".join(_addresses(_header_values(message, ("from",)))).lower()
    if any(sender.startswith(name) or f" {name}" in sender for name in _BOUNCE_SENDERS):
        return True
    return bool(_BOUNCE_SUBJECT.search(_text(message.get("subject"))))


def _plain_text(message: Message) -> str:
    """The readable text of a message: its text/plain parts and returned messages."""
    chunks = []
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type in ("text/plain", "text/rfc822-headers"):
            body = part.get_payload(decode=True) or b""
            try:
                text = bytes(body).decode(part.get_content_charset() or "utf-8", "replace")
            except LookupError:  # a charset Python does not know
                text = bytes(body).decode("utf-8", "replace")
            chunks.append(text)
        elif content_type == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                chunks.append(f"Message-ID: {payload[0].get('message-id') or ''}")
    return "\n".join(chunks)


def _bounce_read(message: Message, raw: bytes, own: Sequence[str]) -> MailReading:
    if not _looks_like_bounce(message):
        return MailReading(KIND_IGNORED, note="not a report")
    text = _plain_text(message)
    herald_id = _verp_hex(own) or _id_in_message_ids(
        [*_MESSAGE_ID_LINE.findall(text), *_header_values(message, ("in-reply-to",))]
    )
    if not herald_id:
        return MailReading(KIND_IGNORED, note="a bounce about no message of ours")
    code = _STATUS.search(text)
    said = _SAID.search(text)
    if code and code.group(1) in "45":
        status_text = code.group(0)
        status = _bounce_status("failed", status_text, "")
    elif said:
        status_text = ""
        status = DeliveryStatus.SOFT_BOUNCED if said.group(1) == "4" else DeliveryStatus.BOUNCED
    else:
        return MailReading(KIND_IGNORED, note="a bounce without a status code")
    failed = _addresses(_header_values(message, ("x-failed-recipients",)))
    recipient = failed[0] if failed else next(iter(_ANGLE_ADDRESS_LINE.findall(text)), "")
    line = next((ln for ln in text.splitlines() if status_text and status_text in ln), "")
    detail = _text(line) or (said.group(0) if said else "")
    return MailReading(
        KIND_BOUNCE,
        actions=[
            UpdateDeliveryStatus(
                status=status or DeliveryStatus.BOUNCED,
                email=recipient,
                herald_id=herald_id,
                event_id=f"bounce:{_event_stem(message, raw)}:{recipient.lower()}",
                detail=detail[:_DETAIL_MAX],
            )
        ],
    )


def _report_type(message: Message) -> str:
    if message.get_content_type() != "multipart/report":
        return ""
    return str(message.get_param("report-type", "") or "").lower()


def mail_read(raw: bytes, *, recipients: Sequence[str] = ()) -> MailReading:
    """What one message says (no database). `recipients`: the SMTP envelope's, if known."""
    message = email.message_from_bytes(raw, policy=POLICY)
    own = _own_addresses(message, recipients)
    report_type = _report_type(message)
    if report_type == "delivery-status":
        return _dsn_read(message, raw, own)
    if report_type == "feedback-report":
        return _complaint_read(message, raw)
    for address in own:
        if address.lower().startswith("unsubscribe+"):
            delivery_id = unsubscribe_address_check(address)
            if delivery_id is not None:
                return MailReading(KIND_UNSUBSCRIBE, unsubscribe_delivery_id=delivery_id)
    return _bounce_read(message, raw, own)


def recipient_accepted(address: str) -> bool:
    """Whether mail to `address` is for the intake: a VERP bounce address or a valid
    List-Unsubscribe address (the SMTP receiver refuses the rest)."""
    if verp_request_id(address) is not None:
        return True
    return address.strip().strip("<>").lower().startswith("unsubscribe+") and (
        unsubscribe_address_check(address) is not None
    )


# --- applying -------------------------------------------------------------------------------


def _recipients_resolve(actions: list[UpdateDeliveryStatus]) -> None:
    """Complaints that name only a recipient: the latest email Herald sent that address."""
    wanted = {a.email.strip().lower() for a in actions if not a.herald_id and a.email}
    if not wanted:
        return
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        # delivery_locator index; DISTINCT ON keeps each address's newest sent row.
        cursor.execute(
            f"""SELECT DISTINCT ON (locator) locator, request_id FROM {table}
                 WHERE locator = ANY(%s) AND channel = %s
                   AND status IN ('sent', 'delivered', 'opened', 'clicked', 'unsubscribed')
                 ORDER BY locator, id DESC""",  # noqa: S608 (our table name)
            [sorted(wanted), ChannelType.EMAIL],
        )
        latest = {locator.lower(): request_id for locator, request_id in cursor.fetchall()}
    for action in actions:
        if not action.herald_id and action.email.strip().lower() in latest:
            request_id = latest[action.email.strip().lower()]
            action.herald_id = (
                request_id.hex if isinstance(request_id, uuid.UUID) else str(request_id)
            )


def mails_process(
    mails: Sequence[InboundMail], *, source: str, integration: Integration | None = None
) -> IntakeReport:
    """Read a batch of mail and apply what it reports in one transaction: statuses once per
    report (hard bounces and complaints suppress the address, soft bounces count towards the
    limit), unsubscribe mail puts the delivery's address on the unsubscribed list. A message
    that cannot be read is left out and its index reported; the others are applied."""
    report = IntakeReport()
    actions: list[UpdateDeliveryStatus] = []
    unsubscribes: list[int] = []
    for index, mail in enumerate(mails):
        try:
            reading = mail_read(mail.raw, recipients=mail.recipients)
        except Exception:
            logger.exception("bounce intake (%s) could not read message %s", source, index)
            report.unreadable.append(index)
            continue
        report.kinds[reading.kind] += 1
        if reading.kind == KIND_IGNORED:
            logger.info("bounce intake (%s) ignored a message: %s", source, reading.note)
        actions.extend(reading.actions)
        if reading.unsubscribe_delivery_id is not None:
            unsubscribes.append(reading.unsubscribe_delivery_id)
    with transaction.atomic():
        if actions:
            _recipients_resolve(actions)
            report.applied = actions_apply(list(actions), integration=integration, source=source)
        for delivery_id in dict.fromkeys(unsubscribes):
            if delivery_unsubscribe(
                delivery_id=delivery_id, reason=f"unsubscribed by mail ({source})"
            ):
                report.unsubscribed += 1
    return report


def mail_process(
    raw: bytes,
    *,
    source: str,
    recipients: Sequence[str] = (),
    integration: Integration | None = None,
) -> IntakeReport:
    """Read one message and apply what it reports (see `mails_process`)."""
    return mails_process([InboundMail(raw, recipients)], source=source, integration=integration)
