"""Claiming work from a table that is its own queue: one helper for every such queue.

Herald keeps its queues in PostgreSQL rows (the delivery ledger, unprocessed events, waiting
workflow runs): the row is the job, so no job is lost with a broker message, and a crash
anywhere leaves the row to be taken again. Two ways to hold a row, both built here:

- A **lease** (`lease_claim`): one `UPDATE ... WHERE pk IN (SELECT ... LIMIT n FOR UPDATE
  SKIP LOCKED) RETURNING` stamps a bounded batch with the claim time and commits. The claim
  outlives the transaction (a worker sends for minutes without holding locks); a lease whose
  worker died is recognised by its age: the caller either lets the claim take such rows
  over (`lease_free(..., expired_after=timeout)`) or leaves them to a recovery step
  (`lease_release`).
- A **lock** (`lock_claim`): `SELECT ... FOR UPDATE SKIP LOCKED` in the caller's transaction,
  for work done and marked inside that same transaction (the lock is the lease).

SKIP LOCKED lets workers claim side by side without waiting for, or repeating, each other.
Times are the database clock at the statement (`statement_timestamp()`): one clock for every
worker, whatever their hosts say; in autocommit, where workers claim, it is `now()`, and
unlike `now()` it is not frozen at the start of an enclosing transaction.

This module imports no app: callers pass their table, columns, WHERE fragment (with `%s`
parameters) and ORDER BY, and keep the partial indexes those fragments are written for.
"""

# Table and column names come from the callers' models; every value goes through parameters.
# ruff: noqa: S608

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import connection

CLOCK = "statement_timestamp()"


def lease_free(column: str = "claimed_at", *, expired_after: timedelta | None = None) -> tuple:
    """The WHERE fragment (and its parameters) for rows nobody holds: never claimed, or, with
    `expired_after`, claimed longer ago than that (their worker died)."""
    if expired_after is None:
        return f"{column} IS NULL", []
    return f"({column} IS NULL OR {column} < {CLOCK} - %s)", [expired_after]


def lease_expired(column: str, older_than: timedelta) -> tuple:
    """The WHERE fragment for leases older than `older_than` (their worker died)."""
    return f"{column} < {CLOCK} - %s", [older_than]


def lease_claim(
    *,
    table: str,
    where: str,
    params: Sequence[Any],
    limit: int,
    order_by: str = "id",
    column: str = "claimed_at",
    sets: str = "",
    set_params: Sequence[Any] = (),
    source: str = "",
    lock_of: str = "",
    returning: str = "id",
    label: str = "",
) -> list[tuple]:
    """Claim up to `limit` rows of `table` matching `where` (ORDER BY `order_by`): stamp
    `column` with the clock, apply `sets` (more `SET` assignments; the updated row is `q`)
    and return `returning` of each claimed row.

    `source` replaces the inner FROM (e.g. a join; the claimed table's alias must then be
    named by `lock_of`, and `where`/`order_by` use it). `label` is written into the SQL as
    a comment, so a query log shows which queue claimed.
    """
    inner_from = source or table
    key = f"{lock_of}.id" if lock_of else "id"
    of = f" OF {lock_of}" if lock_of else ""
    assignments = f"{column} = {CLOCK}" + (f", {sets}" if sets else "")
    comment = f"/* {label} */ " if label else ""
    sql = f"""{comment}UPDATE {table} q SET {assignments}
         WHERE q.id IN (
            SELECT {key} FROM {inner_from}
             WHERE {where}
             ORDER BY {order_by}
             LIMIT %s
               FOR UPDATE{of} SKIP LOCKED
         )
        RETURNING {returning}"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [*set_params, *params, limit])
        return cursor.fetchall()


def lease_release(
    *,
    table: str,
    where: str,
    params: Sequence[Any],
    older_than: timedelta,
    column: str = "claimed_at",
    sets: str = "",
) -> int:
    """Recovery: give back rows whose lease is older than `older_than` (their worker died);
    return how many. `sets` adds assignments to the release."""
    expired, expired_params = lease_expired(column, older_than)
    assignments = f"{column} = NULL" + (f", {sets}" if sets else "")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} WHERE ({where}) AND {expired}",
            [*params, *expired_params],
        )
        return cursor.rowcount


def lock_claim(
    *,
    table: str,
    columns: str,
    where: str,
    params: Sequence[Any],
    limit: int,
    order_by: str = "id",
) -> list[tuple]:
    """Lock up to `limit` rows matching `where` for the caller's open transaction and return
    `columns` of each: the work is done and marked before that transaction commits."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {columns} FROM {table}
                 WHERE {where}
                 ORDER BY {order_by} LIMIT %s
                   FOR UPDATE SKIP LOCKED""",
            [*params, limit],
        )
        return cursor.fetchall()
