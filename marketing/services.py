import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from marketing.events import events_kick
from marketing.models import Event, EventType, Heartbeat, Organisation


@transaction.atomic
def organisation_update(
    *, name: str, default_sender_name: str, default_sender_email: str, time_zone: str
) -> Organisation:
    organisation = Organisation.objects.select_for_update().get_or_create(pk=1)[0]
    organisation.name = name
    organisation.default_sender_name = default_sender_name
    organisation.default_sender_email = default_sender_email
    organisation.time_zone = time_zone
    organisation.full_clean()
    organisation.save()
    return organisation


def heartbeat_record(*, name: str) -> Heartbeat:
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=name, defaults={"seen_at": timezone.now()}
    )
    return heartbeat


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
    """Store many events of one type in one INSERT; each dict has key_value, params, contact_id.

    The rows travel as one JSON document expanded by jsonb_to_recordset: binding thousands of
    JSON params as an array parameter costs more in the driver than the INSERT itself.
    """
    if not events:
        return 0
    event_type, _ = EventType.objects.get_or_create(key=type_key, defaults={"name": type_key})
    payload = json.dumps(
        [
            {
                "key_value": item.get("key_value", ""),
                "params": item.get("params") or {},
                "contact_id": item.get("contact_id"),
            }
            for item in events
        ],
        cls=DjangoJSONEncoder,
        ensure_ascii=False,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Event._meta.db_table}
                       (event_type_id, key_value, params, contact_id, created_at)
                SELECT %s, key_value, params, contact_id, now()
                  FROM jsonb_to_recordset(%s::jsonb)
                       AS r(key_value text, params jsonb, contact_id bigint)""",  # noqa: S608 (the table name is ours)
            [event_type.pk, payload],
        )
    events_kick()
    return len(events)
