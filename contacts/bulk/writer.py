"""The batch writer: a batch's lookups, inserts and updates of contacts, in a fixed number of
statements whatever its size (contacts.bulk.upsert decides what to write).

New contacts and changed columns travel by COPY; the matching query, the COPY and the UPDATE
may run in pipeline mode while the caller works (contacts.bulk.pipeline).
"""

# The SQL below interpolates only table and column names defined in this module; every value
# goes through parameters.
# ruff: noqa: S608

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

from contacts.bulk.copy import (
    copy_line,
    copy_payload,
    int_array_literal,
    json_text,
    text_array_literal,
)
from contacts.bulk.pipeline import Meanwhile, fetch_rows
from contacts.models import ContactSource
from contacts.validation import PERSONAL_DATA_BLANKS, WRITABLE_COLUMNS, fields_merge

_TABLE = "contacts_contact"


def _lookup(
    cursor,
    column_sql: str,
    array: str,
    params_before: list | None = None,
    meanwhile: Meanwhile | None = None,
    where: str = "",
) -> list[tuple]:
    """(value, id of the contact to update, whether it is live) for the values in `array`
    (a literal, see lookup_arrays), among contacts meeting `where` (more SQL conditions):
    live before deleted, then oldest.

    An indexed column is probed value by value (a lateral subquery per value, LIMIT 1):
    given `column = ANY(array)` of a chunk's ten thousand values, the planner reads every
    contact instead once the table is a few hundred thousand rows, so each chunk of a large
    import cost a scan of all the contacts stored before it. Unindexed `fields->>key`
    (dedupeOn=fieldId) is read in one scan, filtered by the array."""
    if params_before:  # an expression over a parameter: fields->>%s
        return fetch_rows(
            cursor,
            f"""SELECT DISTINCT ON (k) k, id, deleted_at IS NULL FROM (
                    SELECT {column_sql} AS k, id, deleted_at FROM {_TABLE}
                     WHERE {column_sql} = ANY(%s::text[])
                ) AS m ORDER BY k, (deleted_at IS NOT NULL), id""",
            [*params_before, *params_before, array],
            meanwhile,
        )
    array_type = "bigint" if column_sql == "id" else "text"
    return fetch_rows(
        cursor,
        f"""SELECT k, m.id, m.live FROM unnest(%s::{array_type}[]) AS k,
                LATERAL (SELECT id, deleted_at IS NULL AS live FROM {_TABLE}
                          WHERE {column_sql} = k{where}
                          ORDER BY deleted_at IS NOT NULL, id LIMIT 1) AS m""",
        [array],
        meanwhile,
    )


def lookup_arrays(groups: dict, parsed_rows: dict, dedupe_on: str) -> dict[str, str]:
    """The batch's match keys by kind ("ext", "email", …), as the array literal each kind's
    lookup takes."""
    wanted = {key for key in groups if key[0] != "row"}
    if dedupe_on == "email_or_sms":
        # A row matched by email falls back to its phone when no contact has that email,
        # and then only to a contact without an email (see _email_rows_matched_by_phone).
        wanted |= {
            ("bare_phone", parsed_rows[ix[0]]["phone"])
            for key, ix in groups.items()
            if key[0] == "email" and parsed_rows[ix[0]].get("phone")
        }
    by_kind: dict[str, list] = {}
    for kind, value in wanted:
        by_kind.setdefault(kind, []).append(value)
    # Sorted, so the lookup walks its index in order.
    return {
        kind: int_array_literal(sorted(values))
        if kind == "id"
        else text_array_literal(sorted(values))
        for kind, values in by_kind.items()
    }


# Conditions a kind's lookup adds: a phone whose contact has no email yet.
_LOOKUP_WHERE = {"bare_phone": " AND email = ''"}

_LOOKUP_COLUMNS = {
    "ext": "external_customer_id",
    "email": "email",
    "phone": "phone",
    "bare_phone": "phone",
    "id": "id",
    # No index serves ->> on one key; a seq scan per batch is the price of fieldId.
    "field": "fields->>%s",
}


def existing_find(
    cursor, arrays: dict[str, str], field_key: str | None, meanwhile: Meanwhile | None = None
) -> tuple[dict, set[int]]:
    """(kind, value) → contact id, one query per kind of key in the batch (lookup_arrays);
    and which of those contacts were live."""
    found: dict = {}
    live: set[int] = set()
    for kind, array in arrays.items():
        before = [field_key] if kind == "field" else None
        for value, contact_id, is_live in _lookup(
            cursor, _LOOKUP_COLUMNS[kind], array, before, meanwhile, _LOOKUP_WHERE.get(kind, "")
        ):
            found[(kind, value)] = contact_id
            if is_live:
                live.add(contact_id)
    return found, live


_JSONB_COLUMNS = ("extra_channels", "fields")


# Rows travel by COPY, in its text format written here (copy_line): PostgreSQL reads them as
# it reads a file, where an INSERT … SELECT from a JSON document (or 14 parameter arrays)
# made Python build and PostgreSQL parse the batch twice over.
_UPDATE_TABLE = "contacts_upsert_rows"


# An update row's columns it does not change: NULL, ignored through its `given` mask.
_ABSENT = dict.fromkeys(WRITABLE_COLUMNS)


_EMPTY_JSON: dict[type, str] = {list: "[]", dict: "{}"}


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


def _copy_values(row: dict, defaults: dict, shape: _Shape = _ALL) -> list:
    """A row's columns of `shape` (`defaults` for those it lacks) as COPY takes them: JSON
    columns as JSON text, tags as an array literal (most rows have no tags, extra channels
    or custom values), None as NULL."""
    values = list(shape.values_of({**defaults, **row}))
    for position in shape.json_positions:
        value = values[position]
        if value is not None:
            empty = _EMPTY_JSON.get(type(value)) if not value else None
            values[position] = empty if empty is not None else json_text(value)
    tags_at = shape.tags_position
    if tags_at is not None and values[tags_at] is not None:
        values[tags_at] = text_array_literal(values[tags_at]) if values[tags_at] else "{}"
    return values


def _lean(row: dict) -> bool:
    return not row.get("tags") and not row.get("extra_channels")


def new_contact_text(row: dict) -> str:
    """A new contact's writable columns as COPY text, in the _LEAN shape when it fits (see
    contacts_insert)."""
    shape = _LEAN if _lean(row) else _ALL
    return copy_line(_copy_values(_without_null_fields(row), _NEW_DEFAULTS, shape))


# A new contact starts with every personal field blank.
_NEW_DEFAULTS = PERSONAL_DATA_BLANKS


def contacts_insert(
    cursor, rows: list[dict], texts: list[str | None], meanwhile: Meanwhile | None = None
) -> list[int]:
    """COPY new contacts in → their ids, in `rows` order. `texts[i]` is rows[i] already as
    new_contact_text gives it (a file import formats rows ahead, while the server works), or
    None to format it here."""
    # Ids drawn up front: the caller maps rows to ids without trusting RETURNING order. now()
    # is the transaction's timestamp, what the columns' now() would have stored. The sequence
    # is named once (a sub-select), not looked up in the catalog again for every id.
    [(ids, now)] = fetch_rows(
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
            copy_payload(cursor, _TABLE, columns, "".join(lines), meanwhile)
    return ids


def _without_null_fields(row: dict) -> dict:
    fields = row.get("fields")
    if fields and None in fields.values():
        return {**row, "fields": fields_merge({}, fields)}
    return row


def contacts_update_changed(
    cursor,
    ids: list[int],
    changes: list[dict],
    *,
    restore: bool,
    live: set[int],
    meanwhile: Meanwhile | None = None,
    add_tags: bool = False,
) -> set[int]:
    """Write each contact's changed columns (a dict per contact; custom values merge into the
    stored ones, None removing one) → the ids matched: written, or `live` (when looked up)
    and already holding those values. A deleted contact is written (and restored) only with
    `restore`; the caller reports the others. With `add_tags` a row's tags join the stored
    ones instead of replacing them.

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
    copy_payload(cursor, _UPDATE_TABLE, ("id", "given", *WRITABLE_COLUMNS), payload)
    # A contact the row would leave as it is stays unwritten: a new row version costs an
    # entry in every index, and re-importing a list most of which is already stored is the
    # common case. Such a contact is still matched (reported as updated, added to groups) if
    # it was live when looked up; its updated_at keeps when its data last changed.
    # The scratch table has no statistics, so a plain join on id is planned as a scan of
    # every contact, once per batch; the id list narrows it. It goes as a literal array, not a
    # subquery: a constant list is probed through a hash table, where a subquery's array is
    # searched element by element for every row the planner reads.
    rows = fetch_rows(
        cursor,
        f"""UPDATE {_TABLE} AS c SET {_UPDATE_SETS[add_tags]}, deleted_at = NULL,
                   updated_at = now()
              FROM {_UPDATE_TABLE} AS v
             WHERE c.id = v.id AND c.id = ANY(%s::bigint[])
               AND (c.deleted_at IS NULL OR %s)
               AND NOT ({_UNCHANGED[add_tags]})
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


def _unchanged(bit: int, column: str, add_tags: bool = False) -> str:
    """SQL: the contact's `column` already holds what row `v` would write there."""
    if column == "tags" and add_tags:
        same = "v.tags <@ c.tags"
    elif column != "fields":
        same = f"c.{column} IS NOT DISTINCT FROM v.{column}"
    else:
        # Custom values are scalars: containment of the row's values, and none of the keys
        # it removes (null) present, is the merge leaving the object as it is.
        same = """(jsonb_typeof(c.fields) = 'object' AND c.fields @> jsonb_strip_nulls(v.fields)
                   AND NOT EXISTS (SELECT FROM jsonb_each(v.fields) AS f
                                    WHERE f.value = 'null'::jsonb AND c.fields ? f.key))"""
    return f"(v.given & {1 << bit} = 0 OR {same})"


def _new_value(column: str, add_tags: bool = False) -> str:
    if column == "tags" and add_tags:
        # The stored tags, then the row's new ones, in the row's order.
        return "c.tags || ARRAY(SELECT t FROM unnest(v.tags) AS t WHERE NOT t = ANY(c.tags))"
    if column != "fields":
        return f"v.{column}"
    # validation.fields_merge in SQL: the stored object, overwritten key by key, without the
    # keys set to null (top level only, as fields_merge).
    return """(SELECT coalesce(jsonb_object_agg(f.key, f.value), '{}'::jsonb)
                 FROM jsonb_each(CASE jsonb_typeof(c.fields) WHEN 'object' THEN c.fields
                                 ELSE '{}'::jsonb END || v.fields) AS f
                WHERE f.value <> 'null'::jsonb)"""


# By add_tags: False replaces a contact's tags, True adds to them.
_UPDATE_SETS = {
    add_tags: ", ".join(
        f"{column} = CASE WHEN v.given & {1 << bit} <> 0 "
        f"THEN {_new_value(column, add_tags)} ELSE c.{column} END"
        for bit, column in enumerate(WRITABLE_COLUMNS)
    )
    for add_tags in (False, True)
}


_UNCHANGED = {
    add_tags: " AND ".join(
        [
            *(_unchanged(bit, column, add_tags) for bit, column in enumerate(WRITABLE_COLUMNS)),
            "c.deleted_at IS NULL",
        ]
    )
    for add_tags in (False, True)
}
