# The SQL below interpolates only table names taken from our models; values are parameters.
# ruff: noqa: S608

import json

from django.core.serializers.json import DjangoJSONEncoder

from config.core.db import fetchall_bound
from marketing.events import events_kick
from marketing.models import Event, EventType


def event_emit(
    *, type_key: str, key_value: str = "", params: dict | None = None, contact_id: int | None = None
) -> "Event":
    """Store one event (its type is created on first use); a drain processes it (starts its
    workflows) once this commits (marketing.events.events_kick)."""
    event_type, _ = EventType.objects.get_or_create(key=type_key, defaults={"name": type_key})
    event = Event.objects.create(
        event_type=event_type, key_value=key_value, params=params or {}, contact_id=contact_id
    )
    events_kick()
    return event


def events_emit_many(*, type_key: str, events: list[dict]) -> int:
    """Store many events of one type in one INSERT; each dict has key_value, params, contact_id."""
    return events_emit_by_type(events={type_key: events})


def events_emit_by_type(*, events: dict[str, list[dict]]) -> int:
    """Store many events of several types ({type key: [event dicts]}) in one INSERT; the
    types are created on first use (one more statement).

    The rows travel as one JSON document expanded by jsonb_to_recordset and bound apart from
    the SQL: binding thousands of JSON params as an array parameter, or quoting the document
    into the SQL, costs more in the driver than the INSERT itself.
    """
    rows = [
        {
            "type_key": type_key,
            "key_value": item.get("key_value", ""),
            "params": item.get("params") or {},
            "contact_id": item.get("contact_id"),
        }
        for type_key, items in events.items()
        for item in items
    ]
    if not rows:
        return 0
    types = EventType._meta.db_table
    # A type seen for the first time is created here; NOT EXISTS first, so the usual case
    # (every type known) writes nothing. Named after its key, as event_emit names it.
    fetchall_bound(
        f"""INSERT INTO {types} (key, name, created_at)
            SELECT k, k, now() FROM unnest(%s::text[]) AS k
             WHERE NOT EXISTS (SELECT 1 FROM {types} t WHERE t.key = k)
            ON CONFLICT (key) DO NOTHING""",
        [sorted({row["type_key"] for row in rows})],
    )
    fetchall_bound(
        f"""INSERT INTO {Event._meta.db_table}
                   (event_type_id, key_value, params, contact_id, created_at)
            SELECT t.id, r.key_value, r.params, r.contact_id, now()
              FROM jsonb_to_recordset(%s::jsonb)
                   AS r(type_key text, key_value text, params jsonb, contact_id bigint)
              JOIN {types} t ON t.key = r.type_key""",
        [json.dumps(rows, cls=DjangoJSONEncoder, ensure_ascii=False)],
    )
    events_kick()
    return len(rows)
