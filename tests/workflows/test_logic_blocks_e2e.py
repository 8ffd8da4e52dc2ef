"""End to end with a real Celery worker and SMTP server: orders through the eSputnik v1 API
start a workflow whose order condition and A/B split choose the message each contact gets;
an event's run waits for the sending window and for a date, then an engagement condition
lets its message go."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.models import Delivery
from marketing.tasks import workflows_tick
from marketing.workflows.models import WorkflowRun
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory
from tests.workflows import test_worker_e2e
from tests.workflows.conftest import make_workflow, published
from tests.workflows.test_logic_blocks import BIG_ORDER, send_step, split_step

pytestmark = pytest.mark.worker

sink_and_worker = test_worker_e2e.sink_and_worker


def test_orders_take_the_order_condition_and_the_ab_split_to_their_branches_message(
    api, full_key, sink_and_worker
):
    sink, worker = sink_and_worker
    subject_a = published("Variant A", "<p>A for $!contact.firstName</p>")
    subject_b = published("Variant B", "<p>B for $!contact.firstName</p>")
    small = published("Small order", "<p>Thanks</p>")
    graph = {
        "start": "s1",
        "steps": [
            {
                "id": "s1",
                "kind": "condition",
                "label": "Big order?",
                "check": BIG_ORDER,
                "yes": "s2",
                "no": "s5",
            },
            split_step("s2", "s3", "s4", by="contact", label="Which letter"),
            send_step("s3", subject_a),
            send_step("s4", subject_b),
            send_step("s5", small),
        ],
    }
    make_workflow(graph, event_key="orderDELIVERED")
    totals = [500, 20, 300, 150, 120, 900]
    for number in range(len(totals)):
        ContactFactory(email=f"buyer{number}@example.com", first_name=f"Buyer{number}")
    orders = [
        {
            "externalOrderId": f"ORD-{number}",
            "externalCustomerId": f"cust-{number}",
            "totalCost": total,
            "status": "DELIVERED",
            "date": "2026-12-01T10:00:00+02:00",
            "email": f"buyer{number}@example.com",
            "currency": "UAH",
        }
        for number, total in enumerate(totals)
    ]
    response = api.post("/api/v1/orders", key=full_key, body={"orders": orders})
    assert response.status_code == 200, response.content

    wait_for(lambda: len(sink.received) == len(totals), timeout=90)
    by_address = {}
    for received in sink.received:
        html = received.message.get_body(("html",)).get_content()
        by_address[received.message["To"]] = html
    assert len(WorkflowRun.objects.all()) == len(totals), worker.output()
    for run in WorkflowRun.objects.select_related("contact"):
        html = by_address[run.contact.email]
        if run.path[0]["note"].startswith("no:"):
            assert "Thanks" in html
            assert run.contact.email == "buyer1@example.com"
        else:
            branch = run.path[1]["branch"]
            assert f"{branch} for {run.contact.first_name}" in html
            assert run.path[0]["note"].startswith("yes: order ORD-")


def test_a_run_waits_for_the_window_and_the_date_then_sends_to_the_unengaged(
    api, full_key, sink_and_worker
):
    sink, worker = sink_and_worker
    reminder = published("Reminder", "<p>See you on $!data.get('eventDate')</p>")
    contact = ContactFactory(email="guest@example.com", time_zone="Europe/Kyiv")
    now_local = timezone.now().astimezone(dt.timezone(dt.timedelta(hours=2)))
    closed_hours = {
        "from": (now_local + dt.timedelta(hours=3)).strftime("%H:00"),
        "to": (now_local + dt.timedelta(hours=5)).strftime("%H:00"),
    }
    event_date = (timezone.now() + dt.timedelta(days=5)).date().isoformat()
    graph = {
        "start": "s1",
        "steps": [
            {
                "id": "s1",
                "kind": "wait",
                "label": "",
                "mode": "window",
                "next": "s2",
                "window": {**closed_hours, "days": [1, 2, 3, 4, 5, 6, 7]},
            },
            {
                "id": "s2",
                "kind": "wait",
                "label": "",
                "mode": "date",
                "source": "param",
                "param": "eventDate",
                "offset_days": -1,
                "time": "18:00",
                "next": "s3",
            },
            {
                "id": "s3",
                "kind": "condition",
                "label": "",
                "check": {"type": "engagement", "event": "not_sent", "days": 7},
                "yes": "s4",
                "no": "s5",
            },
            send_step("s4", reminder),
            {"id": "s5", "kind": "exit", "label": "Had mail this week"},
        ],
    }
    make_workflow(graph, event_key="webinarSignup")
    body = {
        "eventTypeKey": "webinarSignup",
        "keyValue": contact.email,
        "params": [{"name": "eventDate", "value": event_date}],
    }
    assert api.post("/api/v1/event", key=full_key, body=body).status_code in (200, 201)

    def waiting_at(step_id: str) -> bool:
        run = WorkflowRun.objects.filter(contact=contact).first()
        return run is not None and run.status == "waiting" and run.current_step == step_id

    wait_for(lambda: waiting_at("s2"), timeout=60)
    run = WorkflowRun.objects.get(contact=contact)
    assert run.wake_at > timezone.now(), worker.output()
    assert "until the window" in run.path[0]["note"]

    # The window opens: the beat's tick (here sent to the worker by hand) moves it on.
    WorkflowRun.objects.filter(pk=run.pk).update(wake_at=timezone.now())
    workflows_tick.delay()
    wait_for(lambda: waiting_at("s3"), timeout=60)
    run.refresh_from_db()
    assert run.path[-1]["note"].startswith("until ")
    assert run.wake_at.date().isoformat() < event_date
    assert not sink.received

    # The day before the event comes: nothing was sent this week, so the reminder goes.
    WorkflowRun.objects.filter(pk=run.pk).update(wake_at=timezone.now())
    workflows_tick.delay()
    wait_for(lambda: Delivery.objects.filter(status="sent").exists(), timeout=60)
    wait_for(lambda: len(sink.received) == 1, timeout=30)
    html = sink.received[0].message.get_body(("html",)).get_content()
    assert f"See you on {event_date}" in html
    run.refresh_from_db()
    assert run.status == "completed"
    assert [entry["step"] for entry in run.path] == ["s1", "s2", "s3", "s4"]
    assert run.path[2]["note"] == "yes: nothing was sent in the last 7 days"
