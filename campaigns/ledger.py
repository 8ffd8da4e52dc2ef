"""Status changes of deliveries: one explicit transition table, set-based writes, and a
DeliveryEvent history row for every move.

Every function here works on many rows in one statement: a worker records the outcome of a
whole batch at once, and a webhook may report thousands of bounces.
"""

# Table and column names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from django.db import DatabaseError, connection, transaction

from campaigns.models import Delivery, DeliveryEvent, DeliveryStatus
from config.core.db import fetchall_prepared
from config.core.errors import ConflictError

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


class InvalidTransition(ConflictError):
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
    if delivery is not None and delivery_ids is None:
        ids = [delivery.pk]
    elif delivery is None and delivery_ids is not None:
        ids = list(dict.fromkeys(delivery_ids))
    else:
        raise ValueError("pass exactly one of delivery_ids and delivery")
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
            RETURNING d.id, d.period
        )
        INSERT INTO {events} (delivery_id, status, at, detail, url, period)
        SELECT id, %s, now(), %s, %s, period FROM moved
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


def deliveries_record(
    *, provider: str, outcomes: Sequence[tuple[int, str, str, float, str]]
) -> None:
    """Write the outcomes of a chunk of sends in one statement: every row's status move (or
    its retry), its provider id and its history row commit or fail together.

    `outcomes` are (delivery id, status, reason, retry delay in seconds, provider id) with
    status SENT (accepted by `provider`), FAILED (the reason is the error) or QUEUED (a
    transient failure: the row waits `delay` seconds for its next attempt, and its history
    says which attempt failed). Moves follow TRANSITIONS: a row whose status no longer
    allows the move (a webhook got there first) is left alone. Every row's claim is released.
    """
    if not outcomes:
        return
    ids, statuses, reasons, delays, provider_ids = (
        list(column) for column in zip(*outcomes, strict=True)
    )
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    # A retry counts from the statement's clock, as claims compare with it (config.core.queues).
    sql = f"""
        /* delivery.record */
        WITH v AS (
            SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::float8[], %s::text[])
                       AS v(id, status, reason, delay, provider_id)
        ), moved AS (
            UPDATE {table} d SET
                   status = v.status,
                   claimed_at = NULL,
                   sent_at = CASE WHEN v.status = %s THEN COALESCE(d.sent_at, now())
                                  ELSE d.sent_at END,
                   failed_at = CASE WHEN v.status = %s THEN COALESCE(d.failed_at, now())
                                    ELSE d.failed_at END,
                   error = CASE WHEN v.status = %s OR v.reason = '' THEN d.error
                                ELSE left(v.reason, 10000) END,
                   next_attempt_at = CASE WHEN v.status = %s
                       THEN statement_timestamp() + make_interval(secs => v.delay)
                       ELSE d.next_attempt_at END,
                   provider = CASE WHEN v.provider_id <> '' THEN %s ELSE d.provider END,
                   provider_message_id = CASE WHEN v.provider_id <> ''
                                              THEN left(v.provider_id, 255)
                                              ELSE d.provider_message_id END
              FROM v
             WHERE d.id = v.id
               AND ((v.status = %s AND d.status = ANY(%s))
                 OR (v.status = %s AND d.status = ANY(%s))
                 OR (v.status = %s AND d.status = %s))
            RETURNING d.id, v.status, v.reason, d.attempts, d.period
        )
        INSERT INTO {events} (delivery_id, status, at, detail, url, period)
        SELECT id, status, now(),
               CASE status WHEN %s THEN %s
                           WHEN %s THEN left('attempt ' || attempts || ' failed: ' || reason, 10000)
                           ELSE left(reason, 10000) END,
               '', period
          FROM moved
    """
    params: list[Any] = [
        ids,
        statuses,
        reasons,
        delays,
        provider_ids,
        S.SENT,
        S.FAILED,
        S.SENT,
        S.QUEUED,
        provider,
        S.SENT,
        _sources(S.SENT),
        S.FAILED,
        _sources(S.FAILED),
        S.QUEUED,
        S.QUEUED,
        S.SENT,
        f"accepted by {provider}",
        S.QUEUED,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# Rows moved per statement by run_deliveries_sent: bounded locks and WAL per commit.
RUN_SENT_BATCH = 10_000


def run_deliveries_sent(*, run_id: int, channel: str, provider: str, detail: str) -> int:
    """Move every queued delivery of a run's channel to sent (a service took the whole run:
    campaigns.delivery.handover), with `provider` on them and a history row each. One
    statement per RUN_SENT_BATCH rows; repeating it changes nothing. Returns the rows moved."""
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    sql = f"""
        WITH moved AS (
            UPDATE {table} d SET status = %s, sent_at = COALESCE(d.sent_at, now()),
                   claimed_at = NULL, provider = %s
             WHERE d.id IN (SELECT id FROM {table}
                             WHERE run_id = %s AND channel = %s AND status = %s
                             ORDER BY id LIMIT %s)
               AND d.status = %s
            RETURNING d.id, d.period
        )
        INSERT INTO {events} (delivery_id, status, at, detail, url, period)
        SELECT id, %s, now(), %s, '', period FROM moved
    """
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                sql,
                [
                    S.SENT,
                    provider[:50],
                    run_id,
                    channel,
                    S.QUEUED,
                    RUN_SENT_BATCH,
                    S.QUEUED,
                    S.SENT,
                    detail[:10_000],
                ],
            )
            moved = cursor.rowcount
        total += moved
        if moved < RUN_SENT_BATCH:
            return total


def deliveries_fail_exhausted(*, delivery_ids: list[int], attempts: int) -> list[int]:
    """Fail queued rows claimed `attempts` times without an outcome (their workers died while
    sending them, e.g. a message that crashes the process), so a poison message cannot hold
    its run or request open for ever."""
    return delivery_transition(
        status=S.FAILED,
        delivery_ids=delivery_ids,
        error=f"gave up after {attempts} attempts without an outcome "
        "(the sending worker stopped each time)",
    )


# Where provider feedback may move a delivery: TRANSITIONS, plus a delivery report that
# arrives before our own "sent" outcome was written (the webhook was faster than the
# worker's record step) may move a queued row too.
FEEDBACK_ORDER = (S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.BOUNCED, S.COMPLAINED, S.UNSUBSCRIBED)
# Opens and clicks a provider reports count as the tracking pixel's and redirect's do
# (campaigns.tracking): on every row that went out, each event once; the status
# moves forward where TRANSITIONS allow it and never back.
ENGAGEMENT = frozenset({S.OPENED, S.CLICKED})
# The first-time stamps an engagement sets: a click proves an open (images may be blocked).
ENGAGEMENT_STAMPS: dict[str, tuple[str, ...]] = {
    S.OPENED: ("opened_at",),
    S.CLICKED: ("clicked_at", "opened_at"),
}
# Feedback that proves the message left: it stamps sent_at too when our own "sent" outcome
# was not written yet (or is never written: the report overtook it), so the rollup counts
# the message as sent.
_PROVES_SENT = frozenset(
    {S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.BOUNCED, S.COMPLAINED, S.UNSUBSCRIBED}
)
# A complaint or an unsubscribe reported by the provider comes from the message in the
# recipient's mailbox: it was delivered, unless it had bounced (failed_at, pre-update value).
_PROVES_DELIVERED = frozenset({S.COMPLAINED, S.UNSUBSCRIBED})


def _feedback_sources(status: str) -> list[str]:
    sources = _sources(status)
    if status in (S.DELIVERED, S.BOUNCED) and S.QUEUED not in sources:
        sources.append(S.QUEUED)
    return sources


def deliveries_feedback(rows: Sequence[tuple[int, str, str, str, str]]) -> list[tuple[int, str]]:
    """Apply provider feedback to the ledger: `rows` are (delivery id, status, provider event
    id, detail, url). Each (delivery, event id) is applied once, however often the provider
    sends it (the event id is unique per delivery in DeliveryEvent), and only where
    TRANSITIONS allow the move, so feedback out of order or repeated changes nothing (a
    "delivered" after "opened" is dropped). Opens and clicks are engagement (ENGAGEMENT):
    each distinct event counts, as a pixel hit does, and moves the status only forward.
    Returns the (delivery id, status) pairs applied.

    One statement per status, in the order a message lives (sent … unsubscribed), so a
    batch holding "delivered" and "opened" of one message ends opened."""
    by_status: dict[str, list[tuple[int, str, str, str]]] = {}
    for delivery_id, status, event_id, detail, url in rows:
        if status not in TRANSITIONS:
            raise ValueError(f"unknown delivery status {status!r}")
        by_status.setdefault(status, []).append((delivery_id, event_id, detail, url))
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    applied: list[tuple[int, str]] = []
    order: dict[str, int] = {str(status): index for index, status in enumerate(FEEDBACK_ORDER)}
    for status in sorted(by_status, key=lambda s: order.get(s, len(order))):
        items = by_status[status]
        ids, event_ids, details, urls = (list(column) for column in zip(*items, strict=True))
        engagement = status in ENGAGEMENT
        sources = _feedback_sources(status)
        set_params: list[Any] = []
        allowed_params: list[Any]
        if engagement:
            sets = ["status = CASE WHEN d.status = ANY(%s) THEN %s ELSE d.status END"]
            set_params += [sources, status]
            stamps = list(ENGAGEMENT_STAMPS[status])
            counter = "open_count" if status == S.OPENED else "click_count"
            sets.append(f"{counter} = d.{counter} + i.n")
            # Every row that went out may count an engagement, as a pixel hit on it would
            # (a skipped row never left: nothing of it can be opened).
            allowed, allowed_params = "d.status <> %s", [S.SKIPPED]
        else:
            sets = ["status = %s", "claimed_at = NULL"]
            set_params.append(status)
            stamp = STAMPS.get(status)
            stamps = [stamp] if stamp else []
            allowed, allowed_params = "d.status = ANY(%s)", [sources]
        if status in _PROVES_SENT and "sent_at" not in stamps:
            stamps.append("sent_at")
        sets += [f"{stamp} = COALESCE(d.{stamp}, now())" for stamp in stamps]
        if status in _PROVES_DELIVERED:
            sets.append(
                "delivered_at = COALESCE(d.delivered_at,"
                " CASE WHEN d.failed_at IS NULL THEN now() END)"
            )
        if status in ERROR_STATUSES:
            sets.append(
                "error = CASE WHEN i.detail = '' THEN d.error ELSE left(i.detail, 10000) END"
            )
        # Rows allowed to move are locked first, so a concurrent copy of the same event waits
        # and then finds its event id taken (ON CONFLICT) and moves nothing.
        sql = f"""
            /* delivery.feedback */
            WITH v AS (
                SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])
                           AS v(id, event_id, detail, url)
            ), ok AS (
                SELECT v.*, d.period FROM v JOIN {table} d ON d.id = v.id
                 WHERE {allowed}
                 FOR UPDATE OF d
            ), ins AS (
                INSERT INTO {events}
                       (delivery_id, status, at, detail, url, provider_event_id, period)
                SELECT DISTINCT ON (id, event_id) id, %s, now(), left(detail, 10000),
                       left(url, 2000), left(event_id, 255), period
                  FROM ok
                ON CONFLICT (delivery_id, provider_event_id, period)
                   WHERE provider_event_id <> ''
                DO NOTHING
                RETURNING delivery_id, detail
            ), i AS (
                SELECT delivery_id, count(*) AS n, max(detail) AS detail FROM ins GROUP BY 1
            )
            UPDATE {table} d SET {", ".join(sets)}
              FROM i
             WHERE d.id = i.delivery_id
            RETURNING d.id
        """
        params = [ids, event_ids, details, urls, *allowed_params, status, *set_params]
        # Prepared (one text per status): planning this statement costs the server more
        # than running it for the few rows a webhook request usually carries.
        applied.extend((row[0], status) for row in fetchall_prepared(sql, params))
    return applied


# Where a delivery falls back when clicks it owed its status to turn out to be a machine's
# (campaigns.engagement: a trap or burst found seconds later). Not a transition: nothing
# happened to the message, the earlier reading of a hit was wrong. The status is what the
# remaining human engagement and the stamps say.
MACHINE_CORRECTIONS: dict[str, frozenset[str]] = {
    S.CLICKED: frozenset({S.OPENED, S.DELIVERED, S.SENT}),
    S.OPENED: frozenset({S.DELIVERED, S.SENT}),
}


def delivery_clicks_to_machine(*, delivery_id: int, since_seconds: float, detail: str) -> int:
    """Re-read as machine clicks the human clicks of one delivery recorded in the last
    `since_seconds`: their history rows get `machine` and `detail`, the counters move from
    click_count to machine_click_count, and where no human click is left clicked_at (and
    opened_at, which only the click had set) is cleared and the status falls back as
    MACHINE_CORRECTIONS allows. One statement; returns the clicks re-read."""
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    sql = f"""
        WITH flipped AS (
            UPDATE {events} e SET machine = true, detail = %s
             WHERE e.delivery_id = %s AND e.status = %s AND NOT e.machine
               AND e.at >= now() - make_interval(secs => %s)
            RETURNING e.id
        ), n AS (SELECT count(*) AS c FROM flipped), counted AS (
            SELECT d.id, GREATEST(d.click_count - n.c, 0) AS clicks, d.open_count AS opens,
                   d.delivered_at, n.c
              FROM {table} d, n WHERE d.id = %s AND n.c > 0
        )
        UPDATE {table} d SET
               click_count = counted.clicks,
               machine_click_count = d.machine_click_count + counted.c,
               clicked_at = CASE WHEN counted.clicks = 0 THEN NULL ELSE d.clicked_at END,
               opened_at = CASE WHEN counted.clicks = 0 AND counted.opens = 0 THEN NULL
                                ELSE d.opened_at END,
               status = CASE
                   WHEN counted.clicks > 0 OR NOT (d.status = ANY(%s)) THEN d.status
                   WHEN counted.opens > 0 THEN %s
                   WHEN counted.delivered_at IS NOT NULL THEN %s
                   ELSE %s END
          FROM counted
         WHERE d.id = counted.id
        RETURNING counted.c
    """
    params: list[Any] = [
        detail[:10_000],
        delivery_id,
        S.CLICKED,
        since_seconds,
        delivery_id,
        list(MACHINE_CORRECTIONS),
        S.OPENED,
        S.DELIVERED,
        S.SENT,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else 0
