"""Test send from the template editor: the saved draft to one address, through the real
sending path into a local SMTP server."""

import pytest

from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery, SendKind
from contacts.models import Contact
from templates.services import template_create
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink, use_sink

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(settings):
    with SMTPSink() as smtp:
        use_sink(settings, smtp)
        yield smtp


@pytest.fixture
def draft(db):
    return template_create(
        name="Spring",
        subject="Hello $!contact.firstName",
        html="<p>Code $!data.get('code') for $!contact.firstName</p>",
        from_email="shop@shop.example",
    )


def send_test(client, template, **form):
    return client.post(f"/templates/{template.pk}/test-send/", form, follow=True)


def test_marketer_sends_the_draft_personalised_to_an_address(client, marketer, draft, sink):
    client.force_login(marketer)
    ContactFactory(email="ann@example.com", first_name="Ann")

    response = send_test(
        client, draft, email="Me@Example.com", contact="ann@example.com", data='{"code": "S10"}'
    )

    assert "Test message to me@example.com queued" in response.content.decode()
    delivery = Delivery.objects.get()
    assert delivery.send_request.kind == SendKind.TEST
    send_request_process(send_request_id=delivery.send_request_id)
    [mail] = sink.messages
    assert mail["Subject"] == "[Test] Hello Ann"
    assert "Code S10 for Ann" in mail.get_body(("html",)).get_content()
    assert not Contact.objects.filter(email="me@example.com").exists()


@pytest.mark.parametrize(
    "form, problem",
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "me@example.com", "data": "{broken"}, "Invalid JSON"),
        ({"email": "me@example.com", "contact": "nobody@example.com"}, "No contact"),
    ],
)
def test_bad_test_send_input_is_shown_and_nothing_is_queued(client, marketer, draft, form, problem):
    client.force_login(marketer)
    page = send_test(client, draft, **form).content.decode()
    assert "Test not sent" in page
    assert problem in page
    assert not Delivery.objects.exists()


def test_viewer_cannot_send_tests(client, viewer, draft):
    client.force_login(viewer)
    assert (
        client.post(f"/templates/{draft.pk}/test-send/", {"email": "a@b.example"}).status_code
        == 403
    )
    assert not Delivery.objects.exists()


def test_sms_templates_cannot_be_test_sent_to_an_email(client, marketer):
    sms = template_create(name="Text", channel="sms", sms_text="Hi")
    client.force_login(marketer)
    page = send_test(client, sms, email="me@example.com").content.decode()
    assert "only email templates" in page
