"""CSV contact files: the columns a file may hold, and reading its rows (contacts.csv_import
runs the import; contacts.export writes the same columns; contacts.csv_dialect detects a
file's encoding and delimiter; contacts.csv_mapping maps a browser upload's columns).

A file imported by link (the API) is UTF-8 (a BOM is allowed), comma-separated, with a header
row naming the eSputnik v1 API's columns (case, spaces and underscores do not matter) and
custom fields as `GROUP_KEY.KEY`:

    First name, Last name, Address, Region, City, Postcode, Email, Sms, Language code,
    Timezone, Contact id (= externalCustomerId), Tags, PERSONAL.BIRTHDAY, …

A browser upload instead carries the marketer's confirmed encoding, delimiter and column
mapping (a target per file column, or none for an ignored column): the mapping is a
projection of the file's columns worked out once (Header.positions), so rows are read and
parsed as fast as a file in the fixed columns.

Decisions, so a reader need not reverse-engineer them:
- In the fixed columns an unknown column fails the whole job before any row is stored, naming
  the columns: a misspelt header would otherwise import every row without that data,
  silently. A mapped upload names every column's fate on the mapping screen instead.
- A tags column adds its tags to the contact's (split on the chosen separator; the fixed
  columns' `Tags` on commas); it never removes one.
- Rows are numbered as a spreadsheet shows them: the header is row 1, so the first contact
  is row 2 (a quoted value spanning lines is still one row). Failures carry that number.
- An empty cell leaves the stored value alone: an import adds and corrects, it never wipes.
- A row with more or fewer cells than the header, or with a NUL character (which PostgreSQL
  cannot store), is reported as failed, never guessed at.
- A file that cannot be decoded in its encoding fails as a whole. A UTF-8 file with a few
  rows whose bytes cannot be decoded (a broken character, a surrogate written out as CESU-8)
  fails those rows alone:
  the file counts as UTF-8 when its other text holds multi-byte UTF-8 characters.
"""

import _csv
import codecs
import csv
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from config.core.csv_safe import QUOTE, cell_restored
from config.core.errors import HeraldError
from contacts.custom_fields import custom_field_columns
from contacts.models import CustomField, ImportJob

FIRST_DATA_ROW = 2  # the header is row 1


CSV_FIELD_LIMIT = 1024 * 1024  # one cell; the csv module's default of 128 kB is too tight


# PostgreSQL cannot store it in text: a row carrying it is reported, like a malformed one.
NUL = "\x00"


# Bytes that are not UTF-8, as the surrogateescape error handler reads them.
UNDECODED = re.compile("[\udc80-\udcff]")


# A multi-byte UTF-8 character: text in another encoding (Latin-1, cp1251) rarely has one.
UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


READ_BYTES = 1 << 20


class CsvFormatError(HeraldError):
    """The file as a whole cannot be imported; the message names what to fix."""


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


# Normalised header → (eSputnik v1 key, sub-key). Aliases cover what other tools export.
STANDARD_COLUMNS: dict[str, tuple[str, str | None]] = {
    "firstname": ("firstName", None),
    "lastname": ("lastName", None),
    "address": ("address", "address"),
    "region": ("address", "region"),
    "city": ("address", "town"),
    "town": ("address", "town"),
    "postcode": ("address", "postcode"),
    "email": ("channel", "email"),
    "sms": ("channel", "sms"),
    "phone": ("channel", "sms"),
    "languagecode": ("languageCode", None),
    "timezone": ("timeZone", None),
    "contactid": ("externalCustomerId", None),
    "externalcustomerid": ("externalCustomerId", None),
    "tags": ("tags", None),
}


# The eSputnik v1 API's own spelling, used in messages and by the export.
STANDARD_HEADERS = [
    "First name",
    "Last name",
    "Address",
    "Region",
    "City",
    "Postcode",
    "Email",
    "Sms",
    "Language code",
    "Timezone",
    "Contact id",
]


# The export's tags column, after the standard ones; tags are joined by ", ".
TAGS_HEADER = "Tags"
TAG_SEPARATORS = {"comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
TAG_MAX = 100


def tags_split(value: str, separator: str = ",") -> list[str]:
    """A tags cell's tags, in order, each once; `separator` " " splits on any whitespace."""
    parts = value.split() if separator == " " else value.split(separator)
    return list(dict.fromkeys(tag for tag in map(str.strip, parts) if tag))


Setter = Callable[[dict, str], None]


def _top(key: str) -> Setter:
    def set_value(contact: dict, value: str) -> None:
        contact[key] = value

    return set_value


def _address(key: str) -> Setter:
    def set_value(contact: dict, value: str) -> None:
        contact.setdefault("address", {})[key] = value

    return set_value


def _channel(kind: str) -> Setter:
    def set_value(contact: dict, value: str) -> None:
        contact.setdefault("channels", []).append({"type": kind, "value": value})

    return set_value


def _tags(separator: str) -> Setter:
    def set_value(contact: dict, value: str) -> None:
        tags = tags_split(value, separator)
        if tags:
            contact["tags"] = tags

    return set_value


def _custom(field_id: int) -> Setter:
    def set_value(contact: dict, value: str) -> None:
        contact.setdefault("fields", []).append({"id": field_id, "value": value})

    return set_value


# ("firstName", None), ("address", "town"), ("channel", "sms"), ("field", 12), …
Target = tuple[str, str | int | None]


@dataclass
class Header:
    names: list[str]  # as written in the file
    targets: list[Target]  # one per column read; ("tags", None) for the tags column
    setters: list[Setter]
    # The file column each target reads (a mapping leaves ignored columns out).
    positions: list[int] = field(default_factory=list)
    # "surrogateescape" when some rows have bytes that are not UTF-8 (they fail alone).
    decode_errors: str = "strict"
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    # Whether the marketer mapped the columns: a failed row then keeps all its cells.
    mapped: bool = False

    def __post_init__(self) -> None:
        if not self.positions:
            self.positions = list(range(len(self.targets)))

    @property
    def width(self) -> int:
        return len(self.names)


def _column_target(name: str, by_key: dict) -> Target | None:
    if "." in name:
        group_key, _, key = name.partition(".")
        field = by_key.get((group_key.strip().upper(), key.strip().upper()))
        return ("field", field.id) if field is not None else None
    return STANDARD_COLUMNS.get(_norm(name))


def _setter(target: Target) -> Setter:
    match target:
        case ("field", int(field_id)):
            return _custom(field_id)
        case ("tags", separator):
            return _tags(separator if isinstance(separator, str) else ",")
        case ("address", str(key)):
            return _address(key)
        case ("channel", str(kind)):
            return _channel(kind)
        case (kind, None):
            return _top(kind)
    raise ValueError(f"No column is written as {target!r}.")


def header_parse(names: list[str], custom_fields: list[CustomField]) -> Header:
    """Map header cells to setters, or raise CsvFormatError naming every bad column."""
    by_key = {(f.group_key.upper(), f.key.upper()): f for f in custom_fields}
    targets: list[Target] = []
    unknown: list[str] = []
    seen: dict[Target, str] = {}
    duplicates: list[str] = []
    for position, raw in enumerate(names, start=1):
        name = raw.strip()
        target = _column_target(name, by_key) if name else None
        if target is None:
            unknown.append(name or f"column {position} (no name)")
            continue
        if target in seen:
            duplicates.append(f"{seen[target]!r} and {name!r}")
        seen[target] = name
        targets.append(target)
    problems = []
    if unknown:
        problems.append(
            "Unknown column(s): "
            + ", ".join(unknown)
            + ". Known columns: "
            + ", ".join(STANDARD_HEADERS)
            + ", and custom fields as GROUP_KEY.KEY"
            + (
                " (" + ", ".join(f"{f.group_key}.{f.key}" for f in custom_fields[:20]) + ")"
                if custom_fields
                else " (no custom fields are defined)"
            )
            + "."
        )
    if duplicates:
        problems.append("Columns given twice: " + "; ".join(duplicates) + ".")
    if not targets and not problems:
        problems.append("The header row names no columns.")
    if problems:
        raise CsvFormatError(" ".join(problems))
    return Header(
        names=[n.strip() for n in names],
        targets=targets,
        setters=[_setter(t) for t in targets],
    )


def header_from_mapping(
    names: list[str], mapping: list[Target | None], custom_fields: list[CustomField]
) -> Header:
    """The header of a mapped upload: `mapping` holds a target per file column (None: the
    column is ignored; ("tags", separator) for tags). Raises CsvFormatError if the file no
    longer fits the mapping (a custom field deleted since, another file)."""
    if len(mapping) != len(names):
        raise CsvFormatError(
            f"The file has {len(names)} column(s) but {len(mapping)} were mapped; "
            "upload it again to map its columns."
        )
    known = {f.id for f in custom_fields}
    targets: list[Target] = []
    positions: list[int] = []
    for position, target in enumerate(mapping):
        if target is None:
            continue
        if target[0] == "field" and target[1] not in known:
            raise CsvFormatError(
                f"The custom field mapped to column {names[position].strip()!r} no longer "
                "exists; upload the file again to map its columns."
            )
        targets.append(target)
        positions.append(position)
    if not targets:
        raise CsvFormatError("No column is mapped to a contact field.")
    return Header(
        names=[n.strip() for n in names],
        targets=targets,
        setters=[_setter(t) for t in targets],
        positions=positions,
        mapped=True,
    )


def failure_cells(data: dict, columns: list[str]) -> list[str] | None:
    """A failed row's stored data back in the file's columns, or None if it cannot be mapped
    (so the failed-rows report can be fixed and imported again)."""
    if isinstance(data.get("cells"), list):
        return [str(cell) for cell in data["cells"]]
    by_key = {(f.group_key.upper(), f.key.upper()): f for f in custom_field_columns()}
    values: dict[Target, object] = {}
    for key in ("firstName", "lastName", "languageCode", "timeZone", "externalCustomerId"):
        values[(key, None)] = data.get(key)
    for key, value in (data.get("address") or {}).items():
        values[("address", key)] = value
    for channel in data.get("channels") or []:
        values[("channel", channel.get("type"))] = channel.get("value")
    for item in data.get("fields") or []:
        values[("field", item.get("id"))] = item.get("value")
    if data.get("tags"):
        values[("tags", None)] = ", ".join(map(str, data["tags"]))
    cells = []
    for name in columns:
        target = _column_target(name, by_key)
        if target is None:
            return None
        value = values.get(target)
        cells.append("" if value is None else str(value))
    return cells


def _reader(handle, delimiter: str = ",") -> _csv.Reader:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    return csv.reader(handle, dialect="excel", delimiter=delimiter, strict=True)


def is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def _open(path: Path, errors: str = "strict", encoding: str = "utf-8-sig"):
    # utf-8-sig drops a BOM when present and reads plain UTF-8 otherwise; "utf-16" reads the
    # BOM to know its byte order.
    if is_utf8(encoding):
        encoding = "utf-8-sig"
    return open(path, encoding=encoding, errors=errors, newline="")


def _damaged_utf8(path: Path) -> bool:
    """Whether the file is UTF-8 with some bytes that cannot be decoded: not all of it
    decodes, yet it holds multi-byte UTF-8 characters. A file that decodes, or one in another
    encoding, is False (the strict reading then refuses the latter, naming the byte)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        try:
            while chunk := handle.read(READ_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return False
        except UnicodeDecodeError:
            pass
        handle.seek(0)
        tail = b""
        while chunk := handle.read(READ_BYTES):
            if UTF8_MULTIBYTE.search(tail + chunk):
                return True
            tail = chunk[-3:]
    return False


def csv_inspect(
    path: Path,
    custom_fields: list[CustomField],
    *,
    mapping: list[Target | None] | None = None,
    encoding: str = "utf-8-sig",
    delimiter: str = ",",
) -> tuple[Header, int]:
    """First pass: decode and parse the whole file, check the header → (header, data rows).

    Without `mapping` the header must name the fixed columns (header_parse)."""
    utf8 = is_utf8(encoding)
    errors = "surrogateescape" if utf8 and _damaged_utf8(path) else "strict"
    try:
        with _open(path, errors, encoding) as handle:
            reader = _reader(handle, delimiter)
            names = next(reader, None)
            if names is None:
                raise CsvFormatError("The file is empty: it needs a header row and contacts.")
            if errors != "strict" and UNDECODED.search("".join(names)):
                raise CsvFormatError(
                    "The header row is not UTF-8. Save the file as 'CSV UTF-8' and import it again."
                )
            if mapping is None:
                header = header_parse(names, custom_fields)
            else:
                header = header_from_mapping(names, mapping, custom_fields)
            header.decode_errors = errors
            header.encoding = encoding
            header.delimiter = delimiter
            rows = sum(map(bool, reader))  # the rows that are not blank lines
    except UnicodeDecodeError as exc:
        if not utf8:
            raise CsvFormatError(
                f"The file cannot be read as {encoding}: it has bytes that are not characters "
                "of that encoding. Choose its encoding again."
            ) from None
        raise CsvFormatError(
            f"The file is not UTF-8 (byte {exc.start + 1} cannot be decoded). "
            "Save it as 'CSV UTF-8' and import it again."
        ) from None
    except UnicodeError as exc:  # a UTF-16 file cut in the middle of a character
        raise CsvFormatError(f"The file cannot be read as {encoding}: {exc}.") from None
    except csv.Error as exc:
        raise CsvFormatError(
            f"The file is not valid CSV near line {reader.line_num}: {exc}."
        ) from None
    return header, rows


def csv_rows(path: Path, header: Header) -> Iterator[tuple[int, list[str] | None, list[str]]]:
    """Second pass: (row number, the row's values or None if it is malformed, its cells).

    Values are the cells stripped, with the quote an export puts before a formula-like cell
    taken off (config.core.csv_safe's rule); an empty value is an empty cell."""
    width = header.width
    damaged = header.decode_errors != "strict"
    with _open(path, header.decode_errors, header.encoding) as handle:
        reader = _reader(handle, header.delimiter)
        next(reader, None)
        number = FIRST_DATA_ROW - 1
        for row in reader:
            number += 1
            if not row:
                continue  # a blank line is not a contact
            joined = "".join(row)
            if len(row) != width or NUL in joined or (damaged and UNDECODED.search(joined)):
                yield number, None, row
                continue
            if QUOTE in joined:
                values = [cell_restored(value) for value in map(str.strip, row)]
            else:
                values = list(map(str.strip, row))
            yield number, values, row


def row_as_contact(header: Header, values: list[str]) -> dict:
    """The eSputnik v1 Contact object a row stands for (what a failed row's report stores)."""
    contact: dict = {}
    for setter, position in zip(header.setters, header.positions, strict=True):
        value = values[position]
        if value:
            setter(contact, value)
    if header.mapped:
        # The ignored columns too: the failed-rows report gives the row back whole.
        contact["cells"] = values
    return contact


def upload_name(job: ImportJob) -> str:
    """The name of a job's uploaded file in the default storage (config.core.storage), which
    the web process that received it and the worker that imports it both reach."""
    return f"imports/{job.session_id}.csv"


def upload_save(job: ImportJob, content: File | bytes) -> None:
    """Store a job's file, chunk by chunk (an upload's temporary file is never read whole)."""
    if isinstance(content, bytes):
        content = ContentFile(content)
    default_storage.delete(upload_name(job))
    default_storage.save(upload_name(job), content)


def upload_exists(job: ImportJob) -> bool:
    return default_storage.exists(upload_name(job))


def upload_delete(job: ImportJob) -> None:
    default_storage.delete(upload_name(job))


def upload_sample(job: ImportJob, size: int) -> bytes | None:
    """The first `size` bytes of a job's file (what the mapping screen reads), None if it is
    missing."""
    try:
        with default_storage.open(upload_name(job), "rb") as handle:
            return handle.read(size)
    except FileNotFoundError:
        return None


def work_dir() -> Path:
    """This process's own scratch folder: local copies of files it is reading. Nothing in
    it is ever read by another process (they may be on another machine)."""
    folder = Path(settings.VAR_DIR) / "work"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def upload_local(job: ImportJob) -> Iterator[Path | None]:
    """A local copy of a job's stored file for the readers, which pass over it more than once
    (csv_inspect, csv_rows); None if it is missing. The copy is removed afterwards."""
    try:
        source = default_storage.open(upload_name(job), "rb")
    except FileNotFoundError:
        yield None
        return
    with source, tempfile.NamedTemporaryFile(dir=work_dir(), suffix=".csv") as copy:
        shutil.copyfileobj(source, copy, READ_BYTES)
        copy.flush()
        yield Path(copy.name)
