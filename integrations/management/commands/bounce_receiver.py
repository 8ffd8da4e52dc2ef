"""`manage.py bounce_receiver [--bind HOST:PORT]`: an SMTP server (aiosmtpd) that takes the
mail meant for the bounce intake directly, instead of a mailbox Herald polls.

It accepts RCPT TO a VERP bounce address (bounces+<32 hex digits>@…) or a valid
List-Unsubscribe address (unsubscribe+<token>@…) and refuses every other recipient with 550,
so it is no open relay and no catch-all. Each message is read and applied
(integrations.bounces) before the server answers the DATA command: 250 once it is committed,
451 when applying failed, so the sending server keeps it and tries again; nothing accepted is
lost. Point the MX of the bounce (VERP) domain and of the List-Unsubscribe mailto domain at
it, or let the MTA in front hand that mail to it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from integrations.bounces import mail_process, recipient_accepted

logger = logging.getLogger(__name__)

SOURCE = "SMTP bounce receiver"
DEFAULT_BIND = "127.0.0.1:2525"
# Reports quote at most the returned message; anything bigger is not one of them.
DATA_SIZE_LIMIT = 10 * 1024 * 1024


def _process(raw: bytes, recipients: tuple[str, ...]) -> str:
    close_old_connections()
    try:
        report = mail_process(raw, source=SOURCE, recipients=recipients)
    finally:
        close_old_connections()
    if report.unreadable:
        # Answered 451: the sending server keeps the message rather than Herald losing it.
        raise ValueError("the message could not be read")
    return ", ".join(report.kinds) or "nothing"


class BounceHandler:
    """aiosmtpd handler: recipients checked at RCPT, each message applied at DATA. The
    database work runs on one worker thread (Django's ORM is synchronous)."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not recipient_accepted(address):
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        try:
            kinds = await loop.run_in_executor(
                self.executor, _process, bytes(raw), tuple(envelope.rcpt_tos)
            )
        except Exception:
            logger.exception("the bounce receiver could not apply a message")
            return "451 4.3.0 Not processed, please try again later"
        logger.info("bounce receiver: %s for %s", kinds, ", ".join(envelope.rcpt_tos))
        return f"250 2.0.0 OK: {kinds}"


def bind_parse(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"--bind must be HOST:PORT, e.g. {DEFAULT_BIND}; got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 (":25" means every address)


async def receiver_serve(host: str, port: int, *, hostname: str | None = None) -> None:
    """Serve until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bounce-receiver")
    handler = BounceHandler(executor)

    def protocol() -> SMTP:
        return SMTP(
            handler,
            hostname=hostname,
            ident="Herald bounce receiver",
            data_size_limit=DATA_SIZE_LIMIT,
            enable_SMTPUTF8=True,
        )

    server = await loop.create_server(protocol, host=host, port=port)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    logger.info("bounce receiver listening on %s:%s", host, port)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        executor.shutdown(wait=True)


class Command(BaseCommand):
    help = (
        "Receive bounces (DSN), complaint reports (ARF) and List-Unsubscribe mail over SMTP "
        "for bounces+…@ and unsubscribe+…@ addresses; other recipients are refused."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--bind",
            default=DEFAULT_BIND,
            help=f"address and port to listen on (default {DEFAULT_BIND}; 0.0.0.0:25 for an MX)",
        )
        parser.add_argument(
            "--hostname", default=None, help="the name in the greeting (default: this host's)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = bind_parse(options["bind"])
        self.stdout.write(f"Bounce receiver on {host}:{port} (Ctrl-C to stop)")
        self.stdout.flush()
        try:
            asyncio.run(receiver_serve(host, port, hostname=options["hostname"]))
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
