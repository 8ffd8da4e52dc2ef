from celery import shared_task

from marketing.services import heartbeat_record


@shared_task(name="herald.heartbeat")
def heartbeat() -> None:
    heartbeat_record(name="worker")
