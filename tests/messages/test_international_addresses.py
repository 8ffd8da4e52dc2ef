"""Internationalised addresses through a real SMTP server (aiosmtpd), with and without
SMTPUTF8 offered: a non-ASCII mailbox goes out with SMTPUTF8 and a raw UTF-8 header, or fails
permanently with a clear reason; a non-ASCII domain goes out in punycode, needing nothing.
Never an encoded word inside an address."""

import pytest

from campaigns.delivery.email import HeraldEmail, email_send_one
from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery
from config.core.models import Organisation
from contacts.email_addresses import SMTPUTF8_REFUSED, address_header, needs_smtputf8
from contacts.optin import confirmation_send
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory
from tests.support.api import results_list
from tests.support.smtp import SMTPSink, use_sink

pytestmark = pytest.mark.django_db

CHLOE = "chloé.müller36@example.com"
BOOKS = "user@bücher.example"
BOOKS_ASCII = "user@xn--bcher-kva.example"


@pytest.fixture
def utf8_sink(settings):
    with SMTPSink(smtputf8=True) as sink:
        use_sink(settings, sink)
        yield sink


@pytest.fixture
def ascii_sink(settings):
    with SMTPSink(smtputf8=False) as sink:
        use_sink(settings, sink)
        yield sink


def send(api, key, template, *addresses):
    answer = api.post(
        f"/api/v1/message/{template.pk}/smartsend",
        key=key,
        body={"recipients": [{"locator": a, "jsonParam": '{"orderId": "9"}'} for a in addresses]},
    ).json()
    deliveries = [
        Delivery.objects.get(request_id=r["requestId"]) for r in results_list(answer["results"])
    ]
    send_request_process(send_request_id=answer["id"])
    for delivery in deliveries:
        delivery.refresh_from_db()
    return deliveries


def header(raw: bytes, name: bytes) -> bytes:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(name.lower() + b":"):
            return line
    raise AssertionError(f"no {name!r} header in {raw[:400]!r}")


def test_a_non_ascii_mailbox_goes_with_smtputf8_and_a_raw_utf8_to_header(
    api, full_key, email_template, utf8_sink
):
    [delivery] = send(api, full_key, email_template, CHLOE)
    assert delivery.status == "sent", delivery.error
    [received] = utf8_sink.received
    assert received.rcpt_tos == [CHLOE]
    assert "SMTPUTF8" in [option.upper() for option in received.mail_options]
    assert header(received.raw, b"To") == f"To: {CHLOE}".encode()
    assert b"=?utf-8?" not in header(received.raw, b"To")


def test_without_smtputf8_a_non_ascii_mailbox_fails_permanently_and_the_rest_goes(
    api, full_key, email_template, ascii_sink
):
    chloe, ann = send(api, full_key, email_template, CHLOE, "ann@example.com")
    assert chloe.status == "failed"
    assert SMTPUTF8_REFUSED in chloe.error
    assert ann.status == "sent"
    assert [r.rcpt_tos for r in ascii_sink.received] == [["ann@example.com"]]


@pytest.mark.parametrize("smtputf8", [True, False], ids=["smtputf8", "ascii-only"])
def test_an_internationalised_domain_goes_in_punycode_without_smtputf8(
    api, full_key, email_template, settings, smtputf8
):
    with SMTPSink(smtputf8=smtputf8) as sink:
        use_sink(settings, sink)
        [delivery] = send(api, full_key, email_template, BOOKS)
    assert delivery.status == "sent", delivery.error
    [received] = sink.received
    assert received.rcpt_tos == [BOOKS_ASCII]
    assert "SMTPUTF8" not in [option.upper() for option in received.mail_options]
    assert header(received.raw, b"To") == f"To: {BOOKS_ASCII}".encode()


def test_a_non_ascii_sender_name_stays_an_encoded_word_and_needs_no_smtputf8(
    api, full_key, ascii_sink
):
    template = template_create(
        name="Hi",
        subject="Hi",
        from_name="Магазин Бюхер",
        from_email="news@shop.example",
        html="<p>Hello</p>",
    )
    template_publish(template=template)
    [delivery] = send(api, full_key, template, "ann@example.com")
    assert delivery.status == "sent", delivery.error
    raw = ascii_sink.received[0].raw
    assert header(raw, b"From").startswith(b"From: =?utf-8?")
    assert ascii_sink.received[0].message["From"].addresses[0].display_name == "Магазин Бюхер"


def test_a_message_only_django_writes_keeps_internationalised_addresses_right(utf8_sink):
    """Reply-To is a shape the fast writer leaves to Django: the same rules apply."""
    from django.core.mail import get_connection

    message = HeraldEmail(
        subject="Hi",
        body="Hello",
        from_email="Shop <news@bücher.example>",
        to=[f"Chloé <{CHLOE}>"],
        reply_to=[BOOKS],
    )
    connection = get_connection()
    connection.open()
    try:
        outcome, lost = email_send_one(connection, message)
    finally:
        connection.close()
    assert outcome.status == "accepted" and not lost
    [received] = utf8_sink.received
    assert received.mail_from == "news@xn--bcher-kva.example"
    assert received.rcpt_tos == [CHLOE]
    assert "SMTPUTF8" in [option.upper() for option in received.mail_options]
    assert header(received.raw, b"To").endswith(f"<{CHLOE}>".encode())
    assert header(received.raw, b"Reply-To") == f"Reply-To: {BOOKS_ASCII}".encode()
    assert header(received.raw, b"From").endswith(b"<news@xn--bcher-kva.example>")


def test_the_confirmation_email_reaches_a_non_ascii_mailbox(utf8_sink):
    Organisation.objects.filter(pk=Organisation.load().pk).update(
        default_sender_email="hello@bücher.example", default_sender_name="Bücher"
    )
    contact = ContactFactory(email=CHLOE, first_name="Chloé", confirmed=False)
    confirmation_send(contact_id=contact.pk)
    [received] = utf8_sink.received
    assert received.rcpt_tos == [CHLOE]
    assert received.mail_from == "hello@xn--bcher-kva.example"
    assert "SMTPUTF8" in [option.upper() for option in received.mail_options]
    assert header(received.raw, b"To") == f"To: {CHLOE}".encode()


def test_the_confirmation_email_is_not_sent_broken_without_smtputf8(ascii_sink):
    contact = ContactFactory(email=CHLOE, confirmed=False)
    confirmation_send(contact_id=contact.pk)  # logged, not retried: the server will not change
    assert ascii_sink.received == []


def test_plain_and_display_name_only_values_need_nothing_special():
    assert address_header("ann@example.com") is None
    assert address_header("Анна <ann@example.com>") is None
    assert not needs_smtputf8("ann@example.com", "Анна <ann@example.com>", BOOKS)
    assert needs_smtputf8("ann@example.com", f"Chloé <{CHLOE}>")
    assert address_header(f"Chloé <{BOOKS}>") == (f"=?utf-8?b?Q2hsb8Op?= <{BOOKS_ASCII}>", False)
