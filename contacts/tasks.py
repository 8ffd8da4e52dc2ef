"""Celery tasks of the contacts app: ids in, one service call."""

from celery import shared_task

from contacts import segment_members
from contacts.bulk.jobs import import_job_run
from contacts.csv_import import csv_import_run
from contacts.optin import confirmation_send


# acks_late + reject_on_worker_lost: a worker killed mid-import (its batch transaction rolled
# back, the job left IMPORTING) gets the job redelivered. Safe because import_job_run skips
# finished jobs and a duplicate delivery waits on the job's row lock, then finds it finished.
@shared_task(name="contacts.run_import_job", acks_late=True, reject_on_worker_lost=True)
def run_import_job(job_id: int) -> None:
    import_job_run(job_id=job_id)


@shared_task(name="contacts.import_file")
def import_file(job_id: int) -> None:
    csv_import_run(job_id=job_id)


@shared_task(
    name="contacts.send_confirmation",
    autoretry_for=(OSError,),
    retry_backoff=30,
    max_retries=5,
)
def send_confirmation(contact_id: int) -> None:
    """Retried on connection errors only (SMTP down); a contact without email is a no-op."""
    confirmation_send(contact_id=contact_id)


# Idempotent: a drain works off its claimed queue rows in the transaction that writes their
# changes, and a fill does nothing once the segment is filled.
@shared_task(name="contacts.segment_members_drain", acks_late=True)
def segment_members_drain() -> int:
    return segment_members.segment_members_drain()


@shared_task(name="contacts.segment_members_fill", acks_late=True)
def segment_members_fill(segment_id: int) -> int | None:
    return segment_members.segment_members_fill(segment_id=segment_id)


@shared_task(name="contacts.segments_refresh")
def segments_refresh() -> int:
    return segment_members.segments_refresh()


@shared_task(name="contacts.bulk_action")
def contacts_bulk_action(
    *,
    action: str,
    filter_query: str,
    tag: str = "",
    segment_id: int | None = None,
    reason: str = "",
    actor_id: int | None = None,
) -> int:
    """A contact-list bulk action on everyone a filter matches (too many for the request)."""
    from contacts.contact_actions import contacts_bulk_apply
    from contacts.forms import BulkActionForm

    form = BulkActionForm(
        {
            "action": action,
            "scope": "all",
            "filter": filter_query,
            "tag": tag,
            "segment": segment_id,
        }
    )
    if not form.is_valid():  # the segment was deleted or made dynamic since
        return 0
    segment = form.cleaned_data["segment"]
    result = contacts_bulk_apply(
        selection=form.selection(),
        action=action,
        tag=tag,
        segment=segment,
        reason=reason,
        actor_id=actor_id,
    )
    return result.changed
