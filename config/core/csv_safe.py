"""Cells every CSV export writes, made inert against CSV (formula) injection, and the rule that
lets Herald's own contacts export import back unchanged.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula (`=HYPERLINK(…)`,
`+cmd|' /C calc'!A0`), and one that starts with a tab or carriage return after dropping
them; some locales also read the full-width forms (U+FF1D, U+FF0B, U+FF0D, U+FF20).
Following OWASP, such a cell is written with a single quote in front, which spreadsheets show
as text and hide.

The rule, so that the importer takes off exactly the quotes the exporter added:
- Export (`cell_inert`): a value whose first character after any leading quotes is a formula
  character gets one more quote in front. `=1` → `'=1`; `'=1` (a value that really starts
  with a quote) → `''=1`; `'abc` is left alone, as it starts no formula.
- Import (`cell_restored`): a cell that is one or more quotes followed by a formula character
  loses its first quote. `'=1` → `=1`, `''=1` → `'=1`, `'abc` stays `'abc`.
So `cell_restored(cell_inert(v)) == v` for every text, and a hand-made file whose cell is
`'=1` (the spreadsheet convention for "this is text") imports `=1`.
"""

import csv
from collections.abc import Iterable, Iterator

QUOTE = "'"

FORMULA_PREFIXES = frozenset("=+-@\t\r" + "\uff1d\uff0b\uff0d\uff20")


def _starts_formula(text: str) -> bool:
    """Whether `text`, after any leading quotes, starts with a formula character."""
    rest = text.lstrip(QUOTE)
    return bool(rest) and rest[0] in FORMULA_PREFIXES


def cell_inert(value) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula. None is an empty cell and
    booleans are `true`/`false`, as the importer reads them."""
    if value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if _starts_formula(text):
        return QUOTE + text
    return text


def cell_restored(cell: str) -> str:
    """An imported cell with the quote `cell_inert` added taken off again."""
    if cell[:1] == QUOTE and _starts_formula(cell):
        return cell[1:]
    return cell


class _Echo:
    """A file whose write answers the text, so csv.writer yields lines to a streamed response."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """CSV text line by line, every cell inert, with a BOM so Excel reads the file as UTF-8.

    For exports streamed through StreamingHttpResponse; a header row goes through the same
    escaping (its names start no formula, so it is unchanged)."""
    writer = csv.writer(_Echo())
    yield "\ufeff"
    for row in rows:
        yield writer.writerow([cell_inert(value) for value in row])
