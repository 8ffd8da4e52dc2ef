"""Starting an import session: the API's bulk upsert (POST /v1/contacts) and CSV files (by
link, or by browser upload, which waits for its columns to be mapped). Each stores its job
and enqueues the run once the transaction commits; the worker's side is contacts.bulk.jobs
and contacts.csv_import."""

import json
from collections.abc import Sequence

from django.db import transaction

from contacts.csv_files import upload_save
from contacts.custom_fields import custom_fields_load
from contacts.models import ImportFailure, ImportJob, ImportStatus, JsonText
from contacts.tasks import import_file, run_import_job
from contacts.validation import FieldProblem, contact_shape_errors, errors_reason


@transaction.atomic
def import_job_start(
    *,
    contacts: Sequence[object],  # the request's items, which need not be objects
    options: dict,
    created_by=None,
    body_text: str | None = None,
    unstorable: dict[int, tuple[FieldProblem, object]] | None = None,
) -> ImportJob:
    """Store the request, report rows failing shape checks, enqueue the import on commit.

    `body_text` is the JSON request body as received, whose "contacts" are `contacts`: it is
    stored as it is, with the positions of the rows failing shape checks, instead of the
    parsed contacts written out again (a few µs a contact in json.dumps).

    `unstorable`: rows holding text PostgreSQL cannot store (NUL, a lone UTF-16 surrogate),
    found by the API edge, by index → (the field and problem, the row as it can be stored
    in the report). Each fails alone; the body text then cannot be stored as it is."""
    unstorable = unstorable or {}
    failures: list[tuple[int, str, object]] = []
    custom_fields = custom_fields_load()
    for index, raw in enumerate(contacts):
        if index in unstorable:
            # Only the unstorable text is named: other checks would quote it in the reason.
            error, raw = unstorable[index]
            errors = [error]
        else:
            errors = contact_shape_errors(raw, custom_fields)
        if errors:
            failures.append((index, errors_reason(errors), raw))
    if unstorable:
        body_text = None
    payload: JsonText | dict
    if body_text is not None:
        payload = JsonText(
            f'{{"options": {json.dumps(options)}, '
            f'"skipped": {json.dumps([index for index, _, _ in failures])}, '
            f'"request": {body_text}}}'
        )
    else:
        skipped = {index for index, _, _ in failures}
        stored = [None if index in skipped else raw for index, raw in enumerate(contacts)]
        payload = {"contacts": stored, "options": options}
    job = ImportJob.objects.create(
        kind="api",
        payload=payload,
        total=len(contacts),
        processed=len(failures),
        failed_count=len(failures),
        created_by=created_by,
    )
    ImportFailure.objects.bulk_create(
        ImportFailure(
            job=job,
            index=index,
            reason=reason,
            data=raw if isinstance(raw, dict) else {"value": raw},
        )
        for index, reason, raw in failures
    )
    transaction.on_commit(lambda: run_import_job.delay(job.pk))
    return job


@transaction.atomic
def csv_import_start(
    *, options: dict, link: str = "", file_name: str = "", created_by=None
) -> ImportJob:
    """Create a file import job and enqueue it once the transaction commits.

    `options` are already validated (validation.import_options_parse). For a browser upload
    the caller stores the file (csv_files.upload_save) inside the same transaction.
    """
    job = ImportJob.objects.create(
        kind="file",
        source_url=link,
        payload={"options": options, "fileName": file_name},
        description="Waiting for a worker.",
        created_by=created_by,
    )
    transaction.on_commit(lambda: import_file.delay(job.pk))
    return job


@transaction.atomic
def csv_upload_start(*, uploaded, options: dict, created_by=None) -> ImportJob:
    """A browser upload: the job and its file are created together; nothing runs until the
    marketer confirms the file's encoding, delimiter and column mapping (csv_upload_confirm)."""
    job = ImportJob.objects.create(
        kind="file",
        payload={"options": options, "fileName": uploaded.name, "awaitingMapping": True},
        description="Waiting for the columns to be mapped.",
        created_by=created_by,
    )
    upload_save(job, uploaded)
    return job


def upload_awaits_mapping(job: ImportJob) -> bool:
    return (
        job.kind == "file"
        and job.status == ImportStatus.STARTED
        and bool(job.payload.get("awaitingMapping"))
    )


@transaction.atomic
def csv_upload_confirm(
    *, job: ImportJob, mapping: list[str], encoding: str, delimiter: str, tag_separator: str
) -> bool:
    """Store the confirmed reading of an upload and enqueue its import once → whether this
    call started it (a second confirmation, a double click, finds it started)."""
    locked = ImportJob.objects.select_for_update().get(pk=job.pk)
    if not upload_awaits_mapping(locked):
        return False
    payload = {key: value for key, value in locked.payload.items() if key != "awaitingMapping"}
    payload.update(
        mapping=mapping, encoding=encoding, delimiter=delimiter, tagSeparator=tag_separator
    )
    ImportJob.objects.filter(pk=job.pk).update(payload=payload, description="Waiting for a worker.")
    transaction.on_commit(lambda: import_file.delay(job.pk))
    return True
