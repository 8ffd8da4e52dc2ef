"""Promo codes in messages: which pools a template names, and handing one code of each to
every delivery of a claimed batch.

Templates show a code with `$!promo.KEY` (or `$!promo.get('KEY')`, `${promo.KEY}`), KEY
being a pool's key. Only templates that name a pool pay for this: the keys are found once
per template version (a regular expression over its sources).

Why a code is handed out once:
- Assignment is one UPDATE per pool and batch: the batch's deliveries that have no code of
  the pool yet are paired with free codes taken FOR UPDATE SKIP LOCKED, so two workers never
  take the same code, and a retried delivery (claimed again after a crash or a transient
  failure) keeps the code it got the first time: it already has one, so it is not paired.
- A unique (delivery, pool) constraint backs that up.
- A contact that a workflow step gave a code of the pool (no delivery) is shown that code,
  the newest, instead of getting another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Q

from campaigns.models import Delivery
from campaigns.promo.models import PromoCode, PromoPool
from templates.errors import TemplateFieldError
from templates.extensions import TemplateExtension, extension_register

NAMESPACE = "promo"
_KEY_REFERENCE = re.compile(
    r"""\$!?\{?promo\s*\.\s*(?:get\(\s*['"]([^'"]*)['"]\s*\)|([A-Za-z_][A-Za-z0-9_]*))"""
)


def promo_keys(sources: Iterable[str]) -> frozenset[str]:
    """The pool keys the template sources name."""
    keys: set[str] = set()
    for source in sources:
        if source and "promo" in source:
            for quoted, bare in _KEY_REFERENCE.findall(source):
                keys.add(quoted or bare)
    return frozenset(keys)


def pools_by_key(keys: Iterable[str]) -> dict[str, PromoPool]:
    return {pool.key: pool for pool in PromoPool.objects.filter(key__in=list(keys))}


def _check(sources: Mapping[str, str]) -> list[TemplateFieldError]:
    errors = []
    # Each unknown key once, on the first field naming it (a text derived from the HTML
    # repeats the HTML's keys).
    reported = set(pools_by_key(promo_keys(sources.values())))
    for name, source in sources.items():
        for key in sorted(promo_keys([source]) - reported):
            reported.add(key)
            errors.append(
                TemplateFieldError(
                    name, f"$promo.{key} names a promo code pool that does not exist."
                )
            )
    return errors


def _sample(sources: Mapping[str, str]) -> dict[str, str]:
    return {key: f"{key}-SAMPLE" for key in promo_keys(sources.values())}


extension_register(TemplateExtension(name=NAMESPACE, check=_check, sample=_sample))


@dataclass
class PromoBatch:
    """What a batch's deliveries carry: delivery id → {key: code}; and, per pool key that
    ran out, the deliveries left without a code."""

    codes: dict[int, dict[str, str]] = field(default_factory=dict)
    short: dict[str, list[int]] = field(default_factory=dict)
    # Keys named by a template that have no pool (deleted after publishing).
    unknown: dict[str, list[int]] = field(default_factory=dict)


def codes_assign(
    *, pool: PromoPool, delivery_ids: list[int], after: int = 0
) -> tuple[dict[int, str], int]:
    """Pair the deliveries without a code of the pool (and whose contact has no
    workflow-issued one) with free codes above id `after`, in one statement; return the codes
    handed out (delivery id → code) and the highest code id among them (`after` when none).

    `after` is a hint (the caller's last answer): codes go out in id order, so the free ones
    a sender wants next lie above the ones it took. Without it, each batch would walk the
    index entries of every code already handed out (dead to the partial index until vacuum
    comes), and a 100k campaign's batches would get slower and slower. A caller that finds
    codes short with a hint asks again without one (see PromoCodes.batch)."""
    codes = PromoCode._meta.db_table
    deliveries = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            # Every part is bounded by the batch: the codes the batch's deliveries have
            # (promo_code_delivery_unique), the workflow-issued codes of its contacts
            # (promo_code_contact), and as many free codes as needed, walked in the order of
            # promo_code_free (ORDER BY assigned_at, id: the primary key cannot give that
            # order, so the planner does not walk it past every code already handed out).
            f"""WITH batch AS (
                    SELECT id, contact_id FROM {deliveries} WHERE id = ANY(%(ids)s)
                ), have AS (
                    SELECT delivery_id FROM {codes}
                     WHERE delivery_id = ANY(%(ids)s) AND pool_id = %(pool)s
                ), issued AS (
                    SELECT contact_id FROM {codes}
                     WHERE contact_id IN (SELECT contact_id FROM batch) AND pool_id = %(pool)s
                       AND delivery_id IS NULL AND contact_id IS NOT NULL
                ), need AS (
                    SELECT b.id, b.contact_id, row_number() OVER (ORDER BY b.id) AS n
                      FROM batch b
                     WHERE b.id NOT IN (SELECT delivery_id FROM have)
                       AND (b.contact_id IS NULL
                            OR b.contact_id NOT IN (SELECT contact_id FROM issued))
                ), free AS (
                    SELECT id, row_number() OVER (ORDER BY id) AS n
                      FROM (SELECT id FROM {codes}
                             WHERE pool_id = %(pool)s AND assigned_at IS NULL
                               AND id > %(after)s
                             ORDER BY assigned_at, id LIMIT (SELECT count(*) FROM need)
                             FOR UPDATE SKIP LOCKED) f
                ), pairs AS (
                    SELECT free.id, need.id AS delivery_id, need.contact_id
                      FROM need JOIN free USING (n)
                )
                UPDATE {codes} c
                   SET delivery_id = pairs.delivery_id, contact_id = pairs.contact_id,
                       assigned_at = now()
                  FROM pairs
                 WHERE c.id = pairs.id
             RETURNING c.id, c.delivery_id, c.code""",  # noqa: S608
            {"ids": delivery_ids, "pool": pool.pk, "after": after},
        )
        rows = cursor.fetchall()
    return {row[1]: row[2] for row in rows}, max((row[0] for row in rows), default=after)


def codes_of(*, pools: list[PromoPool], delivery_ids: list[int]) -> dict[int, dict[str, str]]:
    """delivery id → {pool key: code}: each delivery's own code of each pool, else its
    contact's newest workflow-issued one."""
    codes = PromoCode._meta.db_table
    deliveries = Delivery._meta.db_table
    keys = {pool.pk: pool.key for pool in pools}
    found: dict[int, dict[str, str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT c.delivery_id, c.pool_id, c.code FROM {codes} c
                 WHERE c.delivery_id = ANY(%(ids)s) AND c.pool_id = ANY(%(pools)s)
                UNION ALL
                SELECT * FROM (
                    SELECT DISTINCT ON (d.id, c.pool_id) d.id, c.pool_id, c.code
                      FROM {deliveries} d JOIN {codes} c ON c.contact_id = d.contact_id
                     WHERE d.id = ANY(%(ids)s) AND c.pool_id = ANY(%(pools)s)
                       AND c.delivery_id IS NULL AND c.assigned_at IS NOT NULL
                     ORDER BY d.id, c.pool_id, c.assigned_at DESC) w""",  # noqa: S608
            {"ids": delivery_ids, "pools": list(keys)},
        )
        for delivery_id, pool_id, code in cursor.fetchall():
            # A delivery's own code comes first (the first half of the UNION).
            found.setdefault(delivery_id, {}).setdefault(keys[pool_id], code)
    return found


class PromoCodes:
    """The promo codes of one sending task: pool keys per template version (found once),
    assignment per batch."""

    def __init__(self) -> None:
        self.keys: dict[int | None, frozenset[str]] = {}
        # Pools by key, read once per task (a task lives about a minute).
        self.pools: dict[str, PromoPool] | None = None
        # Pool id → the highest code id this task handed out (codes_assign's hint).
        self.after: dict[int, int] = {}

    def keys_of(self, version_id: int | None, sources: Iterable[str]) -> frozenset[str]:
        if version_id not in self.keys:
            self.keys[version_id] = promo_keys(sources)
        return self.keys[version_id]

    def batch(self, needs: dict[int, frozenset[str]]) -> PromoBatch:
        """`needs`: delivery id → the pool keys its template names (deliveries without any
        left out). Assigns what is missing and answers every delivery's codes."""
        result = PromoBatch()
        if not needs:
            return result
        by_key: dict[str, list[int]] = {}
        for delivery_id, keys in needs.items():
            for key in keys:
                by_key.setdefault(key, []).append(delivery_id)
        if self.pools is None or not set(by_key) <= set(self.pools):
            self.pools = pools_by_key(set(by_key) | set(self.pools or ()))
        pools = {key: self.pools[key] for key in by_key if key in self.pools}
        for key, delivery_ids in by_key.items():
            if key not in pools:
                result.unknown[key] = delivery_ids
                continue
            pool = pools[key]
            given, self.after[pool.pk] = codes_assign(
                pool=pool, delivery_ids=delivery_ids, after=self.after.get(pool.pk, 0)
            )
            missing = [pk for pk in delivery_ids if pk not in given]
            if missing and self.after[pool.pk]:
                # Short above the hint: free codes may lie below it (another sender skipped
                # them while locked, then gave them back); look at the whole pool.
                more, self.after[pool.pk] = codes_assign(pool=pool, delivery_ids=missing)
                given.update(more)
            for delivery_id, code in given.items():
                result.codes.setdefault(delivery_id, {})[key] = code
        # Codes handed out before (a retried delivery, a contact's workflow-issued code) are
        # looked up; a batch of first attempts has none and skips the statement.
        before = [
            pk
            for pk, keys in needs.items()
            if any(key in pools and key not in result.codes.get(pk, {}) for key in keys)
        ]
        if before:
            found = codes_of(pools=list(pools.values()), delivery_ids=before)
            for delivery_id, codes in found.items():
                for key, code in codes.items():
                    result.codes.setdefault(delivery_id, {}).setdefault(key, code)
        for key in pools:
            missing = [pk for pk in by_key[key] if key not in result.codes.get(pk, {})]
            if missing:
                result.short[key] = missing
        return result


def pool_exhausted_reason(key: str) -> str:
    """Why sending stopped when a pool ran out."""
    used = PromoCode.objects.filter(pool__key=key, assigned_at__isnull=False).count()
    return f"promo pool {key} has no free codes left ({used} sent)"


def pool_has_free_codes(key: str) -> bool:
    return PromoCode.objects.filter(pool__key=key, assigned_at__isnull=True).exists()


def pool_refilled_since(key: str, since: datetime) -> bool:
    """Has the pool free codes, or codes added after `since` (when a sender found it empty)?
    Added codes may all be handed out again by the time a slow sender looks: the run they
    were added for went on, and a pause then would stop a run with nothing left to send."""
    return (
        PromoCode.objects.filter(pool__key=key)
        .filter(Q(assigned_at__isnull=True) | Q(created_at__gt=since))
        .exists()
    )
