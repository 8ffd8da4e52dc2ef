"""The bounce mailbox: a mailbox Herald polls (IMAP or POP3, Python's own clients) for the
bounces (DSN), complaint reports (ARF) and List-Unsubscribe mail that reach it, read and
applied by integrations.bounces.

Point the VERP Return-Path domain, the List-Unsubscribe mailto domain and the feedback-loop
address of the mailbox providers at this mailbox (or use `manage.py bounce_receiver`, which
takes the same mail over SMTP). Celery beat polls every enabled bounce mailbox each minute
(integrations.tasks).

Crash safety: a message is deleted (IMAP: flagged \\Deleted and expunged, or flagged \\Seen
when the integration keeps processed mail; POP3: DELE, which the server carries out at QUIT)
only after what it reported is committed, so a poll that dies re-reads rather than loses
mail; reading the same report twice changes nothing. IMAP messages are fetched with
BODY.PEEK[] (which leaves \\Seen alone) and addressed by UID, so a mail client expunging the
same folder meanwhile cannot make Herald delete the wrong message. One poll at a time per
mailbox (a PostgreSQL advisory lock), at most POLL_LIMIT messages per poll.
"""

from __future__ import annotations

import imaplib
import logging
import poplib
import ssl
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from django.db import connection
from django.utils import timezone

from campaigns.delivery.providers import (
    Provider,
    ProviderError,
    SettingField,
    provider_of,
    provider_register,
)
from config.core.models import Integration
from integrations.bounces import InboundMail, mails_process

logger = logging.getLogger(__name__)

KIND = "bounce_mailbox"
# A poll reads at most this many messages (then the task goes on in a fresh one), applied in
# transactions of BATCH: each costs a few statements however many reports it holds.
POLL_LIMIT = 500
BATCH = 100
TIMEOUT = 30  # seconds for any one server reply
# pg_try_advisory_lock(classid, objid): one poller per mailbox.
_LOCK_CLASS = 0x626F756E  # "boun"

_DEFAULT_PORTS = {
    ("imap", "tls"): 993,
    ("imap", "starttls"): 143,
    ("imap", "none"): 143,
    ("pop3", "tls"): 995,
    ("pop3", "starttls"): 110,
    ("pop3", "none"): 110,
}


class _Mailbox(Protocol):
    def count(self) -> int: ...

    def pending(self, limit: int) -> list[str]: ...

    def fetch(self, key: str) -> bytes: ...

    def done(self, keys: list[str]) -> None: ...

    def finish(self) -> None: ...

    def abandon(self) -> None: ...


def _reply(data: object) -> str:
    """A server's reply as text (imaplib hands lists of bytes)."""
    if isinstance(data, list | tuple):
        data = b" ".join(x if isinstance(x, bytes) else str(x).encode() for x in data if x)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


class _IMAPMailbox:
    def __init__(self, client: imaplib.IMAP4, folder: str, delete: bool) -> None:
        self.client = client
        self.delete = delete
        status, data = client.select(_imap_quote(folder))
        if status != "OK":
            raise ProviderError(f"folder {folder}: {_reply(data)}", permanent=True)
        self.exists = int(_reply(data) or 0)

    def _ok(self, answer: tuple[str, list]) -> list:
        status, data = answer
        if status != "OK":
            raise ProviderError(_reply(data))
        return data

    def count(self) -> int:
        return self.exists

    def pending(self, limit: int) -> list[str]:
        criteria = "UNDELETED" if self.delete else "UNSEEN UNDELETED"
        data = self._ok(self.client.uid("SEARCH", criteria))
        return _reply(data).split()[:limit]

    def fetch(self, key: str) -> bytes:
        for item in self._ok(self.client.uid("FETCH", key, "(BODY.PEEK[])")):
            if isinstance(item, tuple) and len(item) == 2:
                return bytes(item[1])
        raise ProviderError(f"message UID {key} is gone")

    def done(self, keys: list[str]) -> None:
        if keys:
            flag = "(\\Deleted)" if self.delete else "(\\Seen)"
            self._ok(self.client.uid("STORE", ",".join(keys), "+FLAGS.SILENT", flag))

    def finish(self) -> None:
        if self.delete:
            self._ok(self.client.expunge())
        self.client.logout()

    def abandon(self) -> None:
        _drop(self.client)


def _drop(client: imaplib.IMAP4 | poplib.POP3) -> None:
    """Close a session without the protocol's goodbye (it failed half-way)."""
    try:
        if isinstance(client, imaplib.IMAP4):
            client.shutdown()
        else:
            client.close()
    except OSError:
        pass


def _imap_quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _POP3Mailbox:
    """POP3 has no flags: processed messages are always deleted (DELE, done at QUIT)."""

    def __init__(self, client: poplib.POP3) -> None:
        self.client = client

    def count(self) -> int:
        return int(self.client.stat()[0])

    def pending(self, limit: int) -> list[str]:
        return [str(n) for n in range(1, min(self.count(), limit) + 1)]

    def fetch(self, key: str) -> bytes:
        _, lines, _ = self.client.retr(int(key))
        return b"\r\n".join(lines) + b"\r\n"

    def done(self, keys: list[str]) -> None:
        for key in keys:
            self.client.dele(int(key))

    def finish(self) -> None:
        self.client.quit()

    def abandon(self) -> None:
        _drop(self.client)


@dataclass
class PollReport:
    """One poll: messages read, deleted or flagged, what they reported, whether more wait,
    and the error that stopped it ('' when none)."""

    read: int = 0
    removed: int = 0
    left: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)
    unsubscribed: int = 0
    more: bool = False
    skipped: bool = False
    error: str = ""


@provider_register
class BounceMailboxProvider(Provider):
    kind = KIND
    label = "Bounce mailbox (IMAP / POP3)"
    channels: ClassVar[frozenset[str]] = frozenset()
    fields = (
        SettingField(
            "protocol", "Protocol", kind="choice", choices=(("imap", "IMAP"), ("pop3", "POP3"))
        ),
        SettingField("host", "Server"),
        SettingField(
            "port",
            "Port",
            kind="int",
            required=False,
            help="Empty: 993 (IMAP over TLS), 143 (IMAP), 995 (POP3 over TLS), 110 (POP3).",
        ),
        SettingField(
            "security",
            "Security",
            kind="choice",
            choices=(("tls", "TLS"), ("starttls", "STARTTLS"), ("none", "None")),
            default="tls",
        ),
        SettingField("username", "User name"),
        SettingField("password", "Password", secret=True),
        SettingField(
            "folder", "Folder (IMAP)", required=False, default="INBOX", help="Default: INBOX."
        ),
        SettingField(
            "processed",
            "Processed messages",
            kind="choice",
            choices=(("delete", "Delete them"), ("mark", "Mark them read (IMAP only)")),
            default="delete",
            help="POP3 has no flags: processed messages are always deleted.",
        ),
    )

    def _address(self) -> tuple[str, str, int, str]:
        protocol = str(self.setting("protocol", "imap")).lower()
        security = str(self.setting("security", "tls")).lower()
        if protocol not in ("imap", "pop3"):
            raise ProviderError(f"protocol must be imap or pop3, not {protocol!r}", permanent=True)
        if security not in ("tls", "starttls", "none"):
            raise ProviderError(
                f"security must be tls, starttls or none, not {security!r}", permanent=True
            )
        host = str(self.setting("host", "")).strip()
        if not host:
            raise ProviderError("no server is set", permanent=True)
        port = self.setting("port")
        try:
            number = int(port) if port not in (None, "") else _DEFAULT_PORTS[(protocol, security)]
        except (TypeError, ValueError):
            raise ProviderError(f"port must be a number, not {port!r}", permanent=True) from None
        return protocol, host, number, security

    @contextmanager
    def mailbox_open(self) -> Iterator[_Mailbox]:
        """A logged-in session; closed properly (expunge / QUIT) when the block ends, even by
        an exception (what was marked had been committed), dropped if closing fails."""
        protocol, host, port, security = self._address()
        user = str(self.setting("username", ""))
        password = str(self.setting("password", ""))
        context = ssl.create_default_context()
        box: _Mailbox
        client: imaplib.IMAP4 | poplib.POP3 | None = None
        try:
            if protocol == "imap":
                if security == "tls":
                    client = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=TIMEOUT)
                else:
                    client = imaplib.IMAP4(host, port, timeout=TIMEOUT)
                    if security == "starttls":
                        client.starttls(ssl_context=context)
                client.login(user, password)
                folder = str(self.setting("folder", "INBOX") or "INBOX")
                box = _IMAPMailbox(client, folder, self.setting("processed", "delete") != "mark")
            else:
                if security == "tls":
                    client = poplib.POP3_SSL(host, port, context=context, timeout=TIMEOUT)
                else:
                    client = poplib.POP3(host, port, timeout=TIMEOUT)
                    if security == "starttls":
                        client.stls(context=context)
                client.user(user)
                client.pass_(password)
                box = _POP3Mailbox(client)
        except BaseException as exc:
            if client is not None:
                _drop(client)
            if isinstance(exc, imaplib.IMAP4.error | poplib.error_proto):
                # The server's own words, e.g. "[AUTHENTICATIONFAILED] Authentication failed."
                said = _reply(exc.args[0] if exc.args else exc)
                raise ProviderError(f"{host}: {said}", permanent=True) from None
            if isinstance(exc, OSError | EOFError):
                raise ProviderError(f"cannot reach {host}:{port}: {exc}") from None
            raise
        try:
            yield box
        except BaseException:
            try:
                box.finish()
            except Exception:
                box.abandon()
            raise
        try:
            box.finish()
        except (imaplib.IMAP4.error, poplib.error_proto, OSError, EOFError) as exc:
            box.abandon()
            raise ProviderError(f"{host}: closing the session: {exc}") from None

    def connection_test(self) -> str:
        with self.mailbox_open() as box:
            count = box.count()
        where = (
            f"folder {self.setting('folder', 'INBOX') or 'INBOX'}"
            if self.setting("protocol", "imap") == "imap"
            else "the mailbox"
        )
        return f"logged in; {count} message{'s' if count != 1 else ''} in {where}"


@contextmanager
def _poll_lock(integration_id: int) -> Iterator[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_CLASS, integration_id])
        locked = bool(cursor.fetchone()[0])
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_CLASS, integration_id])


def bounce_mailbox_poll(*, integration_id: int, limit: int = POLL_LIMIT) -> PollReport:
    """Read up to `limit` messages of a bounce mailbox, apply what they report, then delete
    (or mark) them, batch by batch; record the outcome on the integration (last_checked_at,
    last_error). A batch whose applying fails stays in the mailbox and ends the poll."""
    report = PollReport()
    integration = Integration.objects.filter(pk=integration_id, kind=KIND, enabled=True).first()
    if integration is None:
        report.skipped = True
        return report
    provider = provider_of(integration)
    assert isinstance(provider, BounceMailboxProvider)
    source = f"bounce mailbox {integration.name}"
    with _poll_lock(integration.pk) as locked:
        if not locked:
            report.skipped = True  # another worker is polling it
            return report
        try:
            with provider.mailbox_open() as box:
                keys = box.pending(limit + 1)
                report.more = len(keys) > limit
                keys = keys[:limit]
                for start in range(0, len(keys), BATCH):
                    chunk = keys[start : start + BATCH]
                    mails = [InboundMail(box.fetch(key)) for key in chunk]
                    report.read += len(mails)
                    intake = mails_process(mails, source=source, integration=integration)
                    # Committed: now the processed messages may go.
                    processed = [k for i, k in enumerate(chunk) if i not in intake.unreadable]
                    box.done(processed)
                    report.removed += len(processed)
                    report.left += len(intake.unreadable)
                    report.kinds.update(intake.kinds)
                    report.changes.update(intake.applied.changes)
                    report.unsubscribed += intake.unsubscribed
        except ProviderError as exc:
            report.error = exc.message
        except (imaplib.IMAP4.error, poplib.error_proto, OSError, EOFError) as exc:
            report.error = f"mailbox session failed: {exc}"
        except Exception as exc:
            logger.exception("polling %s failed", source)
            report.error = f"processing failed: {type(exc).__name__}: {exc}"
        if report.error:
            report.more = False
        if report.left and not report.error:
            report.error = (
                f"{report.left} message(s) could not be read and were left in the mailbox"
            )
    Integration.objects.filter(pk=integration.pk).update(
        last_checked_at=timezone.now(), last_error=report.error[:10_000]
    )
    return report


def bounce_mailboxes() -> list[int]:
    """The enabled bounce mailboxes, by id."""
    return list(
        Integration.objects.filter(kind=KIND, enabled=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
