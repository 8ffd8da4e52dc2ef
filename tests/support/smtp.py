"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives.

Use the `smtp_sink` fixture (tests/messages/conftest.py registers it) or SMTPSink directly:

    with SMTPSink() as sink:
        ...send to 127.0.0.1:sink.port...
        sink.messages  # email.message.Message objects, in arrival order

`refuse` makes the server answer RCPT TO (or MAIL FROM, or the message after DATA) for chosen
addresses with an error code, to test transient (4xx) and permanent (5xx) refusals. The
server announces PIPELINING, as Postfix and the large providers do, unless `pipelining` is
False. `smtputf8` makes it announce SMTPUTF8 (RFC 6531); each Received keeps the MAIL
FROM parameters.

`outage` makes it answer every MAIL FROM with one reply (a 421, say) for a while, as a relay
that is restarting or throttling everyone does; `message_ids` reads (recipient, Message-ID)
of everything received without parsing whole messages (fast enough for tens of thousands).
"""

import email
import email.policy
import re
import socket
import threading
import time
from dataclasses import dataclass

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    mail_options: list[str] | None = None

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


class _Handler:
    def __init__(self, sink: "SMTPSink") -> None:
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.sink.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        answer = self.sink.outage_answer() or self.sink.answer("MAIL", address)
        if answer:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.sink.answer("RCPT", address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for address in envelope.rcpt_tos:
            answer = self.sink.answer("DATA", address)
            if answer:
                return answer
        with self.sink.lock:
            self.sink.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    list(envelope.mail_options),
                )
            )
        return "250 Message accepted for delivery"


class SMTPSink:
    def __init__(self, *, pipelining: bool = True, smtputf8: bool = False) -> None:
        self.received: list[Received] = []
        self.replies: dict[tuple[str, str], dict] = {}
        self.pipelining = pipelining
        self.lock = threading.Lock()
        # (reply, time.monotonic() it ends) while an outage lasts; how many MAILs it refused.
        self.outage_until: tuple[str, float] | None = None
        self.outage_refused = 0
        with socket.socket() as probe:  # aiosmtpd's readiness check cannot use port 0
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            enable_SMTPUTF8=smtputf8,
        )

    def refuse(self, address: str, answer: str, *, once: bool = False, at: str = "RCPT") -> None:
        """Answer `at` (RCPT: RCPT TO `address`; MAIL: MAIL FROM `address`; DATA: the end of
        a message to `address`) with `answer` (e.g. "450 4.2.1 Mailbox busy")."""
        self.replies[(at, address.lower())] = {"answer": answer, "once": once}

    def answer(self, at: str, address: str) -> str | None:
        reply = self.replies.get((at, address.lower()))
        if not reply:
            return None
        if reply["once"]:
            del self.replies[(at, address.lower())]
        return reply["answer"]

    def outage(self, answer: str, seconds: float) -> None:
        """Answer every MAIL FROM with `answer` (e.g. "421 4.3.2 Service not available") for
        the next `seconds`, then accept mail again."""
        self.outage_until = (answer, time.monotonic() + seconds)

    def outage_answer(self) -> str | None:
        if self.outage_until is None:
            return None
        answer, until = self.outage_until
        if time.monotonic() >= until:
            self.outage_until = None
            return None
        self.outage_refused += 1
        return answer

    def message_ids(self) -> list[tuple[str, str]]:
        """(recipient, Message-ID) of each message received, in arrival order; a message to
        several recipients counts once for each."""
        with self.lock:
            received = list(self.received)
        pairs = []
        for item in received:
            headers = item.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
            found = _MESSAGE_ID.search(headers)
            message_id = found.group(1).decode(errors="replace") if found else ""
            pairs.extend((rcpt.lower(), message_id) for rcpt in item.rcpt_tos)
        return pairs

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        with self.lock:
            return [item.message for item in self.received]

    def __enter__(self) -> "SMTPSink":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def use_sink(settings, sink: SMTPSink) -> None:
    """Point Django's email settings (pytest-django `settings` fixture) at the sink."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 10
