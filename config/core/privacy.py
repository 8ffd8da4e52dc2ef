"""Privacy erasure and the per-person export, across every app that copies a person's data.

A person's address, phone and ids travel far beyond the contact row: the delivery ledger,
events, orders, import failures, provider webhooks, the audit log. Erasing starts in
`contacts`, which stands below the apps keeping most of those copies, so each app registers
here, when Django loads it, an eraser for its own tables and its sections of the export;
`contacts.privacy` runs them all in the erase's transaction.

Decisions:
- Rows are blanked or redacted, not deleted: a delivery, an order, an event still count in a
  campaign's figures and the revenue; what identifies the person goes.
- Free text and JSON that mention the person are redacted (each mention becomes
  "[erased]"), not emptied: a webhook or an import naming several people keeps the others.
- Rows are found by the person's identifiers (addresses, phone, external id, messenger ids),
  case-insensitively; names are redacted only in rows already tied to the person, since a
  first name alone identifies no one in somebody else's order.
- Every eraser is set-based: one UPDATE per table, whatever the number of rows.
- The audit log is redacted last, after the contact's own erasing save has been logged.
"""

# The SQL below interpolates only table names; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from auditlog.models import LogEntry
from django.contrib.admin.models import LogEntry as AdminLogEntry
from django.db import connection

REDACTED = "[erased]"
# Shorter names are left alone even in the person's own rows: "Al" would take "Also" with it.
NAME_MIN_LENGTH = 3
# A regular expression that matches nothing (a character neither space nor non-space).
NOTHING = r"[^\s\S]"
# The contact model, named as django_content_type names it (this floor imports no app).
CONTACT_MODEL = ("contacts", "contact")


def address_digest(address: str) -> str:
    """What suppression lists keep of an erased address: a SHA-256 of its normalised form
    (lower case, trimmed), so a send to the same address stays blocked without the address."""
    return "sha256:" + hashlib.sha256(address.strip().lower().encode()).hexdigest()


def address_digest_sql(address_sql: str) -> str:
    """address_digest in SQL, for set-based send paths (`address_sql` is an expression)."""
    return f"'sha256:' || encode(sha256(convert_to(lower(btrim({address_sql})), 'UTF8')), 'hex')"


@dataclass(frozen=True)
class Person:
    """Whom an erasure is about: the contact and the values that identify it elsewhere."""

    contact_id: int
    emails: frozenset[str]
    phones: frozenset[str]
    external_ids: frozenset[str]
    messenger_ids: frozenset[str]
    names: frozenset[str]

    @property
    def identifiers(self) -> frozenset[str]:
        return self.emails | self.phones | self.external_ids | self.messenger_ids

    def keys(self) -> list[str]:
        """The identifiers as a key column may hold them (as given and in lower case), for
        `column = ANY(%s)`, which an index on the column serves."""
        return sorted({v for value in self.identifiers for v in (value, value.lower())})

    def pattern(self, *, names: bool = False) -> str:
        """A case-insensitive PostgreSQL regular expression matching any mention of the
        person: each identifier as written, URL-encoded (a query string), and a phone without
        its "+"; with `names`, the person's names too."""
        needles = set()
        for value in self.identifiers:
            needles |= {value, quote(value, safe="")}
            if value in self.phones and value.startswith("+"):
                needles.add(value[1:])
        if names:
            needles |= {name for name in self.names if len(name) >= NAME_MIN_LENGTH}
        needles.discard("")
        # Longest first, so that "ann.lee@x.org" is replaced whole before "ann.lee" would be.
        # Python's escaping (a backslash before punctuation only) reads the same in
        # PostgreSQL's advanced regular expressions.
        ordered = sorted(needles, key=lambda needle: (-len(needle), needle))
        # A person with nothing to find (no identifiers) matches nothing, not everything.
        return "|".join(re.escape(needle) for needle in ordered) or NOTHING

    def names_pattern(self) -> str:
        """The person's names alone, for herald_redact's records that name the person."""
        names = sorted((n for n in self.names if len(n) >= NAME_MIN_LENGTH), key=len, reverse=True)
        return "|".join(re.escape(name) for name in names) or NOTHING


Eraser = Callable[[Person], Mapping[str, int]]
# A section of the export: name → JSON-able value, or an iterator of JSON-able rows that the
# export writes as an array as it reads them (deliveries, events: unbounded in number).
Exporter = Callable[[int], Mapping[str, object]]


class _Registry:
    def __init__(self) -> None:
        self.erasers: dict[str, Eraser] = {}
        self.exporters: dict[str, Exporter] = {}


_registry = _Registry()


def privacy_register(*, app: str, eraser: Eraser, exporter: Exporter) -> None:
    """Called from an app's `ready()`: how to erase and export what it keeps of a person.
    Registering the same app again replaces its entry (Django may call ready() twice)."""
    _registry.erasers[app] = eraser
    _registry.exporters[app] = exporter


def person_erase_everywhere(person: Person) -> dict[str, int]:
    """Run every app's eraser, then redact the audit log; returns rows changed per table.
    The caller holds the transaction: an eraser that fails undoes them all."""
    if not _registry.erasers:
        raise RuntimeError("No privacy erasers registered: are the apps in INSTALLED_APPS?")
    counts: dict[str, int] = {}
    for eraser in _registry.erasers.values():
        counts.update(eraser(person))
    counts.update(audit_log_erase(person))
    return {table: count for table, count in counts.items() if count}


def person_export_sections(contact_id: int) -> Iterable[tuple[str, object]]:
    """Every app's sections of one person's export, in the order the apps registered."""
    for exporter in _registry.exporters.values():
        yield from exporter(contact_id).items()


def run_update(sql: str, params: list) -> int:
    """One set-based UPDATE (or DELETE); how many rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def audit_log_erase(person: Person) -> dict[str, int]:
    """The audit log keeps a field-by-field history: any entry that mentions the person (the
    contact's own, an unsubscribed address, an order) has the mentions redacted, and Django
    admin's log too. (contacts.privacy has already emptied the values of the contact's own
    entries, which may hold data that identifies no one alone: a town, a birthday.)"""
    log = LogEntry._meta.db_table
    admin_log = AdminLogEntry._meta.db_table
    pattern = person.pattern()
    names = person.pattern(names=True)
    contact_pk = str(person.contact_id)
    return {
        "auditlog_logentry": run_update(
            f"""UPDATE {log} SET
                    changes = herald_redact(changes, %s),
                    changes_text = regexp_replace(changes_text, %s, %s, 'gi'),
                    object_repr = regexp_replace(object_repr, %s, %s, 'gi'),
                    serialized_data = herald_redact(serialized_data, %s),
                    additional_data = herald_redact(additional_data, %s)
                WHERE changes::text ~* %s OR changes_text ~* %s OR object_repr ~* %s
                   OR serialized_data::text ~* %s OR additional_data::text ~* %s""",
            [pattern, pattern, REDACTED, pattern, REDACTED, pattern, pattern, *[pattern] * 5],
        ),
        # The contact's entries in Django admin's own log name it by its name.
        "django_admin_log": run_update(
            f"""UPDATE {admin_log} SET
                    object_repr = regexp_replace(object_repr, %s, %s, 'gi'),
                    change_message = regexp_replace(change_message, %s, %s, 'gi')
                WHERE object_repr ~* %s OR change_message ~* %s
                   OR (content_type_id = (SELECT id FROM django_content_type
                                           WHERE app_label = %s AND model = %s)
                       AND object_id = %s)""",
            [names, REDACTED, names, REDACTED, pattern, pattern, *CONTACT_MODEL, contact_pk],
        ),
    }
