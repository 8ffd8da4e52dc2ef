"""How a lower app records an event without importing the app that keeps events.

Events (the eSputnik "Generate event" store, which starts workflows) belong to `marketing`,
the layer above contacts. A contact rule that emits an event (a subscription, new contacts of
a bulk import) calls `event_emit` / `events_emit_many` here; `marketing` installs the store
when Django loads it (marketing.apps). Emitting before a store is installed is a programming
error and fails loudly: an event must never be dropped.
"""

from collections.abc import Callable


class _Store:
    emit: Callable[..., object] | None = None
    emit_many: Callable[..., int] | None = None


_store = _Store()


def event_store_install(*, emit: Callable[..., object], emit_many: Callable[..., int]) -> None:
    _store.emit = emit
    _store.emit_many = emit_many


def event_emit(
    *, type_key: str, key_value: str = "", params: dict | None = None, contact_id: int | None = None
) -> object:
    """Store one event in the same transaction as the caller's write."""
    if _store.emit is None:
        raise RuntimeError("No event store installed: is the marketing app in INSTALLED_APPS?")
    return _store.emit(
        type_key=type_key, key_value=key_value, params=params or {}, contact_id=contact_id
    )


def events_emit_many(*, type_key: str, events: list[dict]) -> int:
    """Store many events of one type (dicts with key_value, params, contact_id) at once."""
    if _store.emit_many is None:
        raise RuntimeError("No event store installed: is the marketing app in INSTALLED_APPS?")
    return _store.emit_many(type_key=type_key, events=events)
