"""campaigns.mime writes the bytes Django's email framework would send for the same message:
compared byte for byte (the random MIME boundary and the clock aside) over the shapes a
campaign email takes, and refusing the shapes it does not cover."""

import re
from smtplib import quoteaddr

import pytest
from django.core.mail.message import BadHeaderError, sanitize_address

from campaigns import mime
from campaigns.delivery.email import HeraldEmail

UNSUBSCRIBE = (
    "<https://herald.example/u/1.linvthepiw2q7t42>, "
    "<mailto:unsubscribe+1.linvthepiw2q7t42@herald.example?subject=unsubscribe>"
)
HEADERS = {
    "Message-ID": "<3c85f9f69edb4bbfa154431c34acfc76@shop.example>",
    "List-Unsubscribe": UNSUBSCRIBE,
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def django_bytes(message) -> bytes:
    raw = message.message().as_bytes(linesep="\r\n")
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"  # smtplib adds the last CRLF


def comparable(raw: bytes) -> bytes:
    raw = re.sub(rb"={15}\d+==", b"BOUNDARY", raw)
    return re.sub(rb"Date: [^\r]*", b"Date: NOW", raw)


def email(subject="Spring sale for Ann", body="Hello Ann,\n", html=None, **kwargs):
    message = HeraldEmail(
        subject=subject,
        body=body,
        from_email=kwargs.pop("from_email", "Shop <news@shop.example>"),
        to=kwargs.pop("to", ["ann@example.com"]),
        headers=kwargs.pop("headers", dict(HEADERS)),
        **kwargs,
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    return message


@pytest.mark.parametrize(
    "subject",
    [
        "Spring sale for Ann",
        "Весняний розпродаж для Олі",
        "A subject long enough that the generator has to fold it onto a second line, at a space",
        "Ünïcode " * 20,
        "Looks =?utf-8?q?encoded?= but is not",
    ],
)
@pytest.mark.parametrize(
    "to", ["ann@example.com", "x.y+z@sub.example.com", "Оля <olya@приклад.укр>", "Ann <a@b.org>"]
)
@pytest.mark.parametrize("from_email", ["Shop <news@shop.example>", "Крамниця <news@shop.example>"])
def test_headers_match_django(subject, to, from_email):
    message = email(subject=subject, to=[to], from_email=from_email, html="<p>Hi</p>")
    raw, _ = mime.message_bytes(message)
    assert comparable(raw) == comparable(django_bytes(message))


@pytest.mark.parametrize(
    ("body", "html"),
    [
        ("Hello Ann,\n\nSee you.\n", "<p>Hello Ann</p>"),
        ("Héllo Olé\r\nwith CRLF and\rCR", "<p>é</p>"),
        ("x" * 1200 + "\nA line over 998 bytes goes quoted-printable\n", "<p>ok</p>"),
        ("short\n", "<p>" + "é" * 600 + "</p>"),
        ("no html part, no final newline", None),
        ("é" * 600, None),
    ],
)
def test_parts_and_transfer_encodings_match_django(body, html):
    message = email(body=body, html=html)
    raw, names = mime.message_bytes(message)
    assert comparable(raw) == comparable(django_bytes(message))
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe"} <= set(names)


@pytest.mark.parametrize(
    "base",
    [
        "http://127.0.0.1:8000",
        "https://herald.example.com",
        "https://tracking-links-of-a-rather-long-host-name.marketing.example.com",
    ],
)
@pytest.mark.parametrize("delivery_id", ["1", "3w5e11264sgsf"])
def test_list_unsubscribe_is_folded_like_django(base, delivery_id):
    token = f"{delivery_id}.linvthepiw2q7t42"
    host = base.split("//")[1].split(":")[0]
    value = f"<{base}/u/{token}>, <mailto:unsubscribe+{token}@{host}?subject=unsubscribe>"
    message = email(headers={**HEADERS, "List-Unsubscribe": value}, html="<p>x</p>")
    raw, _ = mime.message_bytes(message)
    assert comparable(raw) == comparable(django_bytes(message))


def test_a_message_id_is_made_when_none_is_given():
    raw, names = mime.message_bytes(email(headers={}))
    assert "message-id" in names and b"\r\nMessage-ID: <" in raw


def test_a_header_with_a_line_break_is_refused_like_django():
    with pytest.raises(BadHeaderError):
        mime.message_bytes(email(subject="Hi\r\nBcc: victim@example.com"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cc": ["c@example.com"]},
        {"bcc": ["b@example.com"]},
        {"reply_to": ["r@example.com"]},
        {"to": ["a@example.com", "b@example.com"]},
        {"attachments": [("a.txt", "text", "text/plain")]},
        {"headers": {"From": "Other <other@example.com>"}},
        {"body": ""},
    ],
)
def test_other_shapes_are_left_to_django(kwargs):
    assert mime.message_bytes(email(html="<p>x</p>", **kwargs)) is None


def test_an_html_alternative_given_as_bytes_is_left_to_django():
    message = email()
    message.attach_alternative(b"<p>x</p>", "text/html")
    assert mime.message_bytes(message) is None


@pytest.mark.parametrize(
    "address",
    ["ann@example.com", "x.y+z@Sub.Example.com", "Оля <olya@приклад.укр>", '"a b"@example.com'],
)
def test_envelope_addresses_are_the_smtp_backends(address):
    """As they go on the wire (smtplib quotes what it is given into MAIL FROM / RCPT TO)."""
    message = email(to=[address], from_email="Крамниця <news@shop.example>")
    sender, recipients, utf8 = mime.envelope(message)
    assert quoteaddr(sender) == quoteaddr(sanitize_address(message.from_email, "utf-8"))
    assert [quoteaddr(r) for r in recipients] == [quoteaddr(sanitize_address(address, "utf-8"))]
    assert not utf8
