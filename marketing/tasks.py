"""Celery tasks of marketing: thin adapters around events, workflows and RFM.

Events (marketing.events) are drained by `events_drain`, kicked on the commit that stored
them; the beat sweep sends those the drains missed to `process_events`. Workflows
(marketing.workflows) wake on the beat tick. RFM scores are recomputed nightly.
"""

from celery import shared_task

from marketing import engagement, events, rfm
from marketing.workflows import engine, stops, triggers


@shared_task(name="marketing.events_drain", acks_late=True)
def events_drain() -> int:
    """Process pending events (published by `events.events_kick`); idempotent: claimed rows
    are processed and marked in one transaction."""
    return events.events_process_pending()


@shared_task(name="marketing.process_events", acks_late=True)
def process_events(event_ids: list[int]) -> int:
    """Process the given events; the beat sweep sends those the drains missed."""
    # Idempotent: one run per event. Flagged invalid events start none (events_may_start).
    triggers.workflows_start_for_events(event_ids=events.events_may_start(event_ids))
    return events.events_mark_processed(event_ids=event_ids)


@shared_task(name="marketing.events_sweep")
def events_sweep() -> int:
    return events.events_enqueue_unprocessed()


@shared_task(name="marketing.engagement_events_emit")
def engagement_events_emit() -> int:
    """Beat: turn recent delivery history (deliveries, opens, clicks, bounces, complaints,
    unsubscribes) into events of the contacts; idempotent."""
    return engagement.engagement_events_emit()


@shared_task(name="marketing.rfm_recompute")
def rfm_recompute() -> int:
    return rfm.rfm_recompute()


@shared_task(name="marketing.workflows_tick")
def workflows_tick() -> int:
    """Beat, every 15 s: fire segment, date, group-schedule and import triggers, stop the
    due runs whose stop conditions hold, then wake the runs that are due. A full batch
    re-enqueues the tick so a backlog is drained by every free worker."""
    triggers.segment_workflows_check()
    triggers.date_workflows_fire()
    triggers.schedule_workflows_fire()
    triggers.import_workflows_check()
    stops.runs_stop_due()
    woken = engine.runs_wake_due(limit=engine.WAKE_BATCH)
    if woken >= engine.WAKE_BATCH:
        workflows_tick.delay()
    return woken
