"""Single messages on a messenger (the eSputnik v1 prepared-message API and workflow send
steps on Telegram): the locator is a chat id, or a contact's subscribed chat; a chat no
contact holds creates no contact. A workflow whose message is not sent because the address
is suppressed goes on with its journey."""

import pytest

from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery
from contacts.models import ChannelType, Contact, Suppression
from marketing.workflows.models import WorkflowRun
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory
from tests.support.api import results_list
from tests.support.smtp import SMTPSink, use_sink
from tests.workflows.conftest import chain, make_workflow
from tests.workflows.test_engine import emit, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def bot(telegram_bot):
    return telegram_bot


@pytest.fixture
def mail_to_sink(settings):
    with SMTPSink() as sink:
        use_sink(settings, sink)
        yield sink


@pytest.fixture
def notice(db):
    template = template_create(
        name="Parcel", channel=ChannelType.TELEGRAM, sms_text="Parcel $!data.get('n') is on its way"
    )
    template_publish(template=template)
    return template


def test_smartsend_on_telegram_reaches_chats_by_locator_and_by_contact(api, full_key, bot, notice):
    ann = ContactFactory(extra_channels=[{"type": "telegram", "value": "701"}])
    bob = ContactFactory(email="bob@example.com")
    contacts_before = Contact.objects.count()
    response = api.post(
        f"/api/v1/message/{notice.pk}/smartsend",
        key=full_key,
        body={
            "recipients": [
                {"contactId": ann.pk, "jsonParam": '{"n": "A1"}'},
                {"locator": "702", "jsonParam": '{"n": "B2"}'},
                {"locator": "not a chat"},
                {"contactId": bob.pk},
            ]
        },
    )
    assert response.status_code == 200, response.content
    results = results_list(response.json()["results"])
    assert [r["status"] for r in results] == ["OK", "OK", "ERROR", "ERROR"]
    assert "chat id" in results[2]["message"]
    assert results[3]["message"] == f"contact {bob.pk} has no telegram chat"
    # A chat nobody subscribed is messaged as given, without inventing a contact for it.
    assert Contact.objects.count() == contacts_before
    request_id = Delivery.objects.filter(locator="701").get().send_request_id
    send_request_process(send_request_id=request_id)
    assert bot.sent("701") == ["Parcel A1 is on its way"]
    assert bot.sent("702") == ["Parcel B2 is on its way"]
    assert set(Delivery.objects.values_list("locator", "status")) == {
        ("701", "sent"),
        ("702", "sent"),
    }


def test_a_workflow_goes_on_when_its_message_goes_to_a_suppressed_address(
    mail_to_sink, django_capture_on_commit_callbacks
):
    template = template_create(
        name="Welcome", subject="Hi", from_email="shop@shop.example", html="<p>Hi</p>"
    )
    template_publish(template=template)
    dead = ContactFactory(email="dead@example.com")
    Suppression.objects.create(
        channel="email", address="dead@example.com", reason="hard_bounce", detail="550 5.1.1"
    )
    make_workflow(
        chain(
            {"kind": "send", "template_id": template.pk, "channel": "email"},
            {"kind": "update_field", "field": "tags", "value": "welcomed"},
        )
    )
    [run_id] = start(emit(dead), django_capture_on_commit_callbacks)
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.status == "completed", run.status_reason
    assert "not sent: suppressed: hard bounce" in run.path[0]["note"]
    assert Delivery.objects.get(contact=dead).status == "skipped"
    dead.refresh_from_db()
    assert "welcomed" in dead.tags
    assert mail_to_sink.messages == []
