"""The bytes of an outgoing email for SMTP, written directly instead of through the email
package's object model and generator.

A campaign email is always the same shape: a text part and an HTML alternative, a handful of
headers, UTF-8. Django turns an EmailMultiAlternatives into bytes by building MIMEText and
MIMEMultipart objects and running them through email.generator, which folds every header
with email.header.Header and compiles a regular expression per message to check its boundary:
about 0.5 ms of CPU a message, more than rendering, tracking and the ledger together. Here the
same bytes are written with string formatting; only what is unusual (a non-ASCII or long
header, a body line over 998 bytes) goes through the email package's own encoders, so the
result matches what Django sends: the same headers in the same order, the same
Content-Transfer-Encoding per part, the same folding. Only the boundary differs.

Messages of any other shape (attachments, Cc, Bcc, Reply-To, several alternatives, another
charset) are left to Django: `message_bytes` returns None for them.
"""

from __future__ import annotations

import functools
import random
import re
import sys
import time
from email.header import Header
from email.utils import formatdate, make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import (
    ADDRESS_HEADERS,
    RFC5322_EMAIL_LINE_LENGTH_LIMIT,
    BadHeaderError,
    forbid_multi_line_headers,
    sanitize_address,
    utf8_charset_qp,
)
from django.core.mail.utils import DNS_NAME

from contacts.email_addresses import address_header, needs_smtputf8
from contacts.email_addresses import envelope_address as international_envelope_address

# What the email generator folds headers to (compat32 policy, RFC 5322's "should").
MAX_HEADER_LINE = 78
CRLF = "\r\n"

# An address that sanitize_address returns unchanged: a dot-atom local part and an ASCII
# host name. Anything else (a display name, quotes, non-ASCII) goes through Django.
PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_NEWLINES = re.compile(r"\r\n|\r|\n")
# Headers message() writes itself; extra headers with these names change its output.
ADDRESS_HEADER_NAMES = frozenset({"From", "To", "Cc", "Reply-To"})
_OWN_HEADERS = frozenset({"from", "to", "cc", "reply-to", "date", "mime-version", "content-type"})


def _fold_list(name: str, value: str) -> str | None:
    """A long comma-separated list of space-free items (List-Unsubscribe) folded after its
    commas, each line filled as far as it goes: what email.header.Header does with it, in a
    fraction of the time. None for anything else."""
    items = value.split(", ")
    if len(items) < 2 or any(not item or " " in item or ";" in item for item in items):
        return None
    # Every item but the last keeps its comma, on the line it ends.
    chunks = [f"{item}," for item in items[:-1]] + [items[-1]]
    lines = [f"{name}: {chunks[0]}"]
    if len(lines[0]) > MAX_HEADER_LINE:
        return None  # Header would put a long first item on a line of its own
    for chunk in chunks[1:]:
        if len(lines[-1]) + 1 + len(chunk) <= MAX_HEADER_LINE:
            lines[-1] += f" {chunk}"
        else:
            lines.append(f" {chunk}")
    return CRLF.join(lines) + CRLF


def header_line(name: str, value: str) -> str:
    """One header as Django's message() and the email generator write it, CRLF included.

    Short ASCII values (nearly all) are written as they are, lists of links folded at their
    commas; the rest get Django's header treatment (newlines refused, non-ASCII encoded,
    addresses sanitised) and the generator's folding at 78 characters. An address header
    with an internationalised address is written as contacts.email_addresses decides (the
    domain in ASCII, a non-ASCII local part as raw UTF-8, for SMTPUTF8)."""
    if value.isascii() and value.isprintable():
        if len(name) + 2 + len(value) <= MAX_HEADER_LINE:
            return f"{name}: {value}{CRLF}"
        if name.lower() not in ADDRESS_HEADERS and name.lower() != "subject":
            folded = _fold_list(name, value)
            if folded is not None:
                return folded
    if name in ADDRESS_HEADER_NAMES:
        international = address_header(value)
        if international is not None:
            if "\n" in value or "\r" in value:
                raise BadHeaderError(f"Header values can't contain newlines (got {value!r})")
            return f"{name}: {international[0]}{CRLF}"
    name, value = forbid_multi_line_headers(name, value, "utf-8")
    folded = Header(value, header_name=name).encode(linesep=CRLF, maxlinelen=MAX_HEADER_LINE)
    return f"{name}: {folded}{CRLF}"


def envelope_address(address: str) -> str:
    """The address as the SMTP backend gives it to MAIL FROM / RCPT TO, except that an
    internationalised one keeps its local part (sent with SMTPUTF8) and has its domain in
    ASCII, where Django would write an encoded word (an invalid address)."""
    if PLAIN_ADDRESS.fullmatch(address):
        return address
    if not address.isascii():
        return international_envelope_address(address)
    return sanitize_address(address, "utf-8")


@functools.lru_cache(maxsize=16)
def _envelope_sender(from_email: str) -> str:
    return envelope_address(from_email)


@functools.lru_cache(maxsize=2)
def _formatted_date(second: int, local: bool) -> str:
    return formatdate(second, localtime=local)


def _date() -> str:
    """The Date header's value, formatted once a second (formatdate is not cheap)."""
    return _formatted_date(int(time.time()), settings.EMAIL_USE_LOCALTIME)


def _part(body: str, subtype: str) -> tuple[str, str]:
    """(headers, body) of one UTF-8 text part with the transfer encoding Django picks: 7bit
    or 8bit, or quoted-printable when a line is longer than SMTP allows."""
    encoded = body.encode("utf-8")
    # Django's test, lines split as str.splitlines does; only a long body can have one.
    long_lines = len(encoded) > RFC5322_EMAIL_LINE_LENGTH_LIMIT and any(
        len(line.encode("utf-8")) > RFC5322_EMAIL_LINE_LENGTH_LIMIT for line in body.splitlines()
    )
    if long_lines:
        encoding = "quoted-printable"
        body = utf8_charset_qp.body_encode(encoded)
    else:
        encoding = "7bit" if encoded.isascii() else "8bit"
    headers = (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"MIME-Version: 1.0{CRLF}"
        f"Content-Transfer-Encoding: {encoding}{CRLF}"
    )
    # The generator writes every line ending as CRLF.
    return headers, _NEWLINES.sub(CRLF, body)


def _boundary() -> str:
    # The generator's shape (it only has to be absent from the parts, not secret).
    return f"==============={random.randrange(sys.maxsize):019d}=="


def _texts(message: EmailMultiAlternatives) -> tuple[str, str | None] | None:
    """(the text body, the HTML alternative or None) of a message of the shape written here;
    None for any other shape (Django writes those)."""
    alternatives = getattr(message, "alternatives", [])
    if not (
        isinstance(message, EmailMultiAlternatives)
        and (message.encoding or settings.DEFAULT_CHARSET).lower() in ("utf-8", "utf8")
        and message.content_subtype == "plain"
        # Read by name: Django 5.2 has this attribute, the django-stubs in use do not declare it.
        and getattr(message, "alternative_subtype", None) == "alternative"
        and bool(message.body)
        and len(message.to) == 1
        and bool(message.to[0])
        and not (message.attachments or message.cc or message.bcc or message.reply_to)
        and len(alternatives) <= 1
        and all(mimetype == "text/html" for _, mimetype in alternatives)
        and not any(name.lower() in _OWN_HEADERS for name in message.extra_headers)
    ):
        return None
    body = message.body
    html = alternatives[0][0] if alternatives else None
    # Text only: a body or alternative given as bytes or a lazy string is Django's to write.
    if not isinstance(body, str) or not (html is None or isinstance(html, str)):
        return None
    return body, html


def message_bytes(message: EmailMultiAlternatives) -> tuple[bytes, list[str]] | None:
    """(the message as sent, the names of its top-level headers in lower case), or None when
    the message has a shape written only by Django (see the module docstring)."""
    texts = _texts(message)
    if texts is None:
        return None
    text_body, html_body = texts
    text_headers, text = _part(text_body, "plain")
    if html_body is not None:
        html_headers, html = _part(html_body, "html")
        boundary = _boundary()
        while boundary in text or boundary in html:  # as the generator checks; ~never
            boundary = _boundary()
        content_type = f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"{CRLF}'
        body = (
            f"--{boundary}{CRLF}{text_headers}{CRLF}{text}{CRLF}"
            f"--{boundary}{CRLF}{html_headers}{CRLF}{html}{CRLF}"
            f"--{boundary}--{CRLF}"
        )
        top = [content_type, f"MIME-Version: 1.0{CRLF}"]
    else:
        # A single part: its own headers are the message's.
        top = [text_headers]
        body = text if text.endswith(CRLF) else text + CRLF
    names = ["content-type", "mime-version"]
    if html_body is None:
        names.append("content-transfer-encoding")
    top.append(header_line("Subject", str(message.subject)))
    top.append(header_line("From", str(message.from_email)))
    top.append(header_line("To", str(message.to[0])))
    top.append(header_line("Date", _date()))
    names += ["subject", "from", "to", "date"]
    if not any(name.lower() == "message-id" for name in message.extra_headers):
        top.append(header_line("Message-ID", make_msgid(domain=DNS_NAME)))
        names.append("message-id")
    for name, value in message.extra_headers.items():
        top.append(header_line(name, str(value)))
        names.append(name.lower())
    head = "".join(top)
    return (head + CRLF + body).encode("utf-8"), names


def envelope(message: EmailMultiAlternatives) -> tuple[str, list[str], bool]:
    """(MAIL FROM, RCPT TO addresses, whether the message needs SMTPUTF8) as Django's SMTP
    backend computes them, except that MAIL FROM is the message's `return_path` when it has
    one (a VERP address per delivery, campaigns.delivery.verp; the From header is unchanged
    by it), and internationalised addresses are kept right (envelope_address)."""
    return_path = getattr(message, "return_path", "")
    sender = envelope_address(return_path) if return_path else _envelope_sender(message.from_email)
    recipients = [envelope_address(a) for a in message.recipients()]
    # The From header counts too: with a raw UTF-8 address in it the message is RFC 6532's.
    utf8 = needs_smtputf8(sender, str(message.from_email), *recipients)
    return sender, recipients, utf8
