"""The built-in email sender: Django's email framework (SMTP when EMAIL_URL is set, an
Anymail ESP when configured, the file outbox by default), one connection per task, reused
for every batch.

Django's EmailMultiAlternatives is the message object because Anymail backends need
EmailMessage objects; building one costs little next to rendering (see
tests/benchmarks/bench_render.py). Over Django's SMTP backend the bytes are written by
campaigns.mime and sent pipelined by campaigns.smtp (the hot spot of a campaign is otherwise
the email package's generator); other backends get the object.
"""

from __future__ import annotations

import functools
import logging
from email.generator import BytesGenerator
from email.message import Message as MIMEMessage
from email.utils import parseaddr
from io import BytesIO
from pathlib import Path

import dkim
from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

from campaigns import tracking
from campaigns.delivery.content import SendContent, email_sender
from campaigns.delivery.policy import connection_lost, error_classify
from campaigns.delivery.senders import (
    Message,
    Outcome,
    Sender,
    accepted,
    permanent,
    transient,
)
from campaigns.delivery.verp import verp_address
from campaigns.mime import envelope, message_bytes
from campaigns.models import Delivery
from campaigns.smtp import sendmail as pipelined_sendmail
from contacts.email_addresses import InternationalEmail, address_format, mailbox_ascii_domain
from contacts.models import ChannelType, CustomField
from templates.services import RenderedMessage

logger = logging.getLogger(__name__)


# --- DKIM ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _dkim_key(value: str) -> bytes:
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    return Path(value).read_bytes()


def dkim_config() -> tuple[bytes, bytes, bytes] | None:
    """(selector, domain, private key) when DKIM signing is configured."""
    key = getattr(settings, "HERALD_DKIM_PRIVATE_KEY", "")
    selector = getattr(settings, "HERALD_DKIM_SELECTOR", "")
    domain = getattr(settings, "HERALD_DKIM_DOMAIN", "")
    if not (key and selector and domain):
        return None
    return selector.encode(), domain.encode(), _dkim_key(key)


DKIM_HEADERS = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
]


def dkim_signature(raw: bytes, header_names, config: tuple[bytes, bytes, bytes]) -> bytes:
    """The DKIM-Signature header line (CRLF-terminated) for a serialised message, signing
    those of DKIM_HEADERS that it has (`header_names`, lower case)."""
    selector, domain, key = config
    present = {name.lower() for name in header_names}
    return dkim.sign(
        raw,
        selector,
        domain,
        key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[h for h in DKIM_HEADERS if h.decode() in present],
    )


def _crlf_bytes(msg: MIMEMessage) -> bytes:
    """The message with CRLF line ends, written as Django 5.2's `as_bytes(linesep=...)` writes
    it (no "From " mangling). Spelled out because the django-stubs in use type `message()` as
    Django 6's stdlib EmailMessage, whose `as_bytes` takes no `linesep`."""
    buffer = BytesIO()
    BytesGenerator(buffer, mangle_from_=False).flatten(msg, linesep="\r\n")
    return buffer.getvalue()


class HeraldEmail(InternationalEmail):
    """An email that signs itself with DKIM when built, if `dkim` is set. Over SMTP its
    envelope sender is `return_path` when set (a VERP address), else its From address.
    Internationalised addresses are written right by every backend (InternationalEmail)."""

    dkim: tuple[bytes, bytes, bytes] | None = None
    # Not Anymail's `envelope_sender`: only Herald's own SMTP sending reads it.
    return_path: str = ""
    # Read by Anymail backends (set by email_build): ESP tags and metadata.
    tags: list[str]
    metadata: dict[str, str]

    def message(self, *args, **kwargs):
        msg = super().message(*args, **kwargs)
        if self.dkim is None:
            return msg
        # Serialising fixes the MIME boundaries, so the body signed is the body sent.
        raw = _crlf_bytes(msg)
        signature = dkim_signature(raw, msg.keys(), self.dkim)
        name, _, value = signature.decode().partition(":")
        # Unfolded: relaxed canonicalisation makes folding irrelevant to the signature.
        msg[name] = value.replace("\r\n", "").strip()
        return msg

    def smtp_bytes(self) -> bytes | None:
        """The message as sent over SMTP, signed, written by campaigns.mime; None when its
        shape is one only Django writes (then send_messages serialises it)."""
        built = message_bytes(self)
        if built is None:
            return None
        raw, names = built
        if self.dkim is not None:
            # Prepended, where a signing relay puts it; it covers the headers below it.
            raw = dkim_signature(raw, names, self.dkim) + raw
        return raw


# A test send's marks (SendContent.test).
TEST_SUBJECT_PREFIX = "[Test] "
TEST_HEADER = "X-Herald-Test"


# --- building and sending one message ------------------------------------------------------


def email_build(
    *,
    delivery: Delivery,
    rendered: RenderedMessage,
    from_header: str,
    content: SendContent,
    bounce_domain: str = "",
) -> HeraldEmail:
    """The message of one delivery. With a `bounce_domain` its envelope sender over SMTP is
    the delivery's VERP address there, so a bounce names the delivery it is about."""
    html = tracking.prepare_html(rendered.html, delivery, content.utm) if rendered.html else ""
    headers = {"Message-ID": delivery.message_id}
    headers.update(tracking.list_unsubscribe_headers(delivery))
    subject = rendered.subject
    if content.test:
        # The only differences of a test send from the real message (besides its own
        # Message-ID and tracking tokens): the subject says so, and a header a filter can use.
        subject = f"{TEST_SUBJECT_PREFIX}{subject}"
        headers[TEST_HEADER] = "1"
    message = HeraldEmail(
        subject=subject,
        body=tracking.prepare_text(rendered.text, delivery),
        from_email=_from_named(from_header, rendered.from_name),
        # The domain in ASCII for every backend (an ESP's API, the outbox) alike.
        to=[mailbox_ascii_domain(delivery.locator)],
        headers=headers,
    )
    if html:
        message.attach_alternative(html, "text/html")
    message.dkim = dkim_config()
    if bounce_domain:
        message.return_path = verp_address(delivery.request_id, bounce_domain)
    # Read by Anymail backends (ignored by the others): ESP tags, and the request id the
    # ESP's webhooks hand back so their events find this delivery.
    message.tags = list(content.tags)
    message.metadata = {"herald_request_id": str(delivery.request_id)}
    return message


def _from_named(from_header: str, name: str) -> str:
    """The From header with the message's own sender name (an A/B variant's), if it has one."""
    if not name:
        return from_header
    return address_format(name, parseaddr(from_header)[1])


def _smtp_deliver(connection, message) -> bool:
    """Send over Django's SMTP backend's open smtplib connection the bytes campaigns.mime
    writes (a fraction of the CPU of message().as_bytes()), pipelined where the server
    allows it (campaigns.smtp). False when this backend or message is not one for that path;
    errors are smtplib's, as from send_messages."""
    smtp = getattr(connection, "connection", None)
    if type(connection) is not SMTPBackend or smtp is None or not isinstance(message, HeraldEmail):
        return False
    sender, recipients, utf8 = envelope(message)
    if not recipients:
        return False  # Django's backend sends nothing either
    raw = message.smtp_bytes()
    if raw is None:
        # A shape only Django writes: Django's bytes, sent as its backend would, but from
        # the return path and with internationalised addresses kept right.
        raw = _crlf_bytes(message.message())
    pipelined_sendmail(smtp, sender, recipients, raw, utf8=utf8)
    return True


def email_send_one(connection, message) -> tuple[Outcome, bool]:
    """Send one built message on an open connection: (its outcome, whether the connection
    is lost, so the rest of the batch must not wait on it). SMTP gets the message's bytes
    directly; other backends (Anymail's ESPs, the outbox) need the EmailMessage object."""
    try:
        if not _smtp_deliver(connection, message):
            connection.send_messages([message])
    except Exception as exc:
        error = error_classify(exc)
        if error.permanent:
            return permanent(error.reason), False
        # A 421 closes the session (smtplib and campaigns.smtp close it): the rest of the
        # batch goes back together, throttled too, rather than one by one.
        closing = getattr(exc, "smtp_code", None) == 421
        return transient(error.reason, throttled=error.throttled), closing or connection_lost(exc)
    status = getattr(message, "anymail_status", None)
    if status is not None and getattr(status, "message_id", None):
        return accepted(str(status.message_id)), False
    return accepted(), False


def provider_name(connection) -> str:
    module = type(connection).__module__
    if module.startswith("anymail."):
        return module.split(".")[2] if module.count(".") >= 2 else "anymail"
    return {
        "django.core.mail.backends.smtp": "smtp",
        "django.core.mail.backends.filebased": "outbox",
        "django.core.mail.backends.locmem": "locmem",
        "django.core.mail.backends.console": "console",
    }.get(module, module)


class EmailSender(Sender):
    """Email through Django's configured backend; one connection per task. A refused
    recipient (4xx/5xx reply) leaves the connection usable; a lost connection sends the
    rest of the batch back to the queue together (they would each wait out the same
    timeout) and the next batch opens a fresh one."""

    channels = frozenset({ChannelType.EMAIL})

    def __init__(self, content: SendContent, custom_fields: list[CustomField]) -> None:
        super().__init__(content, custom_fields)
        self.from_header = email_sender(content)[0]
        self.connection: BaseEmailBackend | None = None
        # The VERP domain of Herald's own SMTP sending (HERALD_BOUNCE_DOMAIN; an SMTP
        # integration's sender sets its own); other backends (an ESP, the outbox) ignore it.
        self.bounce_domain: str = settings.HERALD_BOUNCE_DOMAIN
        self.verp_domain = ""

    def send(self, batch: list[Message]) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        broken: Outcome | None = None
        if self.connection is None:
            self.connection = self.connection_make()
            self.name = self.name or provider_name(self.connection)
            self.verp_domain = self.bounce_domain if type(self.connection) is SMTPBackend else ""
            try:
                # Opened here, not by send_messages, so one connection serves every batch.
                self.connection.open()
            except Exception as exc:
                error = error_classify(exc)
                broken = transient(error.reason, throttled=error.throttled)
                self.close()
        for message in batch:
            delivery = message.delivery
            if broken is not None:
                outcomes[delivery.pk] = broken
                continue
            try:
                email = self.message_build(message)
            except Exception:
                # A bug, not the recipient's fault; but one bad message must not stall the
                # batch (its claim would expire and the crash repeat for every row after it).
                logger.exception("building the message of delivery %s failed", delivery.pk)
                outcomes[delivery.pk] = permanent("internal error while building the message")
                continue
            outcome, lost = email_send_one(self.connection, email)
            outcomes[delivery.pk] = outcome
            if lost:
                broken = outcome
                self.close()
        return outcomes

    def message_build(self, message: Message) -> HeraldEmail:
        """The email of one row. A provider's sender adds what its service needs (e.g. the
        metadata its webhooks hand back)."""
        return email_build(
            delivery=message.delivery,
            rendered=message.rendered,
            from_header=self.from_header,
            content=self.content,
            bounce_domain=self.verp_domain,
        )

    def connection_make(self) -> BaseEmailBackend:
        """The email backend of this task, not yet opened: Django's configured one (EMAIL_URL,
        the outbox). A provider's sender (an SMTP server or an email service of its own)
        returns its backend here and sets `name`; the rest of the sending is the same."""
        return get_connection(fail_silently=False)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
