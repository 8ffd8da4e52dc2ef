"""The org-level purge job: soft-deleted campaigns removed for good.

Deleting a campaign is soft (the CRM campaigns API: the record is marked `state: "deleted"`
so historical analytics still work); "to permanently purge, run the org-level purge job".
The job removes campaigns deleted longer ago than HERALD_CAMPAIGN_PURGE_AFTER_DAYS, with
their runs, their rolled-up figures and their ledger rows (Delivery and its history). It
runs daily from beat (`campaigns.purge_deleted`), from `manage.py purge_campaigns`, and for
one campaign from the API (`POST campaigns/:id/purge`, `DELETE campaigns/:id?purge=true`).

Decisions:
- Ledger rows go in batches of DELIVERY_BATCH, each batch in its own transaction, through
  Django's deletion collector: one statement per related table per batch (history rows,
  a workflow's message rows; promo codes and orders that pointed at a row keep themselves
  and lose the pointer), whatever app those tables belong to. A campaign of millions of
  rows never holds one long transaction or a list of every row in memory.
- The runs and the campaign row go last, in one transaction holding the campaign's lock,
  with the audit entry. An interrupted purge leaves a deleted campaign with fewer ledger
  rows, which a second purge finishes: safe to re-run.
- Only a deleted campaign is purged; anything else is refused (409) before a row goes.
"""

import datetime as dt
from dataclasses import dataclass

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, Delivery
from config.core.errors import ConflictError

# Deliveries removed per transaction: each batch costs one SELECT of ids and a DELETE per
# related table with this many ids in its IN list; 5,000 keeps each transaction well under
# a second on a busy ledger while a million rows still take only 200 rounds.
DELIVERY_BATCH = 5_000
# Campaigns one beat task purges before it hands the rest to a fresh task.
CAMPAIGNS_PER_TASK = 20


class PurgeRefused(ConflictError):
    """Only a deleted campaign can be purged."""

    def __init__(self, campaign: Campaign) -> None:
        super().__init__(
            f"campaign {campaign.pk} ({campaign.name}) is not deleted; delete it first "
            "(purging removes only deleted campaigns)",
            field="campaign",
        )
        self.campaign_status = campaign.status

    def body(self) -> dict:
        return {"detail": self.message, "field": self.field, "status": self.campaign_status}


@dataclass
class PurgeResult:
    campaign_id: int
    name: str
    external_key: str | None
    deleted_at: dt.datetime | None
    runs: int
    deliveries: int
    dry_run: bool = False

    def as_json(self) -> dict:
        return {
            "campaignId": self.campaign_id,
            "externalId": self.external_key,
            "name": self.name,
            "deletedAt": self.deleted_at.isoformat() if self.deleted_at else None,
            "runs": self.runs,
            "deliveries": self.deliveries,
            "dryRun": self.dry_run,
        }


def purge_cutoff(*, now: dt.datetime | None = None) -> dt.datetime:
    """Campaigns deleted before this instant are due."""
    return (now or timezone.now()) - dt.timedelta(days=settings.HERALD_CAMPAIGN_PURGE_AFTER_DAYS)


def campaigns_purge_due(*, now: dt.datetime | None = None) -> list[int]:
    """Ids of the deleted campaigns past the retention age, oldest deletion first."""
    return list(
        Campaign.objects.filter(deleted_at__lt=purge_cutoff(now=now))
        .order_by("deleted_at", "pk")
        .values_list("pk", flat=True)
    )


def _counts(campaign: Campaign) -> tuple[int, int]:
    runs = CampaignRun.objects.filter(campaign=campaign).aggregate(n=Count("pk"))["n"]
    deliveries = Delivery.objects.filter(run__campaign=campaign).count()
    return runs, deliveries


def _result(campaign: Campaign, runs: int, deliveries: int, *, dry_run: bool) -> PurgeResult:
    return PurgeResult(
        campaign_id=campaign.pk,
        name=campaign.name,
        external_key=campaign.external_key,
        deleted_at=campaign.deleted_at,
        runs=runs,
        deliveries=deliveries,
        dry_run=dry_run,
    )


def _deliveries_delete_batch(campaign_id: int) -> int:
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(run__campaign_id=campaign_id)
            .order_by()
            .values_list("pk", flat=True)[:DELIVERY_BATCH]
        )
        if ids:
            Delivery.objects.filter(pk__in=ids).only("pk").delete()
        return len(ids)


def campaign_purge(*, campaign: Campaign, dry_run: bool = False) -> PurgeResult:
    """Remove a deleted campaign for good: its ledger rows in batches, then its runs and
    itself, with an audit entry saying what went. `dry_run`: count, remove nothing.
    Raises PurgeRefused (409) for a campaign that is not deleted."""
    if campaign.deleted_at is None:
        raise PurgeRefused(campaign)
    runs, deliveries = _counts(campaign)
    if dry_run:
        return _result(campaign, runs, deliveries, dry_run=True)
    removed = 0
    while batch := _deliveries_delete_batch(campaign.pk):
        removed += batch
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        if locked is None:  # another purge finished it meanwhile
            return _result(campaign, 0, removed, dry_run=False)
        if locked.deleted_at is None:
            raise PurgeRefused(locked)
        # Rows a late sender wrote after the batches (none expected: a deleted campaign's
        # runs are ended) go with their runs.
        removed += Delivery.objects.filter(run__campaign=locked).count()
        result = _result(locked, runs, removed, dry_run=False)
        with disable_auditlog():
            CampaignRun.objects.filter(campaign=locked).delete()
            pk = locked.pk
            locked.delete()
            locked.pk = pk
        LogEntry.objects.log_create(
            locked,
            force_log=True,
            action=LogEntry.Action.DELETE,
            changes={},
            additional_data={"purged": {"runs": runs, "deliveries": removed}},
        )
    return result


def campaigns_purge(
    *, now: dt.datetime | None = None, limit: int | None = None, dry_run: bool = False
) -> tuple[list[PurgeResult], int]:
    """Purge the campaigns past the retention age, at most `limit` of them; returns what was
    purged (or would be, with `dry_run`) and how many due campaigns are left."""
    due = campaigns_purge_due(now=now)
    chosen = due if limit is None else due[:limit]
    results = []
    for campaign in Campaign.objects.filter(pk__in=chosen).order_by("deleted_at", "pk"):
        try:
            results.append(campaign_purge(campaign=campaign, dry_run=dry_run))
        except PurgeRefused:
            continue  # restored since it was found due: it stays, the others go on
    return results, len(due) - len(chosen)
