"""Celery tasks for file imports and double opt-in mail: ids in, one service call."""

from celery import shared_task


@shared_task(name="contacts.import_file")
def import_file(job_id: int) -> None:
    from contacts.csv_import import csv_import_run

    csv_import_run(job_id=job_id)


@shared_task(
    name="contacts.send_confirmation",
    autoretry_for=(OSError,),
    retry_backoff=30,
    max_retries=5,
)
def send_confirmation(contact_id: int) -> None:
    """Retried on connection errors only (SMTP down); a contact without email is a no-op."""
    from contacts.optin import confirmation_send

    confirmation_send(contact_id=contact_id)
