"""The suppression list: addresses no message may reach on their channel, with the reason.

Hard bounces and spam complaints suppress an address at once, repeated soft bounces once
they reach the limit (campaigns.delivery.feedback decides and calls `suppressions_add`); a
marketer may add an address by hand and lift any suppression (the row stays, with who lifted
it and when). Campaign audiences leave suppressed addresses out; a single message to one is
recorded as skipped with `suppression_explain`'s words.

The marketer pages, the admin and Herald's own API read the list through
`suppressions_search` and write it through `suppression_add_manual` / `suppression_lift`.
"""

# SQL here interpolates only our own table names; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from config.core.privacy import address_digest, address_digest_sql
from contacts.channels import email_normalise, phone_normalise
from contacts.errors import ContactsRuleError
from contacts.models import ChannelType, Suppression, SuppressionReason


def address_normalise(channel: str, address: str) -> str:
    """The stored form: email in lower case, phones in E.164; raises ContactsRuleError."""
    if channel == ChannelType.EMAIL:
        email, problem = email_normalise(address)
        if email is None:
            raise ContactsRuleError("address", problem or "not an email address")
        return email.lower()
    if channel == ChannelType.SMS:
        phone, problem = phone_normalise(address)
        if phone is None:
            raise ContactsRuleError("address", problem or "not a phone number")
        return phone
    address = (address or "").strip()
    if not address:
        raise ContactsRuleError("address", "must not be empty")
    return address


def suppression_key(channel: str, address: str) -> str:
    """An address as the list stores it: email in lower case, anything else as given (phones
    are E.164 already), without surrounding blanks."""
    address = address.strip()
    return address.lower() if channel == ChannelType.EMAIL else address


def suppressions_add(
    *,
    channel: str,
    entries: Iterable[tuple[str, str]],
    reason: str,
    source: str = "",
) -> int:
    """Suppress (address, detail) pairs on `channel` in one statement; an address already
    suppressed keeps its first reason. Returns how many were added."""
    rows = {}
    for address, detail in entries:
        key = suppression_key(channel, address)
        if key and key not in rows:
            rows[key] = detail[:10_000]
    if not rows:
        return 0
    table = Suppression._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (channel, address, reason, detail, source, created_at)
                SELECT %s, a, %s, d, %s, now() FROM unnest(%s::text[], %s::text[]) AS v(a, d)
                ON CONFLICT (channel, address) WHERE lifted_at IS NULL DO NOTHING""",
            [channel, reason, source[:100], list(rows), list(rows.values())],
        )
        return cursor.rowcount


SUPPRESSIBLE_CHANNELS = (ChannelType.EMAIL, ChannelType.SMS)
DETAIL_MAX = 10_000


def suppression_add_manual(
    *, channel: str, address: str, detail: str = "", user: Any = None
) -> bool:
    """A marketer suppresses an address by hand; False when it already was. Raises
    ContactsRuleError naming `channel`, `address` or `detail`."""
    if channel not in SUPPRESSIBLE_CHANNELS:
        choices = ", ".join(SUPPRESSIBLE_CHANNELS)
        raise ContactsRuleError("channel", f"must be one of {choices}")
    if not isinstance(detail, str):
        raise ContactsRuleError("detail", "must be text")
    if len(detail) > DETAIL_MAX:
        raise ContactsRuleError("detail", f"at most {DETAIL_MAX} characters")
    if not isinstance(address, str):
        raise ContactsRuleError("address", "must be a string")
    address = address_normalise(channel, address)
    source = f"added by {user.get_username()}" if user is not None else "added by hand"
    return bool(
        suppressions_add(
            channel=channel,
            entries=[(address, detail)],
            reason=SuppressionReason.MANUAL,
            source=source,
        )
    )


def suppression_lift(*, suppression: Suppression, user: AbstractBaseUser | None = None) -> bool:
    """Lift a suppression: the address may be messaged again. False when already lifted."""
    return bool(suppressions_lift(ids=[suppression.pk], user=user))


def suppressions_lift(*, ids: Iterable[int], user: AbstractBaseUser | None = None) -> int:
    """Lift many suppressions in one statement (the admin's action); the rows stay, with
    who lifted them and when. Returns how many were in force."""
    return Suppression.objects.filter(pk__in=list(ids), lifted_at__isnull=True).update(
        lifted_at=timezone.now(), lifted_by=user
    )


def suppressions_active(channel: str, addresses: Iterable[str]) -> dict[str, Suppression]:
    """The suppression in force for each suppressed address among `addresses` (stored
    form: email lower case, phone E.164), in one query."""
    keys = [suppression_key(channel, address) for address in addresses]
    if not keys:
        return {}
    # An erased person's suppression is kept under the digest of the address
    # (contacts.privacy): it still blocks the address.
    stored = {key: key for key in keys} | {address_digest(key): key for key in keys}
    rows = Suppression.objects.filter(
        channel=channel, address__in=list(stored), lifted_at__isnull=True
    )
    return {stored[row.address]: row for row in rows}


def suppression_explain(suppression: Suppression) -> str:
    """Why a message was not sent, in a delivery's error and an API answer:
    "suppressed: hard bounce — 550 no such user (SendGrid, 2026-12-01)"."""
    reason = suppression.get_reason_display().lower()
    text = f"suppressed: {reason}"
    detail = " ".join(suppression.detail.split())
    if detail:
        text += f" — {detail[:300]}"
    source = suppression.source
    when = suppression.created_at.date().isoformat() if suppression.created_at else ""
    context = ", ".join(part for part in (source, when) if part)
    return f"{text} ({context})" if context else text


def suppressions_for_contact(*, email: str = "", phone: str = "") -> list[Suppression]:
    """The suppressions in force on a contact's email and phone."""
    found: list[Suppression] = []
    if email:
        found += suppressions_active(ChannelType.EMAIL, [email]).values()
    if phone:
        found += suppressions_active(ChannelType.SMS, [phone]).values()
    return found


def suppressions_search(
    *,
    address: str = "",
    channel: str = "",
    reason: str = "",
    lifted: bool = False,
) -> QuerySet[Suppression]:
    """The list as the pages and the API show it, newest first: in force only unless
    `lifted`; `address` matches the start of the stored address (emails are stored in
    lower case, phones in E.164, so "+4930" finds Berlin numbers)."""
    rows = Suppression.objects.select_related("lifted_by")
    if not lifted:
        rows = rows.filter(lifted_at__isnull=True)
    if channel:
        rows = rows.filter(channel=channel)
    if reason:
        rows = rows.filter(reason=reason)
    address = (address or "").strip()
    if address:
        rows = rows.filter(address__startswith=address.lower())
    return rows


def suppression_sql(channel_sql: str, address_sql: str) -> str:
    """A NOT EXISTS condition leaving out suppressed addresses, for set-based audience SQL
    (`channel_sql` and `address_sql` are SQL expressions of the outer query)."""
    table = Suppression._meta.db_table
    return (
        f"NOT EXISTS (SELECT 1 FROM {table} s WHERE s.channel = {channel_sql} "
        f"AND s.address IN (lower({address_sql}), {address_digest_sql(address_sql)}) "
        "AND s.lifted_at IS NULL)"
    )
