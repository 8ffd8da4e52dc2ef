"""Event processing and RFM tasks: adapters around marketing.events and marketing.rfm."""

from celery import shared_task

from marketing import events, rfm
from marketing.workflows.triggers import workflows_start_for_events


@shared_task(name="marketing.events_drain", acks_late=True)
def events_drain() -> int:
    """Process pending events (published by `events.events_kick`); idempotent: claimed rows
    are processed and marked in one transaction."""
    return events.events_process_pending()


@shared_task(name="marketing.process_event", acks_late=True)
def process_event(event_id: int) -> int:
    """Kept for tasks published before drains existed: start the workflows the event
    triggers, then mark it processed (both idempotent)."""
    workflows_start_for_events(event_ids=[event_id])  # idempotent: one run per event
    return events.events_mark_processed(event_ids=[event_id])


@shared_task(name="marketing.process_events", acks_late=True)
def process_events(event_ids: list[int]) -> int:
    """Process the given events; the beat sweep sends those the drains missed."""
    workflows_start_for_events(event_ids=event_ids)  # idempotent: one run per event
    return events.events_mark_processed(event_ids=event_ids)


@shared_task(name="marketing.events_sweep")
def events_sweep() -> int:
    return events.events_enqueue_unprocessed()


@shared_task(name="marketing.rfm_recompute")
def rfm_recompute() -> int:
    return rfm.rfm_recompute()
