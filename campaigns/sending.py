"""Sending a send request's deliveries: claim a batch, render, build, send, record outcomes.

Email goes through Django's email framework (SMTP when EMAIL_URL is set, an Anymail ESP when
configured, the file outbox by default) with one connection per task run; Django's
EmailMultiAlternatives is used rather than a hand-built email.mime message because Anymail
backends need EmailMessage objects, and building one costs little next to rendering
(see tests/benchmarks/bench_render.py). SMS go through campaigns.sms.

Single messages are transactional (an order confirmation, a password reset): following
eSputnik, they are sent to unsubscribed addresses too. The unsubscribed list stops bulk
email (campaigns) only.
"""

from __future__ import annotations

import functools
import logging
import smtplib
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import formataddr, parseaddr
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db.models import Min, Q
from django.utils import timezone

from campaigns import tracking
from campaigns.ledger import (
    CLAIM_LEASE,
    deliveries_claim,
    deliveries_fail_exhausted,
    deliveries_retry_later,
    deliveries_set_provider_ids,
    delivery_transition,
)
from campaigns.mime import envelope, message_bytes
from campaigns.models import Delivery, DeliveryStatus, SendRequest
from campaigns.sms import SMSError, sms_gateway
from campaigns.smtp import sendmail as pipelined_sendmail
from contacts.models import ChannelType, CustomField
from templates.engine import TemplateError
from templates.services import RenderedMessage, contact_context, template_render

logger = logging.getLogger(__name__)

# Deliveries claimed and sent per round: one claim UPDATE and a few outcome writes per 100
# messages keep the database cost per message small, while a worker that dies loses (until
# the claim lease ends) at most 100 rows, and a round takes a few seconds over SMTP.
BATCH_SIZE = 100
# Attempts per delivery before a transient failure becomes final.
MAX_ATTEMPTS = 5
# Backoff after a transient failure: RETRY_BASE * 2^(attempt-1), capped.
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=30)
# A run stops claiming after this long and the task re-enqueues itself: far below Celery's
# time limit (a run killed mid-batch would resend that batch after the claim lease), and
# short enough that other requests get workers in between.
RUN_BUDGET = timedelta(minutes=4)
SMS_SENDER_MAX = 11  # alphanumeric sender ids are at most 11 characters


class TransientSendError(Exception):
    """Sending may succeed later (4xx reply, connection lost, gateway overloaded)."""


class PermanentSendError(Exception):
    """Sending this message cannot succeed (5xx reply, address refused)."""


@dataclass
class Outcome:
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    transient: dict[int, str] = field(default_factory=dict)
    provider_ids: dict[int, str] = field(default_factory=dict)


def retry_delay(attempts: int) -> timedelta:
    return min(RETRY_BASE * (2 ** max(attempts - 1, 0)), RETRY_MAX)


# --- senders -------------------------------------------------------------------------------


def _organisation():
    from config.core.models import Organisation

    return Organisation.load()


def email_sender(send_request: SendRequest) -> tuple[str, str]:
    """(From header, domain for Message-IDs): the request's address, else the template
    version's, else the organisation's default sender, else DEFAULT_FROM_EMAIL."""
    version = send_request.template_version
    organisation = _organisation()
    address = (
        send_request.from_email
        or (version.from_email if version else "")
        or organisation.default_sender_email
    )
    name = send_request.from_name or (version.from_name if version else "")
    if not address:
        default_name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
        name = name or default_name
    else:
        name = name or organisation.default_sender_name or organisation.name
    domain = address.rpartition("@")[2] or "localhost"
    return (formataddr((name, address)) if name else address), domain


def sms_sender(send_request: SendRequest) -> str:
    version = send_request.template_version
    sender = send_request.from_name or (version.from_name if version else "")
    return (sender or _organisation().name)[:SMS_SENDER_MAX]


# --- rendering -----------------------------------------------------------------------------


def _inline_source(send_request: SendRequest, channel: str) -> Any:
    # template_render reads these attributes from a template or version; a request with
    # inline content (POST /v1/message/email, /sms) offers the same shape.
    return SimpleNamespace(
        channel=channel,
        subject=send_request.subject,
        preheader="",
        html=send_request.html,
        text=send_request.text,
        sms_text=send_request.text,
    )


def delivery_render(
    send_request: SendRequest, delivery: Delivery, custom_fields: list[CustomField]
) -> RenderedMessage:
    """Personalise the request's content for one delivery. Raises TemplateError."""
    if send_request.skip_personalisation:
        return RenderedMessage(
            subject=send_request.subject, html=send_request.html, text=send_request.text
        )
    contact = (
        contact_context(delivery.contact, custom_fields=custom_fields) if delivery.contact else {}
    )
    version = delivery.template_version or send_request.template_version
    if version is not None:
        return template_render(version=version, contact=contact, data=delivery.params)
    source = _inline_source(send_request, delivery.channel)
    return template_render(template=source, contact=contact, data=delivery.params)


# --- email ---------------------------------------------------------------------------------


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
    import dkim

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


class HeraldEmail(EmailMultiAlternatives):
    """An email that signs itself with DKIM when built, if `dkim` is set."""

    dkim: tuple[bytes, bytes, bytes] | None = None

    def message(self, *args, **kwargs):
        msg = super().message(*args, **kwargs)
        if self.dkim is None:
            return msg
        # Serialising fixes the MIME boundaries, so the body signed is the body sent.
        raw = msg.as_bytes(linesep="\r\n")
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


def email_build(
    *, delivery: Delivery, rendered: RenderedMessage, from_header: str, send_request: SendRequest
) -> HeraldEmail:
    html = tracking.prepare_html(rendered.html, delivery) if rendered.html else ""
    headers = {"Message-ID": delivery.message_id}
    headers.update(tracking.list_unsubscribe_headers(delivery))
    message = HeraldEmail(
        subject=rendered.subject,
        body=tracking.prepare_text(rendered.text, delivery),
        from_email=from_header,
        to=[delivery.locator],
        headers=headers,
    )
    if html:
        message.attach_alternative(html, "text/html")
    message.dkim = dkim_config()
    # Read by Anymail backends (ignored by the others): ESP tags, and the request id the
    # ESP's webhooks hand back so their events find this delivery.
    message.tags = [str(tag) for tag in send_request.tags or []]
    message.metadata = {"herald_request_id": str(delivery.request_id)}
    return message


_CONNECTION_ERRORS = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError)


def connection_lost(exc: Exception) -> bool:
    """Whether the SMTP connection is gone. smtplib's answers (a refused recipient, a 4xx) are
    OSErrors too, but the connection still serves the next message."""
    return isinstance(exc, _CONNECTION_ERRORS) and not isinstance(
        exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused
    )


def _classify_email_error(exc: Exception) -> tuple[bool, str]:
    """(permanent, reason) for a sending error; raises again what is not a sending error."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        reasons = "; ".join(
            f"{code} {message.decode(errors='replace') if isinstance(message, bytes) else message}"
            for code, message in exc.recipients.values()
        )
        return all(500 <= code < 600 for code in codes), f"recipient refused: {reasons}"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        return 500 <= exc.smtp_code < 600, f"SMTP {exc.smtp_code}: {text}"
    if connection_lost(exc):
        return False, f"connection error: {exc or type(exc).__name__}"
    try:
        from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
    except ImportError:  # pragma: no cover (anymail is a dependency)
        raise exc from None
    if isinstance(exc, AnymailRecipientsRefused):
        return True, f"recipient refused by the email service: {exc}"
    if isinstance(exc, AnymailAPIError):
        code = getattr(exc, "status_code", None)
        transient = code is None or code >= 500 or code in (408, 429)
        return not transient, f"email service error {code or ''}: {exc}".strip()
    if isinstance(exc, AnymailError):
        return True, f"email service refused the message: {exc}"
    raise exc


def _send_emails(
    send_request: SendRequest,
    deliveries: list[Delivery],
    connection,
    custom_fields: list[CustomField],
) -> Outcome:
    outcome = Outcome()
    from_header, _ = email_sender(send_request)
    broken = ""
    try:
        # Opened here, not by send_messages, so one connection serves the whole batch.
        connection.open()
    except Exception as exc:
        broken = _classify_email_error(exc)[1]
    for delivery in deliveries:
        if broken:
            # The connection failed on an earlier message of this batch: the rest would wait
            # out the same timeout one by one. They go back to the queue together.
            outcome.transient[delivery.pk] = broken
            continue
        try:
            rendered = delivery_render(send_request, delivery, custom_fields)
            message = email_build(
                delivery=delivery,
                rendered=rendered,
                from_header=from_header,
                send_request=send_request,
            )
        except TemplateError as exc:
            outcome.failed[delivery.pk] = f"rendering failed: {exc}"
            continue
        except Exception:
            # A bug, not the recipient's fault; but one bad message must not stall the
            # batch (its claim would expire and the crash repeat for every row after it).
            logger.exception("building the message of delivery %s failed", delivery.pk)
            outcome.failed[delivery.pk] = "internal error while building the message"
            continue
        broken = email_send_one(connection, message, delivery.pk, outcome)
        if broken:
            connection.close()
    return outcome


def _smtp_deliver(connection, message) -> bool:
    """Send over Django's SMTP backend's open smtplib connection the bytes campaigns.mime
    writes (a fraction of the CPU of message().as_bytes(), the hot spot of a campaign),
    pipelined where the server allows it (campaigns.smtp).
    False when this backend or message is not one for that path; errors are smtplib's, as
    from send_messages."""
    smtp = getattr(connection, "connection", None)
    if type(connection) is not SMTPBackend or smtp is None or not isinstance(message, HeraldEmail):
        return False
    raw = message.smtp_bytes()
    if raw is None:
        return False
    sender, recipients = envelope(message)
    pipelined_sendmail(smtp, sender, recipients, raw)
    return True


def email_send_one(connection, message, delivery_id: int, outcome: Outcome) -> str:
    """Send one built message on an open connection and record its outcome. Returns the
    reason when the connection is lost (the rest of the batch must not wait on it), else "".
    SMTP gets the message's bytes directly (see _smtp_deliver); other backends (Anymail's
    ESPs, the outbox) need the EmailMessage object."""
    try:
        if not _smtp_deliver(connection, message):
            connection.send_messages([message])
    except Exception as exc:
        permanent, reason = _classify_email_error(exc)
        if permanent:
            outcome.failed[delivery_id] = reason
            return ""
        outcome.transient[delivery_id] = reason
        return reason if connection_lost(exc) else ""
    outcome.sent.append(delivery_id)
    status = getattr(message, "anymail_status", None)
    if status is not None and getattr(status, "message_id", None):
        outcome.provider_ids[delivery_id] = str(status.message_id)
    return ""


# --- SMS -----------------------------------------------------------------------------------


def _send_sms(
    send_request: SendRequest, deliveries: list[Delivery], custom_fields: list[CustomField]
) -> tuple[Outcome, str]:
    outcome = Outcome()
    gateway = sms_gateway()
    sender = sms_sender(send_request)
    for delivery in deliveries:
        try:
            text = delivery_render(send_request, delivery, custom_fields).text
        except TemplateError as exc:
            outcome.failed[delivery.pk] = f"rendering failed: {exc}"
            continue
        except Exception:
            logger.exception("rendering the SMS of delivery %s failed", delivery.pk)
            outcome.failed[delivery.pk] = "internal error while building the message"
            continue
        if not text.strip():
            outcome.failed[delivery.pk] = "the message text is empty for this recipient"
            continue
        try:
            provider_id = gateway.send(delivery.locator, text, sender)
        except SMSError as exc:
            target = outcome.failed if exc.permanent else outcome.transient
            target[delivery.pk] = str(exc)
            continue
        outcome.sent.append(delivery.pk)
        if provider_id:
            outcome.provider_ids[delivery.pk] = provider_id
    return outcome, gateway.name


# --- the run -------------------------------------------------------------------------------


def _record(outcome: Outcome, deliveries: list[Delivery], provider: str) -> None:
    deliveries_set_provider_ids(provider=provider, provider_ids=outcome.provider_ids)
    if outcome.sent:
        delivery_transition(
            status=DeliveryStatus.SENT, delivery_ids=outcome.sent, detail=f"accepted by {provider}"
        )
    for delivery_id, reason in outcome.failed.items():
        delivery_transition(status=DeliveryStatus.FAILED, delivery_ids=[delivery_id], error=reason)
    attempts = {delivery.pk: delivery.attempts for delivery in deliveries}
    later: dict[tuple[str, int], list[int]] = {}
    for delivery_id, reason in outcome.transient.items():
        tries = attempts[delivery_id]
        if tries >= MAX_ATTEMPTS:
            delivery_transition(
                status=DeliveryStatus.FAILED,
                delivery_ids=[delivery_id],
                error=f"gave up after {tries} attempts: {reason}",
            )
        else:
            later.setdefault((reason, tries), []).append(delivery_id)
    for (reason, tries), ids in later.items():
        deliveries_retry_later(delivery_ids=ids, error=reason, delay=retry_delay(tries))


def _provider_name(connection) -> str:
    module = type(connection).__module__
    if module.startswith("anymail."):
        return module.split(".")[2] if module.count(".") >= 2 else "anymail"
    return {
        "django.core.mail.backends.smtp": "smtp",
        "django.core.mail.backends.filebased": "outbox",
        "django.core.mail.backends.locmem": "locmem",
        "django.core.mail.backends.console": "console",
    }.get(module, module)


def next_wake(send_request_id: int, *, include_claims: bool = True) -> float | None:
    """Seconds until queued deliveries of the request can be claimed (0: now), or None when
    there is nothing to wait for. Rows claimed by another run count only with
    `include_claims`: a run that sent nothing itself may be the redelivery of a task whose
    worker died, and must come back when those claims expire; a run that did send leaves
    its siblings' rows to them (else every parallel task would schedule a wake-up)."""
    queued = Delivery.objects.filter(send_request_id=send_request_id, status=DeliveryStatus.QUEUED)
    now = timezone.now()
    unclaimed = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_LEASE)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    if queued.filter(unclaimed & due).exists():
        return 0.0
    times = queued.aggregate(
        retry=Min("next_attempt_at", filter=unclaimed), claim=Min("claimed_at")
    )
    waits = []
    if times["retry"]:
        waits.append((times["retry"] - now).total_seconds())
    if include_claims and times["claim"]:
        waits.append((times["claim"] + CLAIM_LEASE - now).total_seconds())
    return max(min(waits), 0.0) if waits else None


def send_request_process(
    *, send_request_id: int, time_budget: timedelta = RUN_BUDGET
) -> float | None:
    """Send the claimable deliveries of a send request, batch by batch, for at most about
    `time_budget`. Returns the seconds after which the caller should run it again: 0 when
    work is left right away (budget spent), more for retries or rows held by another worker;
    None when every delivery has its outcome. Safe to run several at once: claims keep the
    runs apart."""
    deadline = time.monotonic() + time_budget.total_seconds()
    send_request = (
        SendRequest.objects.select_related("template_version").filter(pk=send_request_id).first()
    )
    if send_request is None:
        logger.warning("send request %s no longer exists", send_request_id)
        return None
    _, domain = email_sender(send_request)
    custom_fields = list(CustomField.objects.all())
    connection = None
    batches = 0
    claimed_any = False
    deliveries_fail_exhausted(send_request_id=send_request_id, max_attempts=MAX_ATTEMPTS)
    try:
        while True:
            if batches and time.monotonic() > deadline:
                break  # next_wake says 0: the task re-enqueues itself for the rest
            batches += 1
            ids = deliveries_claim(
                send_request_id=send_request_id,
                limit=BATCH_SIZE,
                message_id_domain=domain,
                max_attempts=MAX_ATTEMPTS,
            )
            if not ids:
                break
            claimed_any = True
            deliveries = list(
                Delivery.objects.filter(pk__in=ids)
                .select_related("contact", "template_version")
                .order_by("pk")
            )
            email = [d for d in deliveries if d.channel == ChannelType.EMAIL]
            sms = [d for d in deliveries if d.channel == ChannelType.SMS]
            other = [d for d in deliveries if d.channel not in (ChannelType.EMAIL, ChannelType.SMS)]
            if email:
                if connection is None:
                    connection = get_connection(fail_silently=False)
                outcome = _send_emails(send_request, email, connection, custom_fields)
                _record(outcome, email, _provider_name(connection))
            if sms:
                outcome, provider = _send_sms(send_request, sms, custom_fields)
                _record(outcome, sms, provider)
            if other:
                delivery_transition(
                    status=DeliveryStatus.FAILED,
                    delivery_ids=[d.pk for d in other],
                    error="this channel has no sender in Herald yet",
                )
    finally:
        if connection is not None:
            connection.close()
    return next_wake(send_request_id, include_claims=not claimed_any)
