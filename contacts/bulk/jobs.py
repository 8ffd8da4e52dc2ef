"""Running an import job on a worker: the API's bulk sessions (a CSV file's run is in
contacts.csv_import), and marking a job failed."""

import logging

from django.db import transaction
from django.utils import timezone

from contacts.bulk.gc import gc_paused
from contacts.bulk.upsert import contacts_upsert_batch
from contacts.errors import ContactError
from contacts.models import ImportJob, ImportStatus

logger = logging.getLogger(__name__)


def import_job_run(*, job_id: int) -> None:
    """Run a stored API import once. Safe to call twice: a finished job is left alone."""
    claimed = ImportJob.objects.filter(
        pk=job_id, status__in=[ImportStatus.STARTED, ImportStatus.IMPORTING]
    ).update(status=ImportStatus.IMPORTING)
    if not claimed:
        return
    try:
        with gc_paused(), transaction.atomic():
            # The row lock makes a second delivery of the task wait, then see FINISHED.
            job = ImportJob.objects.select_for_update().get(pk=job_id)
            if job.status != ImportStatus.IMPORTING:
                return
            payload = job.payload or {}
            contacts_upsert_batch(
                contacts=_job_contacts(payload), options=payload.get("options", {}), job=job
            )
            ImportJob.objects.filter(pk=job_id).update(
                status=ImportStatus.FINISHED, finished_at=timezone.now()
            )
            # Freed while the collector is paused: alive when it resumes, the decoded
            # contacts would all be scanned by its first pass (a few ms a batch).
            del job, payload
    except ContactError as exc:
        import_job_fail(job_id=job_id, description=str(exc))
    except Exception as exc:
        logger.exception("import job %s failed", job_id)
        import_job_fail(job_id=job_id, description=f"internal error: {type(exc).__name__}")


def _job_contacts(payload: dict):
    """The stored contacts, None for those the request already reported as failed."""
    if "request" not in payload:
        return payload.get("contacts", [])
    contacts = payload["request"]["contacts"]
    for index in payload["skipped"]:
        contacts[index] = None
    return contacts


def import_job_fail(*, job_id: int, description: str) -> None:
    """Mark a job failed, saying why (a job already finished stays finished)."""
    ImportJob.objects.filter(pk=job_id).exclude(status=ImportStatus.FINISHED).update(
        status=ImportStatus.ERROR, description=description, finished_at=timezone.now()
    )
