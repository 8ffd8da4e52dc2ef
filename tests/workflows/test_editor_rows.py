"""The workflow editor's inline pieces: an event type created in place and selected, the
trigger's conditions as parameter rows, a condition step's contact check as segment-builder
rows; saved in the format the engine evaluates, and old text conditions shown as rows."""

import pytest
from django.urls import reverse

from marketing.models import EventType
from marketing.workflows.models import Workflow
from tests.workflows.conftest import chain, make_workflow

pytestmark = pytest.mark.django_db

PICKER = "/automation/workflows/event-type/"


@pytest.fixture
def as_marketer(client, marketer):
    client.force_login(marketer)
    return client


def settings_post(workflow, **extra):
    data = {
        "name": workflow.name,
        "trigger_kind": "event",
        "re_entry": "once",
        "re_entry_days": "30",
    }
    data.update(extra)
    return data


def test_the_new_event_type_form_opens_in_place(as_marketer):
    page = as_marketer.get(PICKER, {"new": "1"}).content.decode()
    assert 'data-testid="event-type-new-form"' in page
    assert 'name="new_event_key"' in page and "autofocus" in page


def test_creating_an_event_type_in_place_selects_it(as_marketer):
    response = as_marketer.post(PICKER, {"new_event_key": "orderPlaced", "new_event_name": ""})
    page = response.content.decode()
    created = EventType.objects.get(key="orderPlaced")
    assert f'<option value="{created.pk}" selected>' in page
    assert "created and selected" in page
    assert 'data-testid="event-type-new-form"' not in page


def test_a_bad_or_taken_key_is_shown_on_the_inline_form(as_marketer):
    EventType.objects.create(key="orderPlaced")
    page = as_marketer.post(PICKER, {"new_event_key": "orderPlaced"}).content.decode()
    assert "already exists" in page and 'aria-invalid="true"' in page
    page = as_marketer.post(PICKER, {"new_event_key": "has space"}).content.decode()
    assert 'role="alert"' in page
    assert EventType.objects.count() == 1


def test_viewers_cannot_create_event_types(client, viewer):
    client.force_login(viewer)
    assert client.post(PICKER, {"new_event_key": "x"}).status_code == 403
    assert not EventType.objects.filter(key="x").exists()


def test_trigger_condition_rows_save_in_the_engine_format(as_marketer):
    workflow = make_workflow(chain({"kind": "exit"}), activate=False)
    response = as_marketer.post(
        reverse("workflow_settings", args=[workflow.pk]),
        settings_post(
            workflow,
            event_type=workflow.event_type_id,
            cond_param=["totalCost", "city", ""],
            cond_op=["gte", "eq", "eq"],
            cond_value=["100", "Kyiv", ""],
        ),
    )
    assert response.status_code == 302
    workflow.refresh_from_db()
    assert workflow.trigger_conditions == [
        {"param": "totalCost", "op": "gte", "value": "100"},
        {"param": "city", "op": "eq", "value": "Kyiv"},
    ]


def test_an_incomplete_condition_row_is_refused_on_its_row(as_marketer):
    workflow = make_workflow(chain({"kind": "exit"}), activate=False)
    response = as_marketer.post(
        reverse("workflow_settings", args=[workflow.pk]),
        settings_post(
            workflow,
            event_type=workflow.event_type_id,
            cond_param=["totalCost"],
            cond_op=["gte"],
            cond_value=[""],
        ),
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "The value is missing." in page and 'value="totalCost"' in page
    assert Workflow.objects.get().trigger_conditions == []


def test_saved_conditions_are_shown_as_rows(as_marketer):
    workflow = make_workflow(
        chain({"kind": "exit"}),
        activate=False,
        trigger_conditions=[{"param": "plan", "op": "eq", "value": "pro"}],
    )
    page = as_marketer.get(workflow.get_absolute_url()).content.decode()
    assert 'name="cond_param" value="plan"' in page
    assert '<option value="eq" selected>' in page


def condition_workflow(filter_: dict):
    return make_workflow(
        chain(
            {"kind": "condition", "check": {"type": "contact", "filter": filter_}, "yes": "s2"},
            {"kind": "exit"},
        ),
        activate=False,
    )


def test_a_contact_check_is_built_from_rows(as_marketer):
    workflow = condition_workflow({})
    response = as_marketer.post(
        reverse("workflow_step_save", args=[workflow.pk, "s1"]),
        {
            "s1-check_type": "contact",
            "s1-cf_join": "and",
            "s1-cf_field": ["tags", "town"],
            "s1-cf_op": ["$contains", "$eq"],
            "s1-cf_value": ["vip", "Lviv"],
            "s1-yes": "s2",
            "s1-no": "",
        },
    )
    assert response.status_code == 302
    workflow.refresh_from_db()
    check = workflow.draft_graph["steps"][0]["check"]
    assert check == {
        "type": "contact",
        "filter": {"$and": [{"tags": {"$contains": "vip"}}, {"town": {"$eq": "Lviv"}}]},
    }


def test_a_row_without_its_value_is_refused(as_marketer):
    workflow = condition_workflow({})
    response = as_marketer.post(
        reverse("workflow_step_save", args=[workflow.pk, "s1"]),
        {
            "s1-check_type": "contact",
            "s1-cf_field": ["town"],
            "s1-cf_op": ["$eq"],
            "s1-cf_value": [""],
            "s1-yes": "s2",
        },
    )
    assert response.status_code == 400
    assert "needs a value" in response.content.decode()


def test_a_saved_filter_is_shown_as_rows_when_it_parses(as_marketer):
    workflow = condition_workflow({"town": "Lviv", "tags": {"$contains": "vip"}})
    page = as_marketer.get(workflow.get_absolute_url()).content.decode()
    assert 'data-testid="contact-rows"' in page
    assert 'name="s1-cf_value" value="Lviv"' in page


def test_a_filter_rows_cannot_express_stays_json(as_marketer):
    workflow = condition_workflow({"$or": [{"$and": [{"town": "Lviv"}]}]})
    page = as_marketer.get(workflow.get_absolute_url()).content.decode()
    assert 'data-testid="contact-rows"' not in page
    assert 'name="s1-filter"' in page


def test_the_contact_row_follows_the_field(as_marketer):
    page = as_marketer.get(
        "/automation/workflows/contact-row/",
        {"prefix": "s1", "s1-cf_field": "confirmed", "s1-cf_op": "", "s1-cf_value": ""},
    ).content.decode()
    assert '<option value="confirmed" selected>' in page
    assert 'name="s1-cf_value"' in page and '<option value="true"' in page


def test_the_editor_in_ukrainian(as_marketer):
    workflow = condition_workflow({})
    page = as_marketer.get(workflow.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="uk")
    assert "Тригер і налаштування" in page.content.decode()  # noqa: RUF001
