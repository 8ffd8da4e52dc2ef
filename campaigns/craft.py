"""The campaign body's A/B test (`abTest`) and resend to non-openers (`resend`): read,
written and copied with the rest of the campaign by campaigns.lifecycle, checked by
campaigns.abtest and campaigns.resend."""

from __future__ import annotations

from typing import Any

from campaigns import abtest, resend
from campaigns.lifecycle_input import CampaignInvalid
from campaigns.models import ABTest, Campaign, CampaignResend, CampaignType
from config.core.errors import ConflictError
from contacts.models import ChannelType


def _ab_key(config: dict | None) -> Any:
    if config is None:
        return None
    return (
        config["test_percent"],
        config["winner_metric"],
        config["wait"],
        config["winner_selection"],
        [
            (v["subject"], v["preheader"], v["from_name"], v["template"] and v["template"].pk)
            for v in config["variants"]
        ],
    )


def _ab_saved_key(campaign: Campaign) -> Any:
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is None:
        return None
    return (
        test.test_percent,
        test.winner_metric,
        test.wait,
        test.winner_selection,
        [(v.subject, v.preheader, v.from_name, v.template_id) for v in test.variants.all()],
    )


def _resend_saved(campaign: Campaign) -> dict | None:
    saved = CampaignResend.objects.filter(campaign=campaign).first()
    return {"after": saved.after, "subject": saved.subject} if saved else None


def campaign_craft_apply(*, campaign: Campaign, data: dict, editable: bool) -> None:
    """Apply the body's `abTest` and `resend` to a campaign whose row the caller holds
    locked. A campaign that cannot be edited may be sent them unchanged (a client posting
    the whole body back), not changed."""
    channel = next((c for c in campaign.channels if c in ChannelType.values), None)
    if "abTest" in data:
        config = abtest.ab_test_clean(data["abTest"], channel=channel)
        if _ab_key(config) != _ab_saved_key(campaign):
            if not editable:
                raise ConflictError(
                    f"a {campaign.status} campaign's A/B test cannot be changed", field="abTest"
                )
            abtest.ab_test_set(campaign=campaign, config=config)
    if "resend" in data:
        config = resend.resend_clean(data["resend"])
        if config != _resend_saved(campaign):
            if not editable:
                raise ConflictError(
                    f"a {campaign.status} campaign's resend cannot be changed", field="resend"
                )
            resend.resend_set(campaign=campaign, config=config)
    if campaign.type != CampaignType.BLAST:
        if ABTest.objects.filter(campaign=campaign).exists():
            raise CampaignInvalid({"abTest": "only blast campaigns can carry an A/B test"})
        if CampaignResend.objects.filter(campaign=campaign).exists():
            raise CampaignInvalid({"resend": "only blast campaigns can resend to non-openers"})


def campaign_craft_json(campaign: Campaign) -> dict:
    """The body's `abTest` and `resend` as the API answers them (null when unset)."""
    # Through the relations, so that a list can select and prefetch them.
    test = getattr(campaign, "ab_test", None)
    saved = getattr(campaign, "resend", None)
    return {
        "abTest": abtest.ab_test_json(test) if test is not None else None,
        "resend": resend.resend_json(saved) if saved is not None else None,
    }


def campaign_craft_copy(*, source: Campaign, copy: Campaign) -> None:
    abtest.ab_test_copy(source=source, copy=copy)
    resend.resend_copy(source=source, copy=copy)
