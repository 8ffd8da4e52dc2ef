"""Workflow tasks: adapters around the engine and the triggers."""

from celery import shared_task

from marketing.workflows import engine, triggers


@shared_task(name="workflows.tick")
def workflows_tick() -> int:
    """Beat, every 15 s: fire segment and date triggers, then wake the runs that are due.
    A full batch re-enqueues the tick so a backlog is drained by every free worker."""
    triggers.segment_workflows_check()
    triggers.date_workflows_fire()
    woken = engine.runs_wake_due(limit=engine.WAKE_BATCH)
    if woken >= engine.WAKE_BATCH:
        workflows_tick.delay()
    return woken


@shared_task(name="workflows.start_for_events", acks_late=True)
def workflows_start_for_events(event_ids: list[int]) -> int:
    # Idempotent: an event starts a workflow at most once (unique key on run.event).
    return triggers.workflows_start_for_events(event_ids=event_ids)
