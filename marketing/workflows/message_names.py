"""The further names of workflow messages: `$event` (the triggering event's params), `$order`
(the order an order event names, with its items) and `$workflowContact` (the contact the run
is about; in a group message `$contact` is the recipient). Taken once when a message step runs
and kept with its send (WorkflowSend.names); the delivery engine asks for them per send
request (campaigns.delivery.content.request_names_register), and template previews show
sample values (templates.extensions).
"""

from __future__ import annotations

from typing import Any

from campaigns.delivery.content import request_names_register
from campaigns.models import SendKind, SendRequest
from marketing.models import Order
from marketing.workflows.models import WorkflowRun, WorkflowSend
from templates.extensions import TemplateExtension, extension_register
from templates.services import contact_context


def order_context(order: Order) -> dict[str, Any]:
    """`$order`: the order with the eSputnik v1 orders API's field names, its items in
    order (`#foreach($item in $order.items)`); amounts as their decimal text."""

    def amount(value) -> str | None:
        return None if value is None else str(value)

    return {
        "id": order.pk,
        "externalOrderId": order.external_order_id,
        "externalCustomerId": order.external_customer_id,
        "status": order.status,
        "statusDescription": order.status_description,
        "totalCost": amount(order.total_cost),
        "currency": order.currency,
        "date": order.date.isoformat(),
        "email": order.email,
        "phone": order.phone,
        "firstName": order.first_name,
        "lastName": order.last_name,
        "shipping": amount(order.shipping),
        "discount": amount(order.discount),
        "taxes": amount(order.taxes),
        "restoreUrl": order.restore_url,
        "storeId": order.store_id,
        "source": order.source,
        "deliveryMethod": order.delivery_method,
        "paymentMethod": order.payment_method,
        "deliveryAddress": order.delivery_address,
        "additionalInfo": order.additional_info,
        "items": [
            {
                "externalItemId": item.external_item_id,
                "name": item.name,
                "category": item.category,
                "quantity": amount(item.quantity.normalize()),
                "cost": amount(item.cost),
                "url": item.url,
                "imageUrl": item.image_url,
                "description": item.description,
            }
            for item in order.items.all()
        ],
    }


def run_order(params: dict) -> Order | None:
    """The order an order event's params name (orderId, else externalOrderId), with its
    items, in two queries."""
    orders = Order.objects.prefetch_related("items")
    order_id = params.get("orderId")
    if isinstance(order_id, int) or (
        isinstance(order_id, str) and order_id.isascii() and order_id.isdigit()
    ):
        order = orders.filter(pk=int(order_id)).first()
        if order is not None:
            return order
    external = params.get("externalOrderId")
    if isinstance(external, str | int) and str(external):
        return orders.filter(external_order_id=str(external)).first()
    return None


def run_names(run: WorkflowRun) -> dict[str, Any]:
    """The further template names of the run's messages, taken now."""
    params = dict(run.params or {})
    names: dict[str, Any] = {
        "event": params,
        "workflowContact": contact_context(run.contact),
    }
    order = run_order(params)
    if order is not None:
        names["order"] = order_context(order)
    return names


def _request_names(send_request: SendRequest) -> dict[str, Any]:
    if send_request.kind not in (SendKind.WORKFLOW, SendKind.SMARTSEND):
        return {}
    names = (
        WorkflowSend.objects.filter(send_request_id=send_request.pk)
        .values_list("names", flat=True)
        .first()
    )
    return names or {}


request_names_register(_request_names)

SAMPLE_ITEM = {
    "externalItemId": "200600",
    "name": "Super Device",
    "category": "devices",
    "quantity": "1",
    "cost": "990.00",
    "url": "http://example.com/item/200600",
    "imageUrl": "http://example.com/item/200600/image.png",
    "description": "High quality",
}
# `$order` in a template preview: the eSputnik v1 orders API's example order.
SAMPLE_ORDER = {
    "id": 0,
    "externalOrderId": "100500",
    "externalCustomerId": "12345",
    "status": "INITIALIZED",
    "statusDescription": "",
    "totalCost": "1000.00",
    "currency": "USD",
    "date": "2017-03-08T09:30:00+02:00",
    "email": "mail@example.com",
    "phone": "447911123456",
    "firstName": "John",
    "lastName": "Smith",
    "shipping": "10.00",
    "discount": "0.00",
    "taxes": None,
    "restoreUrl": "",
    "storeId": "",
    "source": "",
    "deliveryMethod": "express",
    "paymentMethod": "cash",
    "deliveryAddress": "First str. 1",
    "additionalInfo": None,
    "items": [SAMPLE_ITEM],
}
# `$event` in a template preview: the params of the order event of the sample order.
SAMPLE_EVENT = {
    "orderId": 0,
    "externalOrderId": "100500",
    "status": "INITIALIZED",
    "previousStatus": "",
    "isNew": True,
    "totalCost": "1000.00",
    "currency": "USD",
    "items": [SAMPLE_ITEM],
}


def _no_problems(_sources) -> list:
    return []


extension_register(
    TemplateExtension(name="order", check=_no_problems, sample=lambda _s: SAMPLE_ORDER)
)
extension_register(
    TemplateExtension(name="event", check=_no_problems, sample=lambda _s: SAMPLE_EVENT)
)
