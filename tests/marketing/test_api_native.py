"""Herald's own API: event types, event history, orders, RFM (/api/herald/)."""

import pytest

from contacts.filters.compiler import segment_reach
from contacts.models import Segment
from marketing.models import Event, EventType
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db


def send(api, key, type_key, key_value, **extra):
    body = {"eventTypeKey": type_key, "keyValue": key_value, **extra}
    response = api.post("/api/v1/event", key=key, body=body)
    assert response.status_code == 200
    return response.json()["id"]


def test_event_types_listed_and_renamed(api, full_key):
    send(api, full_key, "cartViewed", "a@example.com")
    listing = api.get("/api/herald/event-types", key=full_key).json()
    assert [t["key"] for t in listing] == ["cartViewed"]
    type_id = listing[0]["id"]
    response = api.call(
        "PATCH",
        f"/api/herald/event-types/{type_id}",
        key=full_key,
        body={"key": "cart.viewed", "name": "Cart viewed"},
    )
    assert response.status_code == 200, response.content
    assert EventType.objects.get(pk=type_id).key == "cart.viewed"
    # The old key is a new type on its next use; the renamed type keeps its events.
    send(api, full_key, "cartViewed", "a@example.com")
    assert EventType.objects.get(pk=type_id).events.count() == 1
    assert EventType.objects.get(key="cartViewed").events.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [({"key": "bad key"}, "key"), ({"key": "taken"}, "key"), ({"key": "k" * 101}, "key")],
)
def test_event_type_bad_edit_is_400_naming_the_field(api, full_key, body, field):
    EventType.objects.create(key="taken")
    own = EventType.objects.create(key="own")
    response = api.call("PATCH", f"/api/herald/event-types/{own.pk}", key=full_key, body=body)
    assert response.status_code == 400
    assert field in response.json()


def test_event_type_created_through_the_api(api, full_key):
    response = api.post("/api/herald/event-types", key=full_key, body={"key": "newOne"})
    assert response.status_code == 201
    assert EventType.objects.get(key="newOne").name == "newOne"


def test_event_history_filters(api, full_key):
    contact = ContactFactory(email="a@example.com")
    send(api, full_key, "one", "a@example.com")
    send(api, full_key, "two", "a@example.com")
    send(api, full_key, "two", "b@example.com")
    history = lambda q: api.get(f"/api/herald/events{q}", key=full_key).json()["results"]  # noqa: E731
    assert len(history("")) == 3
    assert [e["keyValue"] for e in history("?type=two")] == ["b@example.com", "a@example.com"]
    assert {e["eventTypeKey"] for e in history(f"?contact={contact.pk}")} == {"one", "two"}
    assert len(history("?keyValue=b@example.com")) == 1
    assert len(history("?from=2000-01-01&to=2999-01-01")) == 3
    assert history("?to=2000-01-01") == []
    assert history("?type=one")[0]["contactId"] == contact.pk


@pytest.mark.parametrize(("query", "field"), [("?from=soon", "from"), ("?contact=x", "contact")])
def test_event_history_bad_filter_is_400(api, full_key, query, field):
    response = api.get(f"/api/herald/events{query}", key=full_key)
    assert response.status_code == 400 and field in response.json()


def test_limited_key_may_send_events_but_not_read_history_orders_or_rfm(api, limited_key):
    assert send(api, limited_key, "allowed", "a@example.com")
    assert api.get("/api/herald/events", key=limited_key).status_code == 403
    assert api.get("/api/herald/event-types", key=limited_key).status_code == 403
    assert api.get("/api/herald/orders", key=limited_key).status_code == 403
    assert api.get("/api/herald/rfm", key=limited_key).status_code == 403


def test_orders_listed_with_items_and_filters(api, full_key):
    from tests.marketing.test_api_orders import DOCUMENTED_ORDER, order

    api.post(
        "/api/v1/orders",
        key=full_key,
        body={"orders": [DOCUMENTED_ORDER, order(externalOrderId="2", status="DELIVERED")]},
    )
    listing = api.get("/api/herald/orders", key=full_key).json()["results"]
    assert len(listing) == 2 and listing[0]["items"][0]["name"] == "Super Device"
    delivered = api.get("/api/herald/orders?status=DELIVERED", key=full_key).json()["results"]
    assert [o["externalOrderId"] for o in delivered] == ["2"]
    assert api.get("/api/herald/orders?status=NOPE", key=full_key).status_code == 400


def test_rfm_recompute_grid_and_segment_through_the_api(api, full_key):
    from tests.marketing.test_api_orders import order

    orders = [
        order(
            externalOrderId=str(n),
            email=f"c{n}@example.com",
            status="DELIVERED",
            date=f"2026-01-0{n + 1}T00:00:00Z",
        )
        for n in range(5)
    ]
    api.post("/api/v1/orders", key=full_key, body={"orders": orders})
    grid = api.post("/api/herald/rfm", key=full_key, body={"recompute": True}).json()
    assert grid["scoredContacts"] == 5
    response = api.post(
        "/api/herald/rfm", key=full_key, body={"segmentName": "Recent", "cells": ["5-1", "4-1"]}
    )
    assert response.status_code == 201, response.content
    segment = Segment.objects.get(pk=response.json()["segmentId"])
    recent = [
        c for row in grid["rows"] for c in row["cells"] if c["recency"] >= 4 and c["frequency"] == 1
    ]
    assert segment_reach(segment) == sum(c["contacts"] for c in recent) == 2
    bad = api.post("/api/herald/rfm", key=full_key, body={"segmentName": "", "cells": ["5-1"]})
    assert bad.status_code == 400 and "segmentName" in bad.json()
    assert Event.objects.filter(event_type__key="orderDELIVERED").count() == 5
