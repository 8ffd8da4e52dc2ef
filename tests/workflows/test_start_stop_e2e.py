"""End to end with a real Celery worker and SMTP server: each way a workflow starts (an event
for a new address, an import into a segment, a group schedule, the button link, the start API)
and each way a run stops (an event, leaving a segment, unsubscribing)."""

import datetime as dt

import pytest
from django.utils import timezone

from contacts.models import Contact, ImportJob, SegmentKind
from contacts.segments import segment_attach, segment_detach
from marketing.models import EventType
from marketing.tasks import workflows_tick
from marketing.workflows.buttons import button_token
from marketing.workflows.graph import default_step
from marketing.workflows.models import Workflow, WorkflowRun
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory, SegmentFactory
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker
from tests.workflows.conftest import chain, make_workflow, published

pytestmark = pytest.mark.worker

WAIT_DAY = {"kind": "wait", "mode": "duration", "seconds": 86400}


@pytest.fixture
def sink_and_worker(transactional_db):
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}) as worker:
        yield sink, worker


def html_of(received) -> str:
    return received.message.get_body(("html",)).get_content()


def arrived(sink, count: int, worker) -> list:
    wait_for(lambda: len(sink.received) >= count, timeout=60)
    assert len(sink.received) == count, worker.output()
    return sink.received


def welcome_series() -> dict:
    welcome = published(
        "Welcome", "<p>Welcome! Take $!data.get('discount') off: $!data.get('link')</p>"
    )
    tips = published("Tips", "<p>Some tips</p>")
    contact = {**default_step("contact"), "tags_add": ["welcome"]}
    contact.pop("next")
    return chain(
        contact,
        {"kind": "send", "template_id": welcome.pk, "channel": "email"},
        WAIT_DAY,
        {"kind": "send", "template_id": tips.pk, "channel": "email"},
    )


def test_the_generate_event_example_starts_a_welcome_series_for_a_new_address(
    api, full_key, sink_and_worker
):
    sink, worker = sink_and_worker
    make_workflow(welcome_series(), event_key="testEvent")
    assert not Contact.objects.filter(email="example@email.com").exists()
    body = {
        "eventTypeKey": "testEvent",
        "keyValue": "example@email.com",
        "params": [
            {"name": "discount", "value": "5%"},
            {"name": "link", "value": "https://example.site.com/items_for_sale"},
        ],
    }
    response = api.post("/api/v1/event", key=full_key, body=body)
    assert response.status_code in (200, 201), response.content

    [received] = arrived(sink, 1, worker)
    assert received.rcpt_tos == ["example@email.com"]
    assert "Take 5% off: https://example.site.com/items_for_sale" in html_of(received)
    contact = Contact.objects.get(email="example@email.com")
    assert contact.tags == ["welcome"] and contact.source == "api"
    run = WorkflowRun.objects.get()
    assert run.contact == contact and run.status == "waiting" and run.current_step == "s4"


def test_an_api_import_into_the_segment_starts_the_workflow_for_its_contacts(
    api, full_key, sink_and_worker
):
    sink, worker = sink_and_worker
    customers = SegmentFactory(name="Customers", kind=SegmentKind.STATIC)
    hello = published("Hello", "<p>Imported</p>")
    workflow = make_workflow(
        chain({"kind": "send", "template_id": hello.pk, "channel": "email"}),
        trigger_kind="import",
        segment=customers,
    )
    Workflow.objects.filter(pk=workflow.pk).update(
        segment_checked_at=timezone.now() - dt.timedelta(minutes=10)
    )
    body = {
        "contacts": [
            {"channels": [{"type": "email", "value": "imp1@example.com"}]},
            {"channels": [{"type": "email", "value": "imp2@example.com"}]},
        ],
        "dedupeOn": "email",
        "groupNames": ["Customers"],
    }
    response = api.post("/api/v1/contacts", key=full_key, body=body)
    assert response.status_code == 200, response.content
    job = wait_for(lambda: ImportJob.objects.filter(status="FINISHED").first(), timeout=60)
    # As if the import had finished a minute ago (imports are read once settled).
    ImportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - dt.timedelta(minutes=1))
    workflows_tick.delay()
    received = arrived(sink, 2, worker)
    assert sorted(r.rcpt_tos[0] for r in received) == [
        "imp1@example.com",
        "imp2@example.com",
    ]


def test_a_daily_group_schedule_sends_each_member_once(sink_and_worker):
    sink, worker = sink_and_worker
    group = SegmentFactory(name="Birthdays today", kind=SegmentKind.STATIC)
    members = [ContactFactory(email="g1@example.com"), ContactFactory(email="g2@example.com")]
    ContactFactory(email="outside@example.com")
    segment_attach(segment=group, contact_ids=[c.pk for c in members])
    card = published("Card", "<p>Happy birthday</p>")
    make_workflow(
        chain({"kind": "send", "template_id": card.pk, "channel": "email"}),
        trigger_kind="schedule",
        segment=group,
        schedule={"every": "day", "time": "00:00"},
        re_entry="every_time",
    )
    workflows_tick.delay()
    arrived(sink, 2, worker)
    workflows_tick.delay()  # the same day's occurrence: nobody again
    wait_for(lambda: Workflow.objects.filter(date_fired_on__isnull=False).exists())
    assert WorkflowRun.objects.count() == 2
    assert sorted(r.rcpt_tos[0] for r in sink.received) == [
        "g1@example.com",
        "g2@example.com",
    ]


def test_the_button_link_and_the_start_api_start_the_workflow(
    client, api, full_key, sink_and_worker
):
    sink, worker = sink_and_worker
    thanks = published("Thanks", "<p>Thanks for asking, $!data.get('topic')</p>")
    workflow = make_workflow(
        chain({"kind": "send", "template_id": thanks.pk, "channel": "email"}),
        trigger_kind="button",
        re_entry="every_time",
    )
    ann = ContactFactory(email="ann@example.com")
    token = button_token(workflow=workflow, contact_id=ann.pk)
    assert client.post(f"/w/{workflow.button_key}/", {"c": token + "x"}).status_code == 400
    response = client.post(f"/w/{workflow.button_key}/", {"c": token})
    assert response.status_code == 200
    [received] = arrived(sink, 1, worker)
    assert received.rcpt_tos == ["ann@example.com"]

    response = api.post(
        f"/api/herald/workflows/{workflow.pk}/start",
        key=full_key,
        body={"contactId": ann.pk, "params": {"topic": "prices"}},
    )
    assert response.status_code == 200, response.content
    received = arrived(sink, 2, worker)
    assert "Thanks for asking, prices" in html_of(received[1])


def test_runs_stop_on_an_event_on_leaving_the_segment_and_on_unsubscribing(
    api, full_key, sink_and_worker
):
    sink, worker = sink_and_worker
    purchase = EventType.objects.create(key="purchase")
    trial = SegmentFactory(name="Trial", kind=SegmentKind.STATIC)
    first = published("First", "<p>First</p>")
    second = published("Second", "<p>Second</p>")
    workflow = make_workflow(
        chain(
            {"kind": "send", "template_id": first.pk, "channel": "email"},
            WAIT_DAY,
            {"kind": "send", "template_id": second.pk, "channel": "email"},
        ),
        trigger_kind="button",
        stop_conditions=[
            {"type": "event", "event_type_id": purchase.pk},
            {"type": "segment_leave", "segment_id": trial.pk},
            {"type": "unsubscribed"},
        ],
    )
    buyer, leaver, quitter, stayer = (
        ContactFactory(email=f"{name}@example.com")
        for name in ("buyer", "leaver", "quitter", "stayer")
    )
    segment_attach(segment=trial, contact_ids=[c.pk for c in (buyer, leaver, quitter, stayer)])
    for contact in (buyer, leaver, quitter, stayer):
        response = api.post(
            f"/api/herald/workflows/{workflow.pk}/start",
            key=full_key,
            body={"contactId": contact.pk},
        )
        assert response.status_code == 200, response.content
    arrived(sink, 4, worker)

    # The purchase event stops the buyer's run as soon as the worker processes it.
    response = api.post(
        "/api/v1/event",
        key=full_key,
        body={"eventTypeKey": "purchase", "keyValue": "buyer@example.com", "params": []},
    )
    assert response.status_code in (200, 201)
    wait_for(lambda: WorkflowRun.objects.filter(contact=buyer, status="exited").exists(), 60)

    segment_detach(segment=trial, contact_ids=[leaver.pk])
    response = api.post(
        "/api/v1/emails/unsubscribed/add", key=full_key, body={"emails": ["quitter@example.com"]}
    )
    assert response.status_code == 200, response.content
    WorkflowRun.objects.filter(status="waiting").update(wake_at=timezone.now())
    workflows_tick.delay()
    arrived(sink, 5, worker)  # the stayer's second message, nobody else's
    assert sink.received[4].rcpt_tos == ["stayer@example.com"]
    reasons = dict(WorkflowRun.objects.values_list("contact__email", "exit_reason"))
    assert reasons == {
        "buyer@example.com": "stop condition: the contact produced the event purchase",
        "leaver@example.com": "stop condition: the contact is no longer in the segment “Trial”",
        "quitter@example.com": "stop condition: the contact unsubscribed",
        "stayer@example.com": "",
    }
