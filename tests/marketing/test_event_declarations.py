"""Event types declare their params; Generate event refuses or flags an event that breaks
them; events may say when they occurred; events are deleted with an audit entry; event
analytics count by occurrence day."""

import datetime as dt
import uuid

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.utils import timezone

from marketing.event_analytics import event_analytics
from marketing.event_params import event_type_declare
from marketing.events import declarations_forget, events_process_pending
from marketing.models import Event, EventType
from marketing.workflows.models import WorkflowRun
from tests.contacts.factories import ContactFactory
from tests.marketing.test_api_events import DOCUMENTED_EVENT  # the eSputnik example, verbatim
from tests.workflows.conftest import chain, make_workflow

pytestmark = pytest.mark.django_db

DECLARED = [
    {"name": "discount", "type": "string", "required": True},
    {"name": "link", "type": "url", "required": True},
    {"name": "amount", "type": "number", "required": False},
]


def declare(key: str, params=DECLARED, mode: str = "refuse", **extra) -> EventType:
    event_type, _ = EventType.objects.get_or_create(key=key, defaults={"name": key})
    return event_type_declare(event_type=event_type, params=params, invalid_mode=mode, **extra)


def post(api, key, body, path="/api/v1/event"):
    return api.post(path, key=key, body=body)


# --- Declarations on the ingest path -------------------------------------------------------


def test_the_documented_event_meets_its_declaration_and_is_stored_unflagged(api, full_key):
    declare("testEvent")
    response = post(api, full_key, DOCUMENTED_EVENT)
    assert response.status_code == 200, response.content
    event = Event.objects.get(pk=response.json()["id"])
    assert event.problems is None
    assert event.params == {"discount": "5%", "link": "https://example.site.com/items_for_sale"}


def test_a_refusing_type_answers_400_naming_each_param_and_stores_nothing(api, full_key):
    declare("testEvent")
    body = {
        **DOCUMENTED_EVENT,
        "params": [{"name": "link", "value": "not a link"}, {"name": "amount", "value": "lots"}],
    }
    response = post(api, full_key, body)
    assert response.status_code == 400
    assert response.json() == {
        "params.discount": ["required"],
        "params.link": ["must be an http or https address"],
        "params.amount": ["must be a number"],
    }
    assert not Event.objects.exists()


def test_a_refusing_type_answers_the_same_through_v2_and_a_form_body(api, full_key, client):
    declare("testEvent")
    v2 = {**DOCUMENTED_EVENT, "params": {"discount": "5%", "link": 7}}
    response = post(api, full_key, v2, path="/api/v2/event")
    assert response.status_code == 400
    assert response.json() == {"params.link": ["must be an http or https address"]}
    response = client.post(
        "/api/v1/event",
        {"eventTypeKey": "testEvent", "keyValue": "x", "params": "[]"},
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 400
    assert "params.discount" in response.json()
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("number", "12.5", "twelve"),
        ("integer", "12", "12.5"),
        ("boolean", "true", "maybe"),
        ("date", "2026-12-01", "01.12.2026"),
        ("datetime", "2026-12-01T09:30:00+02:00", "yesterday"),
        ("email", "ann@example.com", "ann@"),
        ("url", "https://shop.example/p/1", "ftp://shop.example/p/1"),
    ],
)
def test_each_declared_type_takes_its_values_as_v1_strings_and_refuses_others(
    api, full_key, kind, good, bad
):
    declare("typed", params=[{"name": "p", "type": kind, "required": True}])
    body = {"eventTypeKey": "typed", "keyValue": "k"}
    ok = post(api, full_key, {**body, "params": [{"name": "p", "value": good}]})
    assert ok.status_code == 200, ok.content
    refused = post(api, full_key, {**body, "params": [{"name": "p", "value": bad}]})
    assert refused.status_code == 400
    assert list(refused.json()) == ["params.p"]


def test_a_flagging_type_stores_the_event_with_its_problems(api, full_key):
    declare("testEvent", mode="flag")
    body = {**DOCUMENTED_EVENT, "params": [{"name": "discount", "value": "5%"}]}
    response = post(api, full_key, body)
    assert response.status_code == 200, response.content
    event = Event.objects.get(pk=response.json()["id"])
    assert event.problems == [{"param": "link", "problem": "required"}]
    listed = api.get("/api/herald/events?invalid=true", key=full_key).json()["results"]
    assert [(row["id"], row["invalid"], row["problems"]) for row in listed] == [
        (event.pk, True, [{"param": "link", "problem": "required"}])
    ]
    valid = api.get("/api/herald/events?invalid=false", key=full_key).json()["results"]
    assert valid == []


def test_undeclared_types_and_undeclared_params_take_anything(api, full_key):
    declare("testEvent")
    body = {**DOCUMENTED_EVENT, "params": [*DOCUMENTED_EVENT["params"], {"name": "x", "value": ""}]}
    assert post(api, full_key, body).status_code == 200
    other = {"eventTypeKey": "free", "keyValue": "k", "params": [{"name": "p", "value": "?"}]}
    assert post(api, full_key, other).status_code == 200


def test_a_declaration_changed_elsewhere_applies_to_the_next_event(api, full_key):
    """Another process's save changes the token: the cached declaration here is not trusted."""
    declare("testEvent")
    assert post(api, full_key, DOCUMENTED_EVENT).status_code == 200  # cached now
    event_type = EventType.objects.get(key="testEvent")
    with connection.cursor() as cursor:  # as another process would, without this one knowing
        cursor.execute(
            "UPDATE marketing_eventtype SET params_declared = %s::jsonb, "
            "declaration_token = %s WHERE id = %s",
            ['[{"name": "sku", "type": "string", "required": true}]', uuid.uuid4(), event_type.pk],
        )
    response = post(api, full_key, DOCUMENTED_EVENT)
    assert response.status_code == 400
    assert response.json() == {"params.sku": ["required"]}
    # and an undeclared type again takes anything, also after a cache reset
    event_type_declare(
        event_type=EventType.objects.get(pk=event_type.pk), params=[], invalid_mode="refuse"
    )
    declarations_forget()
    assert post(api, full_key, DOCUMENTED_EVENT).status_code == 200


def test_flagged_events_start_no_workflow_unless_the_type_says_so(api, full_key):
    ContactFactory(email="example@email.com")
    workflow = make_workflow(chain({"kind": "exit"}), event_key="testEvent")
    declare("testEvent", mode="flag")
    broken = {**DOCUMENTED_EVENT, "params": []}
    assert post(api, full_key, broken).status_code == 200
    events_process_pending()
    assert not WorkflowRun.objects.filter(workflow=workflow).exists()
    assert Event.objects.get().processed_at is not None  # processed, starting nothing

    declare("testEvent", mode="flag", flagged_start_workflows=True)
    assert post(api, full_key, {**broken, "keyValue": "example@email.com"}).status_code == 200
    events_process_pending()
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 1


# --- Declarations through Herald's API ---------------------------------------------------


def test_declaration_set_read_and_cleared_through_herald_api(api, full_key):
    created = api.post(
        "/api/herald/event-types",
        key=full_key,
        body={"key": "purchase", "params": DECLARED, "invalidMode": "flag"},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["params"] == DECLARED
    assert body["invalidMode"] == "flag"
    assert body["flaggedStartWorkflows"] is False
    type_id = body["id"]
    changed = api.call(
        "PATCH",
        f"/api/herald/event-types/{type_id}",
        key=full_key,
        body={"params": [], "flaggedStartWorkflows": True},
    )
    assert changed.status_code == 200, changed.content
    event_type = EventType.objects.get(pk=type_id)
    assert event_type.params_declared == []
    assert event_type.invalid_mode == "flag"
    assert event_type.flagged_start_workflows is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"params": {"name": "a"}}, "params"),
        ({"params": [{"name": ""}]}, "params[0].name"),
        ({"params": [{"name": "a", "type": "colour"}]}, "params[0].type"),
        ({"params": [{"name": "a"}, {"name": "a"}]}, "params[1].name"),
        ({"params": [{"name": "a", "required": "yes"}]}, "params[0].required"),
        ({"params": [{"name": "a", "default": 1}]}, "params[0]"),
        ({"invalidMode": "ignore"}, "invalidMode"),
    ],
)
def test_a_bad_declaration_is_400_naming_the_entry_and_changes_nothing(api, full_key, body, field):
    event_type = declare("purchase")
    response = api.call(
        "PATCH", f"/api/herald/event-types/{event_type.pk}", key=full_key, body=body
    )
    assert response.status_code == 400
    assert field in response.json()
    assert EventType.objects.get(pk=event_type.pk).params_declared == DECLARED


# --- When events occurred ---------------------------------------------------------------------


def test_occurred_at_dates_a_past_event_apart_from_its_arrival(api, full_key):
    body = {**DOCUMENTED_EVENT, "occurredAt": "2026-11-20T09:30:00+02:00"}
    response = post(api, full_key, body)
    assert response.status_code == 200, response.content
    event = Event.objects.get(pk=response.json()["id"])
    assert event.occurred_at == dt.datetime(2026, 11, 20, 7, 30, tzinfo=dt.UTC)
    assert timezone.now() - event.created_at < dt.timedelta(minutes=1)
    listed = api.get(f"/api/herald/events/{event.pk}", key=full_key).json()
    assert listed["occurredAt"].startswith("2026-11-20T")
    without = Event.objects.get(pk=post(api, full_key, DOCUMENTED_EVENT).json()["id"])
    assert without.occurred_at == without.created_at


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2026-13-01T00:00:00Z", 1733000000, "2999-01-01T00:00:00Z"],
)
def test_an_unreadable_or_future_occurred_at_is_400_naming_it(api, full_key, value):
    response = post(api, full_key, {**DOCUMENTED_EVENT, "occurredAt": value})
    assert response.status_code == 400
    assert list(response.json()) == ["occurredAt"]
    assert not Event.objects.exists()


def test_a_clock_a_little_ahead_is_accepted(api, full_key):
    soon = (timezone.now() + dt.timedelta(minutes=2)).isoformat()
    assert post(api, full_key, {**DOCUMENTED_EVENT, "occurredAt": soon}).status_code == 200


# --- Deleting events ------------------------------------------------------------------------


def test_delete_one_event_through_the_api_is_audited(api, full_key, admin_user):
    event_id = post(api, full_key, DOCUMENTED_EVENT).json()["id"]
    response = api.delete(f"/api/herald/events/{event_id}", key=full_key)
    assert response.status_code == 204
    assert not Event.objects.filter(pk=event_id).exists()
    entry = LogEntry.objects.get(object_id=event_id, action=LogEntry.Action.DELETE)
    assert entry.content_type.model == "event"
    assert entry.actor == admin_user
    assert entry.changes["event_type"] == ["testEvent", None]
    assert api.delete(f"/api/herald/events/{event_id}", key=full_key).status_code == 404


def test_bulk_delete_answers_per_id(api, full_key):
    ids = [post(api, full_key, DOCUMENTED_EVENT).json()["id"] for _ in range(2)]
    missing = max(ids) + 1000
    response = api.post(
        "/api/herald/events/delete", key=full_key, body={"ids": [ids[0], missing, ids[1]]}
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "results": [
            {"id": ids[0], "deleted": True},
            {"id": missing, "deleted": False, "error": "not found"},
            {"id": ids[1], "deleted": True},
        ],
        "deleted": 2,
    }
    assert not Event.objects.exists()
    assert LogEntry.objects.filter(action=LogEntry.Action.DELETE, object_id__in=ids).count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "ids"), ({"ids": []}, "ids"), ({"ids": ["1"]}, "ids[0]"), ({"ids": [0]}, "ids[0]")],
)
def test_bulk_delete_with_bad_ids_is_400(api, full_key, body, field):
    response = api.post("/api/herald/events/delete", key=full_key, body=body)
    assert response.status_code == 400
    assert field in response.json()


def test_the_events_right_cannot_delete(api, limited_key, full_key):
    event_id = post(api, full_key, DOCUMENTED_EVENT).json()["id"]
    assert api.delete(f"/api/herald/events/{event_id}", key=limited_key).status_code == 403
    assert Event.objects.filter(pk=event_id).exists()


# --- Analytics -------------------------------------------------------------------------------


def _event(type_key: str, occurred: dt.datetime, contact=None, **params) -> Event:
    event_type, _ = EventType.objects.get_or_create(key=type_key)
    return Event.objects.create(
        event_type=event_type, occurred_at=occurred, contact=contact, params=params
    )


@pytest.fixture
def known_events(settings):
    settings.TIME_ZONE = "Europe/Kyiv"
    timezone.activate("Europe/Kyiv")
    zone = timezone.get_current_timezone()
    day = dt.date(2026, 11, 20)

    def at(days: int, hour: int) -> dt.datetime:
        return dt.datetime.combine(day + dt.timedelta(days=days), dt.time(hour), zone)

    ann, bob = ContactFactory(), ContactFactory()
    _event("purchase", at(0, 0), ann, sku="A")  # 00:00 Kyiv is the 19th in UTC: counts on the 20th
    _event("purchase", at(0, 23), ann, sku="A")
    _event("purchase", at(1, 12), bob, sku="B")
    _event("purchase", at(2, 9), None, sku="A")
    _event("cartViewed", at(1, 10), bob)
    _event("purchase", at(5, 9), ann, sku="C")  # outside the range asked for
    yield day
    timezone.deactivate()


def test_analytics_count_per_type_per_occurrence_day_and_unique_contacts(known_events):
    figures = event_analytics(
        date_from=known_events,
        date_to=known_events + dt.timedelta(days=2),
        top_type=EventType.objects.get(key="purchase"),
        top_param="sku",
    )
    by_key = {item.event_type.key: item for item in figures.types}
    assert [item.event_type.key for item in figures.types] == ["purchase", "cartViewed"]
    assert by_key["purchase"].per_day == [2, 1, 1]
    assert by_key["purchase"].total == 4
    assert by_key["purchase"].unique_contacts == 2
    assert by_key["cartViewed"].per_day == [0, 1, 0]
    assert by_key["cartViewed"].unique_contacts == 1
    assert figures.top_values == [("A", 3), ("B", 1)]


def test_analytics_api_answers_the_same_figures(api, full_key, known_events):
    response = api.get(
        "/api/herald/events/analytics?from=2026-11-20&to=2026-11-22&type=purchase&param=sku",
        key=full_key,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["days"] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert body["types"][0] == {
        "id": EventType.objects.get(key="purchase").pk,
        "key": "purchase",
        "name": "",
        "total": 4,
        "uniqueContacts": 2,
        "perDay": [2, 1, 1],
    }
    assert body["topValues"] == {
        "eventTypeKey": "purchase",
        "param": "sku",
        "values": [{"value": "A", "count": 3}, {"value": "B", "count": 1}],
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?from=someday", "from"),
        ("?from=2026-11-20&to=2026-11-01", "from"),
        ("?from=2020-01-01&to=2026-01-01", "from"),
        ("?type=nope", "type"),
        ("?param=sku", "param"),
        # Days at the calendar's ends: the range arithmetic would overflow.
        ("?to=9999-12-31", "to"),
        ("?to=0001-01-01", "to"),
        ("?from=0001-01-01&to=0001-01-02", "from"),
    ],
)
def test_analytics_bad_query_is_400_naming_it(api, full_key, query, field):
    response = api.get(f"/api/herald/events/analytics{query}", key=full_key)
    assert response.status_code == 400
    assert field in response.json()


def test_analytics_default_to_the_last_30_days():
    figures = event_analytics()
    assert len(figures.days) == 30
    assert figures.date_to == timezone.localdate()


def test_a_declaration_removed_elsewhere_no_longer_refuses(api, full_key):
    """A refusal is confirmed against the database: a stale cache never refuses an event."""
    declare("testEvent", params=[{"name": "sku", "type": "string", "required": True}])
    assert post(api, full_key, DOCUMENTED_EVENT).status_code == 400  # cached now
    with connection.cursor() as cursor:  # another process clears the declaration
        cursor.execute(
            "UPDATE marketing_eventtype SET params_declared = '[]'::jsonb, "
            "declaration_token = %s WHERE key = 'testEvent'",
            [uuid.uuid4()],
        )
    assert post(api, full_key, DOCUMENTED_EVENT).status_code == 200
