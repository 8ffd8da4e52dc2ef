"""The A/B test page of a campaign: its variants and resend to non-openers set up before
launch, and the results after (each variant's figures, the confidence of the difference,
the winner, and the marketer's pick). Thin: writes go through campaigns.lifecycle (the
campaign body's abTest and resend) and campaigns.abtest."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from campaigns import lifecycle
from campaigns.abtest import ab_results, ab_winner_pick
from campaigns.abtest_forms import ABTestForm, error_field
from campaigns.lifecycle_input import CampaignInvalid
from campaigns.models import ABTest, Campaign, CampaignResend, RunKind
from campaigns.resend import resend_due_at
from config.core.errors import HeraldError
from config.core.roles import Role, has_role, role_required
from contacts.models import ChannelType


def _campaign(pk: int) -> Campaign:
    return get_object_or_404(Campaign.objects.filter(deleted_at__isnull=True), pk=pk)


def _channel(campaign: Campaign) -> str | None:
    return next((c for c in campaign.channels if c in ChannelType.values), None)


def _page(request, campaign: Campaign, form: ABTestForm | None, status: int = 200):
    test = ABTest.objects.filter(campaign=campaign).first()
    started = test is not None and test.run_id is not None
    return render(
        request,
        "campaigns/ab_test.html",
        {
            "campaign": campaign,
            "form": form,
            "ab": ab_results(test) if started and test is not None else None,
            "resend": CampaignResend.objects.filter(campaign=campaign).first(),
            "resend_due": resend_due_at(campaign),
            "resend_run": campaign.runs.filter(kind=RunKind.RESEND).first(),
            "can_write": has_role(request.user, Role.MARKETER),
        },
        status=status,
    )


def _editable(campaign: Campaign) -> bool:
    return campaign.status in lifecycle.EDITABLE and not campaign.runs.exists()


@role_required(Role.VIEWER)
def campaign_ab_test(request, pk: int):
    campaign = _campaign(pk)
    editable = _editable(campaign) and has_role(request.user, Role.MARKETER)
    if request.method != "POST":
        form = None
        if editable:
            initial = ABTestForm.initial_for(
                ABTest.objects.filter(campaign=campaign).first(),
                CampaignResend.objects.filter(campaign=campaign).first(),
            )
            form = ABTestForm(initial=initial, channel=_channel(campaign))
        return _page(request, campaign, form)
    if not has_role(request.user, Role.MARKETER):
        raise PermissionDenied(gettext("Changing the A/B test needs the marketer role."))
    if not editable:
        messages.error(
            request, gettext("The A/B test and resend can only change before the launch.")
        )
        return redirect("campaign_ab_test", pk=pk)
    form = ABTestForm(request.POST, channel=_channel(campaign))
    if form.is_valid():
        try:
            lifecycle.campaign_update(campaign=campaign, data=form.body(), user=request.user)
        except CampaignInvalid as exc:
            for key, message in exc.errors.items():
                form.add_error(error_field(key), message)
        except HeraldError as exc:
            form.add_error(error_field(exc.field), exc.message or str(exc))
        else:
            messages.success(request, gettext("A/B test and resend saved."))
            return redirect("campaign_ab_test", pk=pk)
    return _page(request, campaign, form, status=400)


@require_POST
@role_required(Role.MARKETER)
def campaign_ab_winner(request, pk: int):
    campaign = _campaign(pk)
    test = get_object_or_404(ABTest, campaign=campaign)
    try:
        test = ab_winner_pick(test=test, variant=request.POST.get("variant", ""), user=request.user)
    except HeraldError as exc:
        messages.error(request, gettext("Not done: %(reason)s") % {"reason": exc.message or exc})
    else:
        messages.success(
            request,
            gettext("Variant %(variant)s goes to the rest now.")
            % {"variant": request.POST.get("variant", "").upper()},
        )
    back = "campaign_report" if request.POST.get("next") == "report" else "campaign_ab_test"
    return redirect(back, pk=pk)
