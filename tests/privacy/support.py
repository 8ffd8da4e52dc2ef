"""Searching the whole database for a person's values: every text, JSON, array and binary
column of every table in the public schema, whatever app made it."""

import re

from django.db import connection

# The column types a copy of an address or a name can hide in, cast to text for the search.
# bytea is read with encode(…, 'escape'): ASCII as itself, so an address inside a stored
# request body is found.
SEARCHED_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea", "ARRAY")


def _columns() -> dict[str, list[tuple[str, str]]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.table_name, c.column_name, c.data_type
                 FROM information_schema.columns c
                 JOIN information_schema.tables t
                   ON t.table_schema = c.table_schema AND t.table_name = c.table_name
                WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
                  AND c.data_type = ANY(%s)
                ORDER BY c.table_name, c.ordinal_position""",
            [list(SEARCHED_TYPES)],
        )
        tables: dict[str, list[tuple[str, str]]] = {}
        for table, column, kind in cursor.fetchall():
            tables.setdefault(table, []).append((column, kind))
    return tables


def _as_text(column: str, kind: str) -> str:
    quoted = connection.ops.quote_name(column)
    return f"encode({quoted}, 'escape')" if kind == "bytea" else f"{quoted}::text"


def database_hits(values: list[str]) -> dict[str, set[str]]:
    """{"table.column": {values found in it}}, case-insensitively, over the whole schema:
    one query per table."""
    pattern = "|".join(re.escape(value) for value in values)
    hits: dict[str, set[str]] = {}
    lowered = {value.lower(): value for value in values}
    with connection.cursor() as cursor:
        for table, columns in _columns().items():
            texts = [_as_text(column, kind) for column, kind in columns]
            where = " OR ".join(f"{text} ~* %s" for text in texts)
            cursor.execute(
                f"SELECT {', '.join(texts)} FROM {connection.ops.quote_name(table)} "  # noqa: S608
                f"WHERE {where}",
                [pattern] * len(texts),
            )
            for row in cursor.fetchall():
                for (column, _kind), text in zip(columns, row, strict=True):
                    found = {v for low, v in lowered.items() if text and low in text.lower()}
                    if found:
                        hits.setdefault(f"{table}.{column}", set()).update(found)
    return hits
