"""Celery tasks of the integrations app: adapters that call one service each."""

from celery import shared_task

from integrations.webhook_auth import nonces_forget


@shared_task(name="integrations.webhook_nonces_forget")
def webhook_nonces_forget_task() -> int:
    """Forget webhook nonces older than the replay window (their requests are refused by
    the timestamp check anyway); returns how many went."""
    return nonces_forget()
