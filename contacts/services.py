"""Contact writes: subscribe, add/update one, update, delete and restore.

Bulk writes (POST /v1/contacts, CSV files) are in contacts.bulk; starting an import in
contacts.imports; segments, custom fields and the unsubscribed list in their own modules.
"""

# The SQL below interpolates only table names defined in this app; every value goes
# through parameters.
# ruff: noqa: S608

import hashlib
import json
from collections.abc import Collection

from django.db import connection, transaction
from django.utils import timezone

from config.core.events import event_emit
from contacts.address_locks import contact_addresses_lock
from contacts.custom_fields import custom_fields_load
from contacts.errors import ContactConflict, ContactError, SubscribeRepeated
from contacts.models import Contact, ContactSource, SegmentMembership, SubscribeRequest
from contacts.privacy import contact_erase_everywhere, person_of
from contacts.segment_members import contacts_mark_changed
from contacts.segments import groups_static_ids, memberships_add
from contacts.tasks import send_confirmation
from contacts.validation import (
    PERSONAL_DATA_BLANKS,
    contact_parse,
    fields_merge,
    new_contact_errors,
)

SUBSCRIBE_REPEAT_SECONDS = 60


def _parse_or_raise(data: dict, custom_fields, prefix: str = "") -> dict:
    parsed, errors = contact_parse(data, custom_fields=custom_fields)
    if parsed is None:  # exactly when there are errors
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
    # Email is not unique, so two concurrent subscribes of a new address would both create;
    # the address locks make the second wait and then find the first's contact.
    with connection.cursor() as cursor:
        contact_addresses_lock(cursor, (email, phone))
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
    segment_ids = groups_static_ids(names=groups, create=True)
    contact = _find_by_channels(email=parsed.get("email"), phone=parsed.get("phone"))
    created = contact is None
    if contact is None:
        errors = new_contact_errors(parsed, custom_fields)
        if errors:
            raise ContactError([(f"contact.{field}", problem) for field, problem in errors])
        contact = Contact(confirmed=False, source=ContactSource.SUBSCRIBE_FORM)
    _apply(contact, parsed)
    _check_external_id(contact)
    contact.save()
    memberships_add(segment_ids=segment_ids, contact_ids=[contact.pk])
    contacts_mark_changed(contact_ids=[contact.pk])

    event_key = "subscribeFromApi" if created else "subscribeUpdateFromApi"
    if form_type:
        event_key = f"{event_key}-{form_type}"
    params: dict[str, object] = {"ContactId": contact.pk}
    if contact.email:
        params["EmailAddress"] = contact.email
    event_emit(type_key=event_key, key_value=str(contact.pk), params=params, contact_id=contact.pk)
    if not contact.confirmed and contact.email:
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
    if contact is None:
        errors = new_contact_errors(parsed, custom_fields)
        if errors:
            raise ContactError(errors)
        contact = Contact(confirmed=True, confirmed_at=timezone.now(), source=source)
    _apply(contact, parsed)
    _check_external_id(contact)
    contact.save()
    contacts_mark_changed(contact_ids=[contact.pk])
    return contact, created


@transaction.atomic
def contact_update(*, contact: Contact, data: dict, clear: Collection[str] = ()) -> Contact:
    """Update one known contact with what the body carries; never creates, ignores body id.

    `clear` names channels to remove ("email", "phone"), which the eSputnik v1 API's contact format
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
    contacts_mark_changed(contact_ids=[contact.pk])
    return contact


_CLEARABLE_CHANNELS = frozenset({"email", "phone"})


@transaction.atomic
def contact_delete(*, contact: Contact, erase: bool) -> Contact:
    """Soft delete (restorable); erase=True also wipes personal data and group memberships,
    here and wherever another table copied them (contacts.privacy), in this transaction."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.deleted_at is None:
        contact.deleted_at = timezone.now()
    person = person_of(contact) if erase else None
    if erase:
        for column, blank in PERSONAL_DATA_BLANKS.items():
            setattr(contact, column, blank.copy() if isinstance(blank, (list, dict)) else blank)
        SegmentMembership.objects.filter(contact=contact).delete()
    contact.save()
    # A deleted contact leaves its dynamic segments (with a segmentLeft event each).
    contacts_mark_changed(contact_ids=[contact.pk])
    if person is not None:
        contact_erase_everywhere(contact=contact, person=person)
    return contact


@transaction.atomic
def contact_restore(*, contact: Contact) -> Contact:
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.deleted_at is not None:
        contact.deleted_at = None
        contact.save(update_fields=["deleted_at", "updated_at"])
        contacts_mark_changed(contact_ids=[contact.pk])
    return contact
