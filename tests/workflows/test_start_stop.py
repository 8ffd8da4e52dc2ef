"""Start and stop conditions and the Contact blocks, in one process (the worker journeys are
in test_start_stop_e2e): the contact block's writes, contact creation from keyValue, group
schedules, imports, the button link and the start API, stop conditions, activation checks."""

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from config.core.models import Organisation
from contacts.models import Contact, ImportJob, ImportStatus, SegmentKind, SegmentMembership
from contacts.segments import segment_attach, segment_detach
from contacts.services import contact_delete
from contacts.unsubscribed import unsubscribed_add
from marketing.models import Event, EventType
from marketing.workflows import stops
from marketing.workflows.buttons import button_token, button_url
from marketing.workflows.engine import run_advance
from marketing.workflows.graph import default_step, structure_problems
from marketing.workflows.models import Workflow, WorkflowRun
from marketing.workflows.services import (
    WorkflowError,
    workflow_activate,
    workflow_create,
    workflow_problems,
    workflow_update_settings,
)
from marketing.workflows.simulator import simulate
from marketing.workflows.triggers import (
    import_workflows_check,
    schedule_due,
    schedule_workflows_fire,
    workflow_start_for_contact,
    workflows_start_for_event,
)
from tests.contacts.factories import ContactFactory, CustomFieldFactory, SegmentFactory
from tests.workflows.conftest import chain, make_workflow

pytestmark = pytest.mark.django_db


def event_for(key: str, key_value: str, params=None, contact=None) -> Event:
    event_type, _ = EventType.objects.get_or_create(key=key)
    return Event.objects.create(
        event_type=event_type, key_value=key_value, params=params or {}, contact=contact
    )


def contact_block(**settings):
    step = {**default_step("contact"), **settings}
    step.pop("next", None)
    return step


WAIT_DAY = {"kind": "wait", "mode": "duration", "seconds": 86400}


# --- the contact block -------------------------------------------------------------------------


def test_an_event_of_an_unknown_email_creates_the_contact_and_the_block_fills_it(
    django_capture_on_commit_callbacks,
):
    vip = SegmentFactory(name="Newcomers", kind=SegmentKind.STATIC)
    city = CustomFieldFactory(name="City")
    make_workflow(
        chain(
            contact_block(
                fields=[
                    {"field": "firstName", "param": "name"},
                    {"field": f"fields.{city.pk}", "param": "city"},
                    {"field": "town", "value": "Kyiv"},
                ],
                tags_add=["new", "web"],
                segment_ids=[vip.pk],
            ),
            {"kind": "exit"},
        ),
        event_key="testEvent",
    )
    event = event_for("testEvent", "New.Person@Example.com", {"name": "Nina", "city": "Lviv"})
    with django_capture_on_commit_callbacks(execute=True):
        [run_id] = workflows_start_for_event(event=event)

    contact = Contact.objects.get(email="new.person@example.com")
    assert contact.source == "api" and contact.confirmed
    assert contact.first_name == "Nina"
    assert contact.town == "Kyiv"
    assert contact.fields[str(city.pk)] == "Lviv"
    assert contact.tags == ["new", "web"]
    assert SegmentMembership.objects.filter(segment=vip, contact=contact).exists()
    event.refresh_from_db()
    assert event.contact_id == contact.pk
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.contact == contact and run.status == "exited"
    assert "added to Newcomers" in run.path[0]["note"]


def test_a_contact_deleted_before_is_not_created_again(django_capture_on_commit_callbacks):
    make_workflow(chain(contact_block(), {"kind": "exit"}), event_key="testEvent")
    gone = ContactFactory(email="gone@example.com")
    contact_delete(contact=gone, erase=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert workflows_start_for_event(event=event_for("testEvent", "gone@example.com")) == []
    assert Contact.objects.filter(email="gone@example.com").count() == 1
    assert not WorkflowRun.objects.exists()


def test_without_a_creating_first_block_an_unknown_key_starts_nothing(
    django_capture_on_commit_callbacks,
):
    make_workflow(
        chain(contact_block(create=False, tags_add=["x"]), {"kind": "exit"}), event_key="testEvent"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert workflows_start_for_event(event=event_for("testEvent", "who@example.com")) == []
    assert not Contact.objects.filter(email="who@example.com").exists()


@pytest.mark.parametrize(
    ("key", "key_as", "column", "value"),
    [
        ("+380 50 123 4567", "auto", "phone", "+380501234567"),
        ("CRM-77", "auto", "external_customer_id", "CRM-77"),
        ("12345678", "externalId", "external_customer_id", "12345678"),
    ],
)
def test_key_value_is_read_by_its_look_or_as_the_block_says(
    key, key_as, column, value, django_capture_on_commit_callbacks
):
    make_workflow(chain(contact_block(key_as=key_as), {"kind": "exit"}), event_key="testEvent")
    with django_capture_on_commit_callbacks(execute=True):
        assert len(workflows_start_for_event(event=event_for("testEvent", key))) == 1
    assert Contact.objects.filter(**{column: value}).exists()


def test_the_block_adds_and_removes_tags_and_sets_several_fields_of_a_known_contact(
    ann, django_capture_on_commit_callbacks
):
    Contact.objects.filter(pk=ann.pk).update(tags=["lead", "keep"])
    make_workflow(
        chain(
            contact_block(
                create=False,
                fields=[
                    {"field": "lastName", "param": "surname"},
                    {"field": "region", "value": "West"},
                    {"field": "town", "param": "missing"},
                ],
                tags_add=["customer"],
                tags_remove=["lead"],
            ),
        ),
        event_key="bought",
    )
    event = event_for("bought", str(ann.pk), {"surname": "Smith"}, contact=ann)
    with django_capture_on_commit_callbacks(execute=True):
        [run_id] = workflows_start_for_event(event=event)
    ann.refresh_from_db()
    assert ann.tags == ["keep", "customer"]
    assert (ann.last_name, ann.region) == ("Smith", "West")
    assert WorkflowRun.objects.get(pk=run_id).status == "completed"


def test_old_update_field_steps_still_run(ann, django_capture_on_commit_callbacks):
    make_workflow(chain({"kind": "update_field", "field": "firstName", "value": "Anna"}))
    event = event_for("signup", str(ann.pk), contact=ann)
    with django_capture_on_commit_callbacks(execute=True):
        workflows_start_for_event(event=event)
    ann.refresh_from_db()
    assert ann.first_name == "Anna"


def test_the_simulator_describes_the_block_with_the_sample_params(ann):
    graph = chain(contact_block(fields=[{"field": "firstName", "param": "name"}], tags_add=["a"]))
    result = simulate(graph=graph, contact=ann, params={"name": "Nina"})
    assert "firstName ← parameter name (Nina)" in result.path[0].description
    assert "add tags a" in result.path[0].description


def test_structure_problems_name_the_block_and_the_setting():
    step = contact_block(
        create=False,
        key_as="fax",
        fields=[{"field": "shoeSize", "value": "42"}, {"field": "firstName"}],
    )
    problems = structure_problems(chain(step))
    assert any("keyValue must be read as" in p and "(s1)" in p for p in problems)
    assert any("field row 1: 'shoeSize' is not a contact field" in p for p in problems)
    assert any("field row 2: name the event parameter or a value" in p for p in problems)
    empty = structure_problems(chain(contact_block(create=False)))
    assert any("choose what to write" in p for p in empty)


def test_a_contact_block_of_malformed_json_is_named_not_a_server_error():
    """A graph edited as JSON (admin) may hold any value where the editor writes lists."""
    step = contact_block(create=False, key_as=["email"], segment_ids=7, fields=["firstName"])
    workflow = make_workflow(chain(step), activate=False)

    problems = workflow_problems(workflow)

    assert any("keyValue must be read as" in p for p in problems)
    assert any("segment_ids must be a list" in p for p in problems)
    assert any("field row 1: None is not a contact field" in p for p in problems)


def test_activation_names_a_segment_of_the_block_that_is_dynamic():
    dynamic = SegmentFactory(name="Dyn", kind=SegmentKind.DYNAMIC, filter={"tags": "x"})
    workflow = make_workflow(chain(contact_block(segment_ids=[dynamic.pk])), activate=False)
    with pytest.raises(WorkflowError) as caught:
        workflow_activate(workflow=workflow)
    assert any("“Dyn” is dynamic" in p for p in caught.value.problems)


# --- start conditions --------------------------------------------------------------------------


def settings_of(workflow, **changes):
    values = {
        "name": workflow.name,
        "trigger_kind": workflow.trigger_kind,
        "event_type": workflow.event_type,
        "segment": workflow.segment,
        "schedule": workflow.schedule,
        "stop_conditions": workflow.stop_conditions,
    }
    values.update(changes)
    return workflow_update_settings(workflow=workflow, **values)


def test_schedule_due_by_day_and_weekday():
    monday = dt.datetime(2026, 12, 7, 9, 30)
    assert schedule_due({"every": "day", "time": "09:00"}, monday)
    assert not schedule_due({"every": "day", "time": "10:00"}, monday)
    assert schedule_due({"every": "week", "time": "09:00", "weekday": 1}, monday)
    assert not schedule_due({"every": "week", "time": "09:00", "weekday": 2}, monday)


def test_a_group_schedule_starts_each_member_once_per_occurrence():
    organisation = Organisation.load()
    organisation.time_zone = "Europe/Kyiv"
    organisation.save()
    group = SegmentFactory(name="Everyone", kind=SegmentKind.STATIC)
    members = [ContactFactory(), ContactFactory()]
    ContactFactory()  # not in the group
    segment_attach(segment=group, contact_ids=[c.pk for c in members])
    make_workflow(
        chain({"kind": "exit"}),
        trigger_kind="schedule",
        segment=group,
        schedule={"every": "day", "time": "08:00"},
        re_entry="every_time",
    )
    zone = zoneinfo.ZoneInfo("Europe/Kyiv")
    early = dt.datetime(2026, 12, 7, 7, 59, tzinfo=zone)
    assert schedule_workflows_fire(now=early) == 0
    at = dt.datetime(2026, 12, 7, 8, 1, tzinfo=zone)
    assert schedule_workflows_fire(now=at) == 2
    assert schedule_workflows_fire(now=at + dt.timedelta(hours=3)) == 0  # same occurrence
    assert schedule_workflows_fire(now=at + dt.timedelta(days=1)) == 2  # the next day's
    assert set(WorkflowRun.objects.values_list("contact_id", flat=True)) == {c.pk for c in members}


def test_an_import_into_the_segment_starts_its_imported_members_once():
    group = SegmentFactory(name="Customers", kind=SegmentKind.STATIC)
    imported, other = ContactFactory(), ContactFactory()
    segment_attach(segment=group, contact_ids=[imported.pk, other.pk])
    workflow = make_workflow(chain({"kind": "exit"}), trigger_kind="import", segment=group)
    finished = timezone.now() + dt.timedelta(seconds=1)
    job = ImportJob.objects.create(
        status=ImportStatus.FINISHED,
        finished_at=finished,
        payload={"options": {"groupNames": ["Customers"]}},
        contact_ids=[imported.pk],
    )
    ImportJob.objects.create(  # into another group
        status=ImportStatus.FINISHED,
        finished_at=finished,
        payload={"options": {"groupNames": ["Other"]}},
        contact_ids=[other.pk],
    )
    # Read only once it has settled (its commit may follow its finished_at a little).
    assert import_workflows_check(now=finished + dt.timedelta(seconds=5)) == 0
    assert import_workflows_check(now=finished + dt.timedelta(minutes=1)) == 1
    assert import_workflows_check(now=finished + dt.timedelta(minutes=2)) == 0
    assert job.contact_ids == [imported.pk]
    assert list(WorkflowRun.objects.values_list("contact_id", flat=True)) == [imported.pk]
    workflow.refresh_from_db()
    assert workflow.segment_checked_at is not None


def test_imports_finished_before_activation_start_nothing():
    group = SegmentFactory(name="Customers", kind=SegmentKind.STATIC)
    contact = ContactFactory()
    segment_attach(segment=group, contact_ids=[contact.pk])
    ImportJob.objects.create(
        status=ImportStatus.FINISHED,
        finished_at=timezone.now() - dt.timedelta(minutes=5),
        payload={"options": {"groupNames": ["Customers"]}},
        contact_ids=[contact.pk],
    )
    make_workflow(chain({"kind": "exit"}), trigger_kind="import", segment=group)
    assert import_workflows_check(now=timezone.now() + dt.timedelta(minutes=5)) == 0


def test_activation_names_what_new_triggers_and_stops_miss():
    workflow = workflow_create(name="W", graph=chain({"kind": "exit"}), trigger_kind="schedule")
    problems = workflow_problems(workflow)
    assert "Trigger: choose the segment whose contacts start this workflow." in problems
    group = SegmentFactory(kind=SegmentKind.STATIC)
    workflow = settings_of(workflow, segment=group, schedule={"every": "week", "time": "9"})
    assert "Trigger: the schedule's time of day must be HH:MM (24-hour)." in (
        workflow_problems(workflow)
    )
    workflow = settings_of(workflow, schedule={"every": "week", "time": "09:00"})
    assert "Trigger: choose the schedule's day of the week." in workflow_problems(workflow)
    dynamic = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"tags": "x"})
    workflow = settings_of(workflow, trigger_kind="import", segment=dynamic)
    assert any("choose a static one" in p for p in workflow_problems(workflow))
    workflow = settings_of(
        workflow,
        trigger_kind="button",
        stop_conditions=[{"type": "event"}, {"type": "segment_leave", "segment_id": 999999}],
    )
    problems = workflow_problems(workflow)
    assert "Stop condition 1: choose the event type that stops a run." in problems
    assert "Stop condition 2: choose the segment a run's contact must stay in." in problems


# --- the button link and the start API ---------------------------------------------------------


@pytest.fixture
def button_workflow(db):
    return make_workflow(chain(WAIT_DAY, {"kind": "exit"}), trigger_kind="button")


def test_the_button_page_asks_then_starts_the_workflow_for_the_signed_contact(
    client, ann, button_workflow, django_capture_on_commit_callbacks
):
    url = button_url(workflow=button_workflow, contact_id=ann.pk)
    path = url.split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path)
    assert response.status_code == 200
    assert b"button-confirm" in response.content
    assert not WorkflowRun.objects.exists()  # a link scanner's GET starts nothing
    token = button_token(workflow=button_workflow, contact_id=ann.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/w/{button_workflow.button_key}/", {"c": token})
    assert response.status_code == 200 and b"button-done" in response.content
    run = WorkflowRun.objects.get()
    assert run.contact == ann and run.status == "waiting"


def test_a_forged_or_foreign_button_token_is_refused(client, ann, button_workflow):
    other = make_workflow(chain({"kind": "exit"}), trigger_kind="button")
    foreign = button_token(workflow=other, contact_id=ann.pk)
    key = button_workflow.button_key
    assert client.get(f"/w/{key}/?c={foreign}").status_code == 400
    assert client.post(f"/w/{key}/", {"c": foreign[:-2] + "aa"}).status_code == 400
    assert client.get(f"/w/{key}/").status_code == 400
    assert client.get("/w/no-such-key/?c=x").status_code == 404
    assert not WorkflowRun.objects.exists()


def test_the_start_api_starts_by_id_email_or_external_id(
    api, full_key, ann, button_workflow, django_capture_on_commit_callbacks
):
    path = f"/api/herald/workflows/{button_workflow.pk}/start"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            path,
            key=full_key,
            body={"email": "ANN@example.com", "params": [{"name": "plan", "value": "pro"}]},
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["contactId"] == ann.pk and body["started"] is True
    assert WorkflowRun.objects.get(pk=body["runId"]).params == {"plan": "pro"}
    again = api.post(path, key=full_key, body={"contactId": ann.pk}).json()
    assert again == {"contactId": ann.pk, "started": False, "runId": None}  # once ever


def test_the_start_api_answers_bad_input_naming_the_field(api, full_key, ann, button_workflow):
    path = f"/api/herald/workflows/{button_workflow.pk}/start"
    missing = api.post("/api/herald/workflows/999999/start", key=full_key, body={"contactId": 1})
    assert missing.status_code == 404
    cases = [
        ({"contactId": "x"}, 400, "contactId"),
        ({"contactId": 999999}, 404, "contactId"),
        ({"email": "not an address"}, 400, "email"),
        ({"email": "nobody@example.com"}, 404, "email"),
        ({"externalCustomerId": 5}, 400, "externalCustomerId"),
        ({}, 400, "contactId"),
        ({"contactId": ann.pk, "params": "x"}, 400, "params"),
    ]
    for body, status, field in cases:
        response = api.post(path, key=full_key, body=body)
        assert response.status_code == status, (body, response.content)
        assert response.json()["field"] == field, body
    event_workflow = make_workflow(chain({"kind": "exit"}))
    refused = api.post(
        f"/api/herald/workflows/{event_workflow.pk}/start", key=full_key, body={"contactId": 1}
    )
    assert refused.status_code == 409 and refused.json()["field"] == "workflow"
    assert api.post(path, body={"contactId": ann.pk}).status_code in (401, 403)


def test_the_start_api_creates_the_contact_when_the_workflow_begins_with_a_creating_block(
    api, full_key, django_capture_on_commit_callbacks
):
    workflow = make_workflow(chain(contact_block(), {"kind": "exit"}), trigger_kind="button")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/herald/workflows/{workflow.pk}/start",
            key=full_key,
            body={"email": "fresh@example.com"},
        )
    assert response.status_code == 200, response.content
    assert Contact.objects.get(email="fresh@example.com").pk == response.json()["contactId"]


def test_the_button_link_api_signs_a_contact_link(api, full_key, ann, button_workflow):
    path = f"/api/herald/workflows/{button_workflow.pk}/button-link"
    response = api.get(f"{path}?contactId={ann.pk}", key=full_key)
    assert response.status_code == 200
    assert response.json()["url"] == button_url(workflow=button_workflow, contact_id=ann.pk)
    assert api.get(f"{path}?contactId=abc", key=full_key).json()["field"] == "contactId"
    # A digit Python reads as one but int() does not (superscript two): 400, not 500.
    assert api.get(f"{path}?contactId=%C2%B2", key=full_key).json()["field"] == "contactId"
    assert api.get(f"{path}?contactId=999999", key=full_key).status_code == 404


# --- stop conditions ---------------------------------------------------------------------------


def waiting_run(contact, **settings) -> WorkflowRun:
    workflow = make_workflow(chain(WAIT_DAY, {"kind": "exit"}), trigger_kind="button", **settings)
    _, [run_id] = workflow_start_for_contact(workflow=workflow, contact_id=contact.pk)
    run_advance(run_id=run_id)
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.status == "waiting"
    return run


def make_due(run):
    WorkflowRun.objects.filter(pk=run.pk).update(wake_at=timezone.now() - dt.timedelta(seconds=1))


def test_an_event_of_the_contact_stops_its_waiting_run_with_the_reason(ann):
    purchase = EventType.objects.create(key="purchase")
    run = waiting_run(ann, stop_conditions=[{"type": "event", "event_type_id": purchase.pk}])
    workflows_start_for_event(event=event_for("purchase", "1", contact=ann))
    run.refresh_from_db()
    assert run.status == "exited"
    assert run.exit_reason == "stop condition: the contact produced the event purchase"
    assert run.path[-1]["kind"] == "stop" and run.finished_at is not None


def test_an_event_that_came_while_the_run_was_busy_stops_it_at_wake_up(ann):
    purchase = EventType.objects.create(key="purchase")
    run = waiting_run(ann, stop_conditions=[{"type": "event", "event_type_id": purchase.pk}])
    event_for("purchase", "1", contact=ann)  # stored, not processed yet
    make_due(run)
    assert stops.runs_stop_due() == 1
    run.refresh_from_db()
    assert run.status == "exited" and "purchase" in run.exit_reason


def test_leaving_the_segment_or_unsubscribing_stops_at_wake_up(ann):
    group = SegmentFactory(name="Trial", kind=SegmentKind.STATIC)
    segment_attach(segment=group, contact_ids=[ann.pk])
    run = waiting_run(ann, stop_conditions=[{"type": "segment_leave", "segment_id": group.pk}])
    make_due(run)
    assert stops.runs_stop_due() == 0  # still in it
    segment_detach(segment=group, contact_ids=[ann.pk])
    assert stops.runs_stop_due() == 1
    run.refresh_from_db()
    assert run.exit_reason == "stop condition: the contact is no longer in the segment “Trial”"

    bob = ContactFactory(email="bob@example.com")
    run = waiting_run(bob, stop_conditions=[{"type": "unsubscribed"}])
    make_due(run)
    assert stops.runs_stop_due() == 0
    unsubscribed_add(emails=["bob@example.com"])
    assert stops.runs_stop_due() == 1
    run.refresh_from_db()
    assert run.status == "exited" and run.exit_reason == "stop condition: the contact unsubscribed"


def test_a_run_not_yet_due_or_of_another_contact_is_not_stopped(ann):
    purchase = EventType.objects.create(key="purchase")
    run = waiting_run(ann, stop_conditions=[{"type": "event", "event_type_id": purchase.pk}])
    bob = ContactFactory()
    workflows_start_for_event(event=event_for("purchase", "1", contact=bob))
    event_for("purchase", "1", contact=bob)
    assert stops.runs_stop_due() == 0
    run.refresh_from_db()
    assert run.status == "waiting"
    assert Workflow.objects.get(pk=run.workflow_id).stop_conditions
