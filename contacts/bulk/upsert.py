"""The bulk upsert that POST /v1/contacts and CSV imports share: validate, dedupe and match a
batch of eSputnik v1 Contact objects, then write it through the batch writer.

The rules of a batch live here (dedupeOn, contactFields and customFieldsIDs, restoreDeleted,
groups, the event for new contacts, the failure report); contacts.bulk.writer holds the SQL.
"""

# The SQL below interpolates only table names; every value goes through parameters.
# ruff: noqa: S608

import json
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction

from config.core.events import events_emit_many
from contacts.address_locks import contact_addresses_lock
from contacts.bulk.copy import int_array_literal
from contacts.bulk.gc import gc_paused
from contacts.bulk.pipeline import Meanwhile
from contacts.bulk.writer import (
    contacts_insert,
    contacts_update_changed,
    existing_find,
    lookup_arrays,
    new_contact_text,
)
from contacts.custom_fields import custom_fields_load
from contacts.errors import ContactError
from contacts.models import ImportFailure, ImportJob
from contacts.segment_members import contacts_mark_changed
from contacts.segments import groups_static_ids, memberships_add, memberships_remove
from contacts.validation import (
    STANDARD_FIELDS,
    WRITABLE_COLUMNS,
    contact_parse,
    errors_reason,
    import_options_parse,
    new_contact_errors,
)

# (row position, custom fields) → the row's parsed columns, or None: see contacts_upsert_batch.
FastParse = Callable[[int, dict], dict | None]


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


def _email_rows_matched_by_phone(
    groups: dict, parsed_rows: dict, found: dict, dedupe_on: str
) -> dict[tuple, int]:
    """dedupeOn=email_or_sms: the email groups no contact has the email of, matched by phone
    instead → the contact each updates.

    Only a contact without an email (found under "bare_phone") takes an email this way, and
    only the first such group in row order takes it: a contact with another email is another
    person, so a second email with the same phone makes its own contact, as the same rows do
    when they are new in one batch. The rule then gives the same contacts wherever a file's
    chunks end: once the first row has given that contact its email, a later chunk's row with
    another email no longer finds it. The group's first row decides, as it would alone."""
    if dedupe_on != "email_or_sms":
        return {}
    matched: dict[tuple, int] = {}
    taken: set[int] = set()
    for key, indices in groups.items():
        if key[0] != "email" or key in found:
            continue
        contact_id = found.get(("bare_phone", parsed_rows[indices[0]].get("phone")))
        if contact_id is not None and contact_id not in taken:
            taken.add(contact_id)
            matched[key] = contact_id
    return matched


def _phone_rows_joined(new_keyed: list[tuple[tuple, list[int]]], parsed_rows: dict) -> list:
    """dedupeOn=email_or_sms: the new contacts' row groups, where a group matched by phone
    (its rows have no email) joins the first new group matched by email whose rows carry that
    phone. Stored, that contact is what the phone rows match (the oldest with the phone), so
    the batch makes one contact of them, as importing the same rows again would."""
    groups = [list(indices) for _, indices in new_keyed]  # copies: a retry reuses the batch
    # phone → position of the first email group whose rows carry that one phone (with two,
    # the stored contact keeps the last, and the phone rows would not match it)
    owner: dict[str, int] = {}
    for position, (key, indices) in enumerate(new_keyed):
        if key[0] == "email":
            phones = {parsed_rows[index].get("phone") for index in indices} - {None, ""}
            if len(phones) == 1:
                owner.setdefault(phones.pop(), position)
    joined = set()
    for position, (key, indices) in enumerate(new_keyed):
        if key[0] == "phone" and key[1] in owner:
            groups[owner[key[1]]].extend(indices)
            joined.add(position)
    # Rows merge in row order, as they would one after another.
    return [sorted(group) for position, group in enumerate(groups) if position not in joined]


def _update_columns(contact_fields: list[str] | None) -> set[str]:
    if contact_fields is None:
        return set(WRITABLE_COLUMNS)
    columns = {"fields"}
    for name in contact_fields:
        columns.update(STANDARD_FIELDS[name])
    return columns


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
    # kind of match key → the lookup's array literal (lookup_arrays)
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
                if parsed is None:  # exactly when there are errors
                    processed += 1
                    reason = errors_reason(errors)
                    failures.append(ImportFailure(job=job, index=index, reason=reason, data=raw))
                    continue
            processed += 1
            parsed_rows[index] = parsed
            key = _match_key(parsed, dedupe_on, field_key)
            groups.setdefault(key if key is not None else ("row", index), []).append(index)
            if format_new and "id" not in parsed and not new_contact_errors(parsed, custom_fields):
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
        lookup_arrays(groups, parsed_rows, dedupe_on),
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
    add_tags: bool = False,
) -> list[int]:
    """Validate, dedupe, match and write one batch (≤ a few thousand eSputnik v1 Contact objects);
    → the ids of the contacts it created or updated, in row order.

    `None` entries are rows already reported as failed (shape checks) and are skipped.
    Set-based: a fixed number of statements per batch whatever its size. Without
    `record_contact_ids` the caller stores the ids on the job itself (a file import does,
    once, instead of rewriting an ever longer array after every chunk). `fast_parse(position,
    custom_fields)` may give a row's parsed columns without building its Contact object, exactly
    as contact_parse would, or None to have contact_parse decide (and word the errors); then
    `contacts` may build its items on access, and only such rows and failed ones are read.
    A batch already `prepared` (contacts_batch_prepare) is only written.

    `meanwhile` is work to do while PostgreSQL is busy with the batch's matching query, its
    COPY and its UPDATE (see Meanwhile). Without `wait_for_flush` the commit does not wait
    for the WAL to reach the disk: a file import's chunks, whose job only finishes with a
    commit that does wait, and so flushes them all (the WAL is written in order).
    With `add_tags` a matched contact keeps its tags and gains the row's (a file import's
    tags column); otherwise the row's tags replace them (the API's).
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
                return _upsert_batch(
                    prepared, job, record_contact_ids, meanwhile, wait_for_flush, add_tags
                )
        except IntegrityError:
            # Another import created a contact with one of these externalCustomerIds after we
            # looked; the batch rolled back whole, and a second pass matches that contact.
            if attempt:
                raise
    raise AssertionError("unreachable: the second attempt returns or raises")


def _upsert_batch(
    prepared: PreparedBatch,
    job: ImportJob,
    record_contact_ids: bool,
    meanwhile: Meanwhile | None,
    wait_for_flush: bool,
    add_tags: bool = False,
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
    add_to = groups_static_ids(names=options["groupNames"], create=True)
    remove_from = groups_static_ids(names=options["groupNamesExclude"], create=False)

    def fail(indices: list[int], reason: str) -> None:
        failures.extend(
            ImportFailure(job=job, index=i, reason=reason, data=contacts[i - start_index])
            for i in indices
        )

    with connection.cursor() as cursor:
        if not wait_for_flush:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # Before looking: an import, an add or an order creating one of these addresses
        # meanwhile is waited for and then found, never doubled by a twin created here.
        contact_addresses_lock(
            cursor,
            (row.get(column) for row in parsed_rows.values() for column in ("email", "phone")),
        )
        found, live = existing_find(cursor, prepared.lookups, field_key, meanwhile)

        by_contact: dict[int, list[int]] = {}
        new_keyed: list[tuple[tuple, list[int]]] = []
        by_phone = _email_rows_matched_by_phone(groups, parsed_rows, found, dedupe_on)
        for key, indices in groups.items():
            contact_id = found.get(key) or by_phone.get(key)
            if contact_id is None:
                new_keyed.append((key, indices))
            else:
                # Two keys may reach one contact; its rows merge so one UPDATE row carries them.
                by_contact.setdefault(contact_id, []).extend(indices)
        if dedupe_on == "email_or_sms":
            new_groups = _phone_rows_joined(new_keyed, parsed_rows)
        else:
            new_groups = [indices for _, indices in new_keyed]

        update_ids: list[int] = []
        update_rows: list[dict] = []
        row_contact: dict[int, int] = {}
        # Without contactFields/customFieldsIDs a row changes every column it carries.
        every_column = allowed_custom is None and len(update_columns) == len(WRITABLE_COLUMNS)
        merged: dict | None
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
            errors = new_contact_errors(merged, custom_fields) if text is None else None
            if errors:
                fail(indices, errors_reason(errors))
                continue
            insert_rows.append(merged)
            insert_texts.append(text)
            insert_groups.append(indices)

        new_ids = (
            contacts_insert(cursor, insert_rows, insert_texts, meanwhile) if insert_rows else []
        )
        for contact_id, indices in zip(new_ids, insert_groups, strict=True):
            if len(indices) == 1:
                row_contact[indices[0]] = contact_id
            else:
                row_contact.update(dict.fromkeys(indices, contact_id))
        updated = (
            contacts_update_changed(
                cursor,
                update_ids,
                update_rows,
                restore=restore,
                live=live,
                meanwhile=meanwhile,
                add_tags=add_tags,
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
        memberships_add(segment_ids=add_to, contact_ids=contact_ids)
        memberships_remove(segment_ids=remove_from, contact_ids=contact_ids)
        contacts_mark_changed(contact_ids=contact_ids)

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
