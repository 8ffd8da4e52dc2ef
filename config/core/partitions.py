"""Monthly range partitions for the tables that grow with time (the delivery ledger and its
history, events, webhook requests), and their retention.

Why partitions: those tables only grow. Deleting old rows from one big table is a long
`DELETE` that bloats it and its indexes; dropping a month partition is a catalogue change.
A table is registered here by its app (`partitioned_register`, from its AppConfig.ready),
with the column it is partitioned by, the setting that keeps it, and what must happen before
a month is dropped (summarise it into the rollups the reports read) or what forbids the
drop (a run still sending). This module knows no app: the apps bring their rules.

Decisions:
- One partition per calendar month (UTC), named `<table>_pYYYYMM`, created for the current
  month and the next two at every migrate (post_migrate) and daily by beat, so rows never
  wait on a DDL. A DEFAULT partition catches a row outside them (a clock far off, an old
  `occurredAt`); creating a month whose rows already sit in DEFAULT moves them first, since
  PostgreSQL refuses to create a partition that DEFAULT rows belong to.
- Retention drops whole months only, each one once all of it is older than the setting's
  days (0: keep forever), after its rollup ran in the same transaction. DEFAULT is never
  dropped.
- Converting an existing table (`table_partition`, from migrations) copies it with one
  INSERT ... SELECT into a new partitioned table and recreates its indexes and foreign keys
  from the catalogue, so whatever indexes the models declared carry over unchanged. The
  primary key becomes (id, key): PostgreSQL wants the partition key in every unique key;
  Django still sees `id` as the primary key and ids stay unique (one sequence).
"""

# Table and column names below come from registered specs, never from users.
# ruff: noqa: S608

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone

logger = logging.getLogger(__name__)

MONTHS_AHEAD = 2


@dataclass(frozen=True)
class Partitioned:
    """A table partitioned by month on `key` (a date, or a timestamptz when `key_is_date`
    is false), kept `retention_setting` days (an empty name: kept until a table it is a
    companion of goes). `rollup(start, end)` summarises the rows of [start, end) into
    whatever reports read once they are gone; `keep(start, end)` names a reason not to drop
    that month yet (or returns None); `companions` are tables partitioned by the same key
    whose month goes with this one's (a delivery's history with its delivery)."""

    table: str
    key: str
    retention_setting: str = ""
    key_is_date: bool = False
    rollup: Callable[[date, date], None] | None = None
    keep: Callable[[date, date], str | None] | None = None
    companions: tuple[str, ...] = ()


# Sent inside the transaction that drops a month of `table`, after its rollup and before the
# drop, with `start` and `end` of the month: apps above clear their links into those rows
# (links without a database foreign key, which nothing else would clear).
partition_dropping = Signal()


_REGISTRY: dict[str, Partitioned] = {}


def partitioned_register(spec: Partitioned) -> None:
    _REGISTRY[spec.table] = spec


def partitioned_tables() -> list[Partitioned]:
    return list(_REGISTRY.values())


def partitioned(table: str) -> Partitioned:
    return _REGISTRY[table]


# --- months -----------------------------------------------------------------------------------


def month_start(day: date) -> date:
    return date(day.year, day.month, 1)


def month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_of(moment: datetime | None) -> date:
    """The ledger's partition key of something created at `moment`: its UTC month."""
    moment = moment or timezone.now()
    if timezone.is_aware(moment):
        moment = moment.astimezone(UTC)
    return month_start(moment.date())


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y%m}"


def default_partition_name(table: str) -> str:
    return f"{table}_default"


def _bound(spec: Partitioned, month: date) -> str:
    return f"'{month.isoformat()}'" if spec.key_is_date else f"'{month.isoformat()} 00:00+00'"


def _exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return bool(cursor.fetchone()[0])


def partition_months(spec: Partitioned) -> list[date]:
    """The months that have a partition of their own, oldest first."""
    pattern = re.compile(rf"^{re.escape(spec.table)}_p(\d{{4}})(\d{{2}})$")
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = to_regclass(%s)""",
            [spec.table],
        )
        names = [row[0] for row in cursor.fetchall()]
    months = []
    for name in names:
        found = pattern.match(name)
        if found:
            months.append(date(int(found[1]), int(found[2]), 1))
    return sorted(months)


# --- creating ---------------------------------------------------------------------------------


def default_partition_ensure(spec: Partitioned) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {default_partition_name(spec.table)} "
            f"PARTITION OF {spec.table} DEFAULT"
        )


def partition_create(spec: Partitioned, month: date) -> bool:
    """Create the partition of `month` unless it exists; True when created. Rows of that
    month already in DEFAULT are moved into it in the same transaction."""
    month = month_start(month)
    name = partition_name(spec.table, month)
    if _exists(name):
        return False
    start, end = _bound(spec, month), _bound(spec, month_add(month, 1))
    default = default_partition_name(spec.table)
    with transaction.atomic(), connection.cursor() as cursor:
        # The daily task and a migrate may create the same month at once: one at a time.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partition:{name}"])
        if _exists(name):
            return False
        in_range = f"{spec.key} >= {start} AND {spec.key} < {end}"
        stray = False
        if _exists(default):
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {in_range})")
            stray = bool(cursor.fetchone()[0])
        if not stray:
            cursor.execute(
                f"CREATE TABLE {name} PARTITION OF {spec.table} "
                f"FOR VALUES FROM ({start}) TO ({end})"
            )
            return True
        # The month's rows leave DEFAULT for a standalone table that is then attached (its
        # indexes are built to match the parent's at ATTACH).
        cursor.execute(
            f"CREATE TABLE {name} (LIKE {spec.table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE {in_range} RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"
        )
        moved = cursor.rowcount
        cursor.execute(
            f"ALTER TABLE {spec.table} ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})"
        )
        logger.warning("moved %s rows of %s out of %s", moved, name, default)
    return True


def partitions_ensure(spec: Partitioned, *, today: date | None = None) -> list[str]:
    """DEFAULT, the current month and the next MONTHS_AHEAD: names of those created."""
    today = today or timezone.now().date()
    default_partition_ensure(spec)
    created = []
    for ahead in range(MONTHS_AHEAD + 1):
        month = month_add(month_start(today), ahead)
        if partition_create(spec, month):
            created.append(partition_name(spec.table, month))
    return created


def partitions_ensure_all(**kwargs) -> list[str]:
    """Every registered table's partitions (post_migrate and the daily beat task). Tables
    not converted yet (a migrate that stopped before their migration) are left alone."""
    created: list[str] = []
    for spec in partitioned_tables():
        if _is_partitioned(spec.table):
            created += partitions_ensure(spec)
    return created


def _is_partitioned(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))",
            [table],
        )
        return bool(cursor.fetchone()[0])


# --- retention --------------------------------------------------------------------------------


def retention_days(spec: Partitioned) -> int:
    if not spec.retention_setting:
        return 0
    return int(getattr(settings, spec.retention_setting, 0) or 0)


def partitions_expired(spec: Partitioned, *, today: date | None = None) -> list[date]:
    """Months wholly older than the retention (none when it is 0: keep forever)."""
    days = retention_days(spec)
    if days <= 0:
        return []
    cutoff = (today or timezone.now().date()) - timedelta(days=days)
    return [month for month in partition_months(spec) if month_add(month, 1) <= cutoff]


def partition_drop(spec: Partitioned, month: date) -> None:
    """Drop the month of the table and of its companions (each one that has it)."""
    with connection.cursor() as cursor:
        # Django's foreign keys are checked at commit; rows of the month written in this
        # transaction would otherwise hold their checks and PostgreSQL refuse the drop.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for table in (spec.table, *spec.companions):
        name = partition_name(table, month)
        if not _exists(name):
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")


@dataclass(frozen=True)
class RetentionResult:
    dropped: list[str]
    kept: dict[str, str]


def retention_apply(spec: Partitioned, *, today: date | None = None) -> RetentionResult:
    """Roll up, then drop, every month past the retention; one transaction per month, so a
    failed rollup keeps its month and the next run tries again."""
    dropped: list[str] = []
    kept: dict[str, str] = {}
    for month in partitions_expired(spec, today=today):
        name = partition_name(spec.table, month)
        end = month_add(month, 1)
        with transaction.atomic():
            reason = spec.keep(month, end) if spec.keep else None
            if reason:
                kept[name] = reason
                continue
            if spec.rollup:
                spec.rollup(month, end)
            for table in (spec.table, *spec.companions):
                partition_dropping.send(sender=Partitioned, table=table, start=month, end=end)
            partition_drop(spec, month)
        dropped.append(name)
        logger.info("retention dropped %s", name)
    return RetentionResult(dropped=dropped, kept=kept)


# --- converting an existing table (migrations) ------------------------------------------------


def table_partition(
    schema_editor,
    *,
    spec: Partitioned,
    fill: Mapping[str, str] | None = None,
    joins: str = "",
) -> None:
    """Turn the plain table `spec.table` into one partitioned by month on `spec.key`, rows,
    indexes and foreign keys included; the id sequence carries on from the old ids.

    `fill` gives SQL expressions for columns the copy computes (over the old table `o` and
    `joins`), e.g. a partition key added by the same migration. Foreign keys from other
    tables must have been dropped before (db_constraint=False): PostgreSQL would need the
    partition key in them."""
    table, key = spec.table, spec.key
    old = f"{table}_unpartitioned"
    fill = dict(fill or {})
    with schema_editor.connection.cursor() as cursor:
        # Deferred foreign key checks of rows written earlier in this transaction would
        # otherwise make PostgreSQL refuse to drop the old table.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "SELECT conrelid::regclass::text FROM pg_constraint "
            "WHERE confrelid = to_regclass(%s) AND contype = 'f' AND conrelid <> confrelid",
            [table],
        )
        referencing = [row[0] for row in cursor.fetchall()]
        if referencing:
            raise RuntimeError(f"{table} is still referenced by foreign keys of {referencing}")
        cursor.execute(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
                WHERE i.tablename = %s AND i.schemaname = current_schema()
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                   WHERE c.conindid = to_regclass(i.indexname)
                                     AND c.conrelid = to_regclass(%s))""",
            [table, table],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                WHERE conrelid = to_regclass(%s) AND contype IN ('f', 'u')""",
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            [table],
        )
        columns = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        old_sequence = cursor.fetchone()[0]

        cursor.execute(f"ALTER TABLE {table} RENAME TO {old}")
        cursor.execute(
            f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
            f"PARTITION BY RANGE ({key})"
        )
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN {key} SET NOT NULL")
        # Identity columns on partitioned tables need PostgreSQL 17: a sequence of its own.
        sequence = f"{table}_id_seq"
        cursor.execute(f"CREATE SEQUENCE {sequence}_new")
        cursor.execute(
            f"SELECT setval('{sequence}_new', greatest((SELECT max(id) FROM {old}), "
            f"(SELECT last_value FROM {old_sequence}), 1))"
        )
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{sequence}_new')")
        cursor.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id, {key})")

        default_partition_ensure(spec)
        source = f"{old} o {joins}"
        key_expression = fill.get(key, f"o.{key}")
        if spec.key_is_date:
            month_expression = f"date_trunc('month', {key_expression})::date"
        else:
            month_expression = f"date_trunc('month', {key_expression} AT TIME ZONE 'UTC')::date"
        cursor.execute(f"SELECT DISTINCT {month_expression} FROM {source}")
        months = {row[0] for row in cursor.fetchall() if row[0] is not None}
        this_month = month_start(timezone.now().date())
        months |= {month_add(this_month, ahead) for ahead in range(MONTHS_AHEAD + 1)}
        for month in sorted(months):
            partition_create(spec, month)

        selects = [fill.get(column, f"o.{column}") for column in columns]
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(selects)} FROM {source}"
        )
        cursor.execute(f"DROP TABLE {old}")
        cursor.execute(f"ALTER SEQUENCE {sequence}_new RENAME TO {sequence}")
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{sequence}')")
        cursor.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id")
        for _name, definition in indexes:
            cursor.execute(definition)
        for name, definition in constraints:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        cursor.execute(f"ANALYZE {table}")
