"""The suppression list: addresses no message may reach on their channel, with the reason.

Hard bounces and spam complaints suppress an address at once, repeated soft bounces once
they reach the limit (campaigns.delivery.feedback decides and calls `suppressions_add`); a
marketer may add an address by hand and lift any suppression (the row stays, with who lifted
it and when). Campaign audiences and single messages leave suppressed addresses out.
"""

# SQL here interpolates only our own table names; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone

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
        key = address.strip().lower() if channel == ChannelType.EMAIL else address.strip()
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


def suppression_add_manual(*, channel: str, address: str, detail: str = "", user=None) -> bool:
    """A marketer suppresses an address by hand; False when it already was."""
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
    return bool(
        Suppression.objects.filter(pk=suppression.pk, lifted_at__isnull=True).update(
            lifted_at=timezone.now(), lifted_by=user
        )
    )


def suppressed(channel: str, addresses: Iterable[str]) -> set[str]:
    """Which of the addresses are suppressed on the channel."""
    keys = [a.lower() if channel == ChannelType.EMAIL else a for a in addresses]
    return set(
        Suppression.objects.filter(
            channel=channel, address__in=keys, lifted_at__isnull=True
        ).values_list("address", flat=True)
    )


def suppression_sql(channel_sql: str, address_sql: str) -> str:
    """A NOT EXISTS condition leaving out suppressed addresses, for set-based audience SQL
    (`channel_sql` and `address_sql` are SQL expressions of the outer query)."""
    table = Suppression._meta.db_table
    return (
        f"NOT EXISTS (SELECT 1 FROM {table} s WHERE s.channel = {channel_sql} "
        f"AND s.address = lower({address_sql}) AND s.lifted_at IS NULL)"
    )
