from celery import shared_task
from celery.signals import beat_init, worker_ready
from django.conf import settings

from config.core import storage
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
