"""Activation refusals, re-entry policies, segment and date triggers, scenarios, simulator."""

import datetime as dt

import pytest
from django.utils import timezone

from contacts.models import CustomFieldType, SegmentKind
from contacts.segments import segment_attach, segment_create, segment_detach
from marketing.models import Event, EventType
from marketing.workflows.models import WorkflowRun
from marketing.workflows.scenarios import SCENARIOS, workflow_create_from_scenario
from marketing.workflows.services import (
    WorkflowError,
    WorkflowStateError,
    workflow_activate,
    workflow_pause,
    workflow_step_update,
)
from marketing.workflows.simulator import simulate
from marketing.workflows.triggers import (
    date_workflows_fire,
    segment_workflows_check,
    workflows_start_for_event,
)
from tests.contacts.factories import ContactFactory, CustomFieldFactory, SegmentFactory
from tests.workflows.conftest import chain, make_workflow, published

pytestmark = pytest.mark.django_db


def refusal(graph, **settings) -> str:
    workflow = make_workflow(graph, activate=False, **settings)
    with pytest.raises(WorkflowError) as caught:
        workflow_activate(workflow=workflow)
    workflow.refresh_from_db()
    assert workflow.status == "draft"
    assert workflow.current_version is None
    return " | ".join(caught.value.problems)


def test_loop_without_a_wait_cannot_be_activated(welcome):
    graph = chain(
        {"kind": "send", "template_id": welcome.pk, "channel": "email", "label": "Nag"},
        {"kind": "update_field", "field": "town", "value": "x", "next": "s1"},
    )
    problem = refusal(graph)
    assert "Loop without a wait" in problem and "“Nag” (s1)" in problem


def test_loop_with_a_wait_can_be_activated(welcome):
    graph = chain(
        {"kind": "send", "template_id": welcome.pk, "channel": "email"},
        {"kind": "wait", "mode": "duration", "seconds": 86400, "next": "s1"},
    )
    assert make_workflow(graph).status == "active"


def test_deleted_template_is_named_by_step(welcome):
    graph = chain({"kind": "send", "template_id": welcome.pk, "channel": "email", "label": "Hi"})
    workflow = make_workflow(graph, activate=False)
    template_id = welcome.pk
    welcome.delete()
    with pytest.raises(WorkflowError) as caught:
        workflow_activate(workflow=workflow)
    assert caught.value.problems == [f"step “Hi” (s1): template {template_id} no longer exists"]


def test_unpublished_template_and_wrong_channel_are_refused(db):
    from templates.services import template_create

    draft = template_create(name="Draft", subject="s", from_email="a@b.example", html="<p>x</p>")
    sms = published("Code", "Code 1", channel="sms")
    problem = refusal(
        chain(
            {"kind": "send", "template_id": draft.pk, "channel": "email"},
            {"kind": "send", "template_id": sms.pk, "channel": "email"},
        )
    )
    assert "(s1): template “Draft” has no published version" in problem
    assert "(s2): template “Code” is a sms message, not email" in problem


def test_missing_branch_and_missing_segment_are_refused(db):
    dynamic = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"town": "Kyiv"})
    gone = SegmentFactory()
    gone_id = gone.pk
    gone.delete()
    problem = refusal(
        chain(
            {
                "kind": "condition",
                "label": "Rich?",
                "check": {"type": "param", "param": "total", "op": "gt", "value": "1"},
                "yes": "s2",
                "no": "",
            },
            {"kind": "segment_add", "segment_id": dynamic.pk},
            {"kind": "segment_remove", "segment_id": gone_id},
        )
    )
    assert "step “Rich?” (s1): the “no” branch is missing" in problem
    assert "(s2): segment “" in problem and "is dynamic" in problem
    assert f"(s3): segment {gone_id} no longer exists" in problem


def test_empty_workflow_and_missing_trigger_are_refused(db):
    from marketing.workflows.services import workflow_create

    workflow = workflow_create(name="Nothing")
    with pytest.raises(WorkflowError) as caught:
        workflow_activate(workflow=workflow)
    assert "Trigger: choose the event type that starts this workflow." in caught.value.problems
    assert "The workflow has no steps yet." in caught.value.problems


def test_bad_contact_filter_is_refused_with_its_path(welcome):
    problem = refusal(
        chain(
            {
                "kind": "condition",
                "check": {"type": "contact", "filter": {"shoeSize": 4}},
                "yes": "s2",
                "no": "s2",
            },
            {"kind": "exit"},
        )
    )
    assert "(s1): the contact filter is wrong at shoeSize" in problem


def test_paused_cannot_be_paused_again(welcome):
    workflow = make_workflow(chain({"kind": "exit"}))
    workflow_pause(workflow=workflow)
    with pytest.raises(WorkflowStateError):
        workflow_pause(workflow=workflow)


def _emit(contact, params=None):
    event_type, _ = EventType.objects.get_or_create(key="signup")
    return Event.objects.create(
        event_type=event_type, key_value="", params=params or {}, contact=contact
    )


@pytest.mark.parametrize(
    "policy, days, started",
    [("once", 30, 1), ("every_time", 30, 3), ("after_days", 10, 2)],
)
def test_re_entry_policies(policy, days, started, django_capture_on_commit_callbacks):
    contact = ContactFactory()
    make_workflow(chain({"kind": "exit"}), re_entry=policy, re_entry_days=days)
    with django_capture_on_commit_callbacks(execute=True):
        workflows_start_for_event(event=_emit(contact))
        workflows_start_for_event(event=_emit(contact))
    # Age the runs past the re-entry window: only "after N days" changes its mind.
    WorkflowRun.objects.update(started_at=timezone.now() - dt.timedelta(days=days + 1))
    with django_capture_on_commit_callbacks(execute=True):
        workflows_start_for_event(event=_emit(contact))
    assert WorkflowRun.objects.count() == started


def test_static_segment_enter_and_leave_start_runs_only_for_changes(welcome):
    inside, newcomer = ContactFactory(), ContactFactory()
    segment = SegmentFactory(kind=SegmentKind.STATIC)
    segment_attach(segment=segment, contact_ids=[inside.pk])
    enter = make_workflow(chain({"kind": "exit"}), trigger_kind="segment_enter", segment=segment)
    leave = make_workflow(chain({"kind": "exit"}), trigger_kind="segment_leave", segment=segment)
    # Members at activation are the baseline, not entries.
    assert segment_workflows_check(now=timezone.now() + dt.timedelta(minutes=5)) == 0
    segment_attach(segment=segment, contact_ids=[newcomer.pk])
    segment_detach(segment=segment, contact_ids=[inside.pk])
    assert segment_workflows_check(now=timezone.now() + dt.timedelta(minutes=10)) == 2
    assert list(enter.runs.values_list("contact_id", flat=True)) == [newcomer.pk]
    assert list(leave.runs.values_list("contact_id", flat=True)) == [inside.pk]
    assert segment_workflows_check(now=timezone.now() + dt.timedelta(minutes=15)) == 0


def test_dynamic_segment_enter_and_leave_start_runs_from_the_segment_events(
    welcome, django_capture_on_commit_callbacks, monkeypatch
):
    from contacts import segment_members
    from contacts.segment_members import segment_members_drain, segment_members_fill
    from contacts.services import contact_update
    from marketing.events import events_process_pending

    monkeypatch.setattr(segment_members, "_publish", lambda task, **kw: None)
    inside = ContactFactory(town="Kyiv")
    segment = segment_create(name="Kyiv", kind=SegmentKind.DYNAMIC, filter={"town": "Kyiv"})
    other = segment_create(name="Lviv", kind=SegmentKind.DYNAMIC, filter={"town": "Lviv"})
    segment_members_fill(segment_id=segment.pk)
    segment_members_fill(segment_id=other.pk)
    enter = make_workflow(chain({"kind": "exit"}), trigger_kind="segment_enter", segment=segment)
    leave = make_workflow(chain({"kind": "exit"}), trigger_kind="segment_leave", segment=segment)
    # No snapshot, no polling: members at activation never entered anything.
    assert segment_workflows_check(now=timezone.now() + dt.timedelta(minutes=5)) == 0
    newcomer = ContactFactory()
    contact_update(contact=newcomer, data={"address": {"town": "Kyiv"}})
    contact_update(contact=inside, data={"address": {"town": "Lviv"}})
    segment_members_drain()
    with django_capture_on_commit_callbacks(execute=True):
        events_process_pending()
    assert list(enter.runs.values_list("contact_id", flat=True)) == [newcomer.pk]
    # Entering the Lviv segment is not leaving Kyiv: one run, for the one who left.
    assert list(leave.runs.values_list("contact_id", flat=True)) == [inside.pk]


def test_date_trigger_fires_once_a_day_for_matching_birthdays(settings):
    birthday = CustomFieldFactory(type=CustomFieldType.DATE)
    today = dt.date(2026, 11, 23)
    hero = ContactFactory(fields={str(birthday.pk): "1990-11-23"})
    ContactFactory(fields={str(birthday.pk): "1990-11-24"})
    ContactFactory(fields={})
    workflow = make_workflow(
        chain({"kind": "exit"}),
        trigger_kind="date",
        date_trigger={"field": str(birthday.pk), "offset_days": 0, "time": "09:00"},
    )
    early = dt.datetime.combine(today, dt.time(8, 0), tzinfo=dt.UTC)
    assert date_workflows_fire(now=early) == 0
    late = dt.datetime.combine(today, dt.time(9, 30), tzinfo=dt.UTC)
    assert date_workflows_fire(now=late) == 1
    assert date_workflows_fire(now=late) == 0
    assert list(workflow.runs.values_list("contact_id", flat=True)) == [hero.pk]


@pytest.mark.parametrize("key", list(SCENARIOS))
def test_every_scenario_builds_a_draft_that_activates_once_templates_are_chosen(key, welcome):
    CustomFieldFactory(type=CustomFieldType.DATE)
    workflow = workflow_create_from_scenario(key=key)
    assert workflow.status == "draft" and workflow.scenario == key
    with pytest.raises(WorkflowError) as caught:
        workflow_activate(workflow=workflow)
    assert any("choose the message template" in p for p in caught.value.problems)
    if workflow.trigger_kind in ("segment_enter", "segment_leave"):
        workflow.segment = SegmentFactory()
        workflow.save()
    for step in workflow.draft_graph["steps"]:
        if step["kind"] == "send":
            workflow = workflow_step_update(
                workflow=workflow, step=dict(step, template_id=welcome.pk)
            )
    assert workflow_activate(workflow=workflow).status == "active"


def test_abandoned_cart_scenario_listens_to_the_order_event_key(db):
    workflow = workflow_create_from_scenario(key="abandoned_cart")
    assert workflow.event_type.key == "orderABANDONED_SHOPPING_CART"


def test_simulator_shows_the_path_without_sending_or_writing(welcome, follow_up):
    from campaigns.models import Delivery

    contact = ContactFactory(first_name="Ann", email="ann@example.com")
    graph = chain(
        {"kind": "send", "template_id": welcome.pk, "channel": "email", "label": "Hello"},
        {"kind": "wait", "mode": "duration", "seconds": 2 * 86400},
        {
            "kind": "condition",
            "check": {"type": "param", "param": "total", "op": "gte", "value": "100"},
            "yes": "s4",
            "no": "s5",
        },
        {"kind": "segment_add", "segment_id": 99, "next": "s5"},
        {
            "kind": "condition",
            "check": {"type": "message", "event": "opened", "step": "s1"},
            "yes": "s6",
            "no": "s7",
        },
        {"kind": "exit", "label": "Happy"},
        {"kind": "send", "template_id": follow_up.pk, "channel": "email"},
    )
    result = simulate(graph=graph, contact=contact, params={"total": "150"}, engaged={"opened"})
    assert [item.step_id for item in result.path] == ["s1", "s2", "s3", "s4", "s5", "s6"]
    assert "would send “Welcome” by email to ann@example.com" in result.path[0].description
    assert result.waits == ["Wait: would wait 2 d; skipped"]
    assert result.outcome == "exited"
    other = simulate(graph=graph, contact=contact, params={"total": "5"})
    assert [item.step_id for item in other.path] == ["s1", "s2", "s3", "s5", "s7"]
    assert other.outcome == "completed"
    assert not Delivery.objects.exists()
    assert not WorkflowRun.objects.exists()
    assert not contact.segments.exists()
