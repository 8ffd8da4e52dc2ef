"""Resend to non-openers: `after` a blast's first run finished, the same content with a new
subject goes to the recipients who did not open it, as a follow-up run of the same campaign
(CampaignRun.kind = resend, parent = the first run).

Who gets it is decided in SQL from the first run's ledger: email rows that were sent or
delivered (also 'opened'/'clicked' rows without a human open or click: machine engagement
moves the status but not opened_at/clicked_at) and neither opened nor clicked by a person;
bounced, complained and unsubscribed rows are out by their status, and the usual launch
filters (deleted, unconfirmed, unsubscribed list, suppression list) apply again now.

The campaign stays running between its first run and the resend (campaigns.lifecycle
.run_complete asks `resend_pending`); the beat task starts the resend when due, once: the
campaign row is locked and the run's existence re-checked under the lock.
"""

# Table names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from campaigns import pipeline
from campaigns.lifecycle_input import CampaignInvalid
from campaigns.models import (
    ABTest,
    Campaign,
    CampaignResend,
    CampaignRun,
    CampaignStatus,
    CampaignType,
    Delivery,
    RunKind,
    RunStatus,
)
from contacts.models import ChannelType

MAX_AFTER_HOURS = 24 * 30
_T_DELIVERY = Delivery._meta.db_table


def resend_clean(value: Any) -> dict | None:
    """Check the body's `resend` (None or {} removes it)."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        raise CampaignInvalid({"resend": 'must be {"afterHours": 48, "subject": "…"}'})
    after = value.get("afterHours")
    if isinstance(after, bool) or not isinstance(after, int | float):
        raise CampaignInvalid({"resend.afterHours": "must be a number of hours"})
    if not 1 <= after <= MAX_AFTER_HOURS:
        raise CampaignInvalid(
            {"resend.afterHours": f"must be between 1 and {MAX_AFTER_HOURS} hours, not {after}"}
        )
    subject = value.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise CampaignInvalid({"resend.subject": "is required: the resend's new subject"})
    if len(subject.strip()) > 500:
        raise CampaignInvalid({"resend.subject": "at most 500 characters"})
    return {"after": dt.timedelta(hours=after), "subject": subject.strip()}


@transaction.atomic
def resend_set(*, campaign: Campaign, config: dict | None) -> CampaignResend | None:
    """Replace the campaign's resend setting (None removes it). The caller holds the campaign
    row locked and has checked that it may be edited."""
    if config is None:
        CampaignResend.objects.filter(campaign=campaign).delete()
        return None
    if campaign.type != CampaignType.BLAST:
        raise CampaignInvalid(
            {"resend": f"only blast campaigns can resend to non-openers, not {campaign.type}"}
        )
    if ChannelType.EMAIL not in campaign.channels:
        raise CampaignInvalid({"resend": "resending to non-openers needs the email channel"})
    resend, _ = CampaignResend.objects.update_or_create(campaign=campaign, defaults=config)
    return resend


def resend_json(resend: CampaignResend) -> dict:
    return {"afterHours": resend.after.total_seconds() / 3600, "subject": resend.subject}


def resend_copy(*, source: Campaign, copy: Campaign) -> None:
    resend = CampaignResend.objects.filter(campaign=source).first()
    if resend is not None:
        CampaignResend.objects.create(campaign=copy, after=resend.after, subject=resend.subject)


def resend_pending(campaign: Campaign) -> bool:
    """The campaign has a resend still to send: it must not complete yet."""
    return (
        CampaignResend.objects.filter(campaign=campaign).exists()
        and not campaign.runs.filter(kind=RunKind.RESEND).exists()
    )


def resend_due_at(campaign: Campaign) -> dt.datetime | None:
    """When the resend falls due: `after` the first run finished (None: not yet known)."""
    resend = CampaignResend.objects.filter(campaign=campaign).first()
    first = campaign.runs.filter(kind=RunKind.SEND).order_by("number").first()
    if resend is None or first is None or first.finished_at is None:
        return None
    return first.finished_at + resend.after


def _non_openers(parent: CampaignRun) -> tuple[str, tuple]:
    return (
        f"""SELECT d.contact_id FROM {_T_DELIVERY} d
             WHERE d.run_id = %s AND d.channel = 'email' AND d.contact_id IS NOT NULL
               AND d.status IN ('sent', 'delivered', 'opened', 'clicked')
               AND d.opened_at IS NULL AND d.clicked_at IS NULL""",
        (parent.pk,),
    )


@transaction.atomic
def resend_start(*, campaign_id: int, now: dt.datetime | None = None) -> CampaignRun | None:
    """Start the campaign's resend if it is due (idempotent: under the campaign's lock, a
    campaign that already has its resend run, or is not running, is left alone)."""
    now = now or timezone.now()
    campaign = (
        Campaign.objects.select_for_update(skip_locked=True)
        .filter(pk=campaign_id, deleted_at__isnull=True, status=CampaignStatus.RUNNING)
        .first()
    )
    if campaign is None or not resend_pending(campaign):
        return None
    due = resend_due_at(campaign)
    if due is None or due > now:
        return None
    parent = campaign.runs.filter(kind=RunKind.SEND).order_by("number").first()
    assert parent is not None  # resend_due_at found it
    test = ABTest.objects.filter(run=parent, winner__isnull=False).first()
    version = parent.template_version
    if test is not None and test.winner is not None:
        winner = test.variants.filter(position=test.winner).first()
        if winner is not None and winner.template_version_id is not None:
            version = winner.template_version
    number = (campaign.runs.aggregate(n=Max("number"))["n"] or 0) + 1
    run = CampaignRun.objects.create(
        campaign=campaign,
        number=number,
        kind=RunKind.RESEND,
        parent=parent,
        template_version=version,
    )
    inserted = pipeline._insert(
        run=run,
        channel=ChannelType.EMAIL,
        step=0,
        version=version,
        audience=_non_openers(parent),
        **pipeline.send_rules_args(campaign),
    )
    pipeline.run_reach_refresh(run=run, inserted=inserted)
    campaign.status_reason = ""
    campaign.save(update_fields=["status_reason", "updated_at"])
    run_id = run.pk
    transaction.on_commit(lambda: pipeline.run_enqueue(run_id=run_id))
    return run


def resends_due(*, now: dt.datetime | None = None) -> int:
    """The beat task's work: start every resend that is due."""
    now = now or timezone.now()
    candidates = (
        CampaignResend.objects.filter(
            campaign__status=CampaignStatus.RUNNING, campaign__deleted_at__isnull=True
        )
        .exclude(campaign__runs__kind=RunKind.RESEND)
        .filter(
            campaign__runs__kind=RunKind.SEND,
            campaign__runs__status=RunStatus.COMPLETED,
        )
        .values_list("campaign_id", flat=True)
        .distinct()
    )
    started = 0
    for campaign_id in candidates:
        started += resend_start(campaign_id=campaign_id, now=now) is not None
    return started
