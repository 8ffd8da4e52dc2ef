"""The unsubscribed list: email addresses no bulk email may reach, whichever contacts carry
them (SMS and other channels stay active).

Shared by the eSputnik v1 API, the marketer pages, the admin and the one-click unsubscribe
link. A refused request raises `ContactsRuleError(field, message)`; the API answers 400.
"""

# SQL here interpolates only our own table and column names; every value is a parameter.
# ruff: noqa: S608

from typing import Any

from django.db import connection, transaction

from contacts.channels import email_normalise
from contacts.errors import ContactsRuleError
from contacts.models import Contact, Unsubscribed
from contacts.segment_members import contacts_mark_changed_sql

# One request's worth of addresses; bounds the unnest() insert and the per-item report.
UNSUBSCRIBED_MAX_EMAILS = 10_000


def _emails_parse(emails: Any) -> tuple[list[str], list[dict]]:
    if not isinstance(emails, list):
        raise ContactsRuleError("emails", "must be a list of email addresses")
    if len(emails) > UNSUBSCRIBED_MAX_EMAILS:
        raise ContactsRuleError("emails", f"at most {UNSUBSCRIBED_MAX_EMAILS} per request")
    valid: list[str] = []
    failed: list[dict] = []
    for index, raw in enumerate(emails):
        email, problem = email_normalise(raw)
        if email is None:
            failed.append({"index": index, "email": raw, "reason": problem})
        else:
            valid.append(email)
    return list(dict.fromkeys(valid)), failed


def _mark_carriers(emails: list[str]) -> None:
    """The contacts carrying these addresses: the `unsubscribed` filter field reads the list."""
    contacts_mark_changed_sql(
        sql=f"SELECT id FROM {Contact._meta.db_table} WHERE email = ANY(%s::text[])",
        params=[emails],
    )


@transaction.atomic
def unsubscribed_add(*, emails: list[str], reason: str = "") -> dict:
    """Put addresses on the unsubscribed list; invalid ones are reported, the rest stored."""
    valid, failed = _emails_parse(emails)
    added = 0
    if valid:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {Unsubscribed._meta.db_table} (email, reason, created_at)
                    SELECT address, %s, now() FROM unnest(%s::text[]) AS address
                    ON CONFLICT (email) DO NOTHING""",
                [(reason or "")[:200], valid],
            )
            added = cursor.rowcount
        _mark_carriers(valid)
    return {"added": added, "alreadyUnsubscribed": len(valid) - added, "failed": failed}


@transaction.atomic
def unsubscribed_remove(*, emails: list[str]) -> dict:
    valid, failed = _emails_parse(emails)
    removed = 0
    if valid:
        removed, _ = Unsubscribed.objects.filter(email__in=valid).delete()
        _mark_carriers(valid)
    return {"removed": removed, "notListed": len(valid) - removed, "failed": failed}
