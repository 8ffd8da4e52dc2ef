"""Webhook requests are applied by drains (integrations.webhooks), not while the service
waits; tests that check a request's changes right after posting it run the drain here, as a
worker would."""

import time

from integrations.models import WebhookOutcome, WebhookRequest
from integrations.webhooks import webhook_requests_drain


def webhooks_drain(timeout: float = 20.0) -> int:
    """Apply every queued webhook request; return how many this process applied. Rows a real
    worker's drain holds are waited for (until `timeout`), so that their changes are visible
    too when this returns."""
    done = webhook_requests_drain()
    deadline = time.monotonic() + timeout
    while WebhookRequest.objects.filter(outcome=WebhookOutcome.QUEUED).exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"webhook requests still queued after {timeout}s")
        time.sleep(0.05)
        done += webhook_requests_drain()
    return done


def post_applied(client, path: str, **kwargs):
    """POST a webhook with the test client, then apply what it queued (`webhooks_drain`)."""
    response = client.post(path, **kwargs)
    webhooks_drain()
    return response
