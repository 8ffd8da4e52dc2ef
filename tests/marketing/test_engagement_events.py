"""Engagement events (marketing.engagement): the delivery ledger's history becomes events of
the contacts, once each, never for a machine's hits; workflows start on them."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from campaigns import tracking
from campaigns.delivery.feedback import UpdateDeliveryStatus, actions_apply
from campaigns.models import Campaign, CampaignRun, Delivery, DeliveryEvent, DeliveryStatus
from marketing.engagement import engagement_events_emit
from marketing.events import events_process_pending
from marketing.models import Event
from marketing.workflows.models import WorkflowRun
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker
from tests.workflows.conftest import chain, make_workflow, published

BASE = "https://herald.example.com"
PERSON = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


@pytest.fixture(autouse=True)
def public_base_url(settings):
    settings.HERALD_BASE_URL = BASE


def local(url: str) -> str:
    return url.removeprefix(BASE)


def emit() -> int:
    # No hold-back for clicks in tests: the trap window is covered in tests/tracking.
    return engagement_events_emit(click_holdback=timedelta(0))


def sent_message(contact, *, channel="email", run=None, **fields) -> Delivery:
    return Delivery.objects.create(
        contact=contact,
        channel=channel,
        locator=contact.email if channel == "email" else "+380501234567",
        status=DeliveryStatus.SENT,
        sent_at=timezone.now() - timedelta(hours=1),
        message_id=f"<m{contact.pk}{channel}@herald.example.com>",
        provider_message_id=f"pm-{contact.pk}-{channel}",
        run=run,
        **fields,
    )


def events_of(contact) -> list[tuple[str, dict]]:
    return [
        (event.event_type.key, event.params)
        for event in Event.objects.filter(contact=contact).order_by("created_at", "id")
    ]


def provider(status: str, delivery: Delivery, event_id: str) -> None:
    actions_apply(
        [
            UpdateDeliveryStatus(
                status=DeliveryStatus(status),
                message_id=delivery.provider_message_id,
                event_id=event_id,
            )
        ]
    )


@pytest.mark.django_db
def test_delivery_open_and_click_become_events_with_campaign_message_and_link():
    ann = ContactFactory(email="ann@example.com")
    campaign = Campaign.objects.create(name="Spring", channels=["email"])
    run = CampaignRun.objects.create(campaign=campaign, number=1)
    message = sent_message(ann, run=run)
    client = Client(headers={"user-agent": PERSON})

    provider("delivered", message, "dlv-1")
    client.get(local(tracking.open_url(message.pk)))
    client.get(local(tracking.click_url(message.pk, "https://shop.example/sale")))
    stored = emit()

    common = {
        "campaignId": campaign.pk,
        "runId": run.pk,
        "deliveryId": message.pk,
        "requestId": str(message.request_id),
        "messageId": message.message_id,
        "channel": "email",
    }
    assert stored == 3
    assert events_of(ann) == [
        ("emailDelivered", common),
        ("emailOpened", common),
        ("linkClicked", {**common, "url": "https://shop.example/sale"}),
    ]
    assert set(Event.objects.values_list("key_value", flat=True)) == {"ann@example.com"}
    # They occurred when the ledger saw them, which analytics count by.
    assert all(event.occurred_at == event.created_at for event in Event.objects.all())


@pytest.mark.django_db
def test_each_open_is_one_event_per_message_and_each_link_one_per_message():
    ann = ContactFactory(email="ann@example.com")
    message = sent_message(ann)
    client = Client(headers={"user-agent": PERSON})
    for _ in range(3):
        client.get(local(tracking.open_url(message.pk)))
    client.get(local(tracking.click_url(message.pk, "https://shop.example/a")))
    emit()
    # Later hits, and a second run over the same history, add nothing; a new link does.
    client.get(local(tracking.open_url(message.pk)))
    client.get(local(tracking.click_url(message.pk, "https://shop.example/a")))
    emit()
    # Long after those (not a burst of clicks on two links, which is a scanner's).
    DeliveryEvent.objects.filter(delivery=message).update(at=timezone.now() - timedelta(hours=1))
    client.get(local(tracking.click_url(message.pk, "https://shop.example/b")))
    emit()

    keys = [(key, params.get("url")) for key, params in events_of(ann)]
    assert keys == [
        ("emailOpened", None),
        ("linkClicked", "https://shop.example/a"),
        ("linkClicked", "https://shop.example/b"),
    ]


@pytest.mark.django_db
def test_machine_opens_and_clicks_emit_nothing():
    ann = ContactFactory(email="ann@example.com")
    message = sent_message(ann)
    scanner = Client(headers={"user-agent": "Mimecast URL scanner"}, REMOTE_ADDR="17.5.5.5")
    scanner.get(local(tracking.open_url(message.pk)))
    scanner.get(local(tracking.click_url(message.pk, "https://shop.example/a")))
    scanner.get(local(tracking.trap_url(message.pk)))

    assert emit() == 0
    assert events_of(ann) == []


@pytest.mark.django_db
def test_bounces_complaints_unsubscribes_and_sms_deliveries_have_their_events():
    ann, bob, cat = (ContactFactory(email=f"{n}@example.com") for n in ("ann", "bob", "cat"))
    bounced = sent_message(ann)
    complained = sent_message(bob)
    unsubscribed = sent_message(cat)
    sms = sent_message(cat, channel="sms")
    provider("bounced", bounced, "b-1")
    provider("complained", complained, "c-1")
    tracking.delivery_unsubscribe(delivery_id=unsubscribed.pk, reason="unsubscribe page")
    provider("delivered", sms, "s-1")
    emit()

    assert [key for key, _ in events_of(ann)] == ["emailBounced"]
    assert [key for key, _ in events_of(bob)] == ["emailComplained"]
    assert sorted(key for key, _ in events_of(cat)) == ["smsDelivered", "unsubscribed"]


@pytest.mark.django_db
def test_delivered_events_can_be_switched_off(settings):
    settings.HERALD_ENGAGEMENT_DELIVERED_EVENTS = False
    ann = ContactFactory(email="ann@example.com")
    message = sent_message(ann)
    provider("delivered", message, "d-1")
    tracking.delivery_open_record(delivery_id=message.pk)
    emit()

    assert [key for key, _ in events_of(ann)] == ["emailOpened"]


@pytest.mark.django_db
def test_clicks_wait_for_the_trap_window_before_they_become_events():
    ann = ContactFactory(email="ann@example.com")
    message = sent_message(ann)
    tracking.delivery_click_record(delivery_id=message.pk, url="https://shop.example/a")

    assert engagement_events_emit() == 0  # the default hold-back
    assert emit() == 1


@pytest.mark.django_db
def test_a_workflow_starting_on_email_opened_runs_with_the_events_params():
    ann = ContactFactory(email="ann@example.com")
    workflow = make_workflow(chain({"kind": "exit"}), event_key="emailOpened")
    message = sent_message(ann)
    tracking.delivery_open_record(delivery_id=message.pk)
    emit()
    events_process_pending()

    run = WorkflowRun.objects.get(workflow=workflow)
    assert run.contact_id == ann.pk
    assert run.params["deliveryId"] == message.pk and run.params["channel"] == "email"


@pytest.mark.worker
def test_a_click_starts_a_link_clicked_workflow_whose_email_arrives(transactional_db, settings):
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}) as worker:
        template = published("Thanks", "<p>You looked at $!data.get('url')</p>")
        ann = ContactFactory(email="ann@example.com", first_name="Ann")
        make_workflow(
            chain({"kind": "send", "template_id": template.pk, "channel": "email"}),
            event_key="linkClicked",
        )
        message = sent_message(ann)
        client = Client(headers={"user-agent": PERSON})
        response = client.get(local(tracking.click_url(message.pk, "https://shop.example/x")))
        assert response.status_code == 302

        assert emit() == 1  # committed: its drain is kicked to the worker

        wait_for(lambda: len(sink.received) == 1, timeout=60)
        html = sink.received[0].message.get_body(("html",)).get_content()
        assert "You looked at https://shop.example/x" in html, worker.output()
        assert WorkflowRun.objects.get().status == "completed"


@pytest.mark.django_db
def test_a_workflows_opened_and_clicked_conditions_read_human_engagement_only():
    from marketing.workflows.conditions import run_message_engaged
    from marketing.workflows.models import WorkflowMessage

    ann = ContactFactory(email="ann@example.com")
    workflow = make_workflow(chain({"kind": "exit"}), event_key="signup")
    run = WorkflowRun.objects.create(
        workflow=workflow, version=workflow.current_version, contact=ann, status="waiting"
    )
    message = sent_message(ann)
    WorkflowMessage.objects.create(run=run, step_id="s1", delivery=message)
    proxy = tracking.engagement.Hit(user_agent="Mozilla/5.0", address="17.0.0.9")
    scanner = tracking.engagement.Hit(user_agent="Proofpoint URL Defense")
    tracking.delivery_open_record(delivery_id=message.pk, hit=proxy)
    tracking.delivery_click_record(delivery_id=message.pk, url="https://a.example/", hit=scanner)

    assert not run_message_engaged(run.pk, event="opened")
    assert not run_message_engaged(run.pk, event="clicked")

    tracking.delivery_open_record(
        delivery_id=message.pk, hit=tracking.engagement.Hit(user_agent=PERSON)
    )
    assert run_message_engaged(run.pk, event="opened")
    assert not run_message_engaged(run.pk, event="clicked")
