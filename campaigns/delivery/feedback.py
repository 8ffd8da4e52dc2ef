"""Feedback from providers: the actions a webhook, a DSN, an ARF report or an unsubscribe
mail yields, and how Herald applies them (the provider contract's webhook actions: send
email, unsubscribe, update campaign, update campaign stats, update delivery status).

`actions_apply` is the one door: the delivery statuses go through the ledger's transition
table once per provider event (campaigns.ledger.deliveries_feedback), hard bounces and
complaints suppress the address at once, repeated soft bounces within a window do too
(contacts.suppression), unsubscribes reach the unsubscribed list, and a run handed to a
service follows the status and figures the service reports. Applying the same actions again
changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.delivery.providers import (
    CampaignStats,
    CampaignStatus,
    DeliveryStatus,
    provider_label,
)
from campaigns.ledger import deliveries_feedback
from campaigns.messages import send_request_enqueue
from campaigns.models import CampaignRun, Delivery, DeliveryEvent, SendKind, SendRequest
from campaigns.models import DeliveryStatus as LedgerStatus
from config.core.db import fetchall_prepared
from config.core.models import Integration
from contacts.channels import email_normalise
from contacts.models import ChannelType, SuppressionReason
from contacts.suppression import suppression_key, suppressions_add
from contacts.unsubscribed import unsubscribed_add

logger = logging.getLogger(__name__)

SOFT_BOUNCE = "soft bounce"
HARD_BOUNCE = "hard bounce"


# --- actions --------------------------------------------------------------------------------


@dataclass
class UpdateDeliveryStatus:
    """A message's status at the provider. The message is found by, in this order: Herald's
    own id (`herald_id`: the Message-ID or the delivery's request id, as VERP addresses and
    custom headers carry it), the provider's message id (`message_id`), or the campaign's
    external id with the recipient's Herald contact id (`external_id` + `contact_id`) or
    address (`external_id` + `email`). A service that took a messenger campaign knows its
    recipients only by contact id (the campaign was prepared with contact ids, and a chat id
    is the messenger's, not the service's): by contact id, only the rows the run handed to
    the reporting integration match, not the same contact's rows on the run's other
    channels."""

    status: DeliveryStatus
    email: str = ""
    external_id: str = ""
    contact_id: int | None = None
    message_id: str = ""
    herald_id: str = ""
    event_id: str = ""
    detail: str = ""
    url: str = ""
    at: datetime | None = None


@dataclass
class Unsubscribe:
    """An address asked to stop: from everything (`all`), or from one category (`external_id`,
    the category id at the service; Herald's unsubscribed list is per address, so a category
    unsubscribe is recorded against the address with the category as its reason)."""

    email: str
    external_id: str = ""
    all: bool = True
    reason: str = ""


@dataclass
class UpdateCampaign:
    external_id: str
    status: CampaignStatus


@dataclass
class UpdateCampaignStats:
    external_id: str
    stats: CampaignStats


@dataclass
class SendEmail:
    """The service asks Herald to send a message itself (e.g. a confirmation)."""

    to: str
    subject: str
    html: str = ""
    text: str = ""
    from_email: str = ""
    from_name: str = ""


Action = UpdateDeliveryStatus | Unsubscribe | UpdateCampaign | UpdateCampaignStats | SendEmail


@dataclass
class WebhookResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class WebhookResult:
    """What a parser makes of a request: the actions to apply and, optionally, the HTTP answer
    the service expects (200 with an empty body when absent)."""

    actions: list[Action] = field(default_factory=list)
    response: WebhookResponse | None = None


@dataclass
class ApplyReport:
    """What applying a list of actions changed, by kind ("delivered", "suppressed", …), and
    the actions that matched nothing (a message Herald never sent).

    `credited` counts the changes per action, by its index in the list applied, so that a
    caller applying the actions of many webhook requests together can say what each request
    changed: a status change is the action's that made it (the k-th report of one status of
    one message is applied after the first k - 1, as if the requests came one by one), and
    a suppression or unsubscribe it led to is credited to it too. One statement adds the
    addresses of many actions and says only how many were new: when some but not all were
    already listed (rare: a listed address is no longer mailed), the new ones are credited
    to the first actions in the list."""

    changes: Counter[str] = field(default_factory=Counter)
    unmatched: int = 0
    credited: Counter[int] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.changes.values())


# --- status mapping -------------------------------------------------------------------------

_LEDGER: dict[DeliveryStatus, str] = {
    DeliveryStatus.SENT: LedgerStatus.SENT,
    DeliveryStatus.DELIVERED: LedgerStatus.DELIVERED,
    DeliveryStatus.OPENED: LedgerStatus.OPENED,
    DeliveryStatus.CLICKED: LedgerStatus.CLICKED,
    DeliveryStatus.BOUNCED: LedgerStatus.BOUNCED,
    DeliveryStatus.SOFT_BOUNCED: LedgerStatus.BOUNCED,
    DeliveryStatus.COMPLAINED: LedgerStatus.COMPLAINED,
    DeliveryStatus.UNSUBSCRIBED: LedgerStatus.UNSUBSCRIBED,
    DeliveryStatus.FAILED: LedgerStatus.FAILED,
}

_HEX_ID = re.compile(r"[0-9a-f]{32}")


def herald_request_id(value: str) -> uuid.UUID | None:
    """The delivery request id inside a Message-ID (<hex@domain>), a VERP tag or a bare id."""
    match = _HEX_ID.search(value.lower().replace("-", ""))
    return uuid.UUID(match.group(0)) if match else None


def _event_id(action: UpdateDeliveryStatus, delivery_id: int) -> str:
    """The provider's event id, else one derived from what the event says, so a repeat of
    the same report is recognised."""
    if action.event_id:
        return action.event_id[:255]
    at = action.at.isoformat() if action.at else ""
    raw = f"{action.status}|{delivery_id}|{at}|{action.url}|{action.detail}"
    return "h:" + hashlib.sha256(raw.encode()).hexdigest()[:40]


# --- apply ----------------------------------------------------------------------------------


def _deliveries_find(
    actions: list[UpdateDeliveryStatus], integration: Integration | None
) -> dict[int, tuple[int, str, str]]:
    """action index → (delivery id, channel, locator) for the actions that name a delivery.

    One statement, whatever the mix of ways the actions name their messages: it runs once
    per webhook request, often for a single event. `provider_message_id <> ''` and
    `external_id <> ''` repeat the conditions of their partial indexes: the planner proves
    them from a list of up to 100 constants, but neither from a longer one (a batch of
    events) nor from a parameter (a prepared statement), and would scan the table instead."""
    by_key: dict[tuple[int, str, str], list[int]] = {}
    request_ids: list[str] = []
    provider_ids: list[str] = []
    run_ids: list[str] = []
    emails: list[str] = []
    contact_run_ids: list[str] = []
    contact_ids: list[int] = []
    for index, action in enumerate(actions):
        request_id = herald_request_id(action.herald_id) if action.herald_id else None
        if request_id is not None:
            key = (0, str(request_id), "")
            request_ids.append(key[1])
        elif action.message_id:
            key = (1, action.message_id, "")
            provider_ids.append(key[1])
        elif action.external_id and action.contact_id is not None:
            key = (3, action.external_id, str(action.contact_id))
            contact_run_ids.append(key[1])
            contact_ids.append(action.contact_id)
        elif action.external_id and action.email:
            key = (2, action.external_id, action.email.strip().lower())
            run_ids.append(key[1])
            # As the service echoes it (the locator's own case, as sent) and in lower case:
            # both are found through the locator's index.
            emails.extend((action.email.strip(), key[2]))
        else:
            continue
        by_key.setdefault(key, []).append(index)
    if not by_key:
        return {}
    deliveries = Delivery._meta.db_table
    parts: list[str] = []
    params: list[Any] = []
    if request_ids:
        parts.append(
            f"SELECT 0, d.request_id::text, '', d.id, d.channel, d.locator FROM {deliveries} d "  # noqa: S608
            "WHERE d.request_id = ANY(%s::uuid[])"
        )
        params.append(list(dict.fromkeys(request_ids)))
    if provider_ids:
        parts.append(
            f"SELECT 1, d.provider_message_id, '', d.id, d.channel, d.locator FROM {deliveries} d "  # noqa: S608
            "WHERE d.provider_message_id = ANY(%s::text[]) AND d.provider_message_id <> ''"
        )
        params.append(list(dict.fromkeys(provider_ids)))
    if run_ids:
        # The same address may be wanted from another run: the key (run, address) sorts out
        # the pairs no action asked for.
        mine = "AND r.integration_id = %s" if integration is not None else ""
        parts.append(
            "SELECT 2, r.external_id, lower(d.locator), d.id, d.channel, d.locator "  # noqa: S608
            f"FROM {CampaignRun._meta.db_table} r JOIN {deliveries} d ON d.run_id = r.id "
            f"WHERE r.external_id = ANY(%s::text[]) AND r.external_id <> '' {mine} "
            "AND d.locator = ANY(%s::text[])"
        )
        params.append(list(dict.fromkeys(run_ids)))
        if integration is not None:
            params.append(integration.pk)
        params.append(list(dict.fromkeys(emails)))
    if contact_run_ids:
        # Through the ledger's (run, contact, channel, step) index. The rows the run handed
        # to this integration carry its label as their provider
        # (campaigns.ledger.run_deliveries_sent).
        mine = "AND r.integration_id = %s AND d.provider = %s" if integration is not None else ""
        parts.append(
            "SELECT 3, r.external_id, d.contact_id::text, d.id, d.channel, d.locator "  # noqa: S608
            f"FROM {CampaignRun._meta.db_table} r JOIN {deliveries} d ON d.run_id = r.id "
            f"WHERE r.external_id = ANY(%s::text[]) AND r.external_id <> '' {mine} "
            "AND d.contact_id = ANY(%s::bigint[])"
        )
        params.append(list(dict.fromkeys(contact_run_ids)))
        if integration is not None:
            params.extend((integration.pk, provider_label(integration)[:50]))
        params.append(list(dict.fromkeys(contact_ids)))
    found: dict[int, tuple[int, str, str]] = {}
    # Prepared (the text takes one of a few forms): planning this statement costs the
    # server more than running it.
    for way, key, email, pk, channel, locator in fetchall_prepared(
        " UNION ALL ".join(parts), params
    ):
        for index in by_key.get((way, key, email), ()):
            found[index] = (pk, channel, locator)
    return found


def _credit(report: ApplyReport, kind: str, indexes: list[int], added: int) -> None:
    """Record `added` changes of `kind` made by one statement for the actions `indexes` (one
    per address, in order): credited to the first `added` of them."""
    report.changes[kind] += added
    for index in indexes[:added]:
        report.credited[index] += 1


def _soft_bounce_limit_reached(channel: str, addresses: list[str]) -> list[str]:
    """Addresses with HERALD_SOFT_BOUNCE_LIMIT soft bounces within the window."""
    limit = settings.HERALD_SOFT_BOUNCE_LIMIT
    if not addresses or limit <= 0:
        return []
    since = timezone.now() - timedelta(days=settings.HERALD_SOFT_BOUNCE_WINDOW_DAYS)
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT d.locator FROM {table} d JOIN {events} e ON e.delivery_id = d.id
                 WHERE d.locator = ANY(%s) AND d.channel = %s AND e.status = 'bounced'
                   AND e.detail LIKE %s AND e.at >= %s
                 GROUP BY d.locator HAVING count(DISTINCT d.id) >= %s""",  # noqa: S608
            [addresses, channel, f"{SOFT_BOUNCE}%", since, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def _delivery_statuses_apply(
    actions: list[UpdateDeliveryStatus],
    indexes: list[int],
    integration: Integration | None,
    source: str,
    report: ApplyReport,
) -> None:
    found = _deliveries_find(actions, integration)
    report.unmatched += len(actions) - len(found)
    # Rounds: the k-th report of one status of one message goes in the k-th ledger call, so
    # each is applied, counted and credited as if the requests carrying them came one by one
    # (a second open counts again). Usually there is one round: one statement per status
    # for the whole list.
    rounds: list[list[tuple[int, tuple[int, str, str, str, str], tuple[str, str, str, str]]]] = []
    occurrences: Counter[tuple[int, str]] = Counter()
    events: set[tuple[int, str, str]] = set()
    for position, (delivery_id, channel, locator) in sorted(found.items()):
        action = actions[position]
        ledger = _LEDGER.get(DeliveryStatus(action.status))
        if ledger is None:  # queued: nothing to record
            continue
        detail = action.detail
        if action.status == DeliveryStatus.SOFT_BOUNCED:
            detail = f"{SOFT_BOUNCE}: {detail}".rstrip(": ")
        elif action.status == DeliveryStatus.BOUNCED:
            detail = f"{HARD_BOUNCE}: {detail}".rstrip(": ")
        row = (delivery_id, ledger, _event_id(action, delivery_id), detail, action.url)
        if row[:3] in events:
            continue  # the same event again: it can change nothing
        events.add(row[:3])
        number = occurrences[(delivery_id, ledger)]
        occurrences[(delivery_id, ledger)] += 1
        if number == len(rounds):
            rounds.append([])
        # The suppression keeps the provider's words; its reason already says which bounce.
        rounds[number].append(
            (indexes[position], row, (str(action.status), channel, locator, action.detail))
        )
    hard: dict[str, dict[str, tuple[str, int]]] = {}
    complaints: dict[str, dict[str, tuple[str, int]]] = {}
    soft: dict[str, dict[str, int]] = {}
    unsubscribed: dict[str, int] = {}
    for round_ in rounds:
        applied = set(deliveries_feedback([row for _, row, _ in round_]))
        for index, row, (status, channel, locator, detail) in round_:
            if (row[0], row[1]) not in applied:
                continue
            report.changes[status] += 1
            report.credited[index] += 1
            key = suppression_key(channel, locator)
            if status == DeliveryStatus.BOUNCED:
                hard.setdefault(channel, {}).setdefault(key, (detail, index))
            elif status == DeliveryStatus.SOFT_BOUNCED:
                soft.setdefault(channel, {}).setdefault(locator, index)
            elif status == DeliveryStatus.COMPLAINED:
                complaints.setdefault(channel, {}).setdefault(key, (detail, index))
            elif status == DeliveryStatus.UNSUBSCRIBED and channel == ChannelType.EMAIL:
                unsubscribed.setdefault(key, index)
    for reason, groups in (
        (SuppressionReason.HARD_BOUNCE, hard),
        (SuppressionReason.COMPLAINT, complaints),
    ):
        for channel, by_address in groups.items():
            added = suppressions_add(
                channel=channel,
                entries=[(address, detail) for address, (detail, _) in by_address.items()],
                reason=reason,
                source=source,
            )
            _credit(report, "suppressed", [index for _, index in by_address.values()], added)
    for channel, first in soft.items():
        over = _soft_bounce_limit_reached(channel, list(first))
        entries = [
            (
                locator,
                f"{settings.HERALD_SOFT_BOUNCE_LIMIT} soft bounces within "
                f"{settings.HERALD_SOFT_BOUNCE_WINDOW_DAYS} days",
            )
            for locator in over
        ]
        added = suppressions_add(
            channel=channel, entries=entries, reason=SuppressionReason.SOFT_BOUNCES, source=source
        )
        _credit(report, "suppressed", [first[locator] for locator in over], added)
    if unsubscribed:
        outcome = unsubscribed_add(emails=list(unsubscribed), reason=f"reported by {source}")
        _credit(report, "unsubscribed_added", list(unsubscribed.values()), outcome["added"])


def _unsubscribes_apply(
    actions: list[Unsubscribe], indexes: list[int], source: str, report: ApplyReport
) -> None:
    by_reason: dict[str, dict[str, int]] = {}
    for action, index in zip(actions, indexes, strict=True):
        email, _ = email_normalise(action.email)
        if email is None:
            report.unmatched += 1
            continue
        reason = action.reason or (
            f"unsubscribed at {source}"
            if action.all or not action.external_id
            else f"unsubscribed from category {action.external_id} at {source}"
        )
        by_reason.setdefault(reason[:200], {}).setdefault(email, index)
    for reason, emails in by_reason.items():
        added = unsubscribed_add(emails=list(emails), reason=reason)["added"]
        _credit(report, "unsubscribed_added", list(emails.values()), added)


def _runs_of(integration: Integration | None, external_id: str):
    runs = CampaignRun.objects.filter(external_id=external_id)
    return runs.filter(integration=integration) if integration is not None else runs


def _campaign_updates_apply(
    actions: list[UpdateCampaign | UpdateCampaignStats],
    indexes: list[int],
    integration: Integration | None,
    report: ApplyReport,
) -> None:
    now = timezone.now()
    for action, index in zip(actions, indexes, strict=True):
        runs = _runs_of(integration, action.external_id)
        if isinstance(action, UpdateCampaign):
            changed = runs.exclude(external_status=str(action.status)).update(
                external_status=str(action.status)
            )
            key = "campaign_status"
        else:
            stats: dict[str, Any] = action.stats.as_dict()
            update: dict[str, Any] = {"external_stats": stats, "external_stats_at": now}
            if action.stats.status:
                update["external_status"] = str(action.stats.status)
            changed = runs.update(**update)
            key = "campaign_stats"
        if changed:
            report.changes[key] += changed
            report.credited[index] += changed
        else:
            report.unmatched += 1


def _emails_send(
    actions: list[SendEmail],
    indexes: list[int],
    integration: Integration | None,
    report: ApplyReport,
) -> None:
    for action, index in zip(actions, indexes, strict=True):
        email, _ = email_normalise(action.to)
        if email is None:
            report.unmatched += 1
            continue
        request = SendRequest.objects.create(
            kind=SendKind.EMAIL,
            subject=action.subject,
            html=action.html,
            text=action.text,
            from_email=action.from_email,
            from_name=action.from_name,
            skip_personalisation=True,
            integration=integration,
        )
        Delivery.objects.create(send_request=request, channel=ChannelType.EMAIL, locator=email)
        report.changes["emails_queued"] += 1
        report.credited[index] += 1
        send_request_enqueue(send_request_id=request.pk, deliveries=1)


def actions_apply(
    actions: list[Action],
    *,
    integration: Integration | None = None,
    source: str = "",
    savepoint: bool = True,
) -> ApplyReport:
    """Apply a webhook's (or a bounce mailbox's) actions, all or none; idempotent. `source`
    names where they came from in suppression and unsubscribe reasons (the integration's
    name by default). Inside a caller's transaction the changes are a savepoint of it,
    unless `savepoint` is False: a caller that lets a failure roll back its whole
    transaction saves the savepoint's two round trips (the webhook intake, per request)."""
    with transaction.atomic(savepoint=savepoint):
        return _actions_apply(actions, integration, source)


def _actions_apply(
    actions: list[Action], integration: Integration | None, source: str
) -> ApplyReport:
    source = source or (integration.name if integration is not None else "provider")
    report = ApplyReport()
    statuses = [(i, a) for i, a in enumerate(actions) if isinstance(a, UpdateDeliveryStatus)]
    if statuses:
        indexes, found = _split(statuses)
        _delivery_statuses_apply(found, indexes, integration, source, report)
    unsubscribes = [(i, a) for i, a in enumerate(actions) if isinstance(a, Unsubscribe)]
    if unsubscribes:
        indexes, found = _split(unsubscribes)
        _unsubscribes_apply(found, indexes, source, report)
    updates = [
        (i, a) for i, a in enumerate(actions) if isinstance(a, UpdateCampaign | UpdateCampaignStats)
    ]
    if updates:
        indexes, found = _split(updates)
        _campaign_updates_apply(found, indexes, integration, report)
    emails = [(i, a) for i, a in enumerate(actions) if isinstance(a, SendEmail)]
    if emails:
        indexes, found = _split(emails)
        _emails_send(found, indexes, integration, report)
    return report


def _split(pairs: list[tuple[int, Any]]) -> tuple[list[int], list[Any]]:
    """(index, action) pairs → their indexes and their actions."""
    return [index for index, _ in pairs], [action for _, action in pairs]
