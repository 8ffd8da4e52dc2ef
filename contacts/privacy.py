"""What the contacts app keeps of a person beyond the contact row: erased and exported.

contact_delete(erase=True) blanks the contact row; this module erases the copies in the
app's other tables (import requests and their failed rows, the unsubscribed and suppression
lists), then runs the erasers of the apps above through config.core.privacy. The export
starts here too: the contact's own sections, then every other app's.

Decisions:
- The unsubscribed and suppression lists keep, instead of an erased address, a SHA-256 of it
  (config.core.privacy.address_digest), as Mailchimp and Brevo keep a suppression after a
  deletion: the person asked never to be mailed, and erasing must not undo that. The send
  paths compare addresses with the stored digest too (pipeline, contacts.suppression).
- An import request keeps its other rows; only the mentions of the person are redacted.
"""

# The SQL below interpolates only table names of this app; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from config.core.privacy import (
    REDACTED,
    Person,
    address_digest,
    person_erase_everywhere,
    person_export_sections,
    privacy_register,
    run_update,
)
from contacts.models import (
    ChannelType,
    Contact,
    CustomField,
    ImportFailure,
    ImportJob,
    Suppression,
    Unsubscribed,
)
from contacts.validation import PERSONAL_DATA_BLANKS

# How much of the export is handed to the web server at a time.
EXPORT_CHUNK_CHARS = 64 * 1024


def person_of(contact: Contact) -> Person:
    """The values that identify the contact elsewhere, read before its row is blanked."""
    messenger_ids = {
        str(entry.get("value") or "")
        for entry in contact.extra_channels or []
        if isinstance(entry, dict)
    }
    first, last = contact.first_name.strip(), contact.last_name.strip()
    return Person(
        contact_id=contact.pk,
        emails=frozenset({contact.email.strip().lower()} - {""}),
        phones=frozenset({contact.phone.strip()} - {""}),
        external_ids=frozenset({(contact.external_customer_id or "").strip()} - {""}),
        messenger_ids=frozenset(messenger_ids - {""}),
        names=frozenset({first, last, f"{first} {last}".strip()} - {""}),
    )


def contact_erase_everywhere(*, contact: Contact, person: Person) -> dict[str, int]:
    """Erase the person's copies in every app and log that it happened (without what was
    erased); `contact` is the already blanked row. Runs in the caller's transaction."""
    counts = person_erase_everywhere(person)
    LogEntry.objects.log_create(
        contact,
        force_log=True,
        action=LogEntry.Action.DELETE,
        changes={},
        additional_data={"erased": counts},
    )
    return counts


# --- the contacts app's own tables -----------------------------------------------------------


def contacts_erase(person: Person) -> Mapping[str, int]:
    pattern = person.pattern()
    whole = person.pattern(names=True)
    emails = sorted(person.emails)
    phones = sorted(person.phones)
    return {
        "auditlog_logentry (contact)": _contact_audit_erase(person),
        # A failed row that names the person is the person's row: its names go too.
        "contacts_importfailure": run_update(
            f"""UPDATE {ImportFailure._meta.db_table}
                   SET data = herald_redact(data, %s), reason = regexp_replace(reason, %s, %s, 'gi')
                 WHERE data::text ~* %s OR reason ~* %s""",
            [whole, whole, REDACTED, pattern, pattern],
        ),
        # A request holds many people: only the records that name the person lose the names.
        "contacts_importjob": run_update(
            f"""UPDATE {ImportJob._meta.db_table}
                   SET payload = herald_redact(payload::jsonb, %s, %s)::json,
                       description = regexp_replace(description, %s, %s, 'gi'),
                       source_url = regexp_replace(source_url, %s, %s, 'gi')
                 WHERE payload::text ~* %s OR description ~* %s OR source_url ~* %s""",
            [pattern, person.names_pattern(), pattern, REDACTED, pattern, REDACTED] + [pattern] * 3,
        ),
        "contacts_unsubscribed": _unsubscribed_digest(emails),
        "contacts_suppression": _suppressions_digest(emails + phones, whole),
    }


def _contact_audit_erase(person: Person) -> int:
    """The contact's own audit entries lose the values of its personal columns (the names of
    the fields that changed, when and by whom stay); its erasing save is among them."""
    erased_pair = json.dumps([REDACTED, REDACTED])
    return run_update(
        f"""UPDATE {LogEntry._meta.db_table} SET
                changes = (SELECT coalesce(jsonb_object_agg(
                                      k, CASE WHEN k = ANY(%s) THEN %s::jsonb ELSE v END),
                                  '{{}}'::jsonb)
                             FROM jsonb_each(coalesce(changes, '{{}}'::jsonb)) AS c(k, v)),
                changes_text = '', serialized_data = NULL, object_repr = %s
            WHERE content_type_id = %s AND object_pk = %s""",
        [
            list(PERSONAL_DATA_BLANKS),
            erased_pair,
            f"Contact {person.contact_id}",
            ContentType.objects.get_for_model(Contact).pk,
            str(person.contact_id),
        ],
    )


def _unsubscribed_digest(emails: list[str]) -> int:
    """Replace the person's addresses on the unsubscribed list by their digests. Raw SQL:
    the audit log must not record the address it is told to forget."""
    if not emails:
        return 0
    table = Unsubscribed._meta.db_table
    rows = [(email, address_digest(email)) for email in emails]
    return run_update(
        f"""WITH erased AS (
                DELETE FROM {table} u USING unnest(%s::text[], %s::text[]) AS e(email, digest)
                 WHERE lower(u.email) = e.email
             RETURNING e.digest, u.reason, u.created_at)
            INSERT INTO {table} (email, reason, created_at)
            SELECT digest, reason, created_at FROM erased
            ON CONFLICT (email) DO NOTHING""",
        [[email for email, _ in rows], [digest for _, digest in rows]],
    )


def _suppressions_digest(addresses: list[str], pattern: str) -> int:
    """Suppressions of the person's addresses keep their reason and history under the
    address's digest, without the person's names in their words; an active one whose digest
    is already in force merges into it."""
    if not addresses:
        return 0
    table = Suppression._meta.db_table
    digests = [address_digest(address) for address in addresses]
    keys = [address.lower() for address in addresses]
    run_update(
        f"""DELETE FROM {table} s USING unnest(%s::text[], %s::text[]) AS e(address, digest)
             WHERE lower(s.address) = e.address AND s.lifted_at IS NULL
               AND EXISTS (SELECT 1 FROM {table} d WHERE d.channel = s.channel
                            AND d.address = e.digest AND d.lifted_at IS NULL)""",
        [keys, digests],
    )
    return run_update(
        f"""UPDATE {table} s SET address = e.digest,
                   detail = regexp_replace(s.detail, %s, %s, 'gi'),
                   source = regexp_replace(s.source, %s, %s, 'gi')
              FROM unnest(%s::text[], %s::text[]) AS e(address, digest)
             WHERE lower(s.address) = e.address""",
        [pattern, REDACTED, pattern, REDACTED, keys, digests],
    )


# --- the export -----------------------------------------------------------------------------


def contact_export_stream(*, contact: Contact) -> Iterator[str]:
    """Everything Herald holds about the contact as one JSON document, written piece by
    piece: each app's sections (config.core.privacy) in turn, and an unbounded section (a
    contact's deliveries, events) row by row as the database hands them over, so memory
    stays flat whatever the contact's history. The export is logged in the audit log before
    the first byte (an export that breaks off midway was still an export)."""
    LogEntry.objects.log_create(
        contact,
        force_log=True,
        action=LogEntry.Action.ACCESS,
        changes={},
        additional_data={"export": "personal data"},
    )
    return _buffered(_export_pieces(contact.pk))


def contact_export_filename(contact: Contact) -> str:
    return f"contact-{contact.pk}-export.json"


def _buffered(pieces: Iterator[str]) -> Iterator[str]:
    """Pieces joined into chunks of about EXPORT_CHUNK_CHARS: one write per chunk, not per
    delivery."""
    chunk: list[str] = []
    size = 0
    for piece in pieces:
        chunk.append(piece)
        size += len(piece)
        if size >= EXPORT_CHUNK_CHARS:
            yield "".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield "".join(chunk)


def _export_pieces(contact_id: int) -> Iterator[str]:
    encoder = DjangoJSONEncoder(ensure_ascii=False)
    yield "{" + f'"exportedAt": {encoder.encode(timezone.now())}'
    for name, value in person_export_sections(contact_id):
        yield f", {encoder.encode(name)}: "
        if isinstance(value, Iterator):
            yield from _array_pieces(value, encoder)
        else:
            yield encoder.encode(value)
    yield "}\n"


def _array_pieces(rows: Iterator, encoder: DjangoJSONEncoder) -> Iterator[str]:
    yield "["
    for position, row in enumerate(rows):
        yield ("," if position else "") + encoder.encode(row)
    yield "]"


def contacts_export(contact_id: int) -> Mapping[str, object]:
    contact = Contact.objects.get(pk=contact_id)
    # Contact.fields is keyed by the custom field's id as text.
    field_names = {str(pk): name for pk, name in CustomField.objects.values_list("id", "name")}
    emails = [contact.email] if contact.email else []
    addresses = [a for a in (contact.email, contact.phone) if a]
    addresses += [address_digest(a) for a in addresses]
    return {
        "contact": {
            "id": contact.pk,
            "firstName": contact.first_name,
            "lastName": contact.last_name,
            "email": contact.email,
            "phone": contact.phone,
            "externalCustomerId": contact.external_customer_id,
            "address": {
                "region": contact.region,
                "town": contact.town,
                "address": contact.address,
                "postcode": contact.postcode,
            },
            "languageCode": contact.language_code,
            "timeZone": contact.time_zone,
            "source": contact.source,
            "createdAt": contact.created_at,
            "updatedAt": contact.updated_at,
            "deletedAt": contact.deleted_at,
        },
        "channels": _channels(contact),
        "fields": [
            {"id": key, "name": field_names.get(key), "value": value}
            for key, value in sorted((contact.fields or {}).items())
        ],
        "tags": list(contact.tags or []),
        "segments": list(contact.segments.order_by("name").values("id", "name")),
        "optin": {"confirmed": contact.confirmed, "confirmedAt": contact.confirmed_at},
        "unsubscribed": list(
            Unsubscribed.objects.filter(email__in=emails).values("email", "reason", "created_at")
        ),
        "suppressions": list(
            Suppression.objects.filter(address__in=addresses).values(
                "channel", "address", "reason", "detail", "source", "created_at", "lifted_at"
            )
        ),
        "importFailures": _import_failures(contact),
    }


def _channels(contact: Contact) -> list[dict]:
    channels = []
    if contact.email:
        channels.append({"type": ChannelType.EMAIL.value, "value": contact.email})
    if contact.phone:
        channels.append({"type": ChannelType.SMS.value, "value": contact.phone})
    channels += [entry for entry in contact.extra_channels or [] if isinstance(entry, dict)]
    return channels


def _import_failures(contact: Contact) -> Iterator[dict]:
    """Rows of imports that failed and name the contact's email or phone."""
    needles = [a for a in (contact.email, contact.phone) if a]
    if not needles:
        return iter(())
    mentions = Q()
    for needle in needles:
        mentions |= Q(text__icontains=needle)
    rows = ImportFailure.objects.annotate(text=Cast("data", TextField())).filter(mentions)
    return (
        {"importId": str(job), "index": index, "reason": reason, "data": data}
        for job, index, reason, data in rows.order_by("pk")
        .values_list("job__session_id", "index", "reason", "data")
        .iterator(chunk_size=500)
    )


def register() -> None:
    privacy_register(app="contacts", eraser=contacts_erase, exporter=contacts_export)
