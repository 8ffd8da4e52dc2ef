"""What the delivery engine keeps of a person: erased and exported (config.core.privacy).

The ledger keeps one row per message: its address (locator), per-recipient data (params) and
the address inside a provider's message id (Telegram's is "<chat id>:<message id>") go; its
status, times and counters stay, so a campaign's figures do not change when one of
its recipients is erased. The status history and the send requests of those rows lose the
mentions of the person (a bounce's words, a clicked link carrying the address, an inline
message naming them). Promo codes stay assigned: a code carries nothing of the person, and
handing it out again would break the pool's promise of one code per recipient. Tracking
keeps no IP address or browser name (campaigns.engagement reads them and records only the
rule that matched).
"""

# The SQL below interpolates only table names of this app; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterator, Mapping

from django.db.models import Q

from campaigns.ledger import delivery_transition
from campaigns.models import Delivery, DeliveryEvent, DeliveryStatus, SendRequest
from campaigns.promo.models import PromoCode
from config.core.privacy import REDACTED, Person, privacy_register, run_update

ERASED_ERROR = "contact erased"
# Deliveries read per round trip while the export streams them: each row comes with its
# status history, a few rows more.
EXPORT_CHUNK = 500


def campaigns_erase(person: Person) -> Mapping[str, int]:
    pattern = person.pattern(names=True)
    deliveries = Delivery._meta.db_table
    # The person's rows: linked to the contact, or addressed to one of its identifiers (a
    # single message to an address no contact carries). Index scans on contact and locator.
    mine = f"SELECT id FROM {deliveries} WHERE contact_id = %s OR locator = ANY(%s)"
    mine_params = [person.contact_id, person.keys()]
    # Messages not sent yet will not be: a sender must never meet a row without an address.
    queued = Delivery.objects.filter(
        Q(contact_id=person.contact_id) | Q(locator__in=person.keys()),
        status=DeliveryStatus.QUEUED,
    ).values_list("pk", flat=True)
    skipped = delivery_transition(
        status=DeliveryStatus.SKIPPED, delivery_ids=list(queued), error=ERASED_ERROR
    )
    return {
        "campaigns_delivery (skipped)": len(skipped),
        "campaigns_deliveryevent": run_update(
            f"""UPDATE {DeliveryEvent._meta.db_table}
                   SET detail = regexp_replace(detail, %s, %s, 'gi'),
                       url = regexp_replace(url, %s, %s, 'gi')
                 WHERE delivery_id IN ({mine}) AND (detail ~* %s OR url ~* %s)""",
            [pattern, REDACTED, pattern, REDACTED, *mine_params, pattern, pattern],
        ),
        "campaigns_sendrequest": run_update(
            f"""UPDATE {SendRequest._meta.db_table}
                   SET subject = regexp_replace(subject, %s, %s, 'gi'),
                       preheader = regexp_replace(preheader, %s, %s, 'gi'),
                       html = regexp_replace(html, %s, %s, 'gi'),
                       text = regexp_replace(text, %s, %s, 'gi'),
                       tags = herald_redact(tags, %s)
                 WHERE id IN (SELECT send_request_id FROM {deliveries}
                               WHERE id IN ({mine}) AND send_request_id IS NOT NULL)
                   AND concat_ws(' ', subject, preheader, html, text, tags::text) ~* %s""",
            [*[pattern, REDACTED] * 4, pattern, *mine_params, pattern],
        ),
        "campaigns_delivery": run_update(
            f"""UPDATE {deliveries}
                   SET locator = '', params = '{{}}'::jsonb,
                       error = regexp_replace(error, %s, %s, 'gi'),
                       provider_message_id = regexp_replace(provider_message_id, %s, %s, 'gi')
                 WHERE id IN ({mine})""",
            [pattern, REDACTED, pattern, REDACTED, *mine_params],
        ),
    }


def campaigns_export(contact_id: int) -> Mapping[str, object]:
    return {
        "deliveries": _deliveries(contact_id),
        "promoCodes": _promo_codes(contact_id),
    }


def _promo_codes(contact_id: int) -> list[dict]:
    """Codes given to the contact: by a send (through its delivery) or by a workflow step."""
    codes = PromoCode.objects.filter(contact_id=contact_id) | PromoCode.objects.filter(
        delivery__contact_id=contact_id
    )
    return [
        {"pool": pool, "code": code, "source": source, "assignedAt": assigned_at}
        for pool, code, source, assigned_at in codes.order_by("assigned_at", "pk").values_list(
            "pool__key", "code", "source", "assigned_at"
        )
    ]


def _deliveries(contact_id: int) -> Iterator[dict]:
    """Every message to the contact with its status history, oldest first, read in chunks
    so that a contact with a hundred thousand deliveries streams in bounded memory."""
    rows = (
        Delivery.objects.filter(contact_id=contact_id)
        .select_related("run__campaign", "send_request")
        .prefetch_related("events")
        .order_by("pk")
    )
    for delivery in rows.iterator(chunk_size=EXPORT_CHUNK):
        run, request = delivery.run, delivery.send_request
        yield {
            "requestId": str(delivery.request_id),
            "channel": delivery.channel,
            "locator": delivery.locator,
            "campaign": (
                {"id": run.campaign_id, "name": run.campaign.name} if run is not None else None
            ),
            "sendRequest": (
                {"id": request.pk, "kind": request.kind} if request is not None else None
            ),
            "params": delivery.params,
            "status": delivery.status,
            "error": delivery.error,
            "createdAt": delivery.created_at,
            "sentAt": delivery.sent_at,
            "deliveredAt": delivery.delivered_at,
            "openedAt": delivery.opened_at,
            "clickedAt": delivery.clicked_at,
            "history": [
                {"status": event.status, "at": event.at, "detail": event.detail, "url": event.url}
                for event in delivery.events.all()
            ],
        }


def register() -> None:
    privacy_register(app="campaigns", eraser=campaigns_erase, exporter=campaigns_export)
