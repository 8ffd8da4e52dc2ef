"""Statements sent in psycopg's pipeline mode, so Python works while PostgreSQL does.

A file import prepares its next chunk while the server runs the current chunk's matching
query, COPY and UPDATE: the statement is sent, and `meanwhile` works until its result starts
arriving on the socket.
"""

import select
from collections.abc import Callable

# Work a caller gives a batch write to do while PostgreSQL is busy with it (a file import
# reads its next chunk): called with `until`, a check that the awaited result has arrived
# (None while there is no such signal, as during a COPY), it works in short steps until that
# is true or it has nothing left to do for now. See contacts.bulk.upsert.contacts_upsert_batch.
Meanwhile = Callable[[Callable[[], bool] | None], None]


def fetch_rows(cursor, sql: str, params: list, meanwhile: Meanwhile | None) -> list[tuple]:
    """Run one statement and fetch its rows. With `meanwhile`, the statement is sent in
    pipeline mode, so it runs while `meanwhile` works, until its result starts arriving."""
    if meanwhile is None:
        cursor.execute(sql, params)
        return cursor.fetchall()
    conn = cursor.cursor.connection
    with conn.pipeline():
        cursor.execute(sql, params)
        # In a pipeline the server holds results back until asked: this asks it to send
        # them as soon as they are ready, so their arrival on the socket ends `meanwhile`.
        conn.pgconn.send_flush_request()
        conn.pgconn.flush()
        fileno = conn.fileno()
        meanwhile(lambda: bool(select.select([fileno], [], [], 0)[0]))
        return cursor.fetchall()
