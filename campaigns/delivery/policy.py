"""The rules every send shares: batch sizes, attempts, back-off, the claim lease, and which
provider errors are worth retrying.

Settings: HERALD_RETRY_BASE (seconds; the first retry's delay), HERALD_CLAIM_TIMEOUT
(seconds a claim is held before it counts as its worker's death). Read at call time, never
at import.
"""

from __future__ import annotations

import random
import re
import smtplib
from datetime import timedelta

from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from django.conf import settings

from contacts.email_addresses import SMTPUTF8_REFUSED, SMTPUTF8Unsupported

# Sender tasks per campaign run. Each holds one SMTP connection and one database connection;
# four keep a typical relay (and the 2-core machine this was measured on) busy without making
# the relay throttle us. More tasks than worker processes only queue up.
SENDER_TASKS = 4
# Rows claimed per batch: one claim UPDATE and one row fetch per 200 messages keep the
# database cost per message small; a dead worker's batch waits for the claim lease.
BATCH_SIZE = 200
# Outcomes are written every RECORD_EVERY messages of a batch: a worker killed mid-batch
# sends at most this many again (same Message-ID); smaller means more writes per message.
RECORD_EVERY = 25
# Attempts per delivery before a transient failure (4xx, 429, lost connection) is final, and
# claims per delivery before a row whose worker died every time is failed (a poison message).
MAX_ATTEMPTS = 5
# The back-off never waits longer than this between two attempts.
RETRY_CAP = timedelta(minutes=30)
# Each delay is shortened by up to this share at random, so rows refused together (a
# greylisting relay, a gateway overload) come back spread out, never later than the policy.
RETRY_JITTER = 0.05


def claim_lease() -> timedelta:
    """A claim older than this belongs to a dead worker. Far above the time a batch takes."""
    return timedelta(seconds=settings.HERALD_CLAIM_TIMEOUT)


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th attempt failed for a passing reason:
    HERALD_RETRY_BASE * 2^(attempts-1), capped at RETRY_CAP, less up to RETRY_JITTER."""
    base = timedelta(seconds=settings.HERALD_RETRY_BASE)
    delay = min(base * 2 ** max(attempts - 1, 0), RETRY_CAP)
    return delay * (1 - RETRY_JITTER * random.random())


# --- errors --------------------------------------------------------------------------------


class SendError(Exception):
    """A provider refused or could not take a message. `permanent`: the same message cannot
    succeed later (a 5xx reply, a refused address); otherwise a later attempt may.
    `throttled`: a transient refusal that asks us to send more slowly.

    Not a config.core.errors.HeraldError: it never reaches a user as an answer; the engine
    records it on the delivery (failed, or queued for a retry)."""

    permanent = False

    def __init__(self, reason: str, *, throttled: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        # The provider asked us to slow down (SMTP 421/454, HTTP 429, SES throttling): the
        # engine cuts the provider's rate (campaigns.delivery.rate). Always transient.
        self.throttled = throttled


class TransientSendError(SendError):
    """Sending may succeed later (4xx reply, connection lost, timeout, gateway overloaded)."""


class PermanentSendError(SendError):
    """Sending this message cannot succeed (5xx reply, address refused)."""

    permanent = True


def send_error(reason: str, *, permanent: bool, throttled: bool = False) -> SendError:
    if throttled or not permanent:
        return TransientSendError(reason, throttled=throttled)
    return PermanentSendError(reason)


def http_status_permanent(status: int | None) -> bool:
    """HTTP answers from a provider's API: 429 (throttled), 408 (timed out) and 5xx are worth
    another attempt; any other 4xx will be refused again."""
    return not (status is None or status >= 500 or status in (408, 429))


def http_error(status: int, detail: str) -> SendError:
    return send_error(detail, permanent=http_status_permanent(status), throttled=status == 429)


# SMTP replies that ask the client to slow down: 421 (service not available, closing: what
# Gmail, Yahoo and Outlook answer to a sender over its rate) and 454 (temporary
# authentication/TLS failure, sent by relays that cap logins or connections). 450/451 are
# throttling only when their text says so: most often they mean greylisting or a busy
# mailbox, which concern one recipient, not our pace.
SMTP_THROTTLE_CODES = frozenset({421, 454})
_SMTP_THROTTLE_TEXT = re.compile(
    r"\brate\b|\brate[- ]?limit|\blimit(ed|s)?\b|too many|throttl|slow down|unexpected volume",
    re.IGNORECASE,
)


def smtp_throttled(code: int, text: str) -> bool:
    """Whether an SMTP reply asks us to send more slowly."""
    if code in SMTP_THROTTLE_CODES:
        return True
    return code in (450, 451) and bool(_SMTP_THROTTLE_TEXT.search(text))


_CONNECTION_ERRORS = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError)


def connection_lost(exc: BaseException) -> bool:
    """Whether the connection to the provider is gone. smtplib's answers (a refused recipient,
    a 4xx) are OSErrors too, but the connection still serves the next message; so are
    Anymail's errors over requests (HTTPError), which are lost only without an HTTP answer."""
    if isinstance(exc, AnymailError):
        return isinstance(exc, OSError) and getattr(exc, "status_code", None) is None
    return isinstance(exc, _CONNECTION_ERRORS) and not isinstance(
        exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused
    )


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def error_classify(exc: BaseException) -> SendError:
    """The one place that says whether a provider's error is worth retrying: SMTP 4xx,
    connection errors and timeouts are transient, SMTP 5xx permanent; HTTP 429/408/5xx
    transient, other 4xx permanent. Throttling answers (SMTP 421/454, 450/451 that say so,
    HTTP 429, SES throttling) are transient and `throttled`. Raises `exc` again when it is
    not a sending error (a bug must not be recorded as the recipient's problem)."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, SMTPUTF8Unsupported):
        # An OSError like a lost connection, yet the same server refuses it every time.
        return PermanentSendError(SMTPUTF8_REFUSED)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = list(exc.recipients.values())
        reasons = "; ".join(f"{code} {_text(message)}" for code, message in answers)
        permanent = all(500 <= code < 600 for code, _ in answers)
        throttled = any(smtp_throttled(code, _text(message)) for code, message in answers)
        return send_error(f"recipient refused: {reasons}", permanent=permanent, throttled=throttled)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = _text(exc.smtp_error)
        return send_error(
            f"SMTP {exc.smtp_code}: {text}",
            permanent=500 <= exc.smtp_code < 600,
            throttled=smtp_throttled(exc.smtp_code, text),
        )
    # Anymail's errors first: over HTTP they are also requests' HTTPError, an OSError, yet
    # an answer from the service is no lost connection.
    if isinstance(exc, AnymailRecipientsRefused):
        return PermanentSendError(f"recipient refused by the email service: {exc}")
    if isinstance(exc, AnymailAPIError):
        code = _anymail_status(exc)
        return send_error(
            f"email service error {code or ''}: {exc}".strip(),
            # Throttled answers are transient whatever their status (SES: 400).
            permanent=http_status_permanent(code),
            throttled=code == 429 or _ses_throttled(exc),
        )
    if isinstance(exc, AnymailError):
        return PermanentSendError(f"email service refused the message: {exc}")
    if connection_lost(exc):
        return TransientSendError(f"connection error: {exc or type(exc).__name__}")
    raise exc


def _anymail_status(exc: AnymailAPIError) -> int | None:
    """The HTTP status of the service's answer: Anymail's, else (Amazon SES, through boto3)
    the one in botocore's parsed error; None when no answer came (a network error)."""
    if exc.status_code is not None:
        return exc.status_code
    response = exc.response
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


# Amazon SES answers some throttling with HTTP 400 (the sending rate or the daily quota).
_SES_THROTTLING = frozenset({"Throttling", "TooManyRequestsException", "LimitExceededException"})


def _ses_throttled(exc: AnymailAPIError) -> bool:
    response = exc.response
    return isinstance(response, dict) and (response.get("Error", {}).get("Code") in _SES_THROTTLING)
