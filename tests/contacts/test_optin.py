"""Double opt-in: the confirmation email, its signed link and the public confirmation page."""

import email
import re
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from django.core import signing
from django.utils import timezone

from config.core.models import Organisation
from contacts.models import Contact
from contacts.optin import (
    TOKEN_SALT,
    confirmation_send,
    confirmation_token_make,
    contact_confirm,
)
from tests.contacts.factories import ContactFactory

LINK_RE = re.compile(r"(https?://\S+/confirm/[^/\s]+/)")


@pytest.fixture
def unconfirmed(db):
    return ContactFactory(email="new@example.com", first_name="Nia", confirmed=False)


def link_path(url: str, settings) -> str:
    assert url.startswith(settings.HERALD_BASE_URL + "/confirm/")
    return url[len(settings.HERALD_BASE_URL) :]


def test_confirmation_email_carries_a_signed_link_that_confirms(
    client, unconfirmed, mailoutbox, settings
):
    settings.HERALD_BASE_URL = "https://herald.example.com"
    confirmation_send(contact_id=unconfirmed.pk)
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["new@example.com"]
    assert "confirm" in message.subject.lower()
    assert "Hello Nia" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    url = LINK_RE.search(message.body).group(1)
    assert url in html

    response = client.get(link_path(url, settings))
    assert response.status_code == 200
    assert b"Thank you" in response.content
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed
    assert timezone.now() - unconfirmed.confirmed_at < timedelta(minutes=1)

    again = client.get(link_path(url, settings))
    assert again.status_code == 200, "following the link twice is harmless"


def test_sender_is_the_organisation_default_or_the_site_default(unconfirmed, mailoutbox, settings):
    settings.DEFAULT_FROM_EMAIL = "Herald <herald@localhost>"
    confirmation_send(contact_id=unconfirmed.pk)
    assert mailoutbox[-1].from_email == "Herald <herald@localhost>"

    Organisation.objects.update_or_create(
        pk=1,
        defaults={
            "name": "Acme",
            "default_sender_name": "Acme News",
            "default_sender_email": "news@acme.example",
        },
    )
    confirmation_send(contact_id=unconfirmed.pk)
    assert mailoutbox[-1].from_email == "Acme News <news@acme.example>"
    assert "Acme" in mailoutbox[-1].subject


@pytest.mark.parametrize(
    "make",
    [
        lambda: ContactFactory(email="done@example.com", confirmed=True),
        lambda: ContactFactory(email="", phone="+380942583691", confirmed=False),
        lambda: ContactFactory(
            email="gone@example.com", confirmed=False, deleted_at=timezone.now()
        ),
    ],
    ids=["already-confirmed", "no-email", "deleted"],
)
def test_nothing_is_sent_when_there_is_nobody_to_confirm(db, mailoutbox, make):
    contact = make()
    confirmation_send(contact_id=contact.pk)
    assert mailoutbox == []


def test_tampered_or_foreign_tokens_show_a_400_page(client, unconfirmed):
    token = confirmation_token_make(contact=unconfirmed)
    for bad in (
        token[:-2] + "xx",
        "nonsense",
        signing.dumps({"c": unconfirmed.pk, "e": unconfirmed.email}),
    ):
        response = client.get(f"/confirm/{bad}/")
        assert response.status_code == 400
        assert b"not valid" in response.content
    unconfirmed.refresh_from_db()
    assert not unconfirmed.confirmed


def test_expired_token_shows_a_400_page(client, unconfirmed, monkeypatch):
    token = confirmation_token_make(contact=unconfirmed)
    monkeypatch.setattr("contacts.optin.TOKEN_MAX_AGE", timedelta(seconds=-1))
    response = client.get(f"/confirm/{token}/")
    assert response.status_code == 400
    assert b"expired" in response.content
    unconfirmed.refresh_from_db()
    assert not unconfirmed.confirmed


def test_link_does_not_confirm_an_address_it_was_not_sent_to(client, unconfirmed):
    token = confirmation_token_make(contact=unconfirmed)
    Contact.objects.filter(pk=unconfirmed.pk).update(email="other@example.com")
    response = client.get(f"/confirm/{token}/")
    assert response.status_code == 400
    assert b"no longer uses" in response.content


def test_link_of_a_deleted_contact_is_refused(client, unconfirmed):
    token = confirmation_token_make(contact=unconfirmed)
    Contact.objects.filter(pk=unconfirmed.pk).update(deleted_at=timezone.now())
    assert client.get(f"/confirm/{token}/").status_code == 400


def test_contact_confirm_service_is_idempotent_and_audited(unconfirmed):
    from auditlog.models import LogEntry

    first = contact_confirm(contact_id=unconfirmed.pk)
    stamp = first.confirmed_at
    second = contact_confirm(contact_id=unconfirmed.pk)
    assert second.confirmed and second.confirmed_at == stamp
    assert (
        LogEntry.objects.get_for_object(unconfirmed).filter(changes__icontains="confirmed").exists()
    )


def test_token_is_salted_for_confirmation_only(unconfirmed):
    token = confirmation_token_make(contact=unconfirmed)
    assert signing.loads(token, salt=TOKEN_SALT)["c"] == unconfirmed.pk
    with pytest.raises(signing.BadSignature):
        signing.loads(token)


def test_task_is_registered_under_its_public_name():
    from config.celery import app

    app.loader.import_default_modules()
    assert "contacts.send_confirmation" in app.tasks
    assert "contacts.import_file" in app.tasks


class _Sink:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_sink():
    """A real SMTP server on 127.0.0.1 that keeps what it receives."""
    import socket

    with socket.socket() as probe:  # aiosmtpd's readiness check cannot use port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = _Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def test_confirmation_through_a_real_smtp_server(client, unconfirmed, smtp_sink, settings):
    controller, sink = smtp_sink
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    from contacts.tasks import send_confirmation

    send_confirmation.apply(args=[unconfirmed.pk]).get()  # the task body, in this process

    assert len(sink.messages) == 1
    envelope = sink.messages[0]
    assert envelope.rcpt_tos == ["new@example.com"]
    message = email.message_from_bytes(envelope.original_content)
    text = next(
        part.get_payload(decode=True).decode()
        for part in message.walk()
        if part.get_content_type() == "text/plain"
    )
    url = LINK_RE.search(text).group(1)
    response = client.get(link_path(url, settings))
    assert response.status_code == 200
    unconfirmed.refresh_from_db()
    assert unconfirmed.confirmed
