"""COPY's text format and the literals the bulk SQL takes, written in Python at C speed.

Batch-sized values go to PostgreSQL as text written here rather than adapted by psycopg item
by item: rows by COPY (copy_line), arrays as literals, JSON columns by one prebuilt encoder.
"""

import json
from _json import make_encoder
from collections.abc import Sequence

from contacts.bulk.pipeline import Meanwhile


# Batch-sized arrays go as PostgreSQL array literals written here: psycopg adapts a list
# item by item in Python, about 3 ms for a batch's 3000 strings, five times this join.
def int_array_literal(values: Sequence[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def text_array_literal(values: Sequence[str]) -> str:
    return (
        "{"
        + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        + "}"
    )


# json.dumps builds its encoder again at every call, two thirds of its cost for the few
# keys a contact's JSON columns hold; this is the same encoder (same output), built once:
# CPython's C encoder, which json.encoder knows as c_make_encoder.
# No circular-reference check: the values come from parsed JSON and CSV, never cyclic.
def _json_refused(value):
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_json_encoder = make_encoder(
    None, _json_refused, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
)


def json_text(value) -> str:
    return "".join(_json_encoder(value, 0))


# COPY's text format: a tab between columns, \N for NULL, and these escaped in a value.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_line(values: Sequence) -> str:
    """Values (str, int or None) as one line of COPY's text format, without its newline.

    Most values hold none of the characters COPY escapes; that is checked once on the joined
    line (its only backslashes the NULL markers, its only tabs the separators) instead of
    escaping value by value."""
    nulls = values.count(None)
    texts = ["\\N" if value is None else value for value in values] if nulls else values
    try:
        line = "\t".join(texts)
    except TypeError:  # not only strings: a number
        line = "\t".join(map(str, texts))
    if (
        line.count("\\") == nulls
        and line.count("\t") == len(values) - 1
        and "\n" not in line
        and "\r" not in line
    ):
        return line
    return "\t".join(
        "\\N" if value is None else str(value).translate(_COPY_ESCAPES) for value in values
    )


def copy_payload(
    cursor,
    table: str,
    columns: tuple[str, ...],
    payload: str,
    meanwhile: Meanwhile | None = None,
) -> None:
    """COPY text-format lines (copy_line's, each ending in a newline) into `table`, sent in one
    write; `meanwhile` works while PostgreSQL reads and indexes them, before the COPY ends."""
    with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(payload)
        if meanwhile is not None:
            meanwhile(None)
