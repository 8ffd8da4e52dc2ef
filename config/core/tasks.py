from celery import shared_task
from celery.signals import beat_init, worker_ready
from django.conf import settings

from config.core import storage
from config.core.partitions import partitioned, partitions_ensure_all, retention_apply
from config.core.services import heartbeat_record


@shared_task(name="core.heartbeat")
def heartbeat() -> None:
    heartbeat_record(name="worker")


# The dashboard shows the worker alive from the moment it is ready, not from beat's first
# tick 30 s later; beat's start tells it a worker is on its way ("Worker starting…").
# Both processes import every tasks module before sending these signals.
@worker_ready.connect
def _worker_ready(**kwargs) -> None:
    heartbeat_record(name="worker")


@beat_init.connect
def _beat_started(**kwargs) -> None:
    heartbeat_record(name="beat")


@shared_task(name="core.stored_files_forget")
def stored_files_forget() -> None:
    storage.stored_files_forget(days=settings.HERALD_STORED_FILES_DAYS)


# Month partitions of the tables that grow with time (config.core.partitions): the coming
# months are created ahead, every day, so no insert ever waits for (or misses) one.
@shared_task(name="core.partitions_ensure", ignore_result=True)
def partitions_ensure() -> list[str]:
    return partitions_ensure_all()


# One beat entry per table. Idempotent (a month already dropped is not found again) and one
# transaction per month, so a redelivered or interrupted run is harmless.
@shared_task(name="core.retention_apply", acks_late=True, ignore_result=True)
def retention_apply_task(table: str) -> dict:
    result = retention_apply(partitioned(table))
    return {"dropped": result.dropped, "kept": result.kept}
