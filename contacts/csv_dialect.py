"""A CSV file's encoding and delimiter, guessed from its first bytes, and a preview of its
first rows in a given encoding and delimiter (the mapping screen shows both for the marketer
to confirm or change; contacts.csv_files then reads the whole file with the choice).

Decisions:
- A byte-order mark decides: UTF-8, UTF-16 little- or big-endian. Without one, text that
  decodes as UTF-8 is UTF-8 (other encodings' text with letters beyond ASCII rarely does).
- Otherwise Windows-1251 (Cyrillic) or Windows-1252 (Western European): both decode any
  byte, so the letters decide. Cyrillic words are runs of bytes above 0xBF; French or German
  text has such bytes alone between ASCII letters (é, ü). Most high bytes in runs: 1251.
- The delimiter: csv.Sniffer among , ; tab |, accepted only when the sample's rows then have
  one column count (more than one column); else the candidate splitting most rows into the
  same number of columns. A one-column file is comma-separated.
"""

import codecs
import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext_lazy as _

# What the mapping screen offers; the values are Python codec names.
ENCODINGS = {
    "utf-8": _("UTF-8"),
    "utf-8-sig": _("UTF-8 with BOM"),
    "utf-16": _("UTF-16 (with BOM)"),
    "windows-1251": _("Windows-1251 (Cyrillic)"),
    "windows-1252": _("Windows-1252 (Western European)"),
}
DELIMITERS = {",": _("Comma (,)"), ";": _("Semicolon (;)"), "\t": _("Tab"), "|": _("Pipe (|)")}

SAMPLE_BYTES = 64 * 1024  # enough for a header and a few hundred rows
SAMPLE_LINES = 50
PREVIEW_ROWS = 5


def encoding_detect(sample: bytes) -> str:
    """The encoding of a file starting with `sample` (a key of ENCODINGS)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # Not final: the sample may end in the middle of a character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    high = in_runs = 0
    for position, byte in enumerate(sample):
        if byte >= 0xC0:
            high += 1
            before = sample[position - 1] if position else 0
            after = sample[position + 1] if position + 1 < len(sample) else 0
            if before >= 0xC0 or after >= 0xC0:
                in_runs += 1
    return "windows-1251" if high and in_runs * 2 >= high else "windows-1252"


def _decoded(sample: bytes, encoding: str) -> str:
    # "replace": a preview shows what it can; the import itself reads strictly.
    decoder = codecs.getincrementaldecoder("utf-8-sig" if encoding == "utf-8" else encoding)
    text = decoder(errors="replace").decode(sample, final=False)
    return text.removeprefix("\ufeff")


def _lines(text: str, limit: int = SAMPLE_LINES, whole: bool = True) -> str:
    """The sample's first lines; when the sample is not the `whole` file, its last line may
    be cut and is left out."""
    lines = text.splitlines(keepends=True)
    if not whole and len(lines) > 1:
        lines = lines[:-1]
    return "".join(lines[:limit])


def _widths(text: str, delimiter: str) -> list[int]:
    try:
        return [len(row) for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
    except csv.Error:
        return []


def delimiter_detect(text: str, whole: bool = True) -> str:
    """The delimiter of CSV `text` (a key of DELIMITERS)."""
    sample = _lines(text, whole=whole)
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed is not None:
        widths = _widths(sample, sniffed)
        if widths and widths[0] > 1 and len(set(widths)) == 1:
            return sniffed
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        widths = _widths(sample, delimiter)
        if not widths:
            continue
        width, rows = Counter(widths).most_common(1)[0]
        if width > 1 and (rows, width) > best_score:
            best, best_score = delimiter, (rows, width)
    return best


@dataclass
class Preview:
    encoding: str
    delimiter: str
    header: list[str]
    rows: list[list[str]]  # the first data rows, each as long as the header
    problem: str = ""  # why the file cannot be read so (shown instead of a mapping)


def _sample(source: Path | bytes) -> bytes:
    """The first bytes of a file, given its path or already read (a stored upload)."""
    if isinstance(source, bytes):
        return source[:SAMPLE_BYTES]
    with open(source, "rb") as handle:
        return handle.read(SAMPLE_BYTES)


def csv_detect(source: Path | bytes) -> tuple[str, str]:
    """(encoding, delimiter) of the file at `source` (or of its first bytes)."""
    sample = _sample(source)
    encoding = encoding_detect(sample)
    return encoding, delimiter_detect(_decoded(sample, encoding), len(sample) < SAMPLE_BYTES)


def csv_preview(source: Path | bytes, encoding: str, delimiter: str) -> Preview:
    """The header and first rows of the file (or of its first bytes) as `encoding` and
    `delimiter` read them."""
    sample = _sample(source)
    preview = Preview(encoding, delimiter, [], [])
    try:
        text = _decoded(sample, encoding)
    except (LookupError, UnicodeError):
        preview.problem = str(_("The file cannot be read in this encoding."))
        return preview
    if "\ufffd" in text and "\ufffd" not in _decoded(sample, encoding_detect(sample)):
        preview.problem = str(
            _("Some characters cannot be read in this encoding: choose another one.")
        )
    lines = _lines(text, PREVIEW_ROWS + 1, len(sample) < SAMPLE_BYTES)
    reader = csv.reader(io.StringIO(lines), delimiter=delimiter)
    try:
        rows = [row for row in reader if row]
    except csv.Error:
        rows = []
    if not rows:
        preview.problem = str(_("The file has no header row."))
        return preview
    preview.header = [name.strip() for name in rows[0]]
    width = len(preview.header)
    preview.rows = [(row + [""] * width)[:width] for row in rows[1 : PREVIEW_ROWS + 1]]
    return preview
