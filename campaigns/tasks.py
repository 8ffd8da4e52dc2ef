"""Celery tasks of campaigns: thin adapters, ids in, one service call each.

Sending (the delivery engine, campaigns.delivery.engine): a campaign run's senders and a send
request's. Recovery and drips (campaigns.pipeline), lifecycle ticks from beat
(campaigns.lifecycle), and the analytics rollup (campaigns.analytics). Producers enqueue the
sending tasks by name (campaigns.pipeline.RUN_SEND_TASK, campaigns.messages.SEND_REQUEST_TASK).
"""

from celery import shared_task

from campaigns import abtest, lifecycle, messages, pipeline, purge, resend
from campaigns.analytics import stats_refresh, stats_refreshed
from campaigns.delivery import engine

# Wake-ups a send request may need: one per retry round of its slowest delivery (each round
# spends an attempt, and attempts are bounded) plus takeovers of claims of lost workers.
SEND_REQUEST_MAX_WAKEUPS = 50


# --- sending -------------------------------------------------------------------------------


# acks_late + reject_on_worker_lost: a worker lost mid-run gets the task redelivered. Safe
# because deliveries are claimed (SKIP LOCKED) and recorded per chunk, so a second run never
# sends a row another one holds or has sent.
@shared_task(
    bind=True,
    name="campaigns.send_request",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=SEND_REQUEST_MAX_WAKEUPS,
)
def send_request_task(self, send_request_id: int) -> None:
    wait = engine.send_request_process(send_request_id=send_request_id)
    if wait == 0:
        # Time budget spent with rows left: a fresh task, not a retry (retries are for waits
        # and are counted).
        send_request_task.delay(send_request_id)
    elif wait is not None:
        raise self.retry(countdown=max(1.0, wait))


# The same safety; the recovery beat task covers what the broker does not.
@shared_task(name="campaigns.run_send", acks_late=True, reject_on_worker_lost=True)
def run_send_task(run_id: int) -> None:
    wait = engine.run_send(run_id=run_id)
    if wait is not None:
        # Bounded work per invocation: the rest goes on in a fresh task.
        run_send_task.apply_async(args=[run_id], countdown=wait or None)


@shared_task(name="campaigns.runs_recover")
def runs_recover_task() -> dict:
    return pipeline.runs_recover()


@shared_task(name="campaigns.send_windows_wake")
def send_windows_wake_task() -> int:
    return messages.send_requests_wake_due()


@shared_task(name="campaigns.drip_enter")
def drip_enter_task() -> int:
    return pipeline.drip_enter()


# Both idempotent: a winner is chosen once under its test's row lock, a resend run created
# once under its campaign's lock.
@shared_task(name="campaigns.ab_tests_due")
def ab_tests_due_task() -> dict:
    return abtest.ab_tests_due()


@shared_task(name="campaigns.resends_due")
def resends_due_task() -> int:
    return resend.resends_due()


# --- lifecycle (beat) ----------------------------------------------------------------------
# Each is idempotent: a launch or tick for a campaign that is no longer scheduled or running
# does nothing.


@shared_task(name="campaigns.launch_scheduled")
def launch_scheduled(campaign_id: int) -> int | None:
    run = lifecycle.campaign_launch_scheduled(campaign_id=campaign_id)
    return run.pk if run else None


@shared_task(name="campaigns.launch_recurring_tick")
def launch_recurring_tick(campaign_id: int) -> int | None:
    run = lifecycle.campaign_tick(campaign_id=campaign_id)
    return run.pk if run else None


@shared_task(name="campaigns.purge_deleted")
def purge_deleted_task() -> int:
    """Daily: deleted campaigns past the retention age, a bounded number per task; the rest
    in a fresh task."""
    results, left = purge.campaigns_purge(limit=purge.CAMPAIGNS_PER_TASK)
    if left:
        purge_deleted_task.delay()
    return len(results)


@shared_task(name="campaigns.end_due")
def end_due() -> int:
    return lifecycle.campaigns_end_due()


# --- analytics (beat) ----------------------------------------------------------------------


# Idempotent (every row is recomputed, never incremented) and serialised by an advisory lock,
# so a redelivered or overlapping run is harmless; no retry: the next tick does the same work.
@shared_task(name="campaigns.stats_refresh", acks_late=True, ignore_result=True)
def stats_refresh_task(run_ids: list[int] | None = None) -> dict:
    result = stats_refresh(run_ids=run_ids)
    # After the rollup, which may have just created the rows that apps above write into
    # (marketing's order conversions).
    stats_refreshed.send(sender=stats_refresh, run_ids=run_ids)
    return {"runs": result.runs, "stats": result.stats_rows, "buckets": result.bucket_rows}
