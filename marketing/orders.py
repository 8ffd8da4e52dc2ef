"""Orders (POST/DELETE /api/v1/orders): parse, upsert by externalOrderId, link or create the
contact, emit events.

Set-based per call (≤ 1000 orders): a handful of queries whatever the batch size.

Contacts: an order is linked to the live contact with its externalCustomerId, else the oldest
with its email, else with its phone. When none exists and the order carries an email or a
phone, a contact is created from the order's email, phone, first and last name (source
"orders"; as the eSputnik v1 orders API says: nothing else is copied, and an existing contact
is never modified). An order with neither stays unlinked.

Statuses: the shop is the source of truth, so any status may follow any other (a cancelled
order can be reinstated); there is no transition table to enforce here.

Events: every new order and every status change emits one event of type `order<STATUS>`
(`orderINITIALIZED`, `orderIN_PROGRESS`, `orderDELIVERED`, `orderCANCELLED`,
`orderABANDONED_SHOPPING_CART`), keyValue = externalOrderId, linked to the order's contact,
params: orderId, externalOrderId, externalCustomerId, status, previousStatus ("" for a new
order), isNew, totalCost, currency, date, email, phone, firstName, lastName, contactId and
items (the eSputnik v1 API's item objects, for `#foreach($item in $data.get('items'))`).
"""

# The SQL below interpolates only table and column names defined in this module; values are
# parameters.
# ruff: noqa: S608

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from config.core.db import fetchall_bound
from contacts.address_locks import contact_addresses_lock
from contacts.channels import email_normalise, phone_normalise
from contacts.models import Contact, ContactSource
from marketing.attribution import orders_attribute
from marketing.currencies import ISO_4217
from marketing.filters import FieldListError
from marketing.models import Order, OrderItem, OrderStatus
from marketing.segment_events import contacts_mark_for_orders
from marketing.services import events_emit_by_type

ORDERS_MAX = 1000
# TextChoices.values builds a new list on every access; this runs for every order.
STATUSES = frozenset(OrderStatus.values)
DELETE_RANGE_MAX = dt.timedelta(hours=24)
ITEMS_MAX = 1000
MONEY_MAX = Decimal("99999999999999.99")  # max_digits=16, decimal_places=2
CONTACT_NAME_MAX = 40

STRING_FIELDS = {
    # eSputnik v1 name: (column, max length)
    "statusDescription": ("status_description", 1000),
    "restoreUrl": ("restore_url", 2000),
    "storeId": ("store_id", 255),
    "source": ("source", 255),
    "deliveryMethod": ("delivery_method", 255),
    "paymentMethod": ("payment_method", 255),
    "deliveryAddress": ("delivery_address", 1000),
    "firstName": ("first_name", 100),
    "lastName": ("last_name", 100),
}
MONEY_FIELDS = {"shipping": "shipping", "discount": "discount", "taxes": "taxes"}
ITEM_STRINGS = {
    "externalItemId": ("external_item_id", 255),
    "name": ("name", 500),
    "category": ("category", 255),
    "url": ("url", 2000),
    "imageUrl": ("image_url", 2000),
    "description": ("description", 10_000),
}


class OrdersError(FieldListError):
    """A request the orders API refuses as a whole (not one order: those are failedOrders)."""


@dataclass
class ParsedOrder:
    index: int
    values: dict
    items: list[dict]
    raw: dict
    contact_id: int | None = None


@dataclass
class UpsertResult:
    failed: list[dict] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    contacts_created: int = 0
    events: int = 0
    order_ids: list[int] = field(default_factory=list)


# --- parsing (no queries) -------------------------------------------------------------------


def _identifier(data: dict, name: str, errors: list) -> str:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        errors.append((name, "required (a non-empty string)"))
        return ""
    if len(value.strip()) > 255:
        errors.append((name, "at most 255 characters"))
    return value.strip()


def _money(value, name: str, errors: list, *, required: bool = False) -> Decimal | None:
    if value is None or value == "":
        if required:
            errors.append((name, "required (a number)"))
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        errors.append((name, f"must be a number, not {value!r}"))
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        errors.append((name, f"must be a number, not {value!r}"))
        return None
    if not number.is_finite() or abs(number) > MONEY_MAX:
        errors.append((name, f"must be a finite number below {MONEY_MAX}"))
        return None
    if number < 0:
        errors.append((name, "must not be negative"))
        return None
    return number.quantize(Decimal("0.01"))


def _date(value, errors: list) -> dt.datetime | None:
    if not isinstance(value, str) or not value.strip():
        errors.append(("date", "required (an ISO 8601 date-time, e.g. 2017-03-08T09:30:00+02:00)"))
        return None
    text = value.strip()
    try:
        moment = parse_datetime(text)
        day = None if moment else parse_date(text)
    except ValueError:
        moment = day = None
    if moment is None and day is not None:
        moment = dt.datetime.combine(day, dt.time.min)
    if moment is None:
        errors.append(("date", f"{value!r} is not an ISO 8601 date-time"))
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _text(data: dict, name: str, limit: int, errors: list) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        errors.append((name, "must be a string"))
        return ""
    if len(value) > limit:
        errors.append((name, f"at most {limit} characters (got {len(value)})"))
    return value.strip()


def _items(raw, errors: list) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(("items", "must be a list of item objects"))
        return []
    if len(raw) > ITEMS_MAX:
        errors.append(("items", f"at most {ITEMS_MAX} items per order"))
        return []
    items = []
    for position, item in enumerate(raw):
        where = f"items[{position}]"
        if not isinstance(item, dict):
            errors.append((where, "must be an object"))
            continue
        item_errors: list = []
        row: dict[str, object] = {"position": position}
        for name, (column, limit) in ITEM_STRINGS.items():
            row[column] = _text(item, name, limit, item_errors)
        quantity = _money(item.get("quantity"), "quantity", item_errors)
        row["quantity"] = Decimal(1) if quantity is None else quantity
        row["cost"] = _money(item.get("cost"), "cost", item_errors)
        errors.extend((f"{where}.{name}", problem) for name, problem in item_errors)
        items.append(row)
    return items


def order_parse(data) -> tuple[dict, list[dict], list[tuple[str, str]]]:
    """(order columns, item rows, errors) for one order object of the request."""
    errors: list[tuple[str, str]] = []
    if not isinstance(data, dict):
        return {}, [], [("order", "must be an object")]
    values: dict = {
        "external_order_id": _identifier(data, "externalOrderId", errors),
        "external_customer_id": _identifier(data, "externalCustomerId", errors),
        "total_cost": _money(data.get("totalCost"), "totalCost", errors, required=True),
    }
    status = data.get("status")
    if isinstance(status, str) and status.strip().upper() in STATUSES:
        values["status"] = status.strip().upper()
    else:
        errors.append(
            ("status", f"{status!r} is not one of {', '.join(OrderStatus.values)}")
            if status not in (None, "")
            else ("status", "required")
        )
    values["date"] = _date(data.get("date"), errors)
    currency = data.get("currency")
    if isinstance(currency, str) and currency.strip().upper() in ISO_4217:
        values["currency"] = currency.strip().upper()
    else:
        errors.append(
            ("currency", f"{currency!r} is not an ISO 4217 currency code (e.g. USD, EUR)")
            if currency not in (None, "")
            else ("currency", "required (an ISO 4217 code)")
        )
    for name, (column, limit) in STRING_FIELDS.items():
        values[column] = _text(data, name, limit, errors)
    for name, column in MONEY_FIELDS.items():
        values[column] = _money(data.get(name), name, errors)
    values["email"] = values["phone"] = ""
    if data.get("email") not in (None, ""):
        values["email"], problem = email_normalise(data["email"])
        if problem:
            errors.append(("email", problem))
    if data.get("phone") not in (None, ""):
        phone = data["phone"]
        normalise = _phone_normalise if isinstance(phone, str) else phone_normalise
        values["phone"], problem = normalise(phone)
        if problem:
            errors.append(("phone", problem))
    values["additional_info"] = data.get("additionalInfo")
    items = _items(data.get("items"), errors)
    return values, items, errors


@functools.lru_cache(maxsize=4096)
def _phone_normalise(value: str) -> tuple[str | None, str | None]:
    # A customer's orders, and every status update of one order, repeat the same number,
    # and parsing it costs ~0.1 ms (phonenumbers); the result depends on the text alone.
    return phone_normalise(value)


def reason(errors: list[tuple[str, str]]) -> str:
    return "; ".join(f"{name}: {problem}" for name, problem in errors)


# --- upsert --------------------------------------------------------------------------------


def orders_upsert(*, orders: list) -> UpsertResult:
    """Store the valid orders of one request; the others are reported, never dropped."""
    if not isinstance(orders, list) or not orders:
        raise OrdersError("orders", f"must be a non-empty list of 1-{ORDERS_MAX} orders")
    if len(orders) > ORDERS_MAX:
        raise OrdersError("orders", f"at most {ORDERS_MAX} orders per call (got {len(orders)})")
    result = UpsertResult()
    parsed: list[ParsedOrder] = []
    for index, data in enumerate(orders):
        values, items, errors = order_parse(data)
        if errors:
            result.failed.append(_failure(index, data, reason(errors)))
        else:
            parsed.append(ParsedOrder(index=index, values=values, items=items, raw=data))
    # One statement cannot upsert a key twice: the last occurrence wins, as a later call would.
    last = {p.values["external_order_id"]: p.index for p in parsed}
    kept = []
    for p in parsed:
        winner = last[p.values["external_order_id"]]
        if winner != p.index:
            result.failed.append(
                _failure(
                    p.index,
                    p.raw,
                    f"externalOrderId: repeated at index {winner} of this request, which was "
                    "stored instead",
                )
            )
        else:
            kept.append(p)
    result.failed.sort(key=lambda failure: failure["index"])
    if kept:
        _store(kept, result)
    return result


def _failure(index: int, data, why: str) -> dict:
    ext = data.get("externalOrderId") if isinstance(data, dict) else None
    return {"index": index, "externalOrderId": ext, "reason": why}


# (column, SQL type in jsonb_to_recordset) of every order column a request sets.
ORDER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("external_order_id", "text"),
    ("external_customer_id", "text"),
    ("contact_id", "bigint"),
    ("status", "text"),
    ("status_description", "text"),
    ("total_cost", "numeric"),
    ("currency", "text"),
    ("date", "timestamptz"),
    ("email", "text"),
    ("phone", "text"),
    ("first_name", "text"),
    ("last_name", "text"),
    ("shipping", "numeric"),
    ("discount", "numeric"),
    ("taxes", "numeric"),
    ("restore_url", "text"),
    ("store_id", "text"),
    ("source", "text"),
    ("delivery_method", "text"),
    ("payment_method", "text"),
    ("delivery_address", "text"),
    ("additional_info", "jsonb"),
    ("raw", "jsonb"),
)
ITEM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("order_id", "bigint"),
    ("position", "integer"),
    ("external_item_id", "text"),
    ("name", "text"),
    ("category", "text"),
    ("quantity", "numeric"),
    ("cost", "numeric"),
    ("url", "text"),
    ("image_url", "text"),
    ("description", "text"),
)


def _recordset(columns: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    names = ", ".join(name for name, _ in columns)
    definitions = ", ".join(f"{name} {kind}" for name, kind in columns)
    return names, definitions


def _json(rows: list[dict]) -> str:
    # One JSON document per statement: PostgreSQL expands it with jsonb_to_recordset, which
    # costs far less than binding 23 columns x 1000 rows as parameters.
    return json.dumps(rows, cls=DjangoJSONEncoder, ensure_ascii=False)


def _upsert_orders(rows: list[ParsedOrder]) -> tuple[dict[str, tuple[int, dt.datetime]], list]:
    """INSERT ... ON CONFLICT DO UPDATE; ({externalOrderId: (id, date)}, ids of the orders
    that existed).

    An updated row version carries the updating transaction in xmax, a freshly inserted one
    0: that tells the two apart even when another call created the order meanwhile (then
    this statement waited for it and updated its row)."""
    names, definitions = _recordset(ORDER_COLUMNS)
    updates = ", ".join(
        f"{name} = excluded.{name}" for name, _ in ORDER_COLUMNS if name != "external_order_id"
    )
    payload = _json([{**p.values, "contact_id": p.contact_id, "raw": p.raw} for p in rows])
    returned = fetchall_bound(
        f"""INSERT INTO {Order._meta.db_table} ({names}, created_at, updated_at)
            SELECT {names}, now(), now() FROM jsonb_to_recordset(%s::jsonb) AS r({definitions})
            ON CONFLICT (external_order_id) DO UPDATE SET {updates}, updated_at = now()
            RETURNING external_order_id, id, date, xmax <> 0""",
        [payload],
    )
    ids = {external: (pk, date) for external, pk, date, _ in returned}
    return ids, [pk for _, pk, _, updated in returned if updated]


def _replace_items(rows: list[ParsedOrder], ids: dict, existed: list[int]) -> None:
    """The shop's current basket is the truth: an order's items are replaced whole.

    Only orders that existed before the upsert can have items to delete; looking up a
    thousand new orders' ids would make PostgreSQL scan the whole item table.
    """
    names, definitions = _recordset(ITEM_COLUMNS)
    items = [
        {**item, "order_id": ids[p.values["external_order_id"]][0]}
        for p in rows
        for item in p.items
    ]
    if existed:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {OrderItem._meta.db_table} WHERE order_id = ANY(%s)", [existed]
            )
    if items:
        fetchall_bound(
            f"""INSERT INTO {OrderItem._meta.db_table} ({names})
                SELECT {names} FROM jsonb_to_recordset(%s::jsonb) AS r({definitions})""",
            [_json(items)],
        )


@transaction.atomic
def _store(rows: list[ParsedOrder], result: UpsertResult) -> None:
    external_ids = [p.values["external_order_id"] for p in rows]
    # Locks the existing orders so a concurrent call updating the same ones waits and then
    # sees this call's status (one status-change event per real change). Two calls creating
    # the same new order race only on the INSERT, which ON CONFLICT settles.
    previous = dict(
        Order.objects.select_for_update()
        .filter(external_order_id__in=external_ids)
        .values_list("external_order_id", "status")
    )
    result.contacts_created = _link_contacts(rows)
    ids, existed = _upsert_orders(rows)
    result.order_ids = [ids[external][0] for external in external_ids]
    _replace_items(rows, ids, existed)
    orders_attribute(order_ids=result.order_ids)
    contacts_mark_for_orders(contact_ids=[p.contact_id for p in rows])
    by_status: dict[str, list[dict]] = {}
    for p in rows:
        external = p.values["external_order_id"]
        before = previous.get(external)
        if before is None:
            result.created += 1
        else:
            result.updated += 1
        if before != p.values["status"]:
            by_status.setdefault(p.values["status"], []).append(_event(ids[external][0], p, before))
    result.events = events_emit_by_type(
        events={f"order{status}": events for status, events in by_status.items()}
    )


def _event(order_id: int, p: ParsedOrder, before: str | None) -> dict:
    v = p.values
    raw_items = p.raw.get("items") if isinstance(p.raw.get("items"), list) else []
    params = {
        "orderId": order_id,
        "externalOrderId": v["external_order_id"],
        "externalCustomerId": v["external_customer_id"],
        "status": v["status"],
        "previousStatus": before or "",
        "isNew": before is None,
        "totalCost": str(v["total_cost"]),
        "currency": v["currency"],
        "date": v["date"].isoformat(),
        "email": v["email"],
        "phone": v["phone"],
        "firstName": v["first_name"],
        "lastName": v["last_name"],
        "contactId": p.contact_id,
        "items": raw_items,
    }
    return {"key_value": v["external_order_id"], "params": params, "contact_id": p.contact_id}


def _lock_channels(values: list[str]) -> None:
    # The address locks every contact creator takes, so a subscribe and an order for one new
    # address make one contact.
    if values:
        with connection.cursor() as cursor:
            contact_addresses_lock(cursor, values)


def _first_ids(column: str, values: set[str]) -> dict[str, int]:
    if not values:
        return {}
    rows = (
        Contact.objects.alive()
        .filter(**{f"{column}__in": values})
        .values(column)
        .annotate(first=Min("id"))
        .values_list(column, "first")
    )
    return dict(rows)


def _link_contacts(rows: list[ParsedOrder]) -> int:
    """Set each row's contact_id; create the missing contacts; return how many were created."""
    emails = {p.values["email"] for p in rows if p.values["email"]}
    phones = {p.values["phone"] for p in rows if p.values["phone"]}
    _lock_channels([*emails, *phones])
    by_external = dict(
        Contact.objects.alive()
        .filter(external_customer_id__in={p.values["external_customer_id"] for p in rows})
        .values_list("external_customer_id", "id")
    )
    by_email = _first_ids("email", emails)
    by_phone = _first_ids("phone", phones)
    to_create: dict[str, Contact] = {}
    waiting: list[tuple[ParsedOrder, str]] = []
    for p in rows:
        v = p.values
        p.contact_id = (
            by_external.get(v["external_customer_id"])
            or by_email.get(v["email"])
            or by_phone.get(v["phone"])
        )
        if p.contact_id is not None or not (v["email"] or v["phone"]):
            continue
        # Orders of one new customer in one call make one contact.
        key = f"e:{v['email']}" if v["email"] else f"p:{v['phone']}"
        if key not in to_create and v["email"] and v["phone"] and f"p:{v['phone']}" in to_create:
            key = f"p:{v['phone']}"
        if key not in to_create:
            to_create[key] = Contact(
                email=v["email"],
                phone=v["phone"],
                first_name=v["first_name"][:CONTACT_NAME_MAX],
                last_name=v["last_name"][:CONTACT_NAME_MAX],
                source=ContactSource.ORDERS,
                confirmed=True,
                confirmed_at=timezone.now(),
            )
        waiting.append((p, key))
    if to_create:
        Contact.objects.bulk_create(to_create.values())
        for p, key in waiting:
            p.contact_id = to_create[key].pk
    return len(to_create)


# --- delete --------------------------------------------------------------------------------


@transaction.atomic
def orders_delete(
    *,
    external_order_ids: list[str] | None = None,
    date_from: dt.datetime | None = None,
    date_to: dt.datetime | None = None,
) -> int:
    """Delete by externalOrderId(s), or every order dated in [from, to] (at most 24 h)."""
    if external_order_ids:
        orders = Order.objects.filter(external_order_id__in=external_order_ids)
    elif date_from is not None and date_to is not None:
        if date_to < date_from:
            raise OrdersError("endDate", "must not be before startDate")
        if date_to - date_from > DELETE_RANGE_MAX:
            raise OrdersError("endDate", "the range may span at most 24 hours")
        orders = Order.objects.filter(date__gte=date_from, date__lte=date_to)
    else:
        raise OrdersError(
            "externalOrderIds", "give externalOrderId(s), or startDate and endDate (≤ 24 h)"
        )
    contacts_mark_for_orders(
        contact_ids=list(orders.values_list("contact_id", flat=True).distinct())
    )
    _, per_model = orders.delete()  # items go with their orders (one DELETE per table)
    return per_model.get(Order._meta.label, 0)
