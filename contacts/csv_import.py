"""CSV contact imports: a file (downloaded from a link or uploaded in the browser) → the same
batch upsert the JSON API uses.

The file is UTF-8 (a BOM is allowed), comma-separated, with a header row naming the seed's
columns (case, spaces and underscores do not matter) and custom fields as `GROUP_KEY.KEY`:

    First name, Last name, Address, Region, City, Postcode, Email, Sms, Language code,
    Timezone, Contact id (= externalCustomerId), PERSONAL.BIRTHDAY, …

Decisions, so a reader need not reverse-engineer them:
- An unknown column fails the whole job before any row is stored, naming the columns: a
  misspelt header would otherwise import every row without that data, silently.
- Rows are numbered as a spreadsheet shows them: the header is row 1, so the first contact
  is row 2 (a quoted value spanning lines is still one row). Failures carry that number.
- An empty cell leaves the stored value alone: an import adds and corrects, it never wipes.
- A row with more or fewer cells than the header, or with a NUL character (which PostgreSQL
  cannot store), is reported as failed, never guessed at.
- A file that is not UTF-8 fails as a whole. A UTF-8 file with a few rows whose bytes cannot
  be decoded (a broken character, a surrogate written out as CESU-8) fails those rows alone:
  the file counts as UTF-8 when its other text holds multi-byte UTF-8 characters.
- The file is read twice, never held in memory: a first pass checks the encoding and CSV
  structure and counts rows (so progress has a total and a broken file stores nothing), the
  second streams chunks of CHUNK_ROWS rows to `contacts_upsert_batch`.
"""

# The SQL below interpolates only table names defined in this module; values go through
# parameters.
# ruff: noqa: S608

import codecs
import csv
import logging
import re
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from contacts.models import Contact, CustomField, ImportFailure, ImportJob, ImportStatus
from contacts.services import (
    PreparedBatch,
    contacts_batch_preparing,
    contacts_upsert_batch,
    gc_paused,
    int_array_literal,
)
from contacts.validation import FlatPlan, custom_fields_load, flat_contact_parse, flat_plan

logger = logging.getLogger(__name__)

# One chunk is one set-based upsert (a dozen statements, one commit, one progress update):
# at 10,000 rows that fixed cost is a few percent of the chunk's own, while the chunk's
# parsed rows stay a few tens of MB, and the progress bar still moves every second or so.
CHUNK_ROWS = 10000
FIRST_DATA_ROW = 2  # the header is row 1
CSV_FIELD_LIMIT = 1024 * 1024  # one cell; the csv module's default of 128 kB is too tight
# Spreadsheets run a cell starting with these as a formula; exports prefix such cells with '
# (export.py) and imports take that quote off again, so an export re-imports unchanged.
FORMULA_PREFIXES = frozenset("=+-@\t\r")
# PostgreSQL cannot store it in text: a row carrying it is reported, like a malformed one.
NUL = "\x00"
# Bytes that are not UTF-8, as the surrogateescape error handler reads them.
UNDECODED = re.compile("[\udc80-\udcff]")
# A multi-byte UTF-8 character: text in another encoding (Latin-1, cp1251) rarely has one.
UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
READ_BYTES = 1 << 20


class CsvFormatError(Exception):
    """The file as a whole cannot be imported; the message names what to fix."""


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


# Normalised header → (seed key, sub-key). Aliases cover what other tools export.
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
}
# The seed's own spelling, used in messages and by the export.
SEED_HEADERS = [
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


def _custom(field_id: int) -> Setter:
    def set_value(contact: dict, value: str) -> None:
        contact.setdefault("fields", []).append({"id": field_id, "value": value})

    return set_value


Target = tuple[str, object]  # ("firstName", None), ("address", "town"), ("field", 12), …


@dataclass
class Header:
    names: list[str]  # as written in the file
    targets: list[Target]
    setters: list[Setter]
    # "surrogateescape" when some rows have bytes that are not UTF-8 (they fail alone).
    decode_errors: str = "strict"


def _column_target(name: str, by_key: dict) -> Target | None:
    if "." in name:
        group_key, _, key = name.partition(".")
        field = by_key.get((group_key.strip().upper(), key.strip().upper()))
        return ("field", field.id) if field is not None else None
    return STANDARD_COLUMNS.get(_norm(name))


def _setter(target: Target) -> Setter:
    kind, sub = target
    if kind == "field":
        return _custom(sub)
    if kind == "address":
        return _address(sub)
    if kind == "channel":
        return _channel(sub)
    return _top(kind)


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
            + ", ".join(SEED_HEADERS)
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


def failure_cells(data: dict, columns: list[str]) -> list[str] | None:
    """A failed row's stored data back in the file's columns, or None if it cannot be mapped
    (so the failed-rows report can be fixed and imported again)."""
    if set(data) == {"cells"} and isinstance(data["cells"], list):
        return [str(cell) for cell in data["cells"]]
    by_key = {(f.group_key.upper(), f.key.upper()): f for f in CustomField.objects.all()}
    values: dict[Target, object] = {}
    for key in ("firstName", "lastName", "languageCode", "timeZone", "externalCustomerId"):
        values[(key, None)] = data.get(key)
    for key, value in (data.get("address") or {}).items():
        values[("address", key)] = value
    for channel in data.get("channels") or []:
        values[("channel", channel.get("type"))] = channel.get("value")
    for item in data.get("fields") or []:
        values[("field", item.get("id"))] = item.get("value")
    cells = []
    for name in columns:
        target = _column_target(name, by_key)
        if target is None:
            return None
        value = values.get(target)
        cells.append("" if value is None else str(value))
    return cells


def _reader(handle) -> Iterator[list[str]]:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    return csv.reader(handle, dialect="excel", strict=True)


def _open(path: Path, errors: str = "strict"):
    # utf-8-sig drops a BOM when present and reads plain UTF-8 otherwise.
    return open(path, encoding="utf-8-sig", errors=errors, newline="")


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


def csv_inspect(path: Path, custom_fields: list[CustomField]) -> tuple[Header, int]:
    """First pass: decode and parse the whole file, check the header → (header, data rows)."""
    errors = "surrogateescape" if _damaged_utf8(path) else "strict"
    try:
        with _open(path, errors) as handle:
            reader = _reader(handle)
            names = next(reader, None)
            if names is None:
                raise CsvFormatError("The file is empty: it needs a header row and contacts.")
            if errors != "strict" and UNDECODED.search("".join(names)):
                raise CsvFormatError(
                    "The header row is not UTF-8. Save the file as 'CSV UTF-8' and import it again."
                )
            header = header_parse(names, custom_fields)
            header.decode_errors = errors
            rows = sum(map(bool, reader))  # the rows that are not blank lines
    except UnicodeDecodeError as exc:
        raise CsvFormatError(
            f"The file is not UTF-8 (byte {exc.start + 1} cannot be decoded). "
            "Save it as 'CSV UTF-8' and import it again."
        ) from None
    except csv.Error as exc:
        raise CsvFormatError(
            f"The file is not valid CSV near line {reader.line_num}: {exc}."
        ) from None
    return header, rows


def csv_rows(path: Path, header: Header) -> Iterator[tuple[int, list[str] | None, list[str]]]:
    """Second pass: (row number, the row's values or None if it is malformed, its cells).

    Values are the cells stripped, with the export's formula-neutralising quote taken off;
    an empty value is an empty cell."""
    width = len(header.targets)
    damaged = header.decode_errors != "strict"
    with _open(path, header.decode_errors) as handle:
        reader = _reader(handle)
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
            if "'" in joined:
                values = [
                    value[1:] if value[:1] == "'" and value[1:2] in FORMULA_PREFIXES else value
                    for value in map(str.strip, row)
                ]
            else:
                values = list(map(str.strip, row))
            yield number, values, row


def seed_contact(header: Header, values: list[str]) -> dict:
    """The seed Contact object a row stands for (what a failed row's report stores)."""
    contact: dict = {}
    for setter, value in zip(header.setters, values, strict=True):
        if value:
            setter(contact, value)
    return contact


class _Chunk(Sequence):
    """A chunk's rows as seed Contact objects, built only for the rows that are read: most
    rows are parsed straight from their values (flat_contact_parse)."""

    def __init__(self, header: Header, plan: FlatPlan, rows: list[list[str]]):
        self.header = header
        self.plan = plan
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position):
        return seed_contact(self.header, self.rows[position])

    def parse(self, position: int, custom_fields: dict) -> dict | None:
        return flat_contact_parse(self.plan, self.rows[position], custom_fields)


class _ContactIds:
    """The job's contact ids, in row order, stored on the job once at the end: appending to
    the job's array after every chunk would rewrite megabytes of it each time (quadratic in
    the file). Held as 8-byte integers, 8 MB for a million rows."""

    def __init__(self) -> None:
        self.ids = array("q")

    def add(self, ids: list[int]) -> None:
        self.ids.extend(ids)

    def store(self, job: ImportJob) -> None:
        if self.ids:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {ImportJob._meta.db_table} "
                    "SET contact_ids = contact_ids || %s::bigint[] WHERE id = %s",
                    [int_array_literal(self.ids), job.pk],
                )


class _Statistics:
    """Keeps the planner's row count of contacts near the truth while a file grows the table.

    The matching queries of every chunk are planned from it: a table analysed when nearly
    empty and since grown by this import looks tiny, and the planner then reads every live
    contact for each chunk instead of looking ids up. ANALYZE reads a fixed-size sample, so
    running it whenever the import has at least doubled the table costs a few of them per
    file (at 50k, 100k, 200k, … new contacts), each limited to the columns rows are matched
    on (the row count it updates is the table's).
    """

    FIRST_AFTER = 50_000
    COLUMNS = "id, email, phone, external_customer_id, deleted_at"

    def __init__(self, job: ImportJob) -> None:
        self.job_id = job.pk
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = %s::regclass",
                [Contact._meta.db_table],
            )
            self.known = cursor.fetchone()[0]
        self.created_before = 0  # the job's created_count at the last ANALYZE

    def check(self) -> int:
        """Refresh the statistics if due → the contacts the job has created so far."""
        created = ImportJob.objects.values_list("created_count", flat=True).get(pk=self.job_id)
        grown = created - self.created_before
        if grown >= max(self.FIRST_AFTER, self.known):
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {Contact._meta.db_table} ({self.COLUMNS})")
            self.known += grown
            self.created_before = created
        return created


@dataclass
class _Malformed:
    number: int
    row: list[str]


def _chunks(path: Path, header: Header) -> Iterator[tuple[int, list[list[str]]] | _Malformed]:
    """(first row number, rows) per chunk, and each malformed row, in file order."""
    chunk: list[list[str]] = []
    start = FIRST_DATA_ROW
    for number, values, row in csv_rows(path, header):
        # start_index + position must equal the row number, so a gap (blank line, malformed
        # row) closes the chunk; such gaps are rare, chunks stay full-sized.
        if chunk and number != start + len(chunk):
            yield start, chunk
            chunk = []
        if values is None:
            yield _Malformed(number, row)
            continue
        if not chunk:
            start = number
        chunk.append(values)
        if len(chunk) >= CHUNK_ROWS:
            yield start, chunk
            chunk = []
    if chunk:
        yield start, chunk


class _Reader:
    """The file's chunks, read, checked and grouped (contacts_batch_preparing) by the thread
    that writes them, a hundred rows at a time, in the gaps PostgreSQL leaves it: while
    the server matches one chunk's rows, reads and indexes its COPY or runs its UPDATE, the
    next chunk is prepared (`work`, the write's Meanwhile). One chunk at most is kept ready.

    One thread, taking turns with the server instead of with another Python thread: a second
    thread doing this held Python's lock whenever the writing thread came back from the
    server, which then sat idle until the lock changed hands again.

    While `mostly_new` is true (the writer's guess from the chunks written so far) each row is
    also formatted as a new contact's COPY text, so the write itself has little left to do.
    An error while preparing is raised by `next`, after the chunk being written is stored.
    """

    STEP_ROWS = 100

    def __init__(self, *, path: Path, header: Header, options: dict, job: ImportJob) -> None:
        self.mostly_new = True
        self._ready: deque[PreparedBatch | _Malformed] = deque()
        self._spent: PreparedBatch | None = None
        self._error: Exception | None = None
        self._steps: Iterator[None] | None = self._prepare(path, header, options, job)

    def _prepare(self, path: Path, header: Header, options: dict, job: ImportJob):
        custom_fields = custom_fields_load()
        plan = flat_plan(header.targets)
        for item in _chunks(path, header):
            if not isinstance(item, _Malformed):
                start, rows = item
                chunk = _Chunk(header, plan, rows)
                item = yield from contacts_batch_preparing(
                    contacts=chunk,
                    options=options,
                    job=job,
                    custom_fields=custom_fields,
                    start_index=start,
                    fast_parse=chunk.parse,
                    format_new=self.mostly_new,
                    step_rows=self.STEP_ROWS,
                )
            self._ready.append(item)
            yield

    def _step(self) -> bool:
        """Prepare a hundred rows → False once the file is read or an error stopped it."""
        if self._steps is None:
            return False
        try:
            next(self._steps)
            return True
        except StopIteration:
            self._steps = None
        except Exception as exc:  # raised by next(), once the chunk being written is stored
            self._error = exc
            self._steps = None
        return False

    def discard(self, batch: PreparedBatch) -> None:
        """Take a written chunk, to free in the next gap: its tens of thousands of objects
        take milliseconds to free, which the server would otherwise spend waiting."""
        self._spent = batch

    def work(self, until: Callable[[], bool] | None = None) -> None:
        """Prepare until `until()` is true (the awaited result has arrived) or a chunk is
        ready."""
        self._spent = None
        while not self._ready and (until is None or not until()) and self._step():
            pass

    def next(self) -> PreparedBatch | _Malformed | None:
        """The next chunk or malformed row, in file order; None at the end of the file."""
        while not self._ready and self._step():
            pass
        if self._ready:
            return self._ready.popleft()
        if self._error is not None:
            raise self._error
        return None

    def close(self) -> None:
        if self._steps is not None:
            self._steps.close()  # ends the chunk being prepared (its collector pause)
            self._steps = None


def _malformed_record(*, job: ImportJob, number: int, row: list[str], width: int) -> None:
    if len(row) != width:
        reason = f"row has {len(row)} value(s) but the header has {width} column(s)"
    elif NUL in "".join(row):
        reason = "a value contains the NUL character, which cannot be stored"
    else:
        reason = "a value has bytes that are not UTF-8 (a broken character), which cannot be stored"
    ImportFailure.objects.create(
        job=job,
        index=number,
        reason=reason,
        # jsonb cannot hold NUL or undecoded bytes either: the report shows U+FFFD instead.
        data={"cells": [UNDECODED.sub("\ufffd", cell.replace(NUL, "\ufffd")) for cell in row]},
    )
    ImportJob.objects.filter(pk=job.pk).update(
        processed=F("processed") + 1, failed_count=F("failed_count") + 1
    )


def csv_import_file(*, job: ImportJob, path: Path) -> ImportJob:
    """Import the CSV at `path` into `job` (status IMPORTING) and finish it.

    Raises CsvFormatError, before storing anything, if the file cannot be imported at all.
    """
    custom_fields = list(CustomField.objects.order_by("group_key", "key"))
    header, total = csv_inspect(path, custom_fields)
    # The header is kept so the failed-rows report can use the file's own columns.
    job.payload = {**job.payload, "columns": header.names}
    ImportJob.objects.filter(pk=job.pk).update(
        total=total, description=f"Importing {total} row(s).", payload=job.payload
    )
    options = dict(job.payload.get("options") or {})
    width = len(header.targets)
    ids = _ContactIds()
    statistics = _Statistics(job)
    created = 0
    reader = _Reader(path=path, header=header, options=options, job=job)
    # The collector stays paused for the whole file, not batch by batch: each time it
    # resumed, its first pass scanned the tens of thousands of objects of the chunk read
    # ahead (gc_paused).
    with gc_paused():
        try:
            while (item := reader.next()) is not None:
                if isinstance(item, _Malformed):
                    _malformed_record(job=job, number=item.number, row=item.row, width=width)
                    continue
                ids.add(
                    contacts_upsert_batch(
                        job=job,
                        record_contact_ids=False,
                        prepared=item,
                        meanwhile=reader.work,
                        # csv_import_run's final status update waits for the flush of them all.
                        wait_for_flush=False,
                    )
                )
                created, created_before = statistics.check(), created
                # A file's first rows are taken as new contacts; each chunk tells about the next.
                reader.mostly_new = (created - created_before) * 2 >= item.processed
                reader.discard(item)
                del item
        finally:
            reader.close()
            # Also after an error: the chunks stored so far are the job's contacts.
            ids.store(job)
    job.refresh_from_db()
    return job


# --- job lifecycle -----------------------------------------------------------------------


def _uploads_dir() -> Path:
    from django.conf import settings

    folder = Path(settings.VAR_DIR) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def upload_path(job: ImportJob) -> Path:
    """Where a job's file lives while it is imported (uploaded or downloaded)."""
    return _uploads_dir() / f"{job.session_id}.csv"


@transaction.atomic
def csv_import_start(
    *, options: dict, link: str = "", file_name: str = "", created_by=None
) -> ImportJob:
    """Create a file import job and enqueue it once the transaction commits.

    `options` are already validated (validation.import_options_parse). For a browser upload
    the caller writes the file to `upload_path(job)` inside the same transaction.
    """
    job = ImportJob.objects.create(
        kind="file",
        source_url=link,
        payload={"options": options, "fileName": file_name},
        description="Waiting for a worker.",
        created_by=created_by,
    )
    from contacts.tasks_import import import_file

    transaction.on_commit(lambda: import_file.delay(job.pk))
    return job


@transaction.atomic
def csv_upload_start(*, uploaded, options: dict, created_by=None) -> ImportJob:
    """A browser upload: the job and its file are created together; the worker runs it."""
    job = csv_import_start(options=options, file_name=uploaded.name, created_by=created_by)
    with open(upload_path(job), "wb") as handle:
        for chunk in uploaded.chunks():
            handle.write(chunk)
    return job


def import_job_fail(*, job_id: int, description: str) -> None:
    ImportJob.objects.filter(pk=job_id).exclude(status=ImportStatus.FINISHED).update(
        status=ImportStatus.ERROR, description=description, finished_at=timezone.now()
    )


def csv_import_run(*, job_id: int) -> None:
    """Worker side: claim the job, fetch or open its file, import it, finish or fail it."""
    from contacts import fetch
    from contacts.fetch import FetchError, redact_url
    from contacts.services import ContactError

    # The conditional UPDATE is the claim: a redelivered task finds the job taken and stops.
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.STARTED).update(
        status=ImportStatus.IMPORTING, description="Reading the file."
    )
    if not claimed:
        logger.info("import job %s already claimed or gone", job_id)
        return
    job = ImportJob.objects.get(pk=job_id)
    path = upload_path(job)
    try:
        if job.source_url:
            ImportJob.objects.filter(pk=job_id).update(
                description=f"Downloading {redact_url(job.source_url)}."
            )
            partial = path.with_suffix(".part")
            try:
                with open(partial, "wb") as handle:
                    fetch.fetch_to_file(job.source_url, handle, max_bytes=fetch.MAX_DOWNLOAD_BYTES)
                partial.replace(path)
            finally:
                partial.unlink(missing_ok=True)
                # The file's password is needed once; the job row outlives it by years.
                ImportJob.objects.filter(pk=job_id).update(source_url=redact_url(job.source_url))
        if not path.exists():
            import_job_fail(job_id=job_id, description="The uploaded file is missing.")
            return
        job = csv_import_file(job=job, path=path)
    except (FetchError, CsvFormatError, ContactError) as exc:
        import_job_fail(job_id=job_id, description=str(exc))
        return
    except Exception:
        logger.exception("import job %s failed", job_id)
        import_job_fail(
            job_id=job_id, description="The import stopped on an internal error; it was logged."
        )
        raise
    finally:
        path.unlink(missing_ok=True)
    ImportJob.objects.filter(pk=job_id, status=ImportStatus.IMPORTING).update(
        status=ImportStatus.FINISHED,
        finished_at=timezone.now(),
        description=_summary(job),
    )


def _summary(job: ImportJob) -> str:
    job.refresh_from_db()
    return (
        f"{job.processed} row(s) read: {job.created_count} created, "
        f"{job.updated_count} updated, {job.failed_count} failed."
    )
