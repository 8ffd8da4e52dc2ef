"""Dynamic segments' stored members, kept up to date contact by contact.

A dynamic segment is a filter (contacts.filters.compiler); who it matches changes as contacts,
their events and their orders change. Rather than re-running every segment every minute,
Herald stores each dynamic segment's members (DynamicMember) and re-evaluates only the
contacts that changed:

- Every write that can change what a filter sees **marks** the contacts it touched: one
  INSERT ... SELECT into the recheck queue (SegmentRecheck), in the writer's own transaction
  (contact services, the bulk upsert and CSV imports, static segment membership, and, from
  marketing, events and orders). The queue is append-only, so a writer never waits for a
  drain; marking is skipped, in the same statement, while no dynamic segment exists.
- A **drain** (task contacts.segment_members_drain, kicked on the commit that marked and run
  by beat every minute in case a kick was lost) claims a batch of queue rows with
  FOR UPDATE SKIP LOCKED and, in that one transaction, evaluates the batch's contacts against
  every filled dynamic segment in one SQL statement (each segment's compiled filter,
  restricted to the batch), inserts the members that are new, deletes the ones that no longer
  match, records each change (SegmentChange) and emits its event (`segmentEntered` /
  `segmentLeft`, params segmentId and segmentName) through the event store, then deletes the
  queue rows. A crash anywhere before the commit leaves the rows to be claimed again, with
  nothing written: an event is emitted exactly with its membership change.
- Two drains may hold rows of one contact (it was marked twice). Each takes a per-contact
  advisory lock before evaluating, so the second evaluates after the first committed and
  sees its members: a change is written, and its event emitted, once.
- A segment created, or whose filter changes, is **filled** once in full (DELETE, then one
  INSERT ... SELECT) without emitting events: its first members did not "enter" anything, and
  a million `segmentEntered` events for a new segment would start a million workflow runs
  nobody asked for. Until it is filled the incremental updates leave it alone.
- Filters that change without any write to a contact (RFM scores recomputed nightly, the
  unsubscribed list, nested static segments emptied in bulk) are caught by a **refresh**: a
  full evaluation of every filled segment that emits events for the differences, run daily
  by beat and after each RFM recomputation.

Locks: a drain holds the segments lock shared while it evaluates; a fill or refresh holds it
exclusively (and its segment's row FOR UPDATE, against a concurrent edit), so it waits for
running drains and they wait for it.

The stored members lag the filter by the drain's delay; segment reach and campaign audiences
keep compiling the filter, which is always exact.
"""

# SQL here interpolates only our own table names and the compiler's SQL; values are parameters.
# ruff: noqa: S608

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from celery import signature
from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.db.models.expressions import RawSQL
from django.utils import timezone

from config.core.db import fetchall_prepared
from config.core.events import events_emit_many
from config.core.queues import lock_claim
from contacts.filters.compiler import segment_contacts, segments_conditions
from contacts.models import (
    Contact,
    DynamicMember,
    Segment,
    SegmentChange,
    SegmentKind,
    SegmentRecheck,
)

logger = logging.getLogger(__name__)

ENTERED_EVENT = "segmentEntered"
LEFT_EVENT = "segmentLeft"
# Queue rows claimed per transaction: each batch is one statement of (segments x batch)
# index probes; 500 contacts against 200 segments stay well under a second.
DRAIN_BATCH = 500
# Batches per task before it hands the rest to a fresh task (a backlog never pins a worker).
DRAIN_BATCHES = 20
# Changes are kept this long for the segment page and the changes API.
CHANGES_KEPT = timedelta(days=90)
CHANGES_PAGE_MAX = 1000
# Events are emitted through the event store in slices of this many (a refresh may find many).
EMIT_SLICE = 5_000
DRAIN_TASK = "contacts.segment_members_drain"
FILL_TASK = "contacts.segment_members_fill"
REFRESH_TASK = "contacts.segments_refresh"
# Kicks of the drain are debounced per process: at most one per interval.
KICK_INTERVAL = 0.2  # seconds
# Any constant unique to this job: drains hold it shared, a fill or refresh exclusively.
SEGMENTS_LOCK = 0x5345474D  # "SEGM"
# The batch's contact ids, as the compiled filters see them (a CTE of the drain statement).
_BATCH_CTE = "segment_batch"

_TABLES = {
    "contact": Contact._meta.db_table,
    "segment": Segment._meta.db_table,
    "member": DynamicMember._meta.db_table,
    "recheck": SegmentRecheck._meta.db_table,
    "change": SegmentChange._meta.db_table,
}


# --- marking ---------------------------------------------------------------------------------


def _marking_sql(contacts_sql: str) -> str:
    """INSERT the contacts `contacts_sql` selects (one `id` column) into the queue, unless no
    dynamic segment exists (then there is nothing to keep up to date)."""
    return f"""INSERT INTO {_TABLES["recheck"]} (contact_id, marked_at)
               SELECT DISTINCT m.id, now() FROM ({contacts_sql}) m
                WHERE m.id IS NOT NULL
                  AND EXISTS (SELECT 1 FROM {_TABLES["segment"]} s WHERE s.kind = %s)"""


def contacts_mark_changed(*, contact_ids: Iterable[int]) -> int:
    """Queue these contacts for re-evaluation against the dynamic segments, in the caller's
    transaction; the drain is kicked once it commits. Returns how many rows were queued."""
    ids = list(contact_ids)
    if not ids:
        return 0
    return contacts_mark_changed_sql(sql="SELECT unnest(%s::bigint[]) AS id", params=[ids])


def contacts_mark_changed_sql(*, sql: str, params: list) -> int:
    """contacts_mark_changed for the contacts a query selects (`sql` has one `id` column):
    set-based, for writers that know their contacts only in the database."""
    with connection.cursor() as cursor:
        cursor.execute(_marking_sql(sql), [*params, SegmentKind.DYNAMIC])
        marked = cursor.rowcount
    if marked:
        segment_members_kick()
    return marked


class _Kicker:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.due = float("-inf")

    def kick(self) -> None:
        now = time.monotonic()
        with self.lock:
            if now < self.due:
                return  # a drain of this process is due after this commit and will see it
            self.due = max(now, self.due + KICK_INTERVAL)
            countdown = self.due - now
        _publish(DRAIN_TASK, countdown=countdown or None)


_kicker = _Kicker()


def segment_members_kick() -> None:
    """Have the contacts marked by the surrounding transaction evaluated soon."""
    transaction.on_commit(_kicker.kick)


def _publish(task: str, *, args: tuple = (), countdown: float | None = None) -> None:
    try:
        signature(task, args=args).apply_async(countdown=countdown)
    except Exception:  # the broker's errors vary by transport; the beat drain catches up
        logger.warning("could not publish %s; the beat drain will catch up", task)


# --- the drain -------------------------------------------------------------------------------


@dataclass
class _Compiled:
    segment_ids: list[int]
    names: dict[int, str]
    sql: str
    params: list


def _filled_segments_locked() -> list[tuple[int, str, object]]:
    """The filled dynamic segments (id, name, updated_at), read under the shared segments
    lock, held until the caller's transaction ends: a fill or refresh (which takes it
    exclusively) waits for running drains, and they for it. One advisory lock rather than
    a row lock on every segment: locking 200 rows writes 200 tuples per batch."""
    with connection.cursor() as cursor:
        # Two statements: the read's snapshot must follow the lock, so that a fill that held
        # it is seen committed (contacts changed during a fill are evaluated against it).
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [SEGMENTS_LOCK])
        cursor.execute(
            f"""SELECT id, name, updated_at FROM {_TABLES["segment"]}
                 WHERE kind = %s AND members_filled_at IS NOT NULL
                 ORDER BY id""",
            [SegmentKind.DYNAMIC],
        )
        return cursor.fetchall()


def _compile(segments: list[Segment]) -> _Compiled:
    """One query of (segment_id, id) over the batch: the batch's alive contacts are read once,
    every segment's compiled filter is a boolean column of that one scan (200 filters cost
    one row read and 200 expressions per contact, not 200 subqueries to plan and run), and
    the matches are unpivoted with unnest."""
    conditions = segments_conditions(segments)
    batch = RawSQL(f"SELECT id FROM {_BATCH_CTE}", ())  # noqa: S611 (our constant)
    columns = {
        f"m{pk}": ExpressionWrapper(q, output_field=BooleanField()) for pk, q in conditions.items()
    }
    query = (
        Contact.objects.alive()
        .filter(pk__in=batch)
        .order_by()
        .annotate(**columns)
        .values("id", *columns)
    )
    sql, params = query.query.sql_with_params()
    ids = ", ".join(str(int(pk)) for pk in conditions)
    hits = ", ".join(f"q.{name}" for name in columns)
    return _Compiled(
        segment_ids=[s.pk for s in segments],
        names={s.pk: s.name for s in segments},
        sql=f"""SELECT x.segment_id, q.id FROM ({sql}) q
                 CROSS JOIN LATERAL unnest(ARRAY[{ids}]::bigint[], ARRAY[{hits}]::boolean[])
                       AS x(segment_id, hit)
                 WHERE x.hit""",
        params=list(params),
    )


class _SegmentCache:
    """The compiled query of the filled segments, kept by the process while they stay the
    same (each batch checks their ids and update times under its lock; a change recompiles)."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.compiled: _Compiled | None = None

    def get(self, locked: list[tuple[int, str, object]]) -> _Compiled:
        key = tuple(locked)
        if key != self.key or self.compiled is None:
            segments = list(
                Segment.objects.filter(pk__in=[row[0] for row in locked]).order_by("pk")
            )
            self.compiled = _compile(segments)
            self.key = key
        return self.compiled


_cache = _SegmentCache()


def _contacts_lock(contact_ids: list[int]) -> None:
    """Per-contact advisory locks, in one global order (no two drains deadlock); and, in the
    same round trip, two settings of this transaction: the generic plan for the evaluation
    that follows, and a commit that does not wait for the WAL flush. The latter is safe
    because the batch commits whole: should the server crash and forget it, its queue rows
    are back with nothing of their changes written, and the next drain redoes them; and
    anything durable that follows from its events (a workflow run) flushes it first."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
                      set_config('synchronous_commit', 'off', true),
                      count(pg_advisory_xact_lock(k)) FROM (
                   SELECT DISTINCT hashtextextended('segment-members:' || id, 0) AS k
                     FROM unnest(%s::bigint[]) AS id ORDER BY 1) locks""",
            [contact_ids],
        )


def _evaluate(compiled: _Compiled, contact_ids: list[int]) -> list[tuple[int, int, bool]]:
    """Bring the batch's stored members in line with the filters; return the changes as
    (segment_id, contact_id, entered), already recorded in SegmentChange."""
    member, change = _TABLES["member"], _TABLES["change"]
    sql = f"""
        WITH {_BATCH_CTE} AS MATERIALIZED (SELECT DISTINCT unnest(%s::bigint[]) AS id),
        wanted AS MATERIALIZED ({compiled.sql}),
        entered AS (
            INSERT INTO {member} (segment_id, contact_id, entered_at)
            SELECT segment_id, id, now() FROM wanted
            ON CONFLICT (segment_id, contact_id) DO NOTHING
            RETURNING segment_id, contact_id
        ),
        gone AS (
            DELETE FROM {member} m
             WHERE m.contact_id = ANY(%s::bigint[])
               AND m.segment_id IN (SELECT unnest(%s::bigint[]))
               AND NOT EXISTS (SELECT 1 FROM wanted w
                                WHERE w.segment_id = m.segment_id AND w.id = m.contact_id)
            RETURNING m.segment_id, m.contact_id
        ),
        changed AS (
            SELECT segment_id, contact_id, true AS entered FROM entered
            UNION ALL SELECT segment_id, contact_id, false FROM gone
        ),
        logged AS (
            INSERT INTO {change} (segment_id, contact_id, entered, at)
            SELECT segment_id, contact_id, entered, now() FROM changed
            RETURNING segment_id, contact_id, entered
        )
        SELECT segment_id, contact_id, entered FROM logged ORDER BY contact_id, segment_id"""
    # Prepared once per connection and run with its generic plan (set by _contacts_lock):
    # planning 200 filters costs far more than running them for a batch (20-40 ms against
    # 1 ms for a contact), and the statement's text stays the same while the segments do.
    # The DELETE is written for that plan: members found by contact id first.
    return fetchall_prepared(
        sql, [contact_ids, *compiled.params, contact_ids, compiled.segment_ids]
    )


def _emit(changes: list[tuple[int, int, bool]], names: dict[int, str]) -> int:
    by_type: dict[str, list[dict]] = {ENTERED_EVENT: [], LEFT_EVENT: []}
    for segment_id, contact_id, entered in changes:
        by_type[ENTERED_EVENT if entered else LEFT_EVENT].append(
            {
                "key_value": str(contact_id),
                "params": {"segmentId": segment_id, "segmentName": names.get(segment_id, "")},
                "contact_id": contact_id,
            }
        )
    emitted = 0
    for type_key, events in by_type.items():
        for start in range(0, len(events), EMIT_SLICE):
            emitted += events_emit_many(
                type_key=type_key, events=events[start : start + EMIT_SLICE]
            )
    return emitted


def segment_members_drain(*, batches: int = DRAIN_BATCHES, batch_size: int = DRAIN_BATCH) -> int:
    """Evaluate marked contacts against every filled dynamic segment; return how many queue
    rows were worked off. Segments waiting for their first fill are filled first."""
    segments_fill_pending()
    done = 0
    for _ in range(batches):
        with transaction.atomic():
            rows = lock_claim(
                table=_TABLES["recheck"],
                columns="id, contact_id",
                where="TRUE",
                params=[],
                order_by="id",
                limit=batch_size,
            )
            if not rows:
                return done
            contact_ids = sorted({contact_id for _, contact_id in rows})
            locked = _filled_segments_locked()
            if locked:
                _contacts_lock(contact_ids)
                compiled = _cache.get(locked)
                changes = _evaluate(compiled, contact_ids)
                _emit(changes, compiled.names)
            # Deleted with the changes they led to: a crash before this commit redoes both.
            SegmentRecheck.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
        done += len(rows)
        if len(rows) < batch_size:
            return done
    _publish(DRAIN_TASK)  # more may be waiting: a fresh task goes on
    return done


# --- full evaluation: the first fill, and the refresh ------------------------------------------


def segment_members_reset(*, segment: Segment) -> None:
    """The segment's filter (or kind) changed: forget its stored members and have it filled
    afresh once the caller's transaction commits. Called by the segment services."""
    Segment.objects.filter(pk=segment.pk).update(members_filled_at=None)
    segment.members_filled_at = None
    if segment.kind == SegmentKind.DYNAMIC:
        segment_pk = segment.pk
        transaction.on_commit(lambda: _publish(FILL_TASK, args=(segment_pk,)))
    else:
        DynamicMember.objects.filter(segment_id=segment.pk).delete()


def _locked_dynamic(segment_id: int) -> Segment | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEGMENTS_LOCK])
    return (
        Segment.objects.select_for_update().filter(pk=segment_id, kind=SegmentKind.DYNAMIC).first()
    )


def segment_members_fill(*, segment_id: int) -> int | None:
    """Fill a dynamic segment's stored members in full, without events (see the module's
    docstring); return how many it has, or None when it is not dynamic or already filled."""
    with transaction.atomic():
        segment = _locked_dynamic(segment_id)
        if segment is None or segment.members_filled_at is not None:
            return None
        matches_sql, matches_params = segment_contacts(segment).values("id").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {_TABLES['member']} WHERE segment_id = %s", [segment.pk])
            cursor.execute(
                f"""INSERT INTO {_TABLES["member"]} (segment_id, contact_id, entered_at)
                    SELECT %s, q.id, now() FROM ({matches_sql}) q""",
                [segment.pk, *matches_params],
            )
            filled = cursor.rowcount
        Segment.objects.filter(pk=segment.pk).update(members_filled_at=timezone.now())
        return filled


def segments_fill_pending() -> int:
    """Fill every dynamic segment still waiting for its first fill (a lost kick); return how
    many were filled."""
    pending = Segment.objects.filter(kind=SegmentKind.DYNAMIC, members_filled_at__isnull=True)
    return sum(
        segment_members_fill(segment_id=pk) is not None
        for pk in pending.order_by("pk").values_list("pk", flat=True)
    )


def segment_members_refresh(*, segment_id: int) -> int:
    """Evaluate a filled dynamic segment in full and emit events for the differences with its
    stored members; return how many changed."""
    with transaction.atomic():
        segment = _locked_dynamic(segment_id)
        if segment is None or segment.members_filled_at is None:
            return 0
        matches_sql, matches_params = segment_contacts(segment).values("id").query.sql_with_params()
        member, change = _TABLES["member"], _TABLES["change"]
        with connection.cursor() as cursor:
            cursor.execute(
                f"""WITH wanted AS MATERIALIZED ({matches_sql}),
                    entered AS (
                        INSERT INTO {member} (segment_id, contact_id, entered_at)
                        SELECT %s, id, now() FROM wanted
                        ON CONFLICT (segment_id, contact_id) DO NOTHING
                        RETURNING segment_id, contact_id
                    ),
                    gone AS (
                        DELETE FROM {member} m
                         WHERE m.segment_id = %s
                           AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.id = m.contact_id)
                        RETURNING m.segment_id, m.contact_id
                    ),
                    logged AS (
                        INSERT INTO {change} (segment_id, contact_id, entered, at)
                        SELECT segment_id, contact_id, true, now() FROM entered
                        UNION ALL SELECT segment_id, contact_id, false, now() FROM gone
                        RETURNING segment_id, contact_id, entered
                    )
                    SELECT segment_id, contact_id, entered FROM logged ORDER BY contact_id""",
                [*matches_params, segment.pk, segment.pk],
            )
            changes = cursor.fetchall()
        _emit(changes, {segment.pk: segment.name})
        Segment.objects.filter(pk=segment.pk).update(members_filled_at=timezone.now())
        return len(changes)


def segments_refresh_soon() -> None:
    """Have every dynamic segment refreshed once the caller's transaction commits (after
    a change no contact write shows, such as recomputed RFM scores)."""
    transaction.on_commit(lambda: _publish(REFRESH_TASK))


def segments_refresh() -> int:
    """Refresh every filled dynamic segment (beat, daily, and after RFM scores are
    recomputed), one transaction each; fill those still waiting; forget old changes."""
    segments_fill_pending()
    SegmentChange.objects.filter(at__lt=timezone.now() - CHANGES_KEPT).delete()
    ids = Segment.objects.filter(kind=SegmentKind.DYNAMIC, members_filled_at__isnull=False)
    return sum(
        segment_members_refresh(segment_id=pk)
        for pk in ids.order_by("pk").values_list("pk", flat=True)
    )


# --- reads -----------------------------------------------------------------------------------


def segment_members_count(*, segment: Segment) -> int | None:
    """How many stored members a dynamic segment has; None until it is filled."""
    if segment.kind != SegmentKind.DYNAMIC or segment.members_filled_at is None:
        return None
    return DynamicMember.objects.filter(segment_id=segment.pk).count()


def segment_changes_recent(*, segment: Segment, since) -> dict[str, int]:
    """How many contacts entered and left the segment since `since`."""
    changes = SegmentChange.objects.filter(segment_id=segment.pk, at__gte=since)
    entered = changes.filter(entered=True).count()
    return {"entered": entered, "left": changes.count() - entered}


RECENT_CHANGES_SHOWN = 10


def segment_members_summary(*, segment: Segment) -> dict:
    """What the segment page shows: stored members, entries and leaves over the last day and
    week, and the latest changes."""
    now = timezone.now()
    latest = (
        SegmentChange.objects.filter(segment_id=segment.pk)
        .select_related("contact")
        .order_by("-id")[:RECENT_CHANGES_SHOWN]
    )
    return {
        "members_count": segment_members_count(segment=segment),
        "changes_day": segment_changes_recent(segment=segment, since=now - timedelta(days=1)),
        "changes_week": segment_changes_recent(segment=segment, since=now - timedelta(days=7)),
        "changes_latest": list(latest),
    }


def segment_changes_page(*, segment: Segment, since, limit: int, after: int | None = None) -> dict:
    """Changes of a dynamic segment at or after `since` (and past the change id `after`),
    in the order they were written, at most `limit`, with the counts of entries and leaves
    since `since` and the id the next page starts after."""
    changes = SegmentChange.objects.filter(segment_id=segment.pk, at__gte=since)
    if after is not None:
        changes = changes.filter(pk__gt=after)
    rows = list(changes.order_by("id").values("id", "contact_id", "entered", "at")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    counts = segment_changes_recent(segment=segment, since=since)
    return {
        "segmentId": segment.pk,
        "since": since,
        **counts,
        "changes": [
            {
                "id": row["id"],
                "contact_id": row["contact_id"],
                "change": "entered" if row["entered"] else "left",
                "at": row["at"],
            }
            for row in rows
        ],
        # By id, not by instant: the changes of one drain all share theirs.
        "next": rows[-1]["id"] if more else None,
    }
