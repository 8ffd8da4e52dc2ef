"""The logic blocks: order and engagement conditions, waits until a date or an allowed
sending window, the A/B split; each through the engine (a run's path says why), the graph
edits of a multi-branch step, activation refusals, the simulator and the editor page."""

import datetime as dt
import zoneinfo
from collections import Counter
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, Delivery, DeliveryStatus
from contacts.models import Contact
from marketing.models import Order, OrderItem, OrderStatus
from marketing.tasks import workflows_tick
from marketing.workflows import graph as wf_graph
from marketing.workflows import logic_blocks
from marketing.workflows.models import Workflow, WorkflowMessage, WorkflowRun
from marketing.workflows.services import WorkflowError, workflow_activate
from marketing.workflows.simulator import simulate
from tests.contacts.factories import ContactFactory, CustomFieldFactory
from tests.workflows.conftest import chain, make_workflow
from tests.workflows.test_engine import emit, start, wake

pytestmark = pytest.mark.django_db


# The run's order is of 100 or more.
BIG_ORDER = {"type": "order", "order": "run", "attr": "total", "op": "gte", "value": "100"}


def order_for(contact, *, external="A-1", total="250.00", status=OrderStatus.DELIVERED, items=()):
    order = Order.objects.create(
        external_order_id=external,
        external_customer_id="c1",
        contact=contact,
        status=status,
        total_cost=Decimal(total),
        currency="UAH",
        date=timezone.now(),
    )
    for position, (sku, category) in enumerate(items):
        OrderItem.objects.create(
            order=order, position=position, external_item_id=sku, category=category
        )
    return order


def branching(check: dict) -> dict:
    """condition → s2 (exit "yes") / s3 (exit "no")."""
    return chain(
        {"kind": "condition", "check": check, "yes": "s2", "no": "s3"},
        {"kind": "exit", "label": "yes"},
        {"kind": "exit", "label": "no"},
    )


def taken(run_id: int) -> tuple[str, str]:
    run = WorkflowRun.objects.get(pk=run_id)
    return run.path[-1]["step"], run.path[0]["note"]


# --- order conditions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "check, branch",
    [
        ({"attr": "total", "op": "gte", "value": "100"}, "s2"),
        ({"attr": "total", "op": "gt", "value": "250"}, "s3"),
        ({"attr": "status", "op": "eq", "value": "DELIVERED"}, "s2"),
        ({"attr": "currency", "op": "in", "value": "USD,EUR"}, "s3"),
        ({"attr": "items_count", "op": "eq", "value": "2"}, "s2"),
        ({"attr": "sku", "op": "eq", "value": "SKU-2"}, "s2"),
        ({"attr": "sku", "op": "ne", "value": "SKU-2"}, "s3"),
        ({"attr": "category", "op": "contains", "value": "shoe"}, "s2"),
    ],
)
def test_order_condition_on_the_runs_order(ann, check, branch, django_capture_on_commit_callbacks):
    order = order_for(ann, items=[("SKU-1", "bags"), ("SKU-2", "Shoes")])
    make_workflow(branching({"type": "order", "order": "run", **check}))
    [run_id] = start(emit(ann, params={"orderId": order.pk}), django_capture_on_commit_callbacks)
    step, note = taken(run_id)
    assert step == branch, note
    assert "order A-1" in note


def test_order_condition_finds_the_order_by_external_id_or_takes_no_without_one(
    ann, django_capture_on_commit_callbacks
):
    order_for(ann, external="X-9", total="80")
    make_workflow(
        branching({"type": "order", "order": "run", "attr": "total", "op": "lt", "value": "100"}),
        re_entry="every_time",
    )
    [found] = start(
        emit(ann, params={"externalOrderId": "X-9"}), django_capture_on_commit_callbacks
    )
    assert taken(found)[0] == "s2"
    [missing] = start(emit(ann, params={}), django_capture_on_commit_callbacks)
    assert taken(missing) == ("s3", "no: no run's order")


def test_order_condition_on_the_contacts_last_order(ann, django_capture_on_commit_callbacks):
    older = order_for(ann, external="OLD", total="900")
    Order.objects.filter(pk=older.pk).update(date=timezone.now() - dt.timedelta(days=30))
    order_for(ann, external="NEW", total="50", status=OrderStatus.CANCELLED)
    make_workflow(
        branching(
            {"type": "order", "order": "last", "attr": "status", "op": "eq", "value": "CANCELLED"}
        )
    )
    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
    step, note = taken(run_id)
    assert step == "s2"
    assert "order NEW" in note


# --- engagement conditions --------------------------------------------------------------------


def delivered(contact, *, template_version, days_ago: float, opened=False, clicked=False):
    at = timezone.now() - dt.timedelta(days=days_ago)
    return Delivery.objects.create(
        contact=contact,
        channel="email",
        locator=contact.email,
        template_version=template_version,
        status=DeliveryStatus.SENT,
        sent_at=at,
        opened_at=at if opened else None,
        clicked_at=at if clicked else None,
    )


@pytest.mark.parametrize(
    "check, history, branch",
    [
        ({"event": "opened", "scope": "any", "days": 30}, {"days_ago": 3, "opened": True}, "s2"),
        ({"event": "opened", "scope": "any", "days": 2}, {"days_ago": 3, "opened": True}, "s3"),
        ({"event": "opened", "scope": "any", "days": 30}, {"days_ago": 3, "clicked": True}, "s2"),
        ({"event": "clicked", "scope": "any", "days": 30}, {"days_ago": 3, "opened": True}, "s3"),
        ({"event": "not_sent", "days": 7}, {"days_ago": 10}, "s2"),
        ({"event": "not_sent", "days": 7}, {"days_ago": 1}, "s3"),
    ],
)
def test_engagement_condition_reads_the_contacts_messages_within_n_days(
    ann, welcome, check, history, branch, django_capture_on_commit_callbacks
):
    delivered(ann, template_version=welcome.versions.get(), **history)
    make_workflow(branching({"type": "engagement", **check}))
    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
    step, note = taken(run_id)
    assert step == branch, note


def test_engagement_condition_on_this_runs_message(
    ann, welcome, django_capture_on_commit_callbacks
):
    make_workflow(
        chain(
            {"kind": "send", "template_id": welcome.pk, "channel": "email"},
            {"kind": "wait", "mode": "duration", "seconds": 3600},
            {
                "kind": "condition",
                "check": {"type": "engagement", "event": "clicked", "scope": "run", "days": 3},
                "yes": "s4",
                "no": "s5",
            },
            {"kind": "exit", "label": "clicked"},
            {"kind": "exit", "label": "did not"},
        )
    )
    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
    Delivery.objects.update(status="clicked", clicked_at=timezone.now())
    wake(WorkflowRun.objects.get(pk=run_id))
    with django_capture_on_commit_callbacks(execute=False):
        workflows_tick()
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.path[-1]["step"] == "s4"
    assert run.path[-2]["note"] == "yes: a message of this run was clicked in the last 3 days"


def test_engagement_condition_on_a_campaigns_messages(
    ann, welcome, django_capture_on_commit_callbacks
):
    spring = Campaign.objects.create(name="Spring", channels=["email"])
    autumn = Campaign.objects.create(name="Autumn", channels=["email"])
    run = CampaignRun.objects.create(campaign=autumn, number=1)
    opened = delivered(ann, template_version=welcome.versions.get(), days_ago=1, opened=True)
    Delivery.objects.filter(pk=opened.pk).update(run=run)
    check = {"type": "engagement", "event": "opened", "scope": "campaign", "days": 30}
    make_workflow(branching({**check, "campaign_id": spring.pk}), re_entry="every_time")
    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
    assert taken(run_id) == (
        "s3",
        f"no: a message of campaign {spring.pk} was not opened in the last 30 days",
    )
    workflow = Workflow.objects.get()
    workflow.draft_graph["steps"][0]["check"]["campaign_id"] = autumn.pk
    workflow.save()
    workflow_activate(workflow=workflow)
    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
    assert taken(run_id)[0] == "s2"


# --- waits ------------------------------------------------------------------------------------


def test_date_wait_wakes_at_the_contacts_date_minus_the_offset_in_its_zone(
    ann, django_capture_on_commit_callbacks
):
    field = CustomFieldFactory(name="Webinar", type="date")
    day = (timezone.now() + dt.timedelta(days=10)).date()
    ann.fields = {str(field.pk): day.isoformat()}
    ann.save()
    make_workflow(
        chain(
            {
                "kind": "wait",
                "mode": "date",
                "source": "field",
                "field": str(field.pk),
                "offset_days": -1,
                "time": "10:00",
            },
            {"kind": "exit"},
        )
    )
    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
    run = WorkflowRun.objects.get(pk=run_id)
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    expected = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(10, 0), tzinfo=berlin)
    assert (run.status, run.current_step, run.wake_at) == ("waiting", "s2", expected)


@pytest.mark.parametrize("on_missing, status", [("continue", "completed"), ("exit", "exited")])
def test_date_wait_with_a_missing_or_past_date_does_what_the_step_says(
    ann, on_missing, status, django_capture_on_commit_callbacks
):
    make_workflow(
        chain(
            {
                "kind": "wait",
                "mode": "date",
                "source": "param",
                "param": "eventDate",
                "offset_days": 0,
                "time": "09:00",
                "on_missing": on_missing,
            },
            {"kind": "update_field", "field": "town", "value": "Lviv"},
        ),
        re_entry="every_time",
    )
    for params in ({}, {"eventDate": "2001-01-01"}):
        [run_id] = start(emit(ann, params=params), django_capture_on_commit_callbacks)
        run = WorkflowRun.objects.get(pk=run_id)
        assert run.status == status
        assert ("no date in" in run.path[0]["note"]) is (not params)
        assert len(run.path) == (2 if on_missing == "continue" else 1)


def test_yearly_date_wait_takes_the_next_anniversary():
    contact = ContactFactory(time_zone="UTC", fields={"7": "1990-03-15"})
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    step = {"mode": "date", "field": "7", "offset_days": 0, "time": "08:00", "yearly": True}
    utc = zoneinfo.ZoneInfo("UTC")
    plan = logic_blocks.date_wait_plan(step, contact=contact, params={}, zone=utc, now=now)
    assert plan.until == dt.datetime(2027, 3, 15, 8, 0, tzinfo=utc)


def test_window_wait_holds_the_run_until_the_window_opens_and_goes_on_when_open(
    django_capture_on_commit_callbacks,
):
    contact = ContactFactory(time_zone="Europe/Kyiv")
    zone = zoneinfo.ZoneInfo("Europe/Kyiv")
    local_now = timezone.now().astimezone(zone)
    opens = (local_now + dt.timedelta(hours=2)).strftime("%H:00")
    closes = (local_now + dt.timedelta(hours=4)).strftime("%H:00")
    window = {"from": opens, "to": closes, "days": [1, 2, 3, 4, 5, 6, 7]}
    make_workflow(
        chain({"kind": "wait", "mode": "window", "window": window}, {"kind": "exit"}),
        re_entry="every_time",
    )
    [run_id] = start(emit(contact), django_capture_on_commit_callbacks)
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.status == "waiting"
    local_wake = run.wake_at.astimezone(zone)
    assert local_wake.strftime("%H:%M") == opens
    assert dt.timedelta(0) < run.wake_at - timezone.now() <= dt.timedelta(hours=26)
    assert "until the window" in run.path[0]["note"]

    always = {"from": "00:00", "to": "23:59", "days": [1, 2, 3, 4, 5, 6, 7]}
    workflow = Workflow.objects.get()
    workflow.draft_graph["steps"][0]["window"] = always
    workflow.save()
    workflow_activate(workflow=workflow)
    if local_now.strftime("%H:%M") < "23:59":
        [open_run] = start(emit(contact), django_capture_on_commit_callbacks)
        run = WorkflowRun.objects.get(pk=open_run)
        assert run.status == "exited"
        assert "is open" in run.path[0]["note"]


# --- the A/B split ----------------------------------------------------------------------------


def split_step(step_id: str, *targets: str, percents=None, by="run", label="") -> dict:
    """An A/B split with a branch A, B, … to each target, evenly shared unless told."""
    percents = percents or [100 // len(targets)] * len(targets)
    branches = [
        {"key": chr(65 + i), "percent": percent, "next": target}
        for i, (percent, target) in enumerate(zip(percents, targets, strict=True))
    ]
    return {"id": step_id, "kind": "split", "label": label, "by": by, "branches": branches}


def send_step(step_id: str, template, next_step: str = "") -> dict:
    return {
        "id": step_id,
        "kind": "send",
        "label": "",
        "template_id": template.pk,
        "channel": "email",
        "next": next_step,
    }


def split_graph(percents=(50, 50), by="run") -> dict:
    targets = [f"s{i + 2}" for i in range(len(percents))]
    steps = [split_step("s1", *targets, percents=list(percents), by=by)]
    steps += [
        {
            "id": f"s{i + 2}",
            "kind": "update_field",
            "label": "",
            "field": "town",
            "value": chr(65 + i),
            "next": "",
        }
        for i in range(len(percents))
    ]
    return {"start": "s1", "steps": steps}


def test_split_sends_runs_down_its_branches_in_proportion_and_always_the_same_way(
    django_capture_on_commit_callbacks,
):
    workflow = make_workflow(split_graph((20, 30, 50)), re_entry="every_time")
    contacts = [ContactFactory() for _ in range(300)]
    run_ids = []
    for contact in contacts:
        run_ids += start(emit(contact), django_capture_on_commit_callbacks)
    runs = list(WorkflowRun.objects.filter(pk__in=run_ids))
    counts = Counter(run.path[0]["branch"] for run in runs)
    assert set(counts) == {"A", "B", "C"}
    assert 30 <= counts["A"] <= 90 and 55 <= counts["B"] <= 125 and 110 <= counts["C"] <= 190
    for run in runs[:20]:  # the branch is a function of the run: the same answer every time
        step = wf_graph.steps_by_id(run.version.graph)["s1"]
        branch, _note = logic_blocks.split_verdict(
            step, workflow_id=workflow.pk, run_id=run.pk, contact_id=run.contact_id
        )
        assert branch["key"] == run.path[0]["branch"]
        assert Contact.objects.get(pk=run.contact_id).town == branch["key"]
        assert "hash bucket" in run.path[0]["note"]


def test_split_by_contact_keeps_a_contact_on_its_branch(ann, django_capture_on_commit_callbacks):
    make_workflow(split_graph((50, 50), by="contact"), re_entry="every_time")
    branches = set()
    for _ in range(6):
        [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
        branches.add(WorkflowRun.objects.get(pk=run_id).path[0]["branch"])
    assert len(branches) == 1


def test_split_figures_count_runs_and_the_open_and_click_rates_of_each_branch(
    client, viewer, welcome, follow_up, django_capture_on_commit_callbacks
):
    graph = {
        "start": "s1",
        "steps": [
            split_step("s1", "s2", "s3"),
            send_step("s2", welcome),
            send_step("s3", follow_up),
        ],
    }
    workflow = make_workflow(graph, re_entry="every_time")
    for number in range(40):
        start(
            emit(ContactFactory(email=f"p{number}@example.com")), django_capture_on_commit_callbacks
        )
    Delivery.objects.update(sent_at=timezone.now(), status="sent")
    a_messages = WorkflowMessage.objects.filter(step_id="s2").values("delivery_id")
    first_a = Delivery.objects.filter(pk__in=a_messages).order_by("pk")[:1].get()
    Delivery.objects.filter(pk=first_a.pk).update(
        opened_at=timezone.now(), clicked_at=timezone.now()
    )

    figures = {
        row["key"]: row
        for row in logic_blocks.split_figures(workflow_id=workflow.pk, graph=graph)["s1"]
    }
    runs_a = WorkflowMessage.objects.filter(step_id="s2").count()
    runs_b = WorkflowMessage.objects.filter(step_id="s3").count()
    assert runs_a + runs_b == 40 and runs_a and runs_b
    assert (figures["A"]["runs"], figures["A"]["sent"]) == (runs_a, runs_a)
    assert (figures["B"]["runs"], figures["B"]["sent"]) == (runs_b, runs_b)
    assert figures["A"]["open_rate"] == figures["A"]["click_rate"] == round(100 / runs_a, 1)
    assert figures["B"]["open_rate"] == 0.0

    client.force_login(viewer)
    page = client.get(reverse("workflow_detail", args=[workflow.pk])).content.decode()
    assert 'data-testid="split-figures-s1"' in page
    assert f"{round(100 / runs_a, 1)}%" in page


# --- graph edits, activation, simulator, editor ----------------------------------------------


def test_steps_go_onto_a_splits_branches_and_removing_a_step_reconnects_them():
    graph, split_id = wf_graph.step_insert(wf_graph.empty_graph(), kind="split")
    graph, on_b = wf_graph.step_insert(graph, kind="exit", after=split_id, branch="B")
    graph, on_a = wf_graph.step_insert(graph, kind="wait", after=split_id, branch="A")
    split = wf_graph.steps_by_id(graph)[split_id]
    assert [(b["key"], b["next"]) for b in split["branches"]] == [("A", on_a), ("B", on_b)]
    with pytest.raises(wf_graph.GraphError) as refused:
        wf_graph.step_insert(graph, kind="exit", after=split_id, branch="C")
    assert refused.value.field == "branch"
    rows = wf_graph.outline(graph)
    assert [(row.get("step", {}).get("id"), row["branch"]) for row in rows if "step" in row] == [
        (split_id, ""),
        (on_a, "A"),
        (on_b, "B"),
    ]
    assert wf_graph.successors(split) == [on_a, on_b]
    graph = wf_graph.step_remove(graph, step_id=on_b)
    assert wf_graph.steps_by_id(graph)[split_id]["branches"][1]["next"] == ""
    # Removing the split keeps the first branch's path.
    graph = wf_graph.step_remove(graph, step_id=split_id)
    assert graph["start"] == on_a


@pytest.mark.parametrize(
    "step, problem",
    [
        (
            {"kind": "split", "branches": [{"key": "A", "percent": 100, "next": ""}]},
            "2 to 5 branches",
        ),
        (
            {
                "kind": "split",
                "branches": [
                    {"key": "A", "percent": 50, "next": ""},
                    {"key": "B", "percent": 40, "next": ""},
                ],
            },
            "add up to 90%",
        ),
        (
            {
                "kind": "wait",
                "mode": "date",
                "source": "field",
                "field": "",
                "offset_days": 0,
                "time": "09:00",
            },
            "choose the contact's date field",
        ),
        (
            {"kind": "wait", "mode": "window", "window": {"from": "09:00", "to": "09:00"}},
            "sending window.to",
        ),
        (
            {
                "kind": "condition",
                "check": {
                    "type": "order",
                    "order": "run",
                    "attr": "total",
                    "op": "gte",
                    "value": "",
                },
                "yes": "",
                "no": "",
            },
            "the value to compare the order with",
        ),
        (
            {"kind": "condition", "check": {**BIG_ORDER, "value": "lots"}, "yes": "", "no": ""},
            "the total is compared with a number, not 'lots'",
        ),
        (
            {
                "kind": "condition",
                "check": {**BIG_ORDER, "attr": "status", "op": "in", "value": "DELIVERED,SENT"},
                "yes": "",
                "no": "",
            },
            "unknown order status 'SENT'",
        ),
        (
            {
                "kind": "condition",
                "check": {"type": "engagement", "event": "opened", "scope": "campaign", "days": 30},
                "yes": "",
                "no": "",
            },
            "choose the campaign",
        ),
        (
            {
                "kind": "condition",
                "check": {"type": "engagement", "event": "opened", "days": 0},
                "yes": "",
                "no": "",
            },
            "number of days",
        ),
    ],
)
def test_activation_refuses_a_block_missing_a_setting_naming_the_block_and_the_field(step, problem):
    workflow = make_workflow(
        {"start": "s1", "steps": [{"id": "s1", "label": "Mine", **step}]}, activate=False
    )
    with pytest.raises(WorkflowError) as refused:
        workflow_activate(workflow=workflow)
    assert any(
        message.startswith("step “Mine” (s1)") and problem in message
        for message in refused.value.problems
    ), refused.value.problems


def test_simulator_says_which_branch_and_why(ann):
    order = order_for(ann, total="40")
    graph = {
        "start": "s1",
        "steps": [
            {
                "id": "s1",
                "kind": "condition",
                "label": "",
                "yes": "s2",
                "no": "s3",
                "check": BIG_ORDER,
            },
            {"id": "s2", "kind": "exit", "label": ""},
            {
                "id": "s3",
                "kind": "split",
                "label": "",
                "by": "contact",
                "branches": [
                    {"key": "A", "percent": 50, "next": ""},
                    {"key": "B", "percent": 50, "next": "s2"},
                ],
            },
        ],
    }
    result = simulate(graph=graph, contact=ann, params={"orderId": order.pk}, workflow_id=7)
    assert "order A-1: total 40.00 gte 100" in result.path[0].description
    assert result.path[0].description.startswith("condition is false")
    step = wf_graph.steps_by_id(graph)["s3"]
    expected, _note = logic_blocks.split_verdict(step, workflow_id=7, run_id=0, contact_id=ann.pk)
    assert f"branch {expected['key']} (50%; contact hash bucket" in result.path[1].description
    assert result.outcome == ("completed" if expected["key"] == "A" else "exited")


def test_editor_saves_the_split_branches_and_refuses_shares_that_miss_100(client, marketer):
    client.force_login(marketer)
    workflow = make_workflow(split_graph((50, 50)), activate=False)
    url = reverse("workflow_step_save", args=[workflow.pk, "s1"])
    body = {
        "s1-label": "Subject test",
        "s1-split_by": "contact",
        "s1-split_key": ["A", "B", "C"],
        "s1-split_percent": ["30", "30", "30"],
        "s1-split_next": ["s2", "s3", ""],
    }
    response = client.post(url, body)
    assert response.status_code == 400
    assert "add up to 90%" in response.content.decode()

    body["s1-split_percent"] = ["30", "30", "40"]
    assert client.post(url, body).status_code == 302
    saved = wf_graph.steps_by_id(Workflow.objects.get().draft_graph)["s1"]
    assert saved["by"] == "contact"
    assert saved["branches"] == [
        {"key": "A", "percent": 30, "next": "s2"},
        {"key": "B", "percent": 30, "next": "s3"},
        {"key": "C", "percent": 40, "next": ""},
    ]
    page = client.get(reverse("workflow_detail", args=[workflow.pk])).content.decode()
    assert page.count('data-testid="split-branch"') == 4  # three and an empty one to add


def save_step(client, workflow, step_id: str, **fields):
    """POST the step editor's form of `step_id` with its fields (prefixed as the page does)."""
    body = {f"{step_id}-{name}": value for name, value in fields.items()}
    return client.post(reverse("workflow_step_save", args=[workflow.pk, step_id]), body)


def test_editor_saves_a_date_wait_and_an_order_condition(client, marketer):
    client.force_login(marketer)
    field = CustomFieldFactory(name="Birthday", type="date")
    workflow = make_workflow(
        chain(
            {"kind": "wait", "mode": "duration", "seconds": 60},
            {"kind": "condition", "check": {"type": "contact", "filter": {}}, "yes": "", "no": ""},
        ),
        activate=False,
    )
    date_wait = {"mode": "date", "date_source": "field", "time": "10:30", "next": "s2"}
    response = save_step(
        client,
        workflow,
        "s1",
        **date_wait,
        date_field=str(field.pk),
        offset_days="-3",
        yearly="on",
        on_missing="exit",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    response = save_step(
        client,
        workflow,
        "s2",
        check_type="order",
        order_source="last",
        order_attr="sku",
        op="eq",
        value=" SKU-7 ",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    steps = wf_graph.steps_by_id(Workflow.objects.get().draft_graph)
    wait_keys = ("mode", "source", "field", "offset_days", "time", "yearly", "on_missing")
    assert [steps["s1"][key] for key in wait_keys] == [
        "date",
        "field",
        str(field.pk),
        -3,
        "10:30",
        True,
        "exit",
    ]
    assert steps["s2"]["check"] == {
        "type": "order",
        "order": "last",
        "attr": "sku",
        "op": "eq",
        "value": "SKU-7",
    }
    response = save_step(
        client, workflow, "s2", check_type="order", order_attr="total", op="gte", value="lots"
    )
    assert response.status_code == 400
    assert "the total is compared with a number, not &#x27;lots&#x27;" in response.content.decode()
    response = save_step(client, workflow, "s1", **date_wait, date_field="")
    assert response.status_code == 400
    assert "Choose the date field." in response.content.decode()


def test_simulate_page_shows_the_branch_a_contact_would_take(client, viewer, ann):
    client.force_login(viewer)
    workflow = make_workflow(split_graph((50, 50), by="contact"), activate=False)
    response = client.get(
        reverse("workflow_simulate", args=[workflow.pk]), {"contact": ann.pk, "params": "{}"}
    )
    assert response.status_code == 200
    step = wf_graph.steps_by_id(workflow.draft_graph)["s1"]
    branch, why = logic_blocks.split_verdict(
        step, workflow_id=workflow.pk, run_id=0, contact_id=ann.pk
    )
    page = response.content.decode()
    assert f"takes {why}" in page
    other = "s3" if branch["next"] == "s2" else "s2"
    assert f"<strong>{branch['next']} ·" in page and f"<strong>{other} ·" not in page


def test_a_loop_whose_only_wait_is_a_window_is_refused_as_it_may_not_wait():
    always = {"from": "00:00", "to": "23:59", "days": [1, 2, 3, 4, 5, 6, 7]}
    graph = chain(
        {"kind": "wait", "mode": "window", "window": always},
        {"kind": "update_field", "field": "town", "value": "Kyiv", "next": "s1"},
    )
    [problem] = wf_graph.structure_problems(graph)
    assert problem.startswith("Loop without a wait:") and "until a time of day" in problem
    graph["steps"][0].update(mode="duration", seconds=3600)
    assert wf_graph.structure_problems(graph) == []
