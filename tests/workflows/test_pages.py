"""Workflow pages: list with statistics, create from a scenario, edit steps, activate with
refusals, simulate, run history; viewers read, marketers write, outsiders get 403."""

import pytest
from django.urls import reverse

from marketing.models import Event, EventType
from marketing.workflows.models import Workflow, WorkflowRun
from marketing.workflows.scenarios import SCENARIOS, workflow_create_from_scenario
from marketing.workflows.triggers import workflows_start_for_event
from tests.contacts.factories import ContactFactory
from tests.workflows.conftest import chain, make_workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_marketer(client, marketer):
    client.force_login(marketer)
    return client


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def test_list_shows_workflows_with_their_statistics(
    as_viewer, welcome, django_capture_on_commit_callbacks
):
    make_workflow(chain({"kind": "send", "template_id": welcome.pk, "channel": "email"}))
    contact = ContactFactory()
    event = Event.objects.create(event_type=EventType.objects.get(key="signup"), contact=contact)
    with django_capture_on_commit_callbacks(execute=True):
        workflows_start_for_event(event=event)
    response = as_viewer.get("/automation/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Test workflow" in page and "<code>signup</code>" in page
    # entered 1, in progress 0, completed 1, exited 0, failed 0, sent 1, conversions 0
    assert "<td>1</td><td>0</td><td>1</td>" in page.replace("\n", "").replace("      ", "")
    assert "Conversions: delivered orders credited to a workflow message" in page
    assert "New workflow" not in page  # viewers cannot create


def test_empty_list_shows_the_empty_state(as_viewer):
    assert 'data-testid="empty-state"' in as_viewer.get("/automation/").content.decode()


def test_outsider_is_forbidden_and_anonymous_goes_to_login(client, outsider):
    assert client.get("/automation/").status_code == 302
    client.force_login(outsider)
    assert client.get("/automation/").status_code == 403


def test_viewer_cannot_create_edit_or_activate(as_viewer, welcome):
    workflow = make_workflow(chain({"kind": "exit"}), activate=False)
    assert as_viewer.post("/automation/", {"scenario": "birthday"}).status_code == 403
    for name in ("workflow_activate", "workflow_pause", "workflow_delete", "workflow_step_add"):
        assert as_viewer.post(reverse(name, args=[workflow.pk])).status_code == 403
    url = reverse("workflow_step_save", args=[workflow.pk, "s1"])
    assert as_viewer.post(url, {"s1-label": "x"}).status_code == 403
    assert Workflow.objects.get().status == "draft"
    assert as_viewer.get(workflow.get_absolute_url()).status_code == 200


@pytest.mark.parametrize("key", list(SCENARIOS))
def test_marketer_creates_from_each_scenario_and_the_editor_shows_its_steps(as_marketer, key):
    response = as_marketer.post("/automation/", {"name": "", "scenario": key})
    workflow = Workflow.objects.get()
    assert response.status_code == 302 and response["Location"] == workflow.get_absolute_url()
    assert workflow.name == SCENARIOS[key].title
    page = as_marketer.get(workflow.get_absolute_url()).content.decode()
    assert 'data-testid="steps"' in page
    for step in workflow.draft_graph["steps"]:
        assert f'id="step-{step["id"]}"' in page
    # Message steps still need a template: the page says which.
    assert "choose the message template" in page


def test_branches_are_shown_as_indented_sub_lists(as_marketer):
    workflow = workflow_create_from_scenario(key="double_opt_in")
    page = as_marketer.get(workflow.get_absolute_url()).content.decode()
    assert "If yes:" in page and "If no:" in page
    assert 'style="margin-left: 2rem"' in page


def test_marketer_builds_a_workflow_step_by_step_and_activates_it(as_marketer, welcome):
    as_marketer.post("/automation/", {"name": "Hello flow", "scenario": ""})
    workflow = Workflow.objects.get()
    event_type = EventType.objects.create(key="signup")
    response = as_marketer.post(
        reverse("workflow_settings", args=[workflow.pk]),
        {
            "name": "Hello flow",
            "trigger_kind": "event",
            "event_type": event_type.pk,
            "trigger_conditions": "plan eq pro",
            "re_entry": "after_days",
            "re_entry_days": "7",
        },
    )
    assert response.status_code == 302
    as_marketer.post(reverse("workflow_step_add", args=[workflow.pk]), {"kind": "send"})
    as_marketer.post(
        reverse("workflow_step_add", args=[workflow.pk]), {"kind": "wait", "after": "s1"}
    )
    workflow.refresh_from_db()
    assert workflow.trigger_conditions == [{"param": "plan", "op": "eq", "value": "pro"}]
    assert workflow.re_entry == "after_days" and workflow.re_entry_days == 7
    assert [s["kind"] for s in workflow.draft_graph["steps"]] == ["send", "wait"]

    # Activation is refused while the send step has no template, naming the step.
    response = as_marketer.post(reverse("workflow_activate", args=[workflow.pk]), follow=True)
    assert "(s1): choose the message template to send" in response.content.decode()
    assert Workflow.objects.get().status == "draft"

    response = as_marketer.post(
        reverse("workflow_step_save", args=[workflow.pk, "s1"]),
        {"s1-label": "Hello", "s1-template": welcome.pk, "s1-channel": "email", "s1-next": "s2"},
    )
    assert response.status_code == 302
    response = as_marketer.post(
        reverse("workflow_step_save", args=[workflow.pk, "s2"]),
        {
            "s2-label": "",
            "s2-mode": "duration",
            "s2-amount": "3",
            "s2-unit": "hours",
            "s2-next": "",
        },
    )
    workflow.refresh_from_db()
    assert workflow.draft_graph["steps"][0]["template_id"] == welcome.pk
    assert workflow.draft_graph["steps"][1]["seconds"] == 3 * 3600
    response = as_marketer.post(reverse("workflow_activate", args=[workflow.pk]), follow=True)
    assert "Active on version 1" in response.content.decode()
    assert Workflow.objects.get().status == "active"

    response = as_marketer.post(reverse("workflow_pause", args=[workflow.pk]), follow=True)
    assert Workflow.objects.get().status == "paused"


def test_bad_step_input_is_shown_on_the_form_with_400(as_marketer):
    workflow = make_workflow(
        chain(
            {
                "kind": "condition",
                "check": {"type": "contact", "filter": {}},
                "yes": "s2",
                "no": "s2",
            },
            {"kind": "exit"},
        ),
        activate=False,
    )
    response = as_marketer.post(
        reverse("workflow_step_save", args=[workflow.pk, "s1"]),
        {"s1-check_type": "contact", "s1-filter": '{"shoeSize": 4}', "s1-yes": "s2", "s1-no": "s2"},
    )
    assert response.status_code == 400
    assert "shoeSize" in response.content.decode()


def test_removing_a_step_reconnects_the_path(as_marketer, welcome):
    workflow = make_workflow(
        chain(
            {"kind": "send", "template_id": welcome.pk, "channel": "email"},
            {"kind": "wait", "mode": "duration", "seconds": 60},
            {"kind": "exit"},
        ),
        activate=False,
    )
    as_marketer.post(reverse("workflow_step_delete", args=[workflow.pk, "s2"]))
    workflow.refresh_from_db()
    assert [s["id"] for s in workflow.draft_graph["steps"]] == ["s1", "s3"]
    assert workflow.draft_graph["steps"][0]["next"] == "s3"


def test_simulator_page_shows_the_path(as_viewer, welcome):
    workflow = make_workflow(
        chain(
            {"kind": "wait", "mode": "duration", "seconds": 3600},
            {"kind": "send", "template_id": welcome.pk, "channel": "email"},
        ),
        activate=False,
    )
    contact = ContactFactory(email="sim@example.com")
    url = reverse("workflow_simulate", args=[workflow.pk])
    assert as_viewer.get(url).status_code == 200
    response = as_viewer.get(url, {"contact": contact.pk, "params": '{"a": 1}'})
    page = response.content.decode()
    assert response.status_code == 200
    assert "would send “Welcome” by email to sim@example.com" in page
    assert "Skipped waits" in page and "would wait 1 h" in page
    bad = as_viewer.get(url, {"contact": contact.pk, "params": "[1"})
    assert bad.status_code == 400 and "Not valid JSON" in bad.content.decode()


def test_run_history_and_run_detail(as_viewer, django_capture_on_commit_callbacks):
    make_workflow(chain({"kind": "exit", "label": "Bye"}))
    contact = ContactFactory(email="runner@example.com")
    event = Event.objects.create(
        event_type=EventType.objects.get(key="signup"), contact=contact, params={"k": "v"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        workflows_start_for_event(event=event)
    run = WorkflowRun.objects.get()
    page = as_viewer.get(reverse("workflow_runs", args=[run.workflow_id])).content.decode()
    assert "runner@example.com" in page and "Exited" in page
    page = as_viewer.get(run.get_absolute_url()).content.decode()
    assert "s1 · Bye" in page and "exit step" in page and "&#x27;k&#x27;" in page


def test_engagement_and_segment_events_can_be_chosen_as_triggers_before_the_first_arrives(
    as_marketer,
):
    assert not EventType.objects.filter(key__in=["emailOpened", "segmentEntered"]).exists()
    workflow = workflow_create_from_scenario(key="double_opt_in")
    page = as_marketer.get(workflow.get_absolute_url()).content.decode()
    opened = EventType.objects.get(key="emailOpened")
    assert f'<option value="{opened.pk}">' in page
    assert EventType.objects.filter(key__in=["linkClicked", "segmentEntered"]).count() == 2
    response = as_marketer.post(
        reverse("workflow_settings", args=[workflow.pk]),
        {
            "name": workflow.name,
            "trigger_kind": "event",
            "event_type": opened.pk,
            "re_entry": "every_time",
            "re_entry_days": "30",
        },
    )
    assert response.status_code == 302
    workflow.refresh_from_db()
    assert workflow.event_type == opened
