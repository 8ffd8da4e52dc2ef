"""Celery tasks of the sending pipeline: thin adapters around campaigns.pipeline."""

from celery import shared_task

from campaigns import pipeline


# acks_late: a sender lost with its worker is redelivered; that is safe because deliveries
# are claimed (SKIP LOCKED) and recorded per chunk, so a second sender never sends a row
# another one holds or has sent. The recovery beat task covers what the broker does not.
@shared_task(name="campaigns.run_send", acks_late=True, reject_on_worker_lost=True)
def run_send_task(run_id: int) -> None:
    wait = pipeline.run_send(run_id=run_id)
    if wait is not None:
        # Bounded work per invocation: the rest goes on in a fresh task.
        run_send_task.apply_async(args=[run_id], countdown=wait or None)


@shared_task(name="campaigns.runs_recover")
def runs_recover_task() -> dict:
    return pipeline.runs_recover()


@shared_task(name="campaigns.drip_enter")
def drip_enter_task() -> int:
    return pipeline.drip_enter()
