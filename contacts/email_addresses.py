"""Email addresses on the wire: internationalised domains and mailboxes.

Decisions:
- Stored form: an address is kept as contacts.channels.email_normalise gives it, lower-cased,
  its domain in Unicode (`user@bücher.example`, also when it was typed as
  `user@xn--bcher-kva.example`), so one mailbox is one contact whichever form arrives, and
  pages show what people recognise. The ASCII forms below exist only on the wire.
- Domains go out in their ASCII (IDNA 2008, punycode) form, in the envelope and in the
  headers: every server understands `xn--bcher-kva.example`; no extension is needed.
- A non-ASCII local part (`chloé.müller36@example.com`) can only travel through a server
  that offers SMTPUTF8 (RFC 6531): MAIL FROM carries the SMTPUTF8 parameter and the address
  headers are raw UTF-8 (RFC 6532). Where the server does not offer it the message is refused
  here, permanently, with a reason a marketer can read: the alternative Django falls back to
  (an RFC 2047 encoded word as the local part, `=?utf-8?b?…?=@example.com`) is an invalid
  address that bounces or, worse, reaches another mailbox.
- Every check starts with str.isascii(), one C call: plain addresses, nearly all of them,
  pay nothing more (the campaign send benchmark is sensitive to this path).
"""

from __future__ import annotations

import smtplib
from email.message import Message as MIMEMessage
from email.utils import formataddr, getaddresses, parseaddr

import idna
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

# The reason recorded on a delivery refused for this, shown on the message log.
SMTPUTF8_REFUSED = "the receiving server does not accept internationalised addresses (SMTPUTF8)"
# The headers that hold addresses and that Herald writes.
ADDRESS_HEADERS = ("From", "To", "Cc", "Reply-To")


class SMTPUTF8Unsupported(smtplib.SMTPNotSupportedError):
    """The SMTP server does not offer SMTPUTF8 and the message needs it. Permanent: the same
    server will refuse the same address next time (campaigns.delivery.policy)."""

    def __init__(self) -> None:
        super().__init__(SMTPUTF8_REFUSED)


def domain_ascii(domain: str) -> str:
    """The domain in its ASCII (IDNA) form; an ASCII domain as it is."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        # A label IDNA 2008 refuses but IDNA 2003 takes (some emoji domains were
        # registered that way): the form every resolver still finds.
        return domain.encode("idna").decode("ascii")


def mailbox_ascii_domain(address: str) -> str:
    """`local@domain` with the domain in its ASCII form; the local part unchanged."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    return f"{local}@{domain_ascii(domain)}"


def _display_name(name: str) -> str:
    """The display name as formataddr writes it (quoted, or an RFC 2047 encoded word)."""
    placeholder = "x@x"
    return formataddr((name, placeholder))[: -len(placeholder) - 2]


def address_format(name: str, address: str) -> str:
    """`Name <address>` as formataddr writes it, for any address (formataddr refuses a
    non-ASCII one); the domain in its ASCII form."""
    address = mailbox_ascii_domain(address)
    if not name:
        return address
    if address.isascii():
        return formataddr((name, address))
    return f"{_display_name(name)}<{address}>"


def address_header(value: str) -> tuple[str, bool] | None:
    """The value of an address header (From, To, Reply-To) as it must go out, and whether
    it needs SMTPUTF8 (a non-ASCII local part, written as raw UTF-8); None when nothing in it
    is special (an ASCII value, or only a non-ASCII display name, which the usual encoding
    handles)."""
    if value.isascii():
        return None
    pairs = getaddresses([value])
    if all(address.isascii() for _, address in pairs):
        return None
    parts = []
    utf8 = False
    for name, address in pairs:
        address = mailbox_ascii_domain(address)
        utf8 = utf8 or not address.isascii()
        parts.append(f"{_display_name(name)}<{address}>" if name else address)
    return ", ".join(parts), utf8


def envelope_address(value: str) -> str:
    """The address of MAIL FROM / RCPT TO for a header-style value (`Name <a@b>` or `a@b`):
    the bare address, its domain in ASCII, its local part as it is."""
    return mailbox_ascii_domain(parseaddr(value)[1] if "<" in value else value)


def needs_smtputf8(*values: str) -> bool:
    """Whether any of these addresses or address header values has a non-ASCII local part."""
    for value in values:
        if value.isascii():
            continue
        for _, address in getaddresses([value]):
            if not address.rpartition("@")[0].isascii():
                return True
    return False


def message_addresses_fix(msg: MIMEMessage, email: EmailMultiAlternatives) -> None:
    """Rewrite the address headers of Django's MIME message `msg` (built from `email`) that
    hold an internationalised address: the domain in ASCII, a non-ASCII local part as raw
    UTF-8 (the generator writes surrogate-escaped bytes back as they were)."""
    headers = email.extra_headers
    sources = {
        "From": headers.get("From", email.from_email),
        "To": headers.get("To", ", ".join(map(str, email.to))),
        "Cc": headers.get("Cc", ", ".join(map(str, email.cc))),
        "Reply-To": headers.get("Reply-To", ", ".join(map(str, email.reply_to))),
    }
    for name, value in sources.items():
        if not value or name not in msg:
            continue
        fixed = address_header(str(value))
        if fixed is None:
            continue
        text, utf8 = fixed
        if utf8:
            text = text.encode("utf-8").decode("ascii", "surrogateescape")
        # The email package's own replace_header: Django's __setitem__ would encode it again.
        MIMEMessage.replace_header(msg, name, text)


class InternationalEmail(EmailMultiAlternatives):
    """An email whose address headers are right for internationalised addresses whatever
    backend writes it (the SMTP path, the outbox file, the console)."""

    def message(self, *args, **kwargs):
        msg = super().message(*args, **kwargs)
        message_addresses_fix(msg, self)
        return msg


def smtp_sendmail(
    smtp: smtplib.SMTP, sender: str, recipients: list[str], raw: bytes, *, utf8: bool
) -> dict:
    """smtplib's sendmail, with the SMTPUTF8 parameter when the message needs it; raises
    SMTPUTF8Unsupported (before sending anything) when it needs it and the server does not
    offer it."""
    if not utf8:
        return smtp.sendmail(sender, recipients, raw)
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("smtputf8"):
        raise SMTPUTF8Unsupported()
    return smtp.sendmail(sender, recipients, raw, mail_options=["SMTPUTF8"])


def email_send(message: InternationalEmail) -> None:
    """Send one email through Django's configured backend, internationalised addresses
    included: over SMTP with SMTPUTF8 when an address needs it (refused with
    SMTPUTF8Unsupported when the server lacks it), otherwise exactly as message.send()."""
    connection = get_connection(fail_silently=False)
    addresses = [message.from_email, *message.recipients()]
    if all(address.isascii() for address in addresses) or not isinstance(connection, SMTPBackend):
        connection.send_messages([message])
        return
    sender = envelope_address(message.from_email)
    recipients = [envelope_address(address) for address in message.recipients()]
    with connection:
        raw = message.message().as_bytes(linesep="\r\n")
        assert connection.connection is not None  # opened by the with block
        smtp_sendmail(
            connection.connection, sender, recipients, raw, utf8=needs_smtputf8(*addresses)
        )
