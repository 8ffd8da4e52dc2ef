from celery import shared_task

from campaigns.sending import send_request_process

# Wake-ups a send request may need: one per retry round of its slowest delivery (each round
# spends an attempt, and attempts are bounded) plus takeovers of claims of lost workers.
SEND_REQUEST_MAX_WAKEUPS = 50


# acks_late + reject_on_worker_lost: a worker lost mid-run gets the task redelivered. Safe
# because deliveries are claimed row by row (SKIP LOCKED), so a second run never sends a row
# the first one sent or holds.
@shared_task(
    bind=True,
    name="campaigns.send_request",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=SEND_REQUEST_MAX_WAKEUPS,
)
def send_request_task(self, send_request_id: int) -> None:
    wait = send_request_process(send_request_id=send_request_id)
    if wait == 0:
        # Time budget spent with rows left: a fresh task, not a retry (retries are for waits
        # and are counted).
        send_request_task.delay(send_request_id)
    elif wait is not None:
        raise self.retry(countdown=max(1.0, wait))
