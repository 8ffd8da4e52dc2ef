"""Retention of stored webhook requests: months past HERALD_RETENTION_WEBHOOK_REQUESTS_DAYS
are dropped (config.core.partitions). Nothing reads old requests but the admin's list and
replays, so there is nothing to roll up; a month with a request still waiting to be applied
(outcome "queued") is kept."""

from __future__ import annotations

from datetime import UTC, date, datetime

from config.core.partitions import Partitioned, partitioned_register
from integrations.models import WebhookOutcome, WebhookRequest


def webhook_month_keep(start: date, end: date) -> str | None:
    since = datetime(start.year, start.month, start.day, tzinfo=UTC)
    until = datetime(end.year, end.month, end.day, tzinfo=UTC)
    waiting = WebhookRequest.objects.filter(
        received_at__gte=since, received_at__lt=until, outcome=WebhookOutcome.QUEUED
    )
    return "requests of this month are still queued" if waiting.exists() else None


WEBHOOK_REQUESTS = Partitioned(
    table=WebhookRequest._meta.db_table,
    key="received_at",
    retention_setting="HERALD_RETENTION_WEBHOOK_REQUESTS_DAYS",
    keep=webhook_month_keep,
)


def webhook_partitions_register() -> None:
    partitioned_register(WEBHOOK_REQUESTS)
