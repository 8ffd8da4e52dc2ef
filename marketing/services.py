from django.db import transaction
from django.utils import timezone

from marketing.events import events_process_later
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
    """Store one event (its type is created on first use) and enqueue its processing on
    commit (marketing.tasks_events.process_event, where workflows start)."""
    event_type, _ = EventType.objects.get_or_create(key=type_key, defaults={"name": type_key})
    event = Event.objects.create(
        event_type=event_type, key_value=key_value, params=params or {}, contact_id=contact_id
    )
    events_process_later([event.pk])
    return event


def events_emit_many(*, type_key: str, events: list[dict]) -> int:
    """Store many events of one type in one INSERT; each dict has key_value, params, contact_id."""
    if not events:
        return 0
    event_type, _ = EventType.objects.get_or_create(key=type_key, defaults={"name": type_key})
    created = Event.objects.bulk_create(
        Event(
            event_type=event_type,
            key_value=item.get("key_value", ""),
            params=item.get("params") or {},
            contact_id=item.get("contact_id"),
        )
        for item in events
    )
    events_process_later([event.pk for event in created])
    return len(events)
