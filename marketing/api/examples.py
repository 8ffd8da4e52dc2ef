"""OpenAPI examples of the eSputnik v1 event and order resources: the eSputnik document's own
request bodies, verbatim, named in its wording ("Generate event", "Add orders"), and what
Herald answers."""

from drf_spectacular.utils import OpenApiExample

GENERATE_EVENT = OpenApiExample(
    "Generate event",
    summary="Generate event: dynamic content (the eSputnik document)",
    description="The document's example: templates read the params as "
    "$!data.get('discount') and $!data.get('link'); the event type testEvent is created on "
    "first use.",
    request_only=True,
    value={
        "eventTypeKey": "testEvent",
        "keyValue": "example@email.com",
        "params": [
            {"name": "discount", "value": "5%"},
            {"name": "link", "value": "https://example.site.com/items_for_sale"},
        ],
    },
)
GENERATE_EVENT_V2 = OpenApiExample(
    "Generate event with nested params",
    summary="params as one object with nested JSON",
    request_only=True,
    value={
        "eventTypeKey": "cartAbandoned",
        "keyValue": "example@email.com",
        "params": {
            "cartUrl": "https://shop.example.com/cart/8812",
            "items": [{"name": "Super Device", "price": 990}],
        },
    },
)
EVENT_STORED = OpenApiExample(
    "Stored", summary="The stored event's id", response_only=True, value={"id": 5120}
)

ADD_ORDERS = OpenApiExample(
    "Add orders",
    summary="How to pass orders (the eSputnik document)",
    description="The document's standard request body: one order with one item. Only "
    "DELIVERED orders feed RFM analysis; send the same externalOrderId again to update it.",
    request_only=True,
    value={
        "orders": [
            {
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
        ]
    },
)
ORDERS_STORED = OpenApiExample(
    "Stored",
    summary="One order created, with a new contact",
    response_only=True,
    value={
        "failedOrders": [],
        "storedOrders": 1,
        "createdOrders": 1,
        "updatedOrders": 0,
        "createdContacts": 1,
    },
)
ORDERS_DELETED = OpenApiExample(
    "Deleted", summary="Orders deleted", response_only=True, value={"deletedOrders": 1}
)
