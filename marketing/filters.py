"""Query-string parsing shared by the event/order history pages and APIs."""

import datetime as dt
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from config.core.errors import FieldError


class FieldListError(FieldError):
    """A refused input of the marketing APIs, answered (by the one API exception handler) in
    their field-error shape, `{"<field>": ["<message>"]}`; pages show field and message."""

    def body(self) -> dict[str, Any]:
        return {self.field: [self.message]}


class FilterValueError(FieldListError):
    """A query-string filter that cannot be read."""


def instant(value: str | None, field: str, *, end_of_day: bool = False) -> dt.datetime | None:
    """An ISO datetime, or a date: its start (or, for an upper bound, the next day's start,
    so `to=2026-11-23` includes that whole day)."""
    if value in (None, ""):
        return None
    value = value.strip()
    try:
        moment = parse_datetime(value.replace(" ", "+", 1) if "T" in value else value)
        day = None if moment else parse_date(value)
    except ValueError:
        moment = day = None
    if moment is not None:
        return moment if timezone.is_aware(moment) else timezone.make_aware(moment)
    if day is None:
        raise FilterValueError(field, "expected an ISO 8601 date or datetime")
    if end_of_day:
        day += dt.timedelta(days=1)
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def integer(value: str | None, field: str) -> int | None:
    if value in (None, ""):
        return None
    # isascii: isdigit() also takes digits int() refuses, such as "²".
    if not (value.strip().isascii() and value.strip().isdigit()) or len(value.strip()) > 18:
        raise FilterValueError(field, "expected a whole number")
    return int(value)


def event_filters(query) -> dict:
    """Query-string filters shared by the history page and the API."""
    processed = query.get("processed", "")
    if processed not in ("", "true", "false"):
        raise FilterValueError("processed", "expected true or false")
    invalid = query.get("invalid", "")
    if invalid not in ("", "true", "false"):
        raise FilterValueError("invalid", "expected true or false")
    return {
        "event_type": (query.get("type") or "").strip() or None,
        "contact_id": integer(query.get("contact"), "contact"),
        "key_value": (query.get("keyValue") or "").strip() or None,
        "date_from": instant(query.get("from"), "from"),
        "date_to": instant(query.get("to"), "to", end_of_day=True),
        "processed": None if processed == "" else processed == "true",
        "invalid": None if invalid == "" else invalid == "true",
    }
