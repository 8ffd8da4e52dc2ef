"""SMTP servers as integrations: any number of them side by side (a transactional relay and a
bulk one, say), each with its host, security, credentials, rate limit and bounce domain.

Sending is Herald's own email sending (campaigns.delivery.email) over Django's SMTP backend
built from these settings: one connection per sender task, reused for every batch, and the
fast path of campaigns.mime + campaigns.smtp (pipelined when the server allows it). With a
bounce domain (the integration's, else HERALD_BOUNCE_DOMAIN) each message's envelope sender
is its delivery's VERP address there (campaigns.delivery.verp), so a bounce names its
delivery. The connection test does what sending does up to the first message (connect,
EHLO, STARTTLS or TLS, AUTH), then MAIL FROM, RSET and QUIT, and answers with the server's
own words.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING, cast

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

from campaigns.delivery.email import EmailSender
from campaigns.delivery.policy import smtp_throttled
from campaigns.delivery.providers import (
    Provider,
    ProviderError,
    SettingField,
    provider_register,
)
from campaigns.delivery.verp import VERP_LOCAL
from contacts.models import ChannelType

if TYPE_CHECKING:
    from campaigns.delivery.content import SendContent
    from contacts.models import CustomField

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
SECURITY_CHOICES = (
    ("starttls", "STARTTLS (usually port 587)"),
    ("tls", "TLS from the start (SMTPS, usually port 465)"),
    ("none", "None (a relay on a trusted network)"),
)
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]+")


@dataclass(frozen=True)
class SMTPConfig:
    """An SMTP integration's settings, checked."""

    host: str
    port: int
    security: str
    username: str
    password: str
    timeout: int
    bounce_domain: str


def smtp_backend(config: SMTPConfig) -> SMTPBackend:
    """Django's SMTP backend for the server, not yet opened."""
    backend = get_connection(  # the SMTP backend, by the dotted path
        SMTP_BACKEND,
        fail_silently=False,
        host=config.host,
        port=config.port,
        username=config.username,
        password=config.password,
        use_tls=config.security == "starttls",
        use_ssl=config.security == "tls",
        timeout=config.timeout,
    )
    return cast(SMTPBackend, backend)


class SMTPSender(EmailSender):
    """Herald's email sender, through this integration's server."""

    def __init__(
        self,
        content: SendContent,
        custom_fields: list[CustomField],
        *,
        config: SMTPConfig,
        name: str,
    ) -> None:
        super().__init__(content, custom_fields)
        self.config = config
        self.name = name
        self.bounce_domain = config.bounce_domain or settings.HERALD_BOUNCE_DOMAIN

    def connection_make(self) -> SMTPBackend:
        return smtp_backend(self.config)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{exc.smtp_code} {' '.join(text.split())}"


@provider_register
class SMTPProvider(Provider):
    kind = "smtp"
    label = "SMTP server"
    channels = frozenset({ChannelType.EMAIL})
    fields = (
        SettingField("host", "Host", help="The SMTP server, e.g. smtp.example.com."),
        SettingField("port", "Port", kind="int", default=587),
        SettingField(
            "security", "Security", kind="choice", choices=SECURITY_CHOICES, default="starttls"
        ),
        SettingField("username", "Username", required=False, help="Empty: no login (AUTH)."),
        SettingField("password", "Password", secret=True, required=False),
        SettingField(
            "timeout",
            "Timeout (seconds)",
            kind="int",
            required=False,
            default=10,
            help="How long to wait for the server's answers.",
        ),
        SettingField(
            "bounce_domain",
            "Bounce domain (VERP)",
            required=False,
            help=(
                f"Each message's Return-Path becomes {VERP_LOCAL}+<id>@ this domain, so "
                "bounces name their message; its mail must reach Herald's bounce intake. "
                "Empty: HERALD_BOUNCE_DOMAIN, else the From address."
            ),
        ),
    )

    def config(self) -> SMTPConfig:
        """The settings, checked; a ProviderError names the first bad one."""
        host = str(self.setting("host", "") or "").strip()
        if not host or not _HOST.fullmatch(host):
            raise ProviderError("host: a host name or address is required", permanent=True)
        port = _number(self.setting("port", 587), "port", 1, 65535)
        security = str(self.setting("security", "starttls") or "starttls")
        if security not in dict(SECURITY_CHOICES):
            choices = ", ".join(dict(SECURITY_CHOICES))
            raise ProviderError(f"security: must be one of {choices}", permanent=True)
        timeout = _number(self.setting("timeout", 10), "timeout", 1, 600)
        bounce_domain = str(self.setting("bounce_domain", "") or "").strip().lower()
        if bounce_domain and not _DOMAIN.fullmatch(bounce_domain):
            raise ProviderError(
                "bounce_domain: not a domain name (e.g. bounce.example.com)", permanent=True
            )
        username = str(self.setting("username", "") or "")
        password = str(self.setting("password", "") or "")
        if password and not username:
            raise ProviderError("username: required with a password", permanent=True)
        return SMTPConfig(host, port, security, username, password, timeout, bounce_domain)

    def sender(self, content: SendContent, custom_fields: list[CustomField]) -> SMTPSender:
        return SMTPSender(content, custom_fields, config=self.config(), name=self.name)

    def connection_test(self) -> str:
        config = self.config()
        backend = smtp_backend(config)
        where = f"{config.host}:{config.port}"
        try:
            backend.open()  # connect, EHLO, STARTTLS or TLS, AUTH: as sending does
            smtp = backend.connection
            if smtp is None:  # open() raises when it cannot connect; never seen
                raise ProviderError(f"could not reach {where}")
            smtp.ehlo_or_helo_if_needed()
            greeting = (smtp.ehlo_resp or smtp.helo_resp or b"").decode(errors="replace")
            # MAIL FROM shows what AUTH cannot: a server that wants a login we do not give.
            code, text = smtp.mail(self._probe_sender())
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, text, self._probe_sender())
            smtp.rset()
        except smtplib.SMTPResponseException as exc:
            raise ProviderError(
                _reply(exc),
                permanent=500 <= exc.smtp_code < 600,
                throttled=smtp_throttled(exc.smtp_code, _reply(exc)),
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            hint = ""
            # Django keeps a connection that failed half way apart until close().
            smtp = backend.connection or getattr(backend, "_partial_connection", None)
            if config.security == "none" and smtp is not None and smtp.has_extn("starttls"):
                # Servers offer AUTH only after STARTTLS: say what to change.
                hint = " (it offers STARTTLS: choose that security)"
            raise ProviderError(f"{where}: {exc}{hint}", permanent=True) from None
        except ssl.SSLError as exc:
            raise ProviderError(f"{where}: TLS failed: {exc}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ProviderError(f"could not reach {where}: {exc or type(exc).__name__}") from None
        finally:
            backend.close()  # QUIT
        first = greeting.splitlines()[0] if greeting else ""
        login = f" as {config.username}" if config.username else ""
        return f"{where} accepted the connection{login}" + (f": {first}" if first else "")

    def _probe_sender(self) -> str:
        """The address MAIL FROM is tried with: a VERP address when there is a bounce
        domain, else the default sender."""
        domain = self.config().bounce_domain or settings.HERALD_BOUNCE_DOMAIN
        if domain:
            return f"{VERP_LOCAL}+{'0' * 32}@{domain}"
        return parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or "herald@localhost"


def _number(value: object, name: str, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ProviderError(f"{name}: must be a whole number", permanent=True) from None
    if not low <= number <= high:
        raise ProviderError(f"{name}: must be between {low} and {high}", permanent=True)
    return number
