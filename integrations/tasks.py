"""Celery tasks of the integrations: thin adapters, ids in, one service call each."""

from celery import shared_task

from campaigns.delivery.handover import handed_over_runs_sync
from integrations.template_sync import template_import_run
from integrations.webhook_auth import nonces_forget

# --- webhooks -------------------------------------------------------------------------------


@shared_task(name="integrations.webhook_nonces_forget")
def webhook_nonces_forget_task() -> int:
    """Forget webhook nonces older than the replay window (their requests are refused by
    the timestamp check anyway); returns how many went."""
    return nonces_forget()


# --- templates and handed-over campaigns (integrations.template_sync,
# campaigns.delivery.handover) ---------------------------------------------------------------


# acks_late: a worker lost mid-import gets the task redelivered; safe because each page and
# the import's offset commit together (a page is never applied twice).
@shared_task(name="integrations.template_import", acks_late=True, reject_on_worker_lost=True)
def template_import_task(import_id: int) -> str:
    return str(template_import_run(import_id=import_id).state)


# Beat: the figures of campaigns handed to a service. Idempotent (figures are replaced, never
# added up); a missed tick is made up by the next.
@shared_task(name="integrations.campaign_stats_sync", ignore_result=True)
def campaign_stats_sync_task() -> dict[str, int]:
    return handed_over_runs_sync()
