"""Status changes of deliveries: one explicit transition table, set-based writes, and a
DeliveryEvent history row for every move.

Every function here works on many rows in one statement: a worker records the outcome of a
whole batch at once, and a webhook may report thousands of bounces.
"""

# Table and column names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta

from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Delivery, DeliveryEvent, DeliveryStatus

S = DeliveryStatus

# Where a delivery may go from each status. Engagement (opened/clicked) may repeat: each open
# or click is history, but the status never falls back (a click is not undone by an open).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.QUEUED: frozenset({S.SENT, S.FAILED, S.SKIPPED}),
    S.SENT: frozenset(
        {S.DELIVERED, S.OPENED, S.CLICKED, S.BOUNCED, S.COMPLAINED, S.UNSUBSCRIBED, S.FAILED}
    ),
    S.DELIVERED: frozenset({S.OPENED, S.CLICKED, S.BOUNCED, S.COMPLAINED, S.UNSUBSCRIBED}),
    S.OPENED: frozenset({S.OPENED, S.CLICKED, S.COMPLAINED, S.UNSUBSCRIBED}),
    S.CLICKED: frozenset({S.CLICKED, S.COMPLAINED, S.UNSUBSCRIBED}),
    S.BOUNCED: frozenset({S.COMPLAINED}),
    S.COMPLAINED: frozenset(),
    S.UNSUBSCRIBED: frozenset({S.COMPLAINED}),
    S.FAILED: frozenset(),
    S.SKIPPED: frozenset(),
}

# The timestamp a status sets, the first time it is reached.
STAMPS: dict[str, str] = {
    S.SENT: "sent_at",
    S.DELIVERED: "delivered_at",
    S.OPENED: "opened_at",
    S.CLICKED: "clicked_at",
    S.FAILED: "failed_at",
    S.BOUNCED: "failed_at",
}
# Statuses whose `error` text explains the outcome.
ERROR_STATUSES = frozenset({S.FAILED, S.BOUNCED, S.SKIPPED})

# A worker that claimed rows and then vanished (killed, machine lost) holds them this long;
# afterwards another worker may take them. Far above the time one batch takes to send.
CLAIM_LEASE = timedelta(minutes=10)


@contextmanager
def unflushed_commits() -> Iterator[None]:
    """Commits on this connection that do not wait for the WAL to reach the disk
    (synchronous_commit off for the session until the block ends): for a sender's claims and
    outcome writes, each a single statement here.

    Safe because these writes only ever stop work from being repeated. Should the database
    server itself crash within the WAL writer's delay (~0.6 s) of such a commit, the claim
    or outcome is forgotten, the rows are queued again, and their messages go out a second
    time with the same Message-ID: what a worker killed between the SMTP accept and the
    write causes anyway. A killed worker loses nothing it committed (the server has it), and
    commits stay in order (a later durable commit flushes everything before it). What it
    buys: a sender no longer sits out a disk flush per claim and per chunk of outcomes, on a
    busy shared server a third of its time (bench campaign_send). Status changes of runs
    (pause, completion) are made outside the block."""
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        # A connection that broke meanwhile is discarded by Django, setting and all.
        with suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


class InvalidTransition(Exception):
    """The delivery's current status does not allow the requested one."""

    def __init__(self, delivery_id: int, current: str, wanted: str) -> None:
        self.delivery_id = delivery_id
        self.current = current
        self.wanted = wanted
        super().__init__(f"delivery {delivery_id} cannot go from {current} to {wanted}")


def _sources(status: str) -> list[str]:
    return [source for source, targets in TRANSITIONS.items() if status in targets]


def delivery_transition(
    *,
    status: str,
    delivery_ids: Iterable[int] | None = None,
    delivery: Delivery | None = None,
    error: str = "",
    detail: str = "",
    url: str = "",
) -> list[int]:
    """Move deliveries to `status` where TRANSITIONS allows it; return the ids moved.

    With `delivery_ids` rows whose status forbids the move are left as they are (a late
    webhook about an already failed row is not an error). With `delivery` a forbidden move
    raises InvalidTransition, and the instance is updated in memory.
    Every move writes a DeliveryEvent with `detail` (and `error` for failures); the claim of
    the sending worker is released.
    """
    if status not in TRANSITIONS:
        raise ValueError(f"unknown delivery status {status!r}")
    if (delivery_ids is None) == (delivery is None):
        raise ValueError("pass exactly one of delivery_ids and delivery")
    ids = [delivery.pk] if delivery is not None else list(dict.fromkeys(delivery_ids))
    if not ids:
        return []
    stamp = STAMPS.get(status)
    sets = ["status = %s", "claimed_at = NULL"]
    params: list = [status]
    if stamp:
        sets.append(f"{stamp} = COALESCE(d.{stamp}, now())")
    if status in ERROR_STATUSES and error:
        sets.append("error = %s")
        params.append(error[:10_000])
    if status in (S.OPENED, S.CLICKED):
        counter = "open_count" if status == S.OPENED else "click_count"
        sets.append(f"{counter} = d.{counter} + 1")
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    history = detail or (error if status in ERROR_STATUSES else "")
    # One statement: the update and its history rows commit or fail together, and the
    # WHERE on the current status makes concurrent moves of one row safe (the loser's row
    # no longer matches, so it records nothing).
    sql = f"""
        WITH moved AS (
            UPDATE {table} d SET {", ".join(sets)}
             WHERE d.id = ANY(%s) AND d.status = ANY(%s)
            RETURNING d.id
        )
        INSERT INTO {events} (delivery_id, status, at, detail, url)
        SELECT id, %s, now(), %s, %s FROM moved
        RETURNING delivery_id
    """
    params += [ids, _sources(status), status, history[:10_000], url[:2000]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        moved = [row[0] for row in cursor.fetchall()]
    if delivery is not None:
        if not moved:
            current = Delivery.objects.filter(pk=delivery.pk).values_list("status", flat=True)
            raise InvalidTransition(delivery.pk, current.first() or "missing", status)
        delivery.refresh_from_db()
    return moved


def deliveries_claim(
    *, send_request_id: int, limit: int, message_id_domain: str, max_attempts: int
) -> list[int]:
    """Claim up to `limit` queued deliveries of a send request for this worker; return ids.

    Claim times are the wall clock (clock_timestamp(), not now(), which is frozen at the
    start of an enclosing transaction), the same clock next_wake compares them with.

    Rows already claimed by a live worker, or waiting for a retry, are skipped; claims older
    than CLAIM_LEASE are taken over, unless the row has had `max_attempts` already (see
    deliveries_fail_exhausted). The Message-ID is fixed here, before anything is sent, so a
    retry or a takeover sends the same one.
    """
    table = Delivery._meta.db_table
    sql = f"""
        UPDATE {table} d
           SET claimed_at = clock_timestamp(),
               attempts = d.attempts + 1,
               message_id = CASE WHEN d.message_id = ''
                   THEN '<' || replace(d.request_id::text, '-', '') || '@' || %s || '>'
                   ELSE d.message_id END
         WHERE d.id IN (
            SELECT id FROM {table}
             WHERE send_request_id = %s AND status = 'queued'
               AND (claimed_at IS NULL OR claimed_at < clock_timestamp() - %s)
               AND (next_attempt_at IS NULL OR next_attempt_at <= clock_timestamp())
               AND attempts < %s
             ORDER BY id
             LIMIT %s
               FOR UPDATE SKIP LOCKED
         )
        RETURNING d.id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [message_id_domain, send_request_id, CLAIM_LEASE, max_attempts, limit])
        return sorted(row[0] for row in cursor.fetchall())


def deliveries_fail_exhausted(*, send_request_id: int, max_attempts: int) -> list[int]:
    """Fail the queued rows that were claimed `max_attempts` times without an outcome (their
    workers died while sending them, e.g. a message that crashes the process), so a poison
    message cannot hold its send request open for ever."""
    ids = list(
        Delivery.objects.filter(
            send_request_id=send_request_id,
            status=S.QUEUED,
            attempts__gte=max_attempts,
        )
        .filter(
            Q(claimed_at__isnull=True) | Q(claimed_at__lt=timezone.now() - CLAIM_LEASE),
        )
        .values_list("pk", flat=True)
    )
    return delivery_transition(
        status=S.FAILED,
        delivery_ids=ids,
        error=f"gave up after {max_attempts} attempts without an outcome "
        "(the sending worker stopped each time)",
    )


def deliveries_retry_later(*, delivery_ids: list[int], error: str, delay: timedelta) -> None:
    """A transient failure: release the claim, keep the rows queued until `delay` has passed,
    and write the failed attempt into the history. The delay counts from now() (the
    campaign pipeline's claims compare with now(); clock_timestamp() is never earlier, so
    deliveries_claim sees the row due no later)."""
    if not delivery_ids:
        return
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH held AS (
                UPDATE {table} d
                   SET claimed_at = NULL, next_attempt_at = now() + %s, error = %s
                 WHERE d.id = ANY(%s) AND d.status = 'queued'
                RETURNING d.id, d.attempts
            )
            INSERT INTO {events} (delivery_id, status, at, detail, url)
            SELECT id, 'queued', now(), 'attempt ' || attempts || ' failed: ' || %s, ''
              FROM held
            """,
            [delay, error[:10_000], delivery_ids, error[:10_000]],
        )


def deliveries_set_provider_ids(*, provider: str, provider_ids: dict[int, str]) -> None:
    """Record the id each delivery got at the provider (SMS gateway, ESP)."""
    if not provider_ids:
        return
    table = Delivery._meta.db_table
    ids = list(provider_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} d SET provider = %s, provider_message_id = v.pid
              FROM unnest(%s::bigint[], %s::text[]) AS v(id, pid)
             WHERE d.id = v.id
            """,
            [provider, ids, [provider_ids[i][:255] for i in ids]],
        )
