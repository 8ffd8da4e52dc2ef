"""CSV contact imports: a file (downloaded from a link or uploaded in the browser) → the same
batch upsert the JSON API uses (contacts.bulk.upsert). The file's columns and rows:
contacts.csv_files; starting an import: contacts.imports.

The file is read twice, never held in memory: a first pass checks the encoding and CSV
structure and counts rows (so progress has a total and a broken file stores nothing), the
second streams chunks of CHUNK_ROWS rows to `contacts_upsert_batch`, preparing the next chunk
while PostgreSQL writes the current one.
"""

# The SQL below interpolates only table names defined in this module; values go through
# parameters.
# ruff: noqa: S608

import logging
import tempfile
from array import array
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from django.db import connection
from django.db.models import F
from django.utils import timezone

from contacts import fetch
from contacts.bulk.copy import int_array_literal
from contacts.bulk.gc import gc_paused
from contacts.bulk.jobs import import_job_fail
from contacts.bulk.upsert import PreparedBatch, contacts_batch_preparing, contacts_upsert_batch
from contacts.csv_files import (
    FIRST_DATA_ROW,
    NUL,
    TAG_MAX,
    UNDECODED,
    CsvFormatError,
    Header,
    csv_inspect,
    csv_rows,
    row_as_contact,
    tags_split,
    upload_delete,
    upload_local,
    work_dir,
)
from contacts.csv_mapping import mapping_targets
from contacts.custom_fields import custom_field_columns, custom_fields_load
from contacts.errors import ContactError
from contacts.fetch import FetchError, redact_url
from contacts.models import Contact, ImportFailure, ImportJob, ImportStatus
from contacts.validation import FlatPlan, flat_contact_parse, flat_plan

logger = logging.getLogger(__name__)


# One chunk is one set-based upsert (a dozen statements, one commit, one progress update):
# at 10,000 rows that fixed cost is a few percent of the chunk's own, while the chunk's
# parsed rows stay a few tens of MB, and the progress bar still moves every second or so.
CHUNK_ROWS = 10000


def _plan(header: Header) -> tuple[FlatPlan, int | None, str]:
    """The parsing plan of a file's rows (positions in the file's columns, so ignored columns
    cost nothing per row), and where its tags are and how they are separated."""
    kept = [(t, p) for t, p in zip(header.targets, header.positions, strict=True) if t[0] != "tags"]
    tags = [(t, p) for t, p in zip(header.targets, header.positions, strict=True) if t[0] == "tags"]
    plan = flat_plan([target for target, _ in kept])
    at = [position for _, position in kept]
    plan = FlatPlan(
        tuple((at[i], column, limit) for i, column, limit in plan.strings),
        tuple((at[i], column, normalise) for i, column, normalise in plan.channels),
        tuple((at[i], field_id) for i, field_id in plan.fields),
    )
    if not tags:
        return plan, None, ","
    (_kind, separator), position = tags[0]
    return plan, position, separator if isinstance(separator, str) else ","


class _Chunk(Sequence):
    """A chunk's rows as eSputnik v1 Contact objects, built only for the rows that are read: most
    rows are parsed straight from their values (flat_contact_parse)."""

    def __init__(
        self,
        header: Header,
        plan: tuple[FlatPlan, int | None, str],
        rows: list[list[str]],
    ):
        self.header = header
        self.plan, self.tags_at, self.tag_separator = plan
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position):
        return row_as_contact(self.header, self.rows[position])

    def parse(self, position: int, custom_fields: dict) -> dict | None:
        values = self.rows[position]
        data = flat_contact_parse(self.plan, values, custom_fields)
        if data is not None and self.tags_at is not None and values[self.tags_at]:
            tags = tags_split(values[self.tags_at], self.tag_separator)
            if any(len(tag) > TAG_MAX for tag in tags):
                return None  # contact_parse words it
            if tags:
                data["tags"] = tags
        return data


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
        self._steps: Generator[None, None, None] | None = self._prepare(path, header, options, job)

    def _prepare(
        self, path: Path, header: Header, options: dict, job: ImportJob
    ) -> Generator[None, None, None]:
        custom_fields = custom_fields_load()
        plan = _plan(header)
        ready: PreparedBatch | _Malformed
        for item in _chunks(path, header):
            if isinstance(item, _Malformed):
                ready = item
            else:
                start, rows = item
                chunk = _Chunk(header, plan, rows)
                ready = yield from contacts_batch_preparing(
                    contacts=chunk,
                    options=options,
                    job=job,
                    custom_fields=custom_fields,
                    start_index=start,
                    fast_parse=chunk.parse,
                    format_new=self.mostly_new,
                    step_rows=self.STEP_ROWS,
                )
            self._ready.append(ready)
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
    custom_fields = custom_field_columns()
    payload = job.payload
    mapping = payload.get("mapping")
    header, total = csv_inspect(
        path,
        custom_fields,
        mapping=None
        if mapping is None
        else mapping_targets(mapping, custom_fields, payload.get("tagSeparator") or ","),
        encoding=payload.get("encoding") or "utf-8-sig",
        delimiter=payload.get("delimiter") or ",",
    )
    # The header is kept so the failed-rows report can use the file's own columns.
    job.payload = {**job.payload, "columns": header.names}
    ImportJob.objects.filter(pk=job.pk).update(
        total=total, description=f"Importing {total} row(s).", payload=job.payload
    )
    options = dict(job.payload.get("options") or {})
    width = header.width
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
                        add_tags=True,
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


def csv_import_run(*, job_id: int) -> None:
    """Worker side: claim the job, fetch or open its file, import it, finish or fail it."""
    # The conditional UPDATE is the claim: a redelivered task finds the job taken and stops.
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.STARTED).update(
        status=ImportStatus.IMPORTING, description="Reading the file."
    )
    if not claimed:
        logger.info("import job %s already claimed or gone", job_id)
        return
    job = ImportJob.objects.get(pk=job_id)
    try:
        with _job_file(job) as path:
            if path is None:
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
        upload_delete(job)
    ImportJob.objects.filter(pk=job_id, status=ImportStatus.IMPORTING).update(
        status=ImportStatus.FINISHED,
        finished_at=timezone.now(),
        description=_summary(job),
    )


@contextmanager
def _job_file(job: ImportJob) -> Iterator[Path | None]:
    """A local file of the job's CSV, removed afterwards: downloaded from its link straight
    into this process's scratch folder, or copied from the storage the browser upload went
    to (another machine's web process stored it); None if the upload is missing."""
    if not job.source_url:
        with upload_local(job) as path:
            yield path
        return
    ImportJob.objects.filter(pk=job.pk).update(
        description=f"Downloading {redact_url(job.source_url)}."
    )
    try:
        with tempfile.NamedTemporaryFile(dir=work_dir(), suffix=".csv") as download:
            fetch.fetch_to_file(
                job.source_url, cast(BinaryIO, download), max_bytes=fetch.MAX_DOWNLOAD_BYTES
            )
            download.flush()
            yield Path(download.name)
    finally:
        # The file's password is needed once; the job row outlives it by years.
        ImportJob.objects.filter(pk=job.pk).update(source_url=redact_url(job.source_url))


def _summary(job: ImportJob) -> str:
    job.refresh_from_db()
    return (
        f"{job.processed} row(s) read: {job.created_count} created, "
        f"{job.updated_count} updated, {job.failed_count} failed."
    )
