from celery import shared_task

from contacts.services import import_job_run


# Not acks_late: import_job_run is idempotent for finished jobs, but a redelivery racing a
# still-running first attempt would only wait on the job's row lock; one delivery is enough.
@shared_task(name="contacts.run_import_job")
def run_import_job(job_id: int) -> None:
    import_job_run(job_id=job_id)
