"""Marketer pages: event history and types, orders list and detail, the RFM grid."""

import pytest

from contacts.filters.compiler import segment_reach
from contacts.models import Segment, SegmentKind
from marketing import rfm
from marketing.models import EventType, Order, RFMScore
from marketing.orders import orders_upsert
from marketing.services import event_emit
from tests.marketing.test_api_orders import DOCUMENTED_ORDER, order

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_marketer(client, marketer):
    client.force_login(marketer)
    return client


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def text(response) -> str:
    return response.content.decode()


def test_pages_need_a_login_and_a_role(client, outsider):
    for path in ("/automation/events/", "/automation/event-types/", "/orders/", "/orders/rfm/"):
        assert client.get(path).status_code == 302
    client.force_login(outsider)
    assert client.get("/orders/").status_code == 403


def test_empty_states(as_viewer):
    assert 'data-testid="empty-state"' in text(as_viewer.get("/orders/"))
    assert 'data-testid="empty-state"' in text(as_viewer.get("/automation/events/"))
    assert "No RFM scores yet" in text(as_viewer.get("/orders/rfm/"))


def test_event_history_lists_and_filters_events(as_viewer):
    event_emit(type_key="cartViewed", key_value="a@example.com", params={"sku": "X1"})
    event_emit(type_key="pageViewed", key_value="b@example.com")
    page = text(as_viewer.get("/automation/events/"))
    assert page.count('data-testid="event-row"') == 2 and "&quot;sku&quot;: &quot;X1&quot;" in page
    filtered = text(as_viewer.get("/automation/events/?type=cartViewed"))
    assert filtered.count('data-testid="event-row"') == 1
    assert text(as_viewer.get("/automation/events/?keyValue=nobody")).count("event-row") == 0
    bad = text(as_viewer.get("/automation/events/?from=nonsense"))
    assert "Ignored filters: from" in bad and bad.count('data-testid="event-row"') == 2


def test_marketer_creates_and_renames_an_event_type(as_marketer):
    as_marketer.post("/automation/event-types/", {"key": "cartViewed", "name": ""})
    event_type = EventType.objects.get(key="cartViewed")
    response = as_marketer.post(
        f"/automation/event-types/{event_type.pk}/",
        {"key": "cart.viewed", "name": "Cart viewed"},
        follow=True,
    )
    assert "cart.viewed saved" in text(response)
    assert EventType.objects.get(pk=event_type.pk).name == "Cart viewed"
    refused = as_marketer.post(
        f"/automation/event-types/{event_type.pk}/", {"key": "no spaces"}, follow=True
    )
    assert "Not saved: key" in text(refused)


def test_viewer_cannot_edit_event_types(as_viewer):
    event_type = EventType.objects.create(key="k")
    response = as_viewer.post(f"/automation/event-types/{event_type.pk}/", {"key": "x"})
    assert response.status_code == 403
    assert EventType.objects.get(pk=event_type.pk).key == "k"


def test_viewer_cannot_create_event_types(as_viewer):
    response = as_viewer.post("/automation/event-types/", {"key": "signup", "name": "Signup"})
    assert response.status_code == 403
    assert not EventType.objects.filter(key="signup").exists()


def test_orders_list_filters_and_detail_shows_items_and_json(as_viewer):
    orders_upsert(orders=[DOCUMENTED_ORDER, order(externalOrderId="2", status="DELIVERED")])
    page = text(as_viewer.get("/orders/"))
    assert page.count('data-testid="order-row"') == 2
    delivered = text(as_viewer.get("/orders/?status=DELIVERED"))
    assert delivered.count('data-testid="order-row"') == 1
    assert text(as_viewer.get("/orders/?q=100500")).count('data-testid="order-row"') == 1
    stored = Order.objects.get(external_order_id="100500")
    detail = text(as_viewer.get(f"/orders/{stored.pk}/"))
    assert "Super Device" in detail and "First str. 1" in detail
    assert "&quot;externalItemId&quot;: &quot;200600&quot;" in detail  # the JSON view


def test_rfm_grid_recompute_and_save_cells_as_segment(as_marketer):
    orders_upsert(
        orders=[
            order(
                externalOrderId=str(n),
                email=f"c{n}@example.com",
                status="DELIVERED",
                date=f"2026-01-0{n + 1}T00:00:00Z",
            )
            for n in range(5)
        ]
    )
    response = as_marketer.post("/orders/rfm/recompute/", follow=True)
    assert "recomputed for 5 contacts" in text(response)
    assert RFMScore.objects.count() == 5
    page = text(as_marketer.get("/orders/rfm/"))
    assert 'data-testid="rfm-cell-5-1"' in page and 'value="5-1"' in page
    response = as_marketer.post(
        "/orders/rfm/segment/", {"name": "Latest buyers", "cells": ["5-1", "4-1"]}, follow=True
    )
    segment = Segment.objects.get(name="Latest buyers")
    assert segment.kind == SegmentKind.DYNAMIC
    assert response.status_code == 200  # the segment's own page renders the RFM filter
    grid = rfm.rfm_grid()
    size = sum(
        c["contacts"]
        for row in grid["rows"]
        for c in row["cells"]
        if c["recency"] in (4, 5) and c["frequency"] == 1
    )
    assert segment_reach(segment) == size == 2


def test_rfm_segment_without_cells_is_refused_with_a_message(as_marketer):
    response = as_marketer.post("/orders/rfm/segment/", {"name": "x"}, follow=True)
    assert "Segment not saved" in text(response)
    assert not Segment.objects.exists()


def test_viewer_cannot_recompute(as_viewer):
    assert as_viewer.post("/orders/rfm/recompute/").status_code == 403


def test_admin_lists_and_shows_every_marketing_model(client, admin_user):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    orders_upsert(orders=[order(status="DELIVERED")])
    rfm.rfm_recompute()
    stored = Order.objects.get()
    for path in (
        "/admin/marketing/order/",
        f"/admin/marketing/order/{stored.pk}/change/",
        "/admin/marketing/event/",
        "/admin/marketing/eventtype/",
        "/admin/marketing/rfmscore/",
    ):
        assert client.get(path).status_code == 200, path


def test_event_types_page_lists_the_workflows_each_type_starts(as_viewer):
    from marketing.workflows.services import workflow_create

    cart = EventType.objects.create(key="cartAbandoned")
    EventType.objects.create(key="pageViewed")
    workflow_create(name="Cart reminder", event_type=cart)

    page = text(as_viewer.get("/automation/event-types/"))

    assert "Cart reminder" in page
    assert page.count('data-testid="event-type-workflows"') == 2
