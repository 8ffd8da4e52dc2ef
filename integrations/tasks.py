"""Celery tasks of the integrations: thin adapters, ids in, one service call each.

Bounce mailboxes (integrations.providers.bounce_mailbox): beat starts
`integrations.bounce_mailboxes_poll` every minute (config.settings CELERY_BEAT_SCHEDULE),
which starts one poll per enabled mailbox, so a slow server holds up only its own.
"""

from celery import shared_task

from integrations.providers.bounce_mailbox import bounce_mailbox_poll, bounce_mailboxes


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
