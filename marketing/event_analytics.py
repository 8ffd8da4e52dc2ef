"""Event analytics: events per type per day, unique contacts per type and the most frequent
values of one param, over a range of days, counted by when the events occurred.

Each figure is one grouped query over the range (`event_occurred` index: occurred_at, type,
contact, so the counts read the index alone); days are the workspace's time zone's.

Months of events that retention dropped (marketing.retention) are in EventRollup, counted
per type, hour and contact: totals, days and unique contacts add them to the events still
stored (an event is in one or the other, never both). The top values of a param read the
stored events only: the rollup keeps no params.
"""

# Table names below come from the models; every value goes through parameters.
# ruff: noqa: S608

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from marketing.filters import FilterValueError
from marketing.models import Event, EventRollup, EventType

DEFAULT_DAYS = 30
# A year of days is 366 points per type on the chart; wider ranges are a report, not a page.
MAX_DAYS = 366
TOP_VALUES = 10


@dataclass
class TypeFigures:
    event_type: EventType
    total: int = 0
    unique_contacts: int = 0
    per_day: list[int] = field(default_factory=list)


@dataclass
class EventAnalytics:
    date_from: dt.date
    date_to: dt.date  # inclusive
    days: list[dt.date]
    types: list[TypeFigures]
    top_type: EventType | None = None
    top_param: str = ""
    top_values: list[tuple[str, int]] = field(default_factory=list)


EARLIEST = dt.date(1970, 1, 1)  # no event occurred earlier (occurredAt is refused before 1970)
LATEST = dt.date(9998, 12, 31)


def analytics_range(date_from: dt.date | None, date_to: dt.date | None) -> tuple[dt.date, dt.date]:
    """The days to count (both inclusive): by default the last DEFAULT_DAYS up to today."""
    today = timezone.localdate()
    date_to = date_to or today
    # The day after `to` and the default start are computed: both must stay in the calendar.
    for name, day in (("from", date_from), ("to", date_to)):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise FilterValueError(name, f"must be between {EARLIEST} and {LATEST}")
    date_from = date_from or date_to - dt.timedelta(days=DEFAULT_DAYS - 1)
    if date_from > date_to:
        raise FilterValueError("from", "must not be after to")
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise FilterValueError("from", f"the range may span at most {MAX_DAYS} days")
    return date_from, date_to


def event_analytics(
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    top_type: EventType | None = None,
    top_param: str = "",
) -> EventAnalytics:
    """The figures of every event type with events in the range (most events first), and the
    TOP_VALUES most frequent values of `top_param` among `top_type`'s events."""
    date_from, date_to = analytics_range(date_from, date_to)
    zone = timezone.get_current_timezone()
    start = dt.datetime.combine(date_from, dt.time.min, zone)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, zone)
    events = Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end).order_by()
    days = [date_from + dt.timedelta(days=n) for n in range((date_to - date_from).days + 1)]
    index = {day: n for n, day in enumerate(days)}

    figures: dict[int, TypeFigures] = {}
    totals, per_day = _counts(start, end, timezone.get_current_timezone_name())
    types = EventType.objects.in_bulk([type_id for type_id, _total, _contacts in totals])
    for type_id, total, contacts in totals:
        figures[type_id] = TypeFigures(
            event_type=types[type_id],
            total=total,
            unique_contacts=contacts,
            per_day=[0] * len(days),
        )
    for type_id, day, n in per_day:
        position = index.get(day)
        if position is not None and type_id in figures:
            figures[type_id].per_day[position] = n

    top_values: list[tuple[str, int]] = []
    if top_type is not None and top_param:
        rows = (
            events.filter(event_type=top_type, params__has_key=top_param)
            .annotate(value=KeyTextTransform(top_param, "params"))
            .values("value")
            .annotate(n=Count("id"))
            .order_by("-n", "value")[:TOP_VALUES]
        )
        top_values = [("" if row["value"] is None else row["value"], row["n"]) for row in rows]
    return EventAnalytics(
        date_from=date_from,
        date_to=date_to,
        days=days,
        types=sorted(figures.values(), key=lambda f: (-f.total, f.event_type.key)),
        top_type=top_type,
        top_param=top_param,
        top_values=top_values,
    )


# The stored events of the range and the rolled-up counts of the dropped months, as one set
# of (type, contact, time, events) rows.
_RANGE_SQL = f"""
WITH e AS (
    SELECT event_type_id, contact_id, occurred_at AS at, 1 AS n
      FROM {Event._meta.db_table}
     WHERE occurred_at >= %(start)s AND occurred_at < %(end)s
    UNION ALL
    SELECT event_type_id, contact_id, hour, events
      FROM {EventRollup._meta.db_table}
     WHERE hour >= %(start)s AND hour < %(end)s
)
"""
_TOTALS_SQL = (
    _RANGE_SQL
    + "SELECT event_type_id, sum(n)::bigint, count(DISTINCT contact_id) FROM e GROUP BY 1"
)
_PER_DAY_SQL = (
    _RANGE_SQL
    + "SELECT event_type_id, (at AT TIME ZONE %(zone)s)::date, sum(n)::bigint FROM e GROUP BY 1, 2"
)


def _counts(start: dt.datetime, end: dt.datetime, zone: str) -> tuple[list, list]:
    """(type, total, unique contacts) and (type, day, events) over [start, end)."""
    params: dict[str, dt.datetime | str] = {"start": start, "end": end, "zone": zone}
    with connection.cursor() as cursor:
        cursor.execute(_TOTALS_SQL, params)
        totals = cursor.fetchall()
        cursor.execute(_PER_DAY_SQL, params)
        per_day = cursor.fetchall()
    return totals, per_day


def analytics_json(figures: EventAnalytics) -> dict:
    """The figures in the API's shape (the page draws the same)."""
    return {
        "from": figures.date_from.isoformat(),
        "to": figures.date_to.isoformat(),
        "timeZone": timezone.get_current_timezone_name(),
        "days": [day.isoformat() for day in figures.days],
        "types": [
            {
                "id": item.event_type.pk,
                "key": item.event_type.key,
                "name": item.event_type.name,
                "total": item.total,
                "uniqueContacts": item.unique_contacts,
                "perDay": item.per_day,
            }
            for item in figures.types
        ],
        "topValues": None
        if figures.top_type is None or not figures.top_param
        else {
            "eventTypeKey": figures.top_type.key,
            "param": figures.top_param,
            "values": [{"value": value, "count": n} for value, n in figures.top_values],
        },
    }


def analytics_query(query) -> dict:
    """The analytics filters from a query string (the page's form and the API's parameters):
    from, to (dates), type (key or id) and param; a bad one is a FilterValueError."""
    dates = {}
    for name in ("from", "to"):
        raw = (query.get(name) or "").strip()
        if raw:
            try:
                dates[name] = dt.date.fromisoformat(raw)
            except ValueError:
                raise FilterValueError(name, "expected an ISO 8601 date (YYYY-MM-DD)") from None
    top_type = None
    type_ref = (query.get("type") or "").strip()
    if type_ref:
        lookup = (
            {"pk": int(type_ref)}
            if type_ref.isascii() and type_ref.isdigit() and len(type_ref) <= 18
            else {"key": type_ref}
        )
        top_type = EventType.objects.filter(**lookup).first()
        if top_type is None:
            raise FilterValueError("type", f"no event type {type_ref!r}")
    param = (query.get("param") or "").strip()
    if param and top_type is None:
        raise FilterValueError("param", "choose an event type (type) for its param")
    return {
        "date_from": dates.get("from"),
        "date_to": dates.get("to"),
        "top_type": top_type,
        "top_param": param,
    }
