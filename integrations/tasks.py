"""Celery tasks of the integrations: thin adapters, ids in, one service call each.

Bounce mailboxes (integrations.providers.bounce_mailbox): beat starts
`integrations.bounce_mailboxes_poll` every minute (config.settings CELERY_BEAT_SCHEDULE),
which starts one poll per enabled mailbox, so a slow server holds up only its own.
"""

from celery import shared_task

from campaigns.delivery.handover import handed_over_runs_sync
from integrations.providers.bounce_mailbox import bounce_mailbox_poll, bounce_mailboxes
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


# --- bounce mailboxes -----------------------------------------------------------------------


@shared_task(name="integrations.bounce_mailboxes_poll")
def bounce_mailboxes_poll_task() -> int:
    ids = bounce_mailboxes()
    for integration_id in ids:
        bounce_mailbox_poll_task.delay(integration_id)
    return len(ids)


# Not acks_late: a poll lost with its worker is simply the next minute's poll (a message is
# deleted only after what it reported is committed, and reading it again changes nothing).
@shared_task(name="integrations.bounce_mailbox_poll")
def bounce_mailbox_poll_task(integration_id: int) -> dict:
    report = bounce_mailbox_poll(integration_id=integration_id)
    if report.more:
        # Bounded work per task: the rest goes on in a fresh one.
        bounce_mailbox_poll_task.delay(integration_id)
    return {
        "read": report.read,
        "removed": report.removed,
        "kinds": dict(report.kinds),
        "changes": dict(report.changes),
        "error": report.error,
    }
