"""Statements on hot paths that Django's cursor would make slower than they need to be.

Django's psycopg cursors bind parameters client-side: every value is quoted into the SQL text
in Python and PostgreSQL parses and plans the whole text each time. Two places pay for that:
the event ingest INSERT (planning it costs more than executing it) and the bulk statements
that carry a request's rows as one JSON document (quoting a megabyte of JSON into the SQL
costs more than the database's work on it). Both run here through psycopg's
server-side-binding cursor on Django's own connection, inside whatever transaction Django
has open, with Django's error mapping. (Django's query logging and execute wrappers do not
see them.)
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db import OperationalError, connection

if TYPE_CHECKING:
    # django-stubs declare Django's ServerBindingCursor without its base class, psycopg's
    # server-side-binding Cursor, whose methods are all this module uses.
    from psycopg import Cursor as ServerBindingCursor
else:
    from django.db.backends.postgresql.base import ServerBindingCursor


def fetchone_prepared(sql: str, values: list) -> tuple | None:
    """Run one statement, prepared once per connection, and return its first row.

    psycopg keeps the prepared statement per connection (CONN_MAX_AGE keeps connections),
    keyed by the SQL and the parameter types, so a statement whose text varies should vary
    among a handful of forms. DB_PREPARED_STATEMENTS=0 turns preparing off (the statement
    still runs).

    The statement is its own health check: Django's (CONN_HEALTH_CHECKS) would cost a
    `SELECT 1` round trip per request, as much as a one-statement request's own. A
    persistent connection that went stale while idle (server restart, idle timeout) fails
    the statement with the connection broken; then, outside a transaction, the connection is
    opened again and the statement sent once more, as the health check would have done.
    (Only a connection lost after the server committed but before it answered would run the
    statement twice, as a client's own retry of a lost answer would.)
    """
    return _prepared(sql, values, all_rows=False)


def fetchall_prepared(sql: str, values: list) -> list[tuple]:
    """Run one statement, prepared once per connection, and return all its rows (as
    fetchone_prepared, for a statement run once per request, e.g. a webhook's lookup)."""
    return _prepared(sql, values, all_rows=True)


def _prepared(sql: str, values: list, *, all_rows: bool):
    reused = connection.connection is not None
    try:
        return _fetch(sql, values, all_rows)
    except OperationalError:
        if not (reused and connection.connection.broken and not connection.in_atomic_block):
            raise
    connection.close()
    return _fetch(sql, values, all_rows)


def fetchall_bound(sql: str, values: list) -> list[tuple]:
    """Run one statement with its parameters sent apart from its text; return its rows
    (none for a statement without RETURNING). Not prepared: for large one-off payloads."""
    with _server_binding_cursor() as cursor:
        cursor.execute(sql, values, prepare=False)
        return cursor.fetchall() if cursor.description else []


def _fetch(sql: str, values: list, all_rows: bool):
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    # One cursor per database connection, kept with Django's (per-thread) wrapper: a new
    # cursor per statement costs as much Python as executing the prepared statement, since
    # each one sets up its adaptation of the parameters afresh.
    kept = getattr(connection, "_herald_prepared_cursor", None)
    if kept is None or kept[0] is not connection.connection:
        kept = (connection.connection, ServerBindingCursor(connection.connection))
        # A slot of our own on Django's per-thread wrapper: the cursor lives and dies with it.
        connection._herald_prepared_cursor = kept  # type: ignore[attr-defined]
    with connection.wrap_database_errors:
        kept[1].execute(sql, values, prepare=True)
        return kept[1].fetchall() if all_rows else kept[1].fetchone()


@contextmanager
def _server_binding_cursor() -> Iterator[ServerBindingCursor]:
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    with (
        connection.wrap_database_errors,
        ServerBindingCursor(connection.connection) as cursor,
    ):
        yield cursor
