"""Contact writes: subscribe, add/update one, update, delete/restore, and the bulk upsert that
POST /v1/contacts and CSV imports share."""

# The SQL below interpolates only table and column names defined in this module; every value
# goes through parameters.
# ruff: noqa: S608

import contextlib
import functools
import gc
import hashlib
import json
import logging
import operator
import select
import threading
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.core.events import event_emit, events_emit_many
from contacts.models import (
    Contact,
    ContactSource,
    ImportFailure,
    ImportJob,
    ImportStatus,
    JsonText,
    Segment,
    SegmentKind,
    SegmentMembership,
    SubscribeRequest,
)
from contacts.validation import (
    STANDARD_FIELDS,
    WRITABLE_COLUMNS,
    FieldError,
    contact_parse,
    contact_shape_errors,
    custom_fields_load,
    errors_reason,
    fields_merge,
    import_options_parse,
    missing_required,
)

logger = logging.getLogger(__name__)

# (row position, custom fields) → the row's parsed columns, or None: see contacts_upsert_batch.
FastParse = Callable[[int, dict], dict | None]
# Work a caller gives a batch write to do while PostgreSQL is busy with it (a file import
# reads its next chunk): called with `until`, a check that the awaited result has arrived
# (None while there is no such signal, as during a COPY), it works in short steps until that
# is true or it has nothing left to do for now. See contacts_upsert_batch.
Meanwhile = Callable[[Callable[[], bool] | None], None]

SUBSCRIBE_REPEAT_SECONDS = 60


class ContactError(Exception):
    """A request the contact rules refuse; `errors` name the fields."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__(errors_reason(errors))


class SubscribeRepeated(ContactError):
    """The same subscribe request within a minute (the seed answers 409)."""


class ContactConflict(ContactError):
    """The write would break a uniqueness rule (another contact has that externalCustomerId)."""


# --- helpers -----------------------------------------------------------------------------


_gc_pause_lock = threading.Lock()
_gc_pauses = 0  # sections inside gc_paused now, in every thread
_gc_paused_by_us = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a bulk batch is decoded, checked and written.

    A batch allocates tens of thousands of small dicts and lists that live until it ends;
    each automatic collection re-scanned all of them (and every older object in the
    process), a fifth of a bulk import's time. They hold no cycles, so reference counting
    frees them; whatever cycles other code makes meanwhile are collected once it resumes.
    The collector is one per process: sections are counted (across threads too), so nested
    ones (a file import's whole run, each chunk it prepares, each batch it writes) keep it
    paused until the outermost ends.
    """
    global _gc_pauses, _gc_paused_by_us
    with _gc_pause_lock:
        if _gc_pauses == 0 and gc.isenabled():
            gc.disable()
            _gc_paused_by_us = True
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_pause_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_paused_by_us:
                _gc_paused_by_us = False
                gc.enable()


def _segments_for(names: list[str], *, create: bool) -> list[int]:
    """Ids of static segments by name, created when missing (`create`)."""
    if not names:
        return []
    if create:
        # ignore_conflicts: two imports naming the same new group must not fail each other.
        Segment.objects.bulk_create(
            [Segment(name=name, kind=SegmentKind.STATIC) for name in names], ignore_conflicts=True
        )
    found = list(Segment.objects.filter(name__in=names).values_list("id", "name", "kind"))
    dynamic = [name for _, name, kind in found if kind != SegmentKind.STATIC]
    if dynamic and create:
        raise ContactError(
            [
                ("groupNames", f"'{name}' is a dynamic segment; contacts cannot be added to it")
                for name in dynamic
            ]
        )
    return [segment_id for segment_id, _, kind in found if kind == SegmentKind.STATIC]


def _memberships_add(segment_ids: list[int], contact_ids: list[int]) -> None:
    if not segment_ids or not contact_ids:
        return
    table = SegmentMembership._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (segment_id, contact_id, added_at)
                SELECT s.id, c.id, now()
                  FROM unnest(%s::bigint[]) AS s(id) CROSS JOIN unnest(%s::bigint[]) AS c(id)
                ON CONFLICT (segment_id, contact_id) DO NOTHING""",
            [segment_ids, contact_ids],
        )


def _memberships_remove(segment_ids: list[int], contact_ids: list[int]) -> None:
    if segment_ids and contact_ids:
        SegmentMembership.objects.filter(
            segment_id__in=segment_ids, contact_id__in=contact_ids
        ).delete()


def _parse_or_raise(data: dict, custom_fields, prefix: str = "") -> dict:
    parsed, errors = contact_parse(data, custom_fields=custom_fields)
    if errors:
        raise ContactError(
            [(f"{prefix}{field}" if field else prefix.rstrip("."), p) for field, p in errors]
        )
    return parsed


def _apply(contact: Contact, parsed: dict) -> None:
    for column, value in parsed.items():
        if column == "id":
            continue
        if column == "fields":
            contact.fields = fields_merge(contact.fields or {}, value)
        else:
            setattr(contact, column, value)


def _check_external_id(contact: Contact) -> None:
    ext = contact.external_customer_id
    if ext:
        other = Contact.objects.filter(external_customer_id=ext).exclude(pk=contact.pk).first()
        if other is not None:
            raise ContactConflict(
                [("externalCustomerId", f"'{ext}' already belongs to contact {other.pk}")]
            )


def _find_by_channels(*, email: str | None, phone: str | None) -> Contact | None:
    """The oldest live contact with this email, else with this phone."""
    # Email is not unique (dedupeOn=externalCustomerId may keep two contacts with one), so
    # two concurrent subscribes of a new address would both create; these transaction
    # locks, taken in a fixed order, make the second wait and then find the first's contact.
    with connection.cursor() as cursor:
        for value in sorted(v for v in (email, phone) if v):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [value])
    for column, value in (("email", email), ("phone", phone)):
        if value:
            found = (
                Contact.objects.alive()
                .select_for_update()
                .filter(**{column: value})
                .order_by("pk")
                .first()
            )
            if found is not None:
                return found
    return None


def _new_contact_checks(parsed: dict, custom_fields, existing_fields=None) -> list[FieldError]:
    errors = missing_required(parsed, custom_fields, existing_fields)
    if not (
        parsed.get("email")
        or parsed.get("phone")
        or parsed.get("extra_channels")
        or parsed.get("external_customer_id")
    ):
        errors.append(("channels", "a new contact needs an email or sms channel"))
    return errors


# --- one contact -------------------------------------------------------------------------


def _subscribe_guard(fingerprint: str) -> bool:
    """True if this request was not seen in the last minute (and records it)."""
    table = SubscribeRequest._meta.db_table
    with connection.cursor() as cursor:
        # One statement, so two web processes racing on the same request cannot both pass.
        cursor.execute(
            f"""INSERT INTO {table} (fingerprint, created_at) VALUES (%s, now())
                ON CONFLICT (fingerprint) DO UPDATE SET created_at = excluded.created_at
                 WHERE {table}.created_at < now() - make_interval(secs => %s)
                RETURNING id""",
            [fingerprint, SUBSCRIBE_REPEAT_SECONDS],
        )
        fresh = cursor.fetchone() is not None
        if fresh:
            cursor.execute(
                f"DELETE FROM {table} WHERE created_at < now() - make_interval(secs => %s)",
                [SUBSCRIBE_REPEAT_SECONDS],
            )
    return fresh


@transaction.atomic
def contact_subscribe(
    *, data: dict, groups: list[str], form_type: str | None
) -> tuple[Contact, bool]:
    """Subscribe form: upsert by email or phone; new contacts wait for double opt-in."""
    fingerprint = hashlib.sha256(
        json.dumps(
            {"contact": data, "groups": groups, "formType": form_type},
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    custom_fields = custom_fields_load()
    parsed = _parse_or_raise(data, custom_fields, "contact.")
    if not parsed.get("email") and not parsed.get("phone"):
        raise ContactError([("contact.channels", "needs an email or sms channel")])
    if not _subscribe_guard(fingerprint):
        raise SubscribeRepeated(
            [("", f"the same subscribe request was sent within {SUBSCRIBE_REPEAT_SECONDS} s")]
        )
    segment_ids = _segments_for(groups, create=True)
    contact = _find_by_channels(email=parsed.get("email"), phone=parsed.get("phone"))
    created = contact is None
    if created:
        errors = _new_contact_checks(parsed, custom_fields)
        if errors:
            raise ContactError([(f"contact.{field}", problem) for field, problem in errors])
        contact = Contact(confirmed=False, source=ContactSource.SUBSCRIBE_FORM)
    _apply(contact, parsed)
    _check_external_id(contact)
    contact.save()
    _memberships_add(segment_ids, [contact.pk])

    event_key = "subscribeFromApi" if created else "subscribeUpdateFromApi"
    if form_type:
        event_key = f"{event_key}-{form_type}"
    params = {"ContactId": contact.pk}
    if contact.email:
        params["EmailAddress"] = contact.email
    event_emit(type_key=event_key, key_value=str(contact.pk), params=params, contact_id=contact.pk)
    if not contact.confirmed and contact.email:
        from contacts.tasks_import import send_confirmation

        # Double opt-in: the confirmation email goes out once the contact is committed.
        transaction.on_commit(lambda: send_confirmation.delay(contact.pk))
    return contact, created


@transaction.atomic
def contact_create_or_update(*, data: dict, source: str) -> tuple[Contact, bool]:
    """Add contact: update the live contact with this externalCustomerId, email or phone, else
    create one, confirmed. No events."""
    custom_fields = custom_fields_load()
    parsed = _parse_or_raise(data, custom_fields)
    contact = None
    if parsed.get("external_customer_id"):
        contact = (
            Contact.objects.alive()
            .select_for_update()
            .filter(external_customer_id=parsed["external_customer_id"])
            .first()
        )
    if contact is None:
        contact = _find_by_channels(email=parsed.get("email"), phone=parsed.get("phone"))
    created = contact is None
    if created:
        errors = _new_contact_checks(parsed, custom_fields)
        if errors:
            raise ContactError(errors)
        contact = Contact(confirmed=True, confirmed_at=timezone.now(), source=source)
    _apply(contact, parsed)
    _check_external_id(contact)
    contact.save()
    return contact, created


@transaction.atomic
def contact_update(*, contact: Contact, data: dict, clear: Collection[str] = ()) -> Contact:
    """Update one known contact with what the body carries; never creates, ignores body id.

    `clear` names channels to remove ("email", "phone"), which the seed's contact format
    cannot express (the contact page does). The contact must keep some way to reach or
    recognise it: an email, a phone, another channel or an external id."""
    custom_fields = custom_fields_load()
    parsed = _parse_or_raise(data, custom_fields)
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    _apply(contact, parsed)
    for column in clear:
        if column not in _CLEARABLE_CHANNELS:
            raise ValueError(f"{column!r} is not a channel that can be cleared")
        setattr(contact, column, "")
    if clear and not (
        contact.email or contact.phone or contact.extra_channels or contact.external_customer_id
    ):
        raise ContactError(
            [
                (
                    "channels",
                    "a contact needs an email, a phone, another channel or an external id; "
                    "delete the contact instead",
                )
            ]
        )
    _check_external_id(contact)
    contact.save()
    return contact


_CLEARABLE_CHANNELS = frozenset({"email", "phone"})


PERSONAL_DATA_BLANKS = {
    "first_name": "",
    "last_name": "",
    "email": "",
    "phone": "",
    "extra_channels": [],
    "region": "",
    "town": "",
    "address": "",
    "postcode": "",
    "language_code": "",
    "time_zone": "",
    "external_customer_id": None,
    "tags": [],
    "fields": {},
}


@transaction.atomic
def contact_delete(*, contact: Contact, erase: bool) -> Contact:
    """Soft delete (restorable); erase=True also wipes personal data and group memberships."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.deleted_at is None:
        contact.deleted_at = timezone.now()
    if erase:
        for column, blank in PERSONAL_DATA_BLANKS.items():
            setattr(contact, column, blank.copy() if isinstance(blank, (list, dict)) else blank)
        SegmentMembership.objects.filter(contact=contact).delete()
    contact.save()
    return contact


@transaction.atomic
def contact_restore(*, contact: Contact) -> Contact:
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.deleted_at is not None:
        contact.deleted_at = None
        contact.save(update_fields=["deleted_at", "updated_at"])
    return contact


# --- bulk upsert -------------------------------------------------------------------------

_TABLE = "contacts_contact"


def _match_key(parsed: dict, dedupe_on: str, field_key: str | None):
    ext = parsed.get("external_customer_id")
    if ext:
        return ("ext", ext)
    if dedupe_on == "email":
        return ("email", parsed["email"]) if parsed.get("email") else None
    if dedupe_on == "sms":
        return ("phone", parsed["phone"]) if parsed.get("phone") else None
    if dedupe_on == "email_or_sms":
        if parsed.get("email"):
            return ("email", parsed["email"])
        return ("phone", parsed["phone"]) if parsed.get("phone") else None
    if dedupe_on == "id":
        return ("id", parsed["id"]) if parsed.get("id") else None
    if dedupe_on == "fieldId":
        value = parsed.get("fields", {}).get(field_key)
        return ("field", _field_text(value)) if value is not None else None
    return None


def _field_text(value) -> str:
    """A custom-field value as PostgreSQL's `fields->>'id'` renders it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _merge(parts: list[dict]) -> dict:
    merged: dict = {}
    fields: dict = {}
    for part in parts:
        fields.update(part.get("fields", {}))
        merged.update(part)
    if fields or "fields" in merged:
        merged["fields"] = fields
    return merged


def _fetch(cursor, sql: str, params: list, meanwhile: Meanwhile | None) -> list[tuple]:
    """Run one statement and fetch its rows. With `meanwhile`, the statement is sent in
    pipeline mode, so it runs while `meanwhile` works, until its result starts arriving."""
    if meanwhile is None:
        cursor.execute(sql, params)
        return cursor.fetchall()
    conn = cursor.cursor.connection
    with conn.pipeline():
        cursor.execute(sql, params)
        # In a pipeline the server holds results back until asked: this asks it to send
        # them as soon as they are ready, so their arrival on the socket ends `meanwhile`.
        conn.pgconn.send_flush_request()
        conn.pgconn.flush()
        fileno = conn.fileno()
        meanwhile(lambda: bool(select.select([fileno], [], [], 0)[0]))
        return cursor.fetchall()


def _lookup(
    cursor,
    column_sql: str,
    array: str,
    params_before: list | None = None,
    meanwhile: Meanwhile | None = None,
) -> list[tuple]:
    """(value, id of the contact to update, whether it is live) for the values in `array`
    (a literal, see _lookup_arrays): live before deleted, then oldest.

    An indexed column is probed value by value (a lateral subquery per value, LIMIT 1):
    given `column = ANY(array)` of a chunk's ten thousand values, the planner reads every
    contact instead once the table is a few hundred thousand rows, so each chunk of a large
    import cost a scan of all the contacts stored before it. Unindexed `fields->>key`
    (dedupeOn=fieldId) is read in one scan, filtered by the array."""
    if params_before:  # an expression over a parameter: fields->>%s
        return _fetch(
            cursor,
            f"""SELECT DISTINCT ON (k) k, id, deleted_at IS NULL FROM (
                    SELECT {column_sql} AS k, id, deleted_at FROM {_TABLE}
                     WHERE {column_sql} = ANY(%s::text[])
                ) AS m ORDER BY k, (deleted_at IS NOT NULL), id""",
            [*params_before, *params_before, array],
            meanwhile,
        )
    array_type = "bigint" if column_sql == "id" else "text"
    return _fetch(
        cursor,
        f"""SELECT k, m.id, m.live FROM unnest(%s::{array_type}[]) AS k,
                LATERAL (SELECT id, deleted_at IS NULL AS live FROM {_TABLE}
                          WHERE {column_sql} = k
                          ORDER BY deleted_at IS NOT NULL, id LIMIT 1) AS m""",
        [array],
        meanwhile,
    )


# Batch-sized arrays go as PostgreSQL array literals written here: psycopg adapts a list
# item by item in Python, about 3 ms for a batch's 3000 strings, five times this join.
def int_array_literal(values: Sequence[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _text_array(values: Sequence[str]) -> str:
    return (
        "{"
        + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        + "}"
    )


def _lookup_arrays(groups: dict, parsed_rows: dict, dedupe_on: str) -> dict[str, str]:
    """The batch's match keys by kind ("ext", "email", …), as the array literal each kind's
    lookup takes."""
    wanted = {key for key in groups if key[0] != "row"}
    if dedupe_on == "email_or_sms":
        # A row matched by email falls back to its phone when no contact has that email.
        wanted |= {
            ("phone", parsed_rows[ix[0]]["phone"])
            for key, ix in groups.items()
            if key[0] == "email" and parsed_rows[ix[0]].get("phone")
        }
    by_kind: dict[str, list] = {}
    for kind, value in wanted:
        by_kind.setdefault(kind, []).append(value)
    # Sorted, so the lookup walks its index in order.
    return {
        kind: int_array_literal(sorted(values)) if kind == "id" else _text_array(sorted(values))
        for kind, values in by_kind.items()
    }


_LOOKUP_COLUMNS = {
    "ext": "external_customer_id",
    "email": "email",
    "phone": "phone",
    "id": "id",
    # No index serves ->> on one key; a seq scan per batch is the price of fieldId.
    "field": "fields->>%s",
}


def _find_existing(
    cursor, arrays: dict[str, str], field_key: str | None, meanwhile: Meanwhile | None = None
) -> tuple[dict, set[int]]:
    """(kind, value) → contact id, one query per kind of key in the batch (_lookup_arrays);
    and which of those contacts were live."""
    found: dict = {}
    live: set[int] = set()
    for kind, array in arrays.items():
        before = [field_key] if kind == "field" else None
        for value, contact_id, is_live in _lookup(
            cursor, _LOOKUP_COLUMNS[kind], array, before, meanwhile
        ):
            found[(kind, value)] = contact_id
            if is_live:
                live.add(contact_id)
    return found, live


def _update_columns(contact_fields: list[str] | None) -> set[str]:
    if contact_fields is None:
        return set(WRITABLE_COLUMNS)
    columns = {"fields"}
    for name in contact_fields:
        columns.update(STANDARD_FIELDS[name])
    return columns


_JSONB_COLUMNS = ("extra_channels", "fields")
# Rows travel by COPY, in its text format written here (copy_line): PostgreSQL reads them as
# it reads a file, where an INSERT … SELECT from a JSON document (or 14 parameter arrays)
# made Python build and PostgreSQL parse the batch twice over.
_UPDATE_TABLE = "contacts_upsert_rows"
# An update row's columns it does not change: NULL, ignored through its `given` mask.
_ABSENT = dict.fromkeys(WRITABLE_COLUMNS)
_EMPTY_JSON = {list: "[]", dict: "{}"}


@dataclass(frozen=True)
class _Shape:
    """Which writable columns a COPY carries, and where its JSON and array columns are."""

    columns: tuple[str, ...]
    json_positions: tuple[int, ...]
    tags_position: int | None
    values_of: Callable[[dict], tuple]  # a row's values of these columns, in order

    @classmethod
    def of(cls, columns: tuple[str, ...]) -> "_Shape":
        return cls(
            columns,
            tuple(i for i, column in enumerate(columns) if column in _JSONB_COLUMNS),
            columns.index("tags") if "tags" in columns else None,
            operator.itemgetter(*columns),
        )


_ALL = _Shape.of(WRITABLE_COLUMNS)
# A new contact with no tags and no other channels (every contact a CSV file makes): those
# two columns are left to their database defaults, as are created_at and updated_at (the
# transaction's time) and confirmed (true). PostgreSQL then parses five values less per row,
# a fifth of its work for the row.
_LEAN = _Shape.of(tuple(c for c in WRITABLE_COLUMNS if c not in ("extra_channels", "tags")))
_NEW_TAIL = ("confirmed_at", "source")


def _copy_payload(
    cursor,
    table: str,
    columns: tuple[str, ...],
    payload: str,
    meanwhile: Meanwhile | None = None,
) -> None:
    """COPY text-format lines (copy_line's, each ending in a newline) into `table`, sent in one
    write; `meanwhile` works while PostgreSQL reads and indexes them, before the COPY ends."""
    with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(payload)
        if meanwhile is not None:
            meanwhile(None)


# json.dumps builds its encoder again at every call, two thirds of its cost for the few
# keys a contact's JSON columns hold; this is the same encoder (same output), built once.
# No circular-reference check: the values come from parsed JSON and CSV, never cyclic.
def _json_refused(value):
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_json_encoder = json.encoder.c_make_encoder(
    None, _json_refused, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
)


def _json_text(value) -> str:
    return "".join(_json_encoder(value, 0))


def _copy_values(row: dict, defaults: dict, shape: _Shape = _ALL) -> list:
    """A row's columns of `shape` (`defaults` for those it lacks) as COPY takes them: JSON
    columns as JSON text, tags as an array literal (most rows have no tags, extra channels
    or custom values), None as NULL."""
    values = list(shape.values_of({**defaults, **row}))
    for position in shape.json_positions:
        value = values[position]
        if value is not None:
            empty = _EMPTY_JSON.get(type(value)) if not value else None
            values[position] = empty if empty is not None else _json_text(value)
    position = shape.tags_position
    if position is not None and values[position] is not None:
        values[position] = _text_array(values[position]) if values[position] else "{}"
    return values


# COPY's text format: a tab between columns, \N for NULL, and these escaped in a value.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_line(values: Sequence) -> str:
    """Values (str, int or None) as one line of COPY's text format, without its newline.

    Most values hold none of the characters COPY escapes; that is checked once on the joined
    line (its only backslashes the NULL markers, its only tabs the separators) instead of
    escaping value by value."""
    nulls = values.count(None)
    texts = ["\\N" if value is None else value for value in values] if nulls else values
    try:
        line = "\t".join(texts)
    except TypeError:  # not only strings: a number
        line = "\t".join(map(str, texts))
    if (
        line.count("\\") == nulls
        and line.count("\t") == len(values) - 1
        and "\n" not in line
        and "\r" not in line
    ):
        return line
    return "\t".join(
        "\\N" if value is None else str(value).translate(_COPY_ESCAPES) for value in values
    )


def _lean(row: dict) -> bool:
    return not row.get("tags") and not row.get("extra_channels")


def new_contact_text(row: dict) -> str:
    """A new contact's writable columns as COPY text, in the _LEAN shape when it fits (see
    _insert_new)."""
    shape = _LEAN if _lean(row) else _ALL
    return copy_line(_copy_values(_without_null_fields(row), _NEW_DEFAULTS, shape))


# A new contact starts with every personal field blank.
_NEW_DEFAULTS = PERSONAL_DATA_BLANKS


def _insert_new(
    cursor, rows: list[dict], texts: list[str | None], meanwhile: Meanwhile | None = None
) -> list[int]:
    """COPY new contacts in → their ids, in `rows` order. `texts[i]` is rows[i] already as
    new_contact_text gives it (a file import formats rows ahead, while the server works), or
    None to format it here."""
    # Ids drawn up front: the caller maps rows to ids without trusting RETURNING order. now()
    # is the transaction's timestamp, what the columns' now() would have stored. The sequence
    # is named once (a sub-select), not looked up in the catalog again for every id.
    [(ids, now)] = _fetch(
        cursor,
        "SELECT array_agg(nextval((SELECT pg_get_serial_sequence(%s, 'id'))::regclass)), "
        "now() FROM generate_series(1, %s)",
        [_TABLE, len(rows)],
        meanwhile,
    )
    # The timestamp as ISO text (with its offset, so the same instant), written once.
    tail = copy_line((now.isoformat(), str(ContactSource.IMPORT)))
    lean: list[str] = []
    full: list[str] = []
    for contact_id, row, text in zip(ids, rows, texts, strict=True):
        line = f"{contact_id}\t{text if text is not None else new_contact_text(row)}\t{tail}\n"
        (lean if _lean(row) else full).append(line)
    for shape, lines in ((_LEAN, lean), (_ALL, full)):
        if lines:
            columns = ("id", *shape.columns, *_NEW_TAIL)
            _copy_payload(cursor, _TABLE, columns, "".join(lines), meanwhile)
    return ids


def _without_null_fields(row: dict) -> dict:
    fields = row.get("fields")
    if fields and None in fields.values():
        return {**row, "fields": fields_merge({}, fields)}
    return row


def _update_existing(
    cursor,
    ids: list[int],
    changes: list[dict],
    *,
    restore: bool,
    live: set[int],
    meanwhile: Meanwhile | None = None,
) -> set[int]:
    """Write each contact's changed columns (a dict per contact; custom values merge into the
    stored ones, None removing one) → the ids matched: written, or `live` (when looked up)
    and already holding those values. A deleted contact is written (and restored) only with
    `restore`; the caller reports the others.

    The UPDATE is also the lock: it re-reads deleted_at on the row it locks, so a contact
    deleted meanwhile is never written without `restore`, with no separate locking read."""
    # A scratch table of this session: COPY the changes in, one UPDATE … FROM joins them.
    # `given` says which columns a row changes, so an absent column and a NULL differ.
    cursor.execute(
        f"""CREATE TEMPORARY TABLE IF NOT EXISTS {_UPDATE_TABLE} ON COMMIT DELETE ROWS AS
            SELECT id, 0 AS given, {", ".join(WRITABLE_COLUMNS)} FROM {_TABLE} WITH NO DATA"""
    )
    # Emptied at commit; a batch that shares a transaction with an earlier one (a test, a
    # retried batch) must not see that batch's rows. DELETE, not TRUNCATE: the table is
    # almost always empty already, which DELETE finds at once, where TRUNCATE gives the
    # table a new file every batch (a few ms).
    cursor.execute(f"DELETE FROM {_UPDATE_TABLE}")
    payload = "".join(
        [
            f"{contact_id}\t{_given_mask(row)}\t{copy_line(_copy_values(row, _ABSENT))}\n"
            for contact_id, row in zip(ids, changes, strict=True)
        ]
    )
    _copy_payload(cursor, _UPDATE_TABLE, ("id", "given", *WRITABLE_COLUMNS), payload)
    # A contact the row would leave as it is stays unwritten: a new row version costs an
    # entry in every index, and re-importing a list most of which is already stored is the
    # common case. Such a contact is still matched (reported as updated, added to groups) if
    # it was live when looked up; its updated_at keeps when its data last changed.
    # The scratch table has no statistics, so a plain join on id is planned as a scan of
    # every contact, once per batch; the id list narrows it. It goes as a literal array, not a
    # subquery: a constant list is probed through a hash table, where a subquery's array is
    # searched element by element for every row the planner reads.
    rows = _fetch(
        cursor,
        f"""UPDATE {_TABLE} AS c SET {_UPDATE_SETS}, deleted_at = NULL, updated_at = now()
              FROM {_UPDATE_TABLE} AS v
             WHERE c.id = v.id AND c.id = ANY(%s::bigint[])
               AND (c.deleted_at IS NULL OR %s)
               AND NOT ({_UNCHANGED})
            RETURNING c.id""",
        [int_array_literal(ids), restore],
        meanwhile,
    )
    written = {row[0] for row in rows}
    # Not written: left as they are, or deleted since they were looked up (which the UPDATE
    # saw when it re-checked the row); the latter are reported, as any deleted contact.
    unwritten = [
        contact_id for contact_id in ids if contact_id in live and contact_id not in written
    ]
    if unwritten:
        # IS NOT NULL, not IS NULL: no partial index on live contacts tempts the planner
        # into reading all of them when the table's statistics are stale.
        cursor.execute(
            f"SELECT id FROM {_TABLE} WHERE id = ANY(%s::bigint[]) AND deleted_at IS NOT NULL",
            [int_array_literal(unwritten)],
        )
        deleted = {row[0] for row in cursor.fetchall()}
        written.update(contact_id for contact_id in unwritten if contact_id not in deleted)
    return written


def _given_mask(row: dict) -> int:
    return _columns_mask(tuple(row))


@functools.lru_cache(maxsize=1024)
def _columns_mask(columns: tuple[str, ...]) -> int:
    # Cached: a batch's rows mostly carry the same few columns.
    return sum(1 << bit for bit, column in enumerate(WRITABLE_COLUMNS) if column in columns)


def _unchanged(bit: int, column: str) -> str:
    """SQL: the contact's `column` already holds what row `v` would write there."""
    if column != "fields":
        same = f"c.{column} IS NOT DISTINCT FROM v.{column}"
    else:
        # Custom values are scalars: containment of the row's values, and none of the keys
        # it removes (null) present, is the merge leaving the object as it is.
        same = """(jsonb_typeof(c.fields) = 'object' AND c.fields @> jsonb_strip_nulls(v.fields)
                   AND NOT EXISTS (SELECT FROM jsonb_each(v.fields) AS f
                                    WHERE f.value = 'null'::jsonb AND c.fields ? f.key))"""
    return f"(v.given & {1 << bit} = 0 OR {same})"


def _new_value(column: str) -> str:
    if column != "fields":
        return f"v.{column}"
    # validation.fields_merge in SQL: the stored object, overwritten key by key, without the
    # keys set to null (top level only, as fields_merge).
    return """(SELECT coalesce(jsonb_object_agg(f.key, f.value), '{}'::jsonb)
                 FROM jsonb_each(CASE jsonb_typeof(c.fields) WHEN 'object' THEN c.fields
                                 ELSE '{}'::jsonb END || v.fields) AS f
                WHERE f.value <> 'null'::jsonb)"""


_UPDATE_SETS = ", ".join(
    f"{column} = CASE WHEN v.given & {1 << bit} <> 0 THEN {_new_value(column)} ELSE c.{column} END"
    for bit, column in enumerate(WRITABLE_COLUMNS)
)
_UNCHANGED = " AND ".join(
    [
        *(_unchanged(bit, column) for bit, column in enumerate(WRITABLE_COLUMNS)),
        "c.deleted_at IS NULL",
    ]
)


@dataclass
class PreparedBatch:
    """A batch after its Python-only half (parsing, validation, grouping by match key), which
    touches no database and so may run in another thread while an earlier batch is written."""

    contacts: Sequence
    options: dict
    start_index: int
    failures: list[ImportFailure]
    processed: int
    # groups of row positions sharing a match key, in first-seen order
    groups: dict
    parsed_rows: dict[int, dict]
    custom_fields: dict
    # row index → the row as a new contact's COPY text (new_contact_text), when formatted
    # ahead: only for rows that pass the new-contact checks
    new_texts: dict[int, str]
    # kind of match key → the lookup's array literal (_lookup_arrays)
    lookups: dict[str, str]


def contacts_batch_prepare(**arguments) -> PreparedBatch:
    """Validate and group one batch, in one go (contacts_batch_preparing's arguments)."""
    steps = contacts_batch_preparing(**arguments)
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def contacts_batch_preparing(
    *,
    contacts: Sequence,
    options: dict,
    job: ImportJob,
    custom_fields: dict,
    start_index: int = 0,
    fast_parse: FastParse | None = None,
    format_new: bool = False,
    step_rows: int = 0,
) -> Generator[None, None, PreparedBatch]:
    """Validate and group one batch (see contacts_upsert_batch) → its PreparedBatch, as the
    generator's return value. No database access, so `custom_fields` (custom_fields_load)
    are given. Raises ContactError for bad options.

    With `step_rows` it pauses (yields) after every so many rows, so a file import can do
    this work in the gaps while PostgreSQL writes the previous batch. `format_new` also
    formats every row as a new contact's COPY text: the work of writing it if no contact
    matches it, done here when the caller expects most rows to be new."""
    options, option_errors = import_options_parse(options)
    if not isinstance(contacts, Sequence) or isinstance(contacts, str | bytes):
        option_errors.append(("contacts", "must be a list of Contact objects"))
    if option_errors:
        raise ContactError(option_errors)
    dedupe_on = options["dedupeOn"]
    field_key = str(options["fieldId"]) if dedupe_on == "fieldId" else None
    failures: list[ImportFailure] = []
    processed = 0
    groups: dict = {}
    parsed_rows: dict[int, dict] = {}
    new_texts: dict[int, str] = {}
    with gc_paused():
        for position in range(len(contacts)):
            index = start_index + position
            parsed = fast_parse(position, custom_fields) if fast_parse is not None else None
            if parsed is None:
                raw = contacts[position]
                if raw is None:
                    continue
                parsed, errors = contact_parse(raw, custom_fields=custom_fields)
                if errors:
                    processed += 1
                    reason = errors_reason(errors)
                    failures.append(ImportFailure(job=job, index=index, reason=reason, data=raw))
                    continue
            processed += 1
            parsed_rows[index] = parsed
            key = _match_key(parsed, dedupe_on, field_key)
            groups.setdefault(key if key is not None else ("row", index), []).append(index)
            if format_new and "id" not in parsed and not _new_contact_checks(parsed, custom_fields):
                new_texts[index] = new_contact_text(parsed)
            if step_rows and position % step_rows == step_rows - 1:
                yield
    return PreparedBatch(
        contacts,
        options,
        start_index,
        failures,
        processed,
        groups,
        parsed_rows,
        custom_fields,
        new_texts,
        _lookup_arrays(groups, parsed_rows, dedupe_on),
    )


def contacts_upsert_batch(
    *,
    contacts: Sequence = (),
    options: dict | None = None,
    job: ImportJob,
    start_index: int = 0,
    record_contact_ids: bool = True,
    fast_parse: FastParse | None = None,
    prepared: PreparedBatch | None = None,
    meanwhile: Meanwhile | None = None,
    wait_for_flush: bool = True,
) -> list[int]:
    """Validate, dedupe, match and write one batch (≤ a few thousand seed Contact objects);
    → the ids of the contacts it created or updated, in row order.

    `None` entries are rows already reported as failed (shape checks) and are skipped.
    Set-based: a fixed number of statements per batch whatever its size. Without
    `record_contact_ids` the caller stores the ids on the job itself (a file import does,
    once, instead of rewriting an ever longer array after every chunk). `fast_parse(position,
    custom_fields)` may give a row's parsed columns without building its seed object, exactly
    as contact_parse would, or None to have contact_parse decide (and word the errors); then
    `contacts` may build its items on access, and only such rows and failed ones are read.
    A batch already `prepared` (contacts_batch_prepare) is only written.

    `meanwhile` is work to do while PostgreSQL is busy with the batch's matching query, its
    COPY and its UPDATE (see Meanwhile). Without `wait_for_flush` the commit does not wait
    for the WAL to reach the disk: a file import's chunks, whose job only finishes with a
    commit that does wait, and so flushes them all (the WAL is written in order).
    """
    if prepared is None:
        prepared = contacts_batch_prepare(
            contacts=contacts,
            options=options or {},
            job=job,
            custom_fields=custom_fields_load(),
            start_index=start_index,
            fast_parse=fast_parse,
        )
    for attempt in range(2):
        try:
            with gc_paused(), transaction.atomic():
                return _upsert_batch(prepared, job, record_contact_ids, meanwhile, wait_for_flush)
        except IntegrityError:
            # Another import created a contact with one of these externalCustomerIds after we
            # looked; the batch rolled back whole, and a second pass matches that contact.
            if attempt:
                raise


def _upsert_batch(
    prepared: PreparedBatch,
    job: ImportJob,
    record_contact_ids: bool,
    meanwhile: Meanwhile | None,
    wait_for_flush: bool,
) -> list[int]:
    contacts, options, start_index = prepared.contacts, prepared.options, prepared.start_index
    groups, parsed_rows = prepared.groups, prepared.parsed_rows
    # New objects: a write retried after the first attempt stored its failures (and rolled
    # them back) must not reuse their ids, nor report them twice.
    failures = [
        ImportFailure(job=job, index=f.index, reason=f.reason, data=f.data)
        for f in prepared.failures
    ]
    custom_fields = prepared.custom_fields
    dedupe_on = options["dedupeOn"]
    field_key = str(options["fieldId"]) if dedupe_on == "fieldId" else None
    update_columns = _update_columns(options.get("contactFields"))
    allowed_custom = (
        {str(i) for i in options["customFieldsIDs"]} if "customFieldsIDs" in options else None
    )
    restore = options["restoreDeleted"]
    add_to = _segments_for(options["groupNames"], create=True)
    remove_from = _segments_for(options["groupNamesExclude"], create=False)

    def fail(indices: list[int], reason: str) -> None:
        failures.extend(
            ImportFailure(job=job, index=i, reason=reason, data=contacts[i - start_index])
            for i in indices
        )

    with connection.cursor() as cursor:
        if not wait_for_flush:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        found, live = _find_existing(cursor, prepared.lookups, field_key, meanwhile)

        by_contact: dict[int, list[int]] = {}
        new_groups: list[list[int]] = []
        for key, indices in groups.items():
            contact_id = found.get(key)
            if contact_id is None and dedupe_on == "email_or_sms" and key[0] == "email":
                phones = [parsed_rows[i].get("phone") for i in indices]
                contact_id = next(
                    (found[("phone", p)] for p in phones if ("phone", p) in found), None
                )
            if contact_id is None:
                new_groups.append(indices)
            else:
                # Two keys may reach one contact; its rows merge so one UPDATE row carries them.
                by_contact.setdefault(contact_id, []).extend(indices)

        update_ids: list[int] = []
        update_rows: list[dict] = []
        row_contact: dict[int, int] = {}
        # Without contactFields/customFieldsIDs a row changes every column it carries.
        every_column = allowed_custom is None and len(update_columns) == len(WRITABLE_COLUMNS)
        for contact_id, indices in by_contact.items():
            if len(indices) == 1:
                merged = parsed_rows[indices[0]]
            else:
                merged = _merge([parsed_rows[i] for i in sorted(indices)])
            if every_column and "id" not in merged:
                changes = merged
            else:
                changes = {}
                for column, value in merged.items():
                    if column == "fields":
                        if allowed_custom is not None:
                            value = {k: v for k, v in value.items() if k in allowed_custom}
                        changes["fields"] = value
                    elif column in update_columns:
                        changes[column] = value
            update_ids.append(contact_id)
            update_rows.append(changes)

        insert_rows: list[dict] = []
        insert_texts: list[str | None] = []
        insert_groups: list[list[int]] = []
        for indices in new_groups:
            merged = parsed_rows[indices[0]] if len(indices) == 1 else None
            text = None
            if merged is None or "id" in merged:
                merged = _merge([parsed_rows[i] for i in indices])
                merged.pop("id", None)
            else:
                text = prepared.new_texts.get(indices[0])
            # A row formatted ahead has passed these checks.
            errors = _new_contact_checks(merged, custom_fields) if text is None else None
            if errors:
                fail(indices, errors_reason(errors))
                continue
            insert_rows.append(merged)
            insert_texts.append(text)
            insert_groups.append(indices)

        new_ids = _insert_new(cursor, insert_rows, insert_texts, meanwhile) if insert_rows else []
        for contact_id, indices in zip(new_ids, insert_groups, strict=True):
            if len(indices) == 1:
                row_contact[indices[0]] = contact_id
            else:
                row_contact.update(dict.fromkeys(indices, contact_id))
        updated = (
            _update_existing(
                cursor, update_ids, update_rows, restore=restore, live=live, meanwhile=meanwhile
            )
            if update_rows
            else set()
        )
        for contact_id in update_ids:
            indices = by_contact[contact_id]
            if contact_id in updated:
                row_contact.update(dict.fromkeys(indices, contact_id))
            else:
                fail(
                    indices,
                    f"contact {contact_id} was deleted; send restoreDeleted=true to restore it",
                )

        contact_ids = list(dict.fromkeys(row_contact[i] for i in sorted(row_contact)))
        _memberships_add(add_to, contact_ids)
        _memberships_remove(remove_from, contact_ids)

        event_key = options.get("eventKeyForNewContacts")
        if event_key and new_ids:
            events_emit_many(
                type_key=event_key,
                events=[
                    {
                        "key_value": row.get("email") or row.get("phone") or "",
                        "params": {
                            "contactId": contact_id,
                            "EmailAddress": row.get("email") or "",
                            "SMS": row.get("phone") or "",
                        },
                        "contact_id": contact_id,
                    }
                    for contact_id, row in zip(new_ids, insert_rows, strict=True)
                ],
            )

        ImportFailure.objects.bulk_create(failures)
        # Increments, not assignments: CSV imports run several batches against one job.
        cursor.execute(
            f"""UPDATE {ImportJob._meta.db_table}
                   SET contact_ids = contact_ids || %s::bigint[],
                       created_count = created_count + %s,
                       updated_count = updated_count + %s,
                       failed_count = failed_count + %s,
                       processed = processed + %s
                 WHERE id = %s""",
            [
                int_array_literal(contact_ids if record_contact_ids else []),
                len(new_ids),
                len(updated),
                len(failures),
                prepared.processed,
                job.pk,
            ],
        )
    return contact_ids


# --- import jobs -------------------------------------------------------------------------


@transaction.atomic
def import_job_start(
    *,
    contacts: list[dict],
    options: dict,
    created_by=None,
    body_text: str | None = None,
    unstorable: dict[int, tuple[FieldError, object]] | None = None,
) -> ImportJob:
    """Store the request, report rows failing shape checks, enqueue the import on commit.

    `body_text` is the JSON request body as received, whose "contacts" are `contacts`: it is
    stored as it is, with the positions of the rows failing shape checks, instead of the
    parsed contacts written out again (a few µs a contact in json.dumps).

    `unstorable`: rows holding text PostgreSQL cannot store (NUL, a lone UTF-16 surrogate),
    found by the API edge, by index → (the field and problem, the row as it can be stored
    in the report). Each fails alone; the body text then cannot be stored as it is."""
    from contacts.tasks import run_import_job

    unstorable = unstorable or {}
    failures: list[tuple[int, str, object]] = []
    for index, raw in enumerate(contacts):
        errors = contact_shape_errors(raw)
        if index in unstorable:
            error, raw = unstorable[index]
            errors = [*errors, error]
        if errors:
            failures.append((index, errors_reason(errors), raw))
    if unstorable:
        body_text = None
    if body_text is not None:
        payload = JsonText(
            f'{{"options": {json.dumps(options)}, '
            f'"skipped": {json.dumps([index for index, _, _ in failures])}, '
            f'"request": {body_text}}}'
        )
    else:
        skipped = {index for index, _, _ in failures}
        stored = [None if index in skipped else raw for index, raw in enumerate(contacts)]
        payload = {"contacts": stored, "options": options}
    job = ImportJob.objects.create(
        kind="api",
        payload=payload,
        total=len(contacts),
        processed=len(failures),
        failed_count=len(failures),
        created_by=created_by,
    )
    ImportFailure.objects.bulk_create(
        ImportFailure(
            job=job,
            index=index,
            reason=reason,
            data=raw if isinstance(raw, dict) else {"value": raw},
        )
        for index, reason, raw in failures
    )
    transaction.on_commit(lambda: run_import_job.delay(job.pk))
    return job


def import_job_run(*, job_id: int) -> None:
    """Run a stored API import once. Safe to call twice: a finished job is left alone."""
    claimed = ImportJob.objects.filter(
        pk=job_id, status__in=[ImportStatus.STARTED, ImportStatus.IMPORTING]
    ).update(status=ImportStatus.IMPORTING)
    if not claimed:
        return
    try:
        with gc_paused(), transaction.atomic():
            # The row lock makes a second delivery of the task wait, then see FINISHED.
            job = ImportJob.objects.select_for_update().get(pk=job_id)
            if job.status != ImportStatus.IMPORTING:
                return
            payload = job.payload or {}
            contacts_upsert_batch(
                contacts=_job_contacts(payload), options=payload.get("options", {}), job=job
            )
            ImportJob.objects.filter(pk=job_id).update(
                status=ImportStatus.FINISHED, finished_at=timezone.now()
            )
            # Freed while the collector is paused: alive when it resumes, the decoded
            # contacts would all be scanned by its first pass (a few ms a batch).
            del job, payload
    except ContactError as exc:
        _job_fail(job_id, str(exc))
    except Exception as exc:
        logger.exception("import job %s failed", job_id)
        _job_fail(job_id, f"internal error: {type(exc).__name__}")


def _job_contacts(payload: dict):
    """The stored contacts, None for those the request already reported as failed."""
    if "request" not in payload:
        return payload.get("contacts", [])
    contacts = payload["request"]["contacts"]
    for index in payload["skipped"]:
        contacts[index] = None
    return contacts


def _job_fail(job_id: int, description: str) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportStatus.ERROR, description=description, finished_at=timezone.now()
    )
