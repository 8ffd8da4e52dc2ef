from celery import shared_task

from contacts.services import import_job_run


# acks_late + reject_on_worker_lost: a worker killed mid-import (its batch transaction rolled
# back, the job left IMPORTING) gets the job redelivered. Safe because import_job_run skips
# finished jobs and a duplicate delivery waits on the job's row lock, then finds it finished.
@shared_task(name="contacts.run_import_job", acks_late=True, reject_on_worker_lost=True)
def run_import_job(job_id: int) -> None:
    import_job_run(job_id=job_id)
