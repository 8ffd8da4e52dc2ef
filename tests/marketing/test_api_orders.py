"""Orders: POST and DELETE /api/v1/orders."""

import copy
import datetime as dt
from decimal import Decimal

import pytest

from contacts.models import Contact, ContactSource
from marketing.models import Event, Order, OrderItem
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

# The eSputnik v1 API documentation's example, verbatim (note the phone's trailing space).
DOCUMENTED_ORDER = {
    "externalOrderId": "100500",
    "externalCustomerId": "12345",
    "totalCost": 1000,
    "status": "INITIALIZED",
    "date": "2017-03-08T09:30:00+02:00",
    "email": "mail@example.com",
    "phone": "447911123456 ",
    "firstName": "John",
    "lastName": "Smith",
    "currency": "USD",
    "shipping": 10,
    "discount": 0,
    "deliveryMethod": "express",
    "paymentMethod": "cash",
    "deliveryAddress": "First str. 1",
    "items": [
        {
            "externalItemId": "200600",
            "name": "Super Device",
            "category": "devices",
            "quantity": 1,
            "cost": 990,
            "url": "http://example.com/item/200600",
            "imageUrl": "http://example.com/item/200600/image.png",
            "description": "High quality",
        }
    ],
}


def order(**changes) -> dict:
    data = copy.deepcopy(DOCUMENTED_ORDER)
    data.update(changes)
    return data


def post(api, key, orders):
    return api.post("/api/v1/orders", key=key, body={"orders": orders})


def test_documented_body_stores_the_order_with_items_and_creates_the_contact(api, full_key):
    response = post(api, full_key, [DOCUMENTED_ORDER])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["failedOrders"] == []
    assert (body["createdOrders"], body["createdContacts"]) == (1, 1)
    stored = Order.objects.get(external_order_id="100500")
    assert stored.status == "INITIALIZED"
    assert stored.total_cost == 1000 and stored.currency == "USD" and stored.shipping == 10
    assert stored.date == dt.datetime(2017, 3, 8, 7, 30, tzinfo=dt.UTC)
    assert stored.phone == "+447911123456"
    assert stored.delivery_method == "express" and stored.raw == DOCUMENTED_ORDER
    item = stored.items.get()
    assert (item.external_item_id, item.name, item.cost, item.quantity) == (
        "200600",
        "Super Device",
        990,
        1,
    )
    assert item.image_url == "http://example.com/item/200600/image.png"
    contact = stored.contact
    assert contact.source == ContactSource.ORDERS
    assert contact.get_source_display() == "Orders integration for RFM"
    assert (contact.email, contact.phone, contact.first_name, contact.last_name) == (
        "mail@example.com",
        "+447911123456",
        "John",
        "Smith",
    )
    # eSputnik's rule: only email, phone and names are copied to the new contact.
    assert contact.external_customer_id is None and contact.address == ""


def test_existing_contact_is_linked_and_never_modified(api, full_key):
    contact = ContactFactory(email="mail@example.com", first_name="Johnny", last_name="S")
    before = Contact.objects.values().get(pk=contact.pk)
    response = post(api, full_key, [order(firstName="John", lastName="Smith")])
    assert response.json()["createdContacts"] == 0
    assert Order.objects.get().contact_id == contact.pk
    assert Contact.objects.values().get(pk=contact.pk) == before
    assert Contact.objects.count() == 1


def test_contact_found_by_external_customer_id_then_phone(api, full_key):
    by_external = ContactFactory(external_customer_id="12345", email="x@example.com")
    by_phone = ContactFactory(phone="+447911123457", email="")
    post(
        api,
        full_key,
        [
            order(),
            order(externalOrderId="2", externalCustomerId="9", email=None, phone="447911123457"),
        ],
    )
    assert Order.objects.get(external_order_id="100500").contact_id == by_external.pk
    assert Order.objects.get(external_order_id="2").contact_id == by_phone.pk
    assert Contact.objects.count() == 2


def test_orders_of_one_new_customer_in_one_call_make_one_contact(api, full_key):
    response = post(api, full_key, [order(externalOrderId=str(n)) for n in range(5)])
    assert response.json()["createdContacts"] == 1
    assert Order.objects.values("contact_id").distinct().count() == 1


def test_order_without_email_or_phone_is_stored_unlinked(api, full_key):
    response = post(api, full_key, [order(email=None, phone=None)])
    assert response.json()["failedOrders"] == []
    assert Order.objects.get().contact_id is None
    assert not Contact.objects.exists()


def test_same_external_order_id_updates_status_and_replaces_items(api, full_key):
    post(api, full_key, [DOCUMENTED_ORDER])
    created_at = Order.objects.get().created_at
    update = order(
        status="DELIVERED",
        totalCost=1500.5,
        items=[{"externalItemId": "1", "name": "A"}, {"externalItemId": "2", "name": "B"}],
    )
    response = post(api, full_key, [update])
    assert response.json()["updatedOrders"] == 1
    stored = Order.objects.get()
    assert stored.status == "DELIVERED" and str(stored.total_cost) == "1500.50"
    assert stored.created_at == created_at
    assert list(stored.items.values_list("external_item_id", flat=True)) == ["1", "2"]
    assert OrderItem.objects.count() == 2


def test_new_order_and_each_status_change_emit_one_event(api, full_key):
    post(api, full_key, [DOCUMENTED_ORDER])
    post(api, full_key, [DOCUMENTED_ORDER])  # same status: no event
    post(api, full_key, [order(status="DELIVERED")])
    events = list(Event.objects.order_by("id").select_related("event_type"))
    assert [e.event_type.key for e in events] == ["orderINITIALIZED", "orderDELIVERED"]
    first, second = events
    contact_id = Order.objects.get().contact_id
    assert first.contact_id == second.contact_id == contact_id
    assert first.key_value == "100500"
    assert first.params["isNew"] is True and first.params["previousStatus"] == ""
    assert second.params["previousStatus"] == "INITIALIZED" and second.params["isNew"] is False
    assert second.params["items"][0]["name"] == "Super Device"
    assert second.params["totalCost"] == "1000.00" and second.params["currency"] == "USD"


def test_one_call_with_new_and_existing_orders_replaces_only_the_existing_items(api, full_key):
    post(api, full_key, [order(externalOrderId="old", items=[{"externalItemId": "x"}])])
    new_items = [{"externalItemId": "n1"}, {"externalItemId": "n2"}]
    response = post(
        api,
        full_key,
        [
            order(externalOrderId="old", items=[{"externalItemId": "y"}]),
            order(externalOrderId="new", items=new_items),
        ],
    )
    assert (response.json()["createdOrders"], response.json()["updatedOrders"]) == (1, 1)
    items = {
        external: sorted(
            Order.objects.get(external_order_id=external).items.values_list(
                "external_item_id", flat=True
            )
        )
        for external in ("old", "new")
    }
    assert items == {"old": ["y"], "new": ["n1", "n2"]}


def test_status_changes_of_one_call_emit_events_of_each_type(api, full_key):
    post(api, full_key, [order(externalOrderId="a"), order(externalOrderId="b")])
    post(
        api,
        full_key,
        [
            order(externalOrderId="a", status="DELIVERED"),
            order(externalOrderId="b", status="CANCELLED"),
            order(externalOrderId="c", status="ABANDONED_SHOPPING_CART"),
        ],
    )
    keys = sorted(
        Event.objects.exclude(event_type__key="orderINITIALIZED").values_list(
            "key_value", "event_type__key"
        )
    )
    assert keys == [
        ("a", "orderDELIVERED"),
        ("b", "orderCANCELLED"),
        ("c", "orderABANDONED_SHOPPING_CART"),
    ]


def test_abandoned_cart_status_is_accepted(api, full_key):
    post(api, full_key, [order(status="ABANDONED_SHOPPING_CART")])
    assert Event.objects.get().event_type.key == "orderABANDONED_SHOPPING_CART"


@pytest.mark.parametrize(
    ("changes", "reason_part"),
    [
        ({"externalOrderId": None}, "externalOrderId: required"),
        ({"externalCustomerId": ""}, "externalCustomerId: required"),
        ({"totalCost": None}, "totalCost: required"),
        ({"totalCost": "abc"}, "totalCost: must be a number"),
        ({"totalCost": -5}, "totalCost: must not be negative"),
        ({"status": "SHIPPED"}, "status: 'SHIPPED' is not one of"),
        ({"status": None}, "status: required"),
        ({"date": "yesterday"}, "date: 'yesterday' is not an ISO 8601"),
        ({"date": None}, "date: required"),
        ({"currency": "XYZ"}, "currency: 'XYZ' is not an ISO 4217"),
        ({"currency": None}, "currency: required"),
        ({"email": "not-an-email"}, "email:"),
        ({"phone": "12"}, "phone:"),
        ({"items": "x"}, "items: must be a list"),
        ({"items": [{"quantity": "many"}]}, "items[0].quantity: must be a number"),
        ({"deliveryAddress": "x" * 1001}, "deliveryAddress: at most 1000"),
    ],
)
def test_bad_order_is_reported_with_its_reason_and_good_ones_stored(
    api, full_key, changes, reason_part
):
    good = order(externalOrderId="good")
    bad = order(**{"externalOrderId": "bad", **changes})
    response = post(api, full_key, [good, bad])
    assert response.status_code == 200
    failed = response.json()["failedOrders"]
    assert len(failed) == 1 and failed[0]["index"] == 1
    assert reason_part in failed[0]["reason"], failed[0]["reason"]
    assert list(Order.objects.values_list("external_order_id", flat=True)) == ["good"]


def test_lower_case_status_and_currency_are_read(api, full_key):
    response = post(api, full_key, [order(status="delivered", currency="eur")])
    assert response.json()["failedOrders"] == []
    assert Order.objects.filter(status="DELIVERED", currency="EUR").exists()


def test_order_that_is_not_an_object_fails_alone(api, full_key):
    response = post(api, full_key, ["nope", DOCUMENTED_ORDER])
    assert response.json()["failedOrders"] == [
        {"index": 0, "externalOrderId": None, "reason": "order: must be an object"}
    ]
    assert Order.objects.count() == 1


def test_repeated_external_order_id_in_one_call_keeps_the_last(api, full_key):
    response = post(api, full_key, [order(status="INITIALIZED"), order(status="DELIVERED")])
    failed = response.json()["failedOrders"]
    assert [f["index"] for f in failed] == [0]
    assert "repeated at index 1" in failed[0]["reason"]
    assert Order.objects.get().status == "DELIVERED"


@pytest.mark.parametrize("orders", [[], [DOCUMENTED_ORDER] * 0, "x", None])
def test_empty_or_missing_orders_is_400(api, full_key, orders):
    response = post(api, full_key, orders)
    assert response.status_code == 400
    assert "orders" in response.json()


def test_more_than_1000_orders_is_400_and_1000_are_accepted(api, full_key):
    many = [order(externalOrderId=str(n), email=f"c{n}@example.com") for n in range(1001)]
    response = post(api, full_key, many)
    assert response.status_code == 400 and "1000" in response.json()["orders"][0]
    response = post(api, full_key, many[:1000])
    assert response.status_code == 200 and response.json()["storedOrders"] == 1000
    assert Contact.objects.filter(source=ContactSource.ORDERS).count() == 1000


def test_limited_key_is_403_for_orders(api, limited_key):
    response = post(api, limited_key, [DOCUMENTED_ORDER])
    assert response.status_code == 403
    assert response.json()["missingRight"] == "manage"
    assert not Order.objects.exists()


def test_trailing_slash_is_accepted(api, full_key):
    response = api.post("/api/v1/orders/", key=full_key, body={"orders": [DOCUMENTED_ORDER]})
    assert response.status_code == 200


# --- delete ---------------------------------------------------------------------------------


def _dated(ext: str, when: str) -> dict:
    return order(externalOrderId=ext, date=when)


def test_delete_by_external_order_ids(api, full_key):
    post(api, full_key, [order(externalOrderId=str(n)) for n in range(4)])
    response = api.delete("/api/v1/orders?externalOrderIds=0,1&externalOrderId=2", key=full_key)
    assert response.status_code == 200 and response.json() == {"deletedOrders": 3}
    assert list(Order.objects.values_list("external_order_id", flat=True)) == ["3"]
    assert OrderItem.objects.count() == 1


def test_delete_by_range_of_at_most_24_hours(api, full_key):
    post(
        api,
        full_key,
        [
            _dated("before", "2026-01-01T23:59:59+00:00"),
            _dated("inside", "2026-01-02T12:00:00+00:00"),
            _dated("edge", "2026-01-03T00:00:00+00:00"),
            _dated("after", "2026-01-03T00:00:01+00:00"),
        ],
    )
    response = api.delete(
        "/api/v1/orders?startDate=2026-01-02T00:00:00Z&endDate=2026-01-03T00:00:00Z",
        key=full_key,
    )
    assert response.json() == {"deletedOrders": 2}
    assert set(Order.objects.values_list("external_order_id", flat=True)) == {"before", "after"}


def test_delete_range_over_24_hours_is_400(api, full_key):
    post(api, full_key, [DOCUMENTED_ORDER])
    response = api.delete(
        "/api/v1/orders?startDate=2017-03-08T00:00:00Z&endDate=2017-03-09T00:00:01Z",
        key=full_key,
    )
    assert response.status_code == 400 and "24 hours" in response.json()["endDate"][0]
    assert Order.objects.exists()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "externalOrderIds"),
        ("?startDate=2026-01-01T00:00:00Z", "endDate"),
        ("?startDate=garbage&endDate=2026-01-01T00:00:00Z", "startDate"),
        ("?startDate=2026-01-02T00:00:00Z&endDate=2026-01-01T00:00:00Z", "endDate"),
    ],
)
def test_bad_delete_is_400_naming_the_field(api, full_key, query, field):
    response = api.delete(f"/api/v1/orders{query}", key=full_key)
    assert response.status_code == 400
    assert field in response.json()


def test_delete_with_json_body(api, full_key):
    post(api, full_key, [DOCUMENTED_ORDER])
    response = api.delete("/api/v1/orders", key=full_key, body={"externalOrderIds": ["100500"]})
    assert response.json() == {"deletedOrders": 1}


def test_every_optional_field_of_the_documented_api_is_kept(api, full_key):
    full = order(
        taxes=12.5,
        restoreUrl="https://shop.example.com/cart/restore/abc",
        statusDescription="Waiting for the courier",
        storeId="store-7",
        source="mobile-app",
        additionalInfo={"coupon": "SPRING", "gift": True},
    )
    assert post(api, full_key, [full]).json()["failedOrders"] == []
    stored = Order.objects.get()
    assert stored.taxes == Decimal("12.50")
    assert stored.restore_url == "https://shop.example.com/cart/restore/abc"
    assert stored.status_description == "Waiting for the courier"
    assert (stored.store_id, stored.source) == ("store-7", "mobile-app")
    assert stored.additional_info == {"coupon": "SPRING", "gift": True}
    assert stored.discount == 0 and stored.shipping == 10
    # Absent optional fields stay empty (NULL for numbers and additionalInfo).
    post(api, full_key, [order(externalOrderId="bare", shipping=None, discount=None)])
    bare = Order.objects.get(external_order_id="bare")
    assert bare.taxes is None and bare.shipping is None and bare.additional_info is None
