"""Dynamic segments and what marketing keeps: events and orders.

- Filter fields on events and orders, installed into the segment filter language
  (contacts.filters.compiler) when marketing loads:
  `events`: the event types the contact has had events of (`{"events": "cartAbandoned"}` or
  `$eq`/`$contains`: has had that type; `$in`: any of them; `$nin`/`$ne`: none of them;
  `$exists`: any event at all);
  `orders.count`: how many orders the contact has that are not cancelled (a whole number;
  `$eq $ne $gt $gte $lt $lte`, `$exists`: at least one).
- An event processed, or an order stored, marks its contact for re-evaluation against the
  dynamic segments (contacts.segment_members), whose drain emits `segmentEntered` /
  `segmentLeft`. Events of those two types mark nobody: a filter on them would otherwise feed
  its own changes back in a loop.
"""

# Table names come from the models; every value goes through parameters.
# ruff: noqa: S608

from typing import Any

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact

from contacts.filters.compiler import ORDER_OPS, FilterError, list_value
from contacts.segment_members import (
    ENTERED_EVENT,
    LEFT_EVENT,
    contacts_mark_changed,
    contacts_mark_changed_sql,
)
from marketing.models import Event, EventType, Order, OrderStatus

# Filter fields this module adds to the segment filter language: name → predicate.
SEGMENT_FILTER_FIELDS: dict[str, Any] = {}


def _events_predicate(op: str, value: Any, path: str) -> Q:
    def had(keys: list[str] | None) -> Q:
        events = Event.objects.filter(contact_id=OuterRef("pk"))
        if keys is not None:
            events = events.filter(event_type__key__in=keys)
        return Q(Exists(events))

    if op == "$exists":
        return had(None) if value else ~had(None)
    if op in ("$gt", "$gte", "$lt", "$lte", "$all"):
        raise FilterError(path, f"operator {op!r} does not apply to events")
    if op in ("$in", "$nin"):
        keys = [_event_key(v, f"{path}.{i}") for i, v in enumerate(list_value(value, path))]
        return had(keys) if op == "$in" else ~had(keys)
    key = _event_key(value, path)
    return ~had([key]) if op == "$ne" else had([key])


def _event_key(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FilterError(path, "expected an event type key")
    return value.strip()


def _orders_count_predicate(op: str, value: Any, path: str) -> Q:
    live_orders = Order.objects.filter(contact_id=OuterRef("pk")).exclude(
        status=OrderStatus.CANCELLED
    )
    if op == "$exists":
        return Q(Exists(live_orders)) if value else ~Q(Exists(live_orders))
    if op in ("$in", "$nin", "$contains", "$all"):
        raise FilterError(path, f"operator {op!r} does not apply to orders.count")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FilterError(path, "expected a whole number of orders")
    count = Coalesce(
        Subquery(
            live_orders.order_by().values("contact_id").annotate(n=Count("*")).values("n")[:1],
            output_field=IntegerField(),
        ),
        0,
    )
    number = Value(value, output_field=IntegerField())
    if op == "$eq":
        return Q(Exact(count, number))
    if op == "$ne":
        return ~Q(Exact(count, number))
    return Q(ORDER_OPS[op](count, number))


SEGMENT_FILTER_FIELDS["events"] = _events_predicate
SEGMENT_FILTER_FIELDS["orders.count"] = _orders_count_predicate


def contacts_mark_for_events(*, event_ids: list[int]) -> int:
    """Mark the contacts of these events (but segment events' own) for re-evaluation."""
    if not event_ids:
        return 0
    return contacts_mark_changed_sql(
        sql=f"""SELECT e.contact_id AS id FROM {Event._meta.db_table} e
                  JOIN {EventType._meta.db_table} t ON t.id = e.event_type_id
                 WHERE e.id = ANY(%s::bigint[]) AND e.contact_id IS NOT NULL
                   AND t.key NOT IN (%s, %s)""",
        params=[event_ids, ENTERED_EVENT, LEFT_EVENT],
    )


def contacts_mark_for_orders(*, contact_ids: list[int | None]) -> int:
    """Mark the contacts of orders just stored (or deleted) for re-evaluation."""
    return contacts_mark_changed(contact_ids=[pk for pk in contact_ids if pk is not None])
