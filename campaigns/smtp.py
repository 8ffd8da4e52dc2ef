"""smtplib's sendmail in two round trips when the server allows it.

smtplib.SMTP.sendmail waits for the answer to MAIL FROM, to each RCPT TO, to DATA and to the
message: 3 + recipients round trips, each a write, a wake-up of the server and a read. A
server that announces PIPELINING (RFC 2920; Postfix and every large provider do) takes MAIL,
RCPT and DATA in one write; the message follows once DATA is answered. The replies are read
in order and judged exactly as sendmail judges them, and the same exceptions are raised
(campaigns.delivery.policy classifies them), so callers cannot tell the two apart. Without
PIPELINING, or for an address smtplib would have to encode, this is smtplib's sendmail (with
SMTPUTF8 for an internationalised address: contacts.email_addresses).
"""

from __future__ import annotations

import functools
import re
import smtplib
from contextlib import suppress

from campaigns.mime import PLAIN_ADDRESS
from contacts.email_addresses import smtp_sendmail

CRLF = b"\r\n"
_LEADING_PERIOD = re.compile(rb"(?m)^\.")


def _path(address: str) -> str:
    """The <path> of MAIL FROM / RCPT TO for an address, as smtplib quotes it."""
    if PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return _quoted(address)


@functools.lru_cache(maxsize=64)  # the sender, mostly
def _quoted(address: str) -> str:
    return smtplib.quoteaddr(address)


def _finish(smtp: smtplib.SMTP, code: int) -> None:
    """What sendmail does after a refusal: 421 means the server is closing, else RSET so
    the connection can carry the next message."""
    if code == 421:
        smtp.close()
    else:
        _reset(smtp)


def _reset(smtp: smtplib.SMTP) -> None:
    """RSET, ignoring a server that has gone: as smtplib's own (private) `_rset`, which
    sendmail uses, so that the disconnection surfaces at the next command instead."""
    with suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def sendmail(
    smtp: smtplib.SMTP, sender: str, recipients: list[str], message: bytes, *, utf8: bool = False
) -> dict:
    """smtp.sendmail(sender, recipients, message) for bytes: the same result (refused
    recipients, when some were accepted) and the same exceptions. `utf8`: the message has
    internationalised addresses and goes with SMTPUTF8, one command at a time (rare), or is
    refused with SMTPUTF8Unsupported when the server does not offer it."""
    if utf8:
        return smtp_sendmail(smtp, sender, recipients, message, utf8=True)
    smtp.ehlo_or_helo_if_needed()
    paths = [_path(address) for address in (sender, *recipients)]
    if not (smtp.does_esmtp and smtp.has_extn("pipelining") and recipients) or not all(
        path.isascii() for path in paths
    ):
        return smtp.sendmail(sender, recipients, message)
    size = f" size={len(message)}" if smtp.has_extn("size") else ""
    commands = [f"mail FROM:{paths[0]}{size}\r\n"]
    commands += [f"rcpt TO:{path}\r\n" for path in paths[1:]]
    commands.append("data\r\n")
    smtp.send("".join(commands).encode("ascii"))

    mail_code, mail_reply = smtp.getreply()
    if mail_code == 421:  # the server is closing: nothing more will come
        smtp.close()
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    refused = {}
    closing = False
    for address in recipients:
        code, reply = smtp.getreply()
        if code not in (250, 251):
            refused[address] = (code, reply)
        if code == 421:
            closing = True
            break
    data_code, data_reply = smtp.getreply() if not closing else (421, b"")
    accepted = mail_code == 250 and not closing and len(refused) < len(recipients)
    if data_code == 354 and not accepted:
        # A server may open DATA although nothing before it was accepted (RFC 2920 3.1):
        # an empty message ends it, to be refused.
        smtp.send(b"." + CRLF)
        smtp.getreply()
    if mail_code != 250:
        _finish(smtp, mail_code)
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    if closing:
        smtp.close()
        raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients):
        _reset(smtp)
        raise smtplib.SMTPRecipientsRefused(refused)
    if data_code != 354:
        _finish(smtp, data_code)
        raise smtplib.SMTPDataError(data_code, data_reply)

    quoted = _LEADING_PERIOD.sub(b"..", message)
    if not quoted.endswith(CRLF):
        quoted += CRLF
    smtp.send(quoted + b"." + CRLF)
    code, reply = smtp.getreply()
    if code != 250:
        _finish(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    return refused
