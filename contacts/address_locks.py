"""Transaction locks on contact addresses, so concurrent writers never make twin contacts.

Email is not unique (dedupeOn=externalCustomerId may keep two contacts with one), so every
path that creates a contact for an address it did not find — add and subscribe, bulk and CSV
imports, orders, single messages — takes these locks before it looks: a second writer of the
same new address waits until the first has committed, then finds its contact.

A lock covers a bucket of addresses, not one address: a CSV chunk of 10,000 new addresses would
otherwise take 10,000 locks, past PostgreSQL's shared lock table (64 per connection by default).
Two writers whose addresses share a bucket merely wait for each other. Buckets are locked in
ascending order, so no two writers deadlock on them.
"""

from collections.abc import Iterable

# The first key of PostgreSQL's two-key advisory locks ("HA", for Herald addresses): the
# two-key space is apart from the one-key locks Herald takes elsewhere.
ADDRESS_LOCK_SPACE = 0x4841
ADDRESS_LOCK_BUCKETS = 1024  # a power of two: the bucket is the hash's low bits

_LOCK_SQL = """
    SELECT count(pg_advisory_xact_lock(%s, b)) FROM (
        SELECT DISTINCT (hashtextextended(a, 0) & %s)::int AS b
          FROM unnest(%s::text[]) AS a ORDER BY b
    ) AS buckets
"""


def contact_addresses_lock(cursor, addresses: Iterable[str | None]) -> None:
    """Lock `addresses` (emails, phones; empty ones are skipped) until the transaction ends."""
    wanted = sorted({address for address in addresses if address})
    if wanted:
        cursor.execute(_LOCK_SQL, [ADDRESS_LOCK_SPACE, ADDRESS_LOCK_BUCKETS - 1, wanted])
