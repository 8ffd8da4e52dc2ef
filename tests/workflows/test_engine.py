"""Events start workflows; runs send through the single-message service, wait for the beat,
branch, retry and stop with a reason."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery
from marketing.models import Event, EventType
from marketing.tasks import workflows_tick
from marketing.workflows import engine
from marketing.workflows.models import WorkflowMessage, WorkflowRun
from marketing.workflows.services import workflow_activate, workflow_step_update
from marketing.workflows.triggers import workflows_start_for_event
from tests.contacts.factories import ContactFactory, SegmentFactory
from tests.workflows.conftest import chain, make_workflow

pytestmark = pytest.mark.django_db


def emit(contact, key="signup", params=None):
    event_type, _ = EventType.objects.get_or_create(key=key)
    return Event.objects.create(
        event_type=event_type, key_value=str(contact.pk), params=params or {}, contact=contact
    )


def start(event, capture):
    with capture(execute=True):
        return workflows_start_for_event(event=event)


def wake(run):
    WorkflowRun.objects.filter(pk=run.pk).update(wake_at=timezone.now() - dt.timedelta(seconds=1))


def test_event_starts_run_sends_message_waits_and_sends_second_after_wake(
    ann, welcome, follow_up, mail_to_sink, django_capture_on_commit_callbacks
):
    make_workflow(
        chain(
            {"kind": "send", "template_id": welcome.pk, "channel": "email"},
            {"kind": "wait", "mode": "duration", "seconds": 86400},
            {"kind": "send", "template_id": follow_up.pk, "channel": "email"},
        )
    )
    [run_id] = start(emit(ann, params={"orderId": "A-7"}), django_capture_on_commit_callbacks)

    run = WorkflowRun.objects.get(pk=run_id)
    assert run.status == "waiting"
    assert run.current_step == "s3"
    assert run.wake_at > timezone.now() + dt.timedelta(hours=23)
    assert [entry["step"] for entry in run.path] == ["s1", "s2"]
    first = Delivery.objects.get(pk=run.path[0]["delivery"])
    assert first.contact == ann
    assert first.params == {"orderId": "A-7"}
    assert first.send_request.kind == "workflow"  # a marketing message: caps apply
    assert WorkflowMessage.objects.filter(run=run, step_id="s1", delivery=first).exists()

    # The message goes out through the single-message sender, personalised with $data.
    send_request_process(send_request_id=first.send_request_id)
    [mail] = mail_to_sink.messages
    assert mail["To"] == "ann@example.com"
    assert "A-7" in mail["Subject"]

    # Nothing happens before the wake-up time.
    assert workflows_tick() == 0
    wake(run)
    with django_capture_on_commit_callbacks(execute=False):
        assert workflows_tick() == 1
    run.refresh_from_db()
    assert run.status == "completed"
    assert run.finished_at is not None
    assert [entry["step"] for entry in run.path] == ["s1", "s2", "s3"]
    second = WorkflowMessage.objects.get(run=run, step_id="s3").delivery
    assert second.template_version.template_id == follow_up.pk
    assert second.params == {"orderId": "A-7"}


def test_event_of_another_type_or_failing_param_conditions_starts_nothing(
    ann, welcome, django_capture_on_commit_callbacks
):
    make_workflow(
        chain({"kind": "send", "template_id": welcome.pk, "channel": "email"}),
        trigger_conditions=[{"param": "total", "op": "gte", "value": "100"}],
    )
    assert start(emit(ann, key="other"), django_capture_on_commit_callbacks) == []
    assert start(emit(ann, params={"total": "99.5"}), django_capture_on_commit_callbacks) == []
    assert len(start(emit(ann, params={"total": 120}), django_capture_on_commit_callbacks)) == 1


def test_event_without_contact_starts_nothing(welcome, django_capture_on_commit_callbacks):
    make_workflow(chain({"kind": "send", "template_id": welcome.pk, "channel": "email"}))
    event_type = EventType.objects.get(key="signup")
    event = Event.objects.create(event_type=event_type, key_value="nobody@example.com")
    assert start(event, django_capture_on_commit_callbacks) == []


def test_processing_an_event_twice_starts_one_run(ann, welcome, django_capture_on_commit_callbacks):
    make_workflow(
        chain({"kind": "send", "template_id": welcome.pk, "channel": "email"}),
        re_entry="every_time",
    )
    event = emit(ann)
    start(event, django_capture_on_commit_callbacks)
    assert start(event, django_capture_on_commit_callbacks) == []
    assert WorkflowRun.objects.count() == 1
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize("first_name, branch", [("Ann", "s2"), ("Bob", "s3")])
def test_contact_condition_takes_the_matching_branch(
    first_name, branch, welcome, follow_up, django_capture_on_commit_callbacks
):
    contact = ContactFactory(first_name=first_name)
    make_workflow(
        chain(
            {
                "kind": "condition",
                "check": {"type": "contact", "filter": {"firstName": "Ann"}},
                "yes": "s2",
                "no": "s3",
            },
            {"kind": "send", "template_id": welcome.pk, "channel": "email", "next": ""},
            {"kind": "exit"},
        )
    )
    [run_id] = start(emit(contact), django_capture_on_commit_callbacks)
    run = WorkflowRun.objects.get(pk=run_id)
    assert [entry["step"] for entry in run.path] == ["s1", branch]
    assert run.status == ("completed" if branch == "s2" else "exited")
    assert Delivery.objects.count() == (1 if branch == "s2" else 0)


@pytest.mark.parametrize("amount, sent", [("250", True), ("20", False)])
def test_param_condition_branches_on_event_params(
    ann, amount, sent, welcome, django_capture_on_commit_callbacks
):
    make_workflow(
        chain(
            {
                "kind": "condition",
                "check": {"type": "param", "param": "total", "op": "gt", "value": "100"},
                "yes": "s2",
                "no": "s3",
            },
            {"kind": "send", "template_id": welcome.pk, "channel": "email", "next": ""},
            {"kind": "exit"},
        )
    )
    start(emit(ann, params={"total": amount}), django_capture_on_commit_callbacks)
    assert Delivery.objects.exists() is sent


@pytest.mark.parametrize("opened", [True, False])
def test_message_condition_sees_whether_the_runs_message_was_opened(
    ann, welcome, follow_up, opened, django_capture_on_commit_callbacks
):
    make_workflow(
        chain(
            {"kind": "send", "template_id": welcome.pk, "channel": "email"},
            {"kind": "wait", "mode": "duration", "seconds": 3600},
            {
                "kind": "condition",
                "check": {"type": "message", "event": "opened", "step": "s1"},
                "yes": "s4",
                "no": "s5",
            },
            {"kind": "exit", "label": "Engaged"},
            {"kind": "send", "template_id": follow_up.pk, "channel": "email"},
        )
    )
    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
    if opened:
        Delivery.objects.update(status="opened", opened_at=timezone.now())
    wake(WorkflowRun.objects.get(pk=run_id))
    with django_capture_on_commit_callbacks(execute=False):
        workflows_tick()
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.path[-1]["step"] == ("s4" if opened else "s5")
    assert run.status == ("exited" if opened else "completed")
    assert Delivery.objects.count() == (1 if opened else 2)


def test_segment_and_field_steps_change_the_contact(ann, django_capture_on_commit_callbacks):
    members = SegmentFactory(name="Buyers")
    leavers = SegmentFactory(name="Prospects")
    leavers.contacts.add(ann)
    make_workflow(
        chain(
            {"kind": "segment_add", "segment_id": members.pk},
            {"kind": "segment_remove", "segment_id": leavers.pk},
            {"kind": "update_field", "field": "town", "value": "Kyiv"},
            {"kind": "update_field", "field": "tags", "value": "buyer, vip"},
        )
    )
    start(emit(ann), django_capture_on_commit_callbacks)
    ann.refresh_from_db()
    assert list(ann.segments.values_list("name", flat=True)) == ["Buyers"]
    assert ann.town == "Kyiv"
    assert ann.tags == ["buyer", "vip"]
    assert WorkflowRun.objects.get().status == "completed"


def test_contact_without_email_fails_the_run_with_the_reason(
    welcome, django_capture_on_commit_callbacks
):
    contact = ContactFactory(email="", phone="+380501234567")
    make_workflow(chain({"kind": "send", "template_id": welcome.pk, "channel": "email"}))
    start(emit(contact), django_capture_on_commit_callbacks)
    run = WorkflowRun.objects.get()
    assert run.status == "failed"
    assert "s1" in run.error and "no email" in run.error
    assert not Delivery.objects.exists()


def test_transient_failure_retries_with_backoff_then_stops_the_run(
    ann, settings, django_capture_on_commit_callbacks
):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True
    # Port 9 on loopback: nobody listens, every attempt is refused (a passing failure).
    make_workflow(chain({"kind": "webhook", "url": "http://127.0.0.1:9/hook"}))
    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
    delays = []
    for attempt in range(1, engine.MAX_STEP_ATTEMPTS):
        run = WorkflowRun.objects.get(pk=run_id)
        assert run.status == "waiting"
        assert run.attempts == attempt
        assert "attempt" in run.error
        delays.append((run.wake_at - run.updated_at).total_seconds())
        wake(run)
        workflows_tick()
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.status == "failed"
    assert "cannot connect" in run.error and "s1" in run.error
    assert f"after {engine.MAX_STEP_ATTEMPTS} attempts" in run.error
    assert delays == sorted(delays) and delays[0] < delays[-1]


def test_wait_until_time_of_day_uses_the_contacts_time_zone(ann):
    now = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)  # 14:00 in Berlin
    step = {"mode": "time_of_day", "time": "09:30"}
    until = engine.wait_until(step, ann, now)
    assert until == dt.datetime(2026, 6, 2, 7, 30, tzinfo=dt.UTC)
    assert engine.wait_until({"mode": "time_of_day", "time": "15:00"}, ann, now) == dt.datetime(
        2026, 6, 1, 13, 0, tzinfo=dt.UTC
    )


def test_paused_workflow_holds_its_runs_until_resumed(
    ann, welcome, django_capture_on_commit_callbacks
):
    from marketing.workflows.services import workflow_pause

    workflow = make_workflow(
        chain(
            {"kind": "wait", "mode": "duration", "seconds": 60},
            {"kind": "send", "template_id": welcome.pk, "channel": "email"},
        )
    )
    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
    workflow_pause(workflow=workflow)
    wake(WorkflowRun.objects.get(pk=run_id))
    assert workflows_tick() == 0
    assert start(emit(ann), django_capture_on_commit_callbacks) == []  # no new entries
    workflow_activate(workflow=workflow)
    with django_capture_on_commit_callbacks(execute=False):
        assert workflows_tick() == 1
    assert WorkflowRun.objects.get(pk=run_id).status == "completed"


def test_dead_workers_claim_is_taken_over(ann, welcome, django_capture_on_commit_callbacks):
    make_workflow(chain({"kind": "send", "template_id": welcome.pk, "channel": "email"}))
    with django_capture_on_commit_callbacks(execute=False):
        [run_id] = workflows_start_for_event(event=emit(ann))  # claimed, never advanced
    WorkflowRun.objects.filter(pk=run_id).update(
        claimed_at=timezone.now() - engine.CLAIM_LEASE - dt.timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=False):
        assert workflows_tick() == 1
    assert WorkflowRun.objects.get(pk=run_id).status == "completed"
    assert Delivery.objects.count() == 1


def test_version_pinning_runs_keep_the_version_they_started_on(
    ann, welcome, follow_up, django_capture_on_commit_callbacks
):
    workflow = make_workflow(
        chain(
            {"kind": "wait", "mode": "duration", "seconds": 60},
            {"kind": "send", "template_id": welcome.pk, "channel": "email"},
        ),
        re_entry="every_time",
    )
    [old_run] = start(emit(ann), django_capture_on_commit_callbacks)
    step = dict(workflow.draft_graph["steps"][1], template_id=follow_up.pk)
    workflow_step_update(workflow=workflow, step=step)
    workflow = workflow_activate(workflow=workflow)
    assert workflow.current_version.number == 2
    [new_run] = start(emit(ann), django_capture_on_commit_callbacks)
    for run in WorkflowRun.objects.all():
        wake(run)
    with django_capture_on_commit_callbacks(execute=False):
        workflows_tick()
    sent = {
        message.run_id: message.delivery.template_version.template_id
        for message in WorkflowMessage.objects.select_related("delivery__template_version")
    }
    assert sent == {old_run: welcome.pk, new_run: follow_up.pk}
    assert WorkflowRun.objects.get(pk=old_run).version.number == 1


def test_sms_step_queues_an_sms_to_the_contacts_phone(django_capture_on_commit_callbacks):
    from tests.workflows.conftest import published

    code = published("Code", "Your code $!data.get('code')", channel="sms")
    contact = ContactFactory(phone="+380501234567")
    make_workflow(chain({"kind": "send", "template_id": code.pk, "channel": "sms"}))
    start(emit(contact, params={"code": "42"}), django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.locator, delivery.params) == (
        "sms",
        "+380501234567",
        {"code": "42"},
    )
