from celery import shared_task

from config.core.services import heartbeat_record


@shared_task(name="core.heartbeat")
def heartbeat() -> None:
    heartbeat_record(name="worker")
