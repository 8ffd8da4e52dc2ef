"""Marketer pages for campaigns: list, create/edit, detail with lifecycle buttons and a live
progress bar, and the report. Thin: every write is a campaigns.lifecycle service; numbers come
from campaigns.analytics (rollups, never a ledger scan per view)."""

import json
import zoneinfo
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import escape
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from campaigns import lifecycle
from campaigns.abtest import ab_results
from campaigns.analytics import campaign_analytics, campaign_delivered, run_progress
from campaigns.forms import (
    CampaignForm,
    CampaignUtmForm,
    LaunchConfirmForm,
    SendRulesForm,
    error_field,
)
from campaigns.lifecycle_input import CampaignInvalid, cron_check, cron_describe, cron_next
from campaigns.messages import MessageError, campaign_test_send
from campaigns.models import ABTest, Campaign, CampaignRun, CampaignStatus, RunStatus
from campaigns.promo.services import promo_codes_report
from campaigns.send_rules import SendWindow
from config.core.db_router import replica_reading
from config.core.models import Organisation
from config.core.parsers import json_text_load
from config.core.roles import Role, has_role, role_required
from contacts.filters.compiler import FilterError, filter_reach, segment_reach
from contacts.models import Segment

S = CampaignStatus
PAGE_SIZE = 50
NEXT_RUNS = 5
# Lifecycle refusals a button can meet; each becomes a message on the page.
REFUSALS = (
    lifecycle.IllegalTransition,
    lifecycle.LaunchRefused,
    lifecycle.CampaignLocked,
    CampaignInvalid,
)


def _campaigns():
    return Campaign.objects.filter(deleted_at__isnull=True)


@role_required(Role.VIEWER)
def campaign_list(request):
    status = request.GET.get("status", "")
    campaigns = _campaigns().select_related("segment", "template")
    if status in S.values:
        campaigns = campaigns.filter(status=status)
    else:
        status = ""
    counts = dict(_campaigns().values_list("status").annotate(n=Count("id")).order_by())
    filters = [("", _("All"), sum(counts.values()))] + [
        (value, label, counts.get(value, 0)) for value, label in S.choices
    ]
    page = Paginator(campaigns.order_by("-created_at"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/campaign_list.html",
        {
            "page": page,
            "status": status,
            "filters": filters,
            "any_campaign": bool(counts),
            "can_write": has_role(request.user, Role.MARKETER),
        },
    )


def _apply_errors(form: CampaignForm, exc: Exception, rules: SendRulesForm) -> None:
    errors = getattr(exc, "errors", None) or {getattr(exc, "field", ""): str(exc)}
    for key, message in errors.items():
        if rules.add_body_error(key or "", message):
            continue
        name = error_field(key or "")
        form.add_error(
            name if name in form.fields else None, f"{key}: {message}" if not name else message
        )


def _form_page(request, form, rules, campaign=None, status=200):
    return render(
        request,
        "campaigns/campaign_form.html",
        {"form": form, "rules": rules, "campaign": campaign},
        status=status,
    )


@role_required(Role.MARKETER)
def campaign_create(request):
    if request.method != "POST":
        return _form_page(
            request,
            CampaignForm(initial={"timezone": Organisation.load().time_zone}),
            SendRulesForm(),
        )
    form = CampaignForm(request.POST)
    rules = SendRulesForm(request.POST)
    if form.is_valid() and rules.is_valid():
        try:
            campaign = lifecycle.campaign_create(
                data=form.campaign_body() | rules.body(), user=request.user
            )
        except REFUSALS as exc:
            _apply_errors(form, exc, rules)
        else:
            messages.success(
                request, gettext("Campaign “%(name)s” saved as a draft.") % {"name": campaign.name}
            )
            return redirect("campaign_detail", pk=campaign.pk)
    return _form_page(request, form, rules, status=400)


@role_required(Role.MARKETER)
def campaign_edit(request, pk: int):
    campaign = get_object_or_404(_campaigns(), pk=pk)
    if request.method != "POST":
        return _form_page(
            request,
            CampaignForm(initial=CampaignForm.initial_for(campaign)),
            SendRulesForm(initial=SendRulesForm.initial_for(campaign)),
            campaign,
        )
    form = CampaignForm(
        request.POST, integration_id=campaign.integration_id, channels=campaign.channels
    )
    rules = SendRulesForm(request.POST)
    if form.is_valid() and rules.is_valid():
        try:
            lifecycle.campaign_update(
                campaign=campaign, data=form.campaign_body() | rules.body(), user=request.user
            )
        except REFUSALS as exc:
            _apply_errors(form, exc, rules)
        else:
            messages.success(request, gettext("Campaign saved."))
            return redirect("campaign_detail", pk=campaign.pk)
    return _form_page(request, form, rules, campaign, status=400)


@role_required(Role.MARKETER)
def campaign_utm_edit(request, pk: int):
    """The campaign's UTM section: its own form, saved through the campaign body's `utm`."""
    campaign = get_object_or_404(_campaigns(), pk=pk)
    if request.method != "POST":
        form = CampaignUtmForm(initial=CampaignUtmForm.initial_for(campaign))
        return render(request, "campaigns/campaign_utm.html", {"form": form, "campaign": campaign})
    form = CampaignUtmForm(request.POST)
    if form.is_valid():
        try:
            lifecycle.campaign_update(
                campaign=campaign, data={"utm": form.utm_body()}, user=request.user
            )
        except REFUSALS as exc:
            for key, message in (getattr(exc, "errors", None) or {"": str(exc)}).items():
                name = key.removeprefix("utm.")
                form.add_error(name if name in form.fields else None, message)
        else:
            messages.success(request, gettext("UTM tags saved."))
            return redirect("campaign_detail", pk=campaign.pk)
    return render(
        request,
        "campaigns/campaign_utm.html",
        {"form": form, "campaign": campaign},
        status=400,
    )


def _buttons(campaign: Campaign) -> list[tuple[str, Any, str]]:
    """(action, label, style) the campaign's status allows, from the lifecycle's own table."""
    allowed = lifecycle.TRANSITIONS[campaign.status]
    buttons = []
    if (
        campaign.status == S.DRAFT
        and S.SCHEDULED in allowed
        and (campaign.start_at or campaign.cron)
    ):
        buttons.append(("schedule", _("Schedule"), ""))
    if campaign.status in (S.DRAFT, S.SCHEDULED) and S.RUNNING in allowed:
        buttons.append(("launch", _("Launch now"), ""))
    if campaign.status == S.RUNNING:
        buttons.append(("pause", _("Pause"), "secondary"))
    if campaign.status == S.PAUSED:
        buttons.append(("resume", _("Resume"), ""))
    if S.CANCELLED in allowed:
        buttons.append(("cancel", _("Cancel"), "contrast"))
    buttons.append(("duplicate", _("Duplicate"), "outline"))
    buttons.append(("delete", _("Delete"), "outline contrast"))
    return buttons


def _active_run(campaign: Campaign) -> CampaignRun | None:
    return (
        campaign.runs.filter(status__in=[RunStatus.RUNNING, RunStatus.PAUSED])
        .order_by("-number")
        .first()
    )


@role_required(Role.VIEWER)
def campaign_detail(request, pk: int):
    campaign = get_object_or_404(
        Campaign.objects.select_related("segment", "template", "integration"), pk=pk
    )
    run = _active_run(campaign)
    recurrence = _recurrence(campaign.cron, campaign.timezone) if campaign.cron else None
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "campaign": campaign,
            "buttons": _buttons(campaign) if campaign.deleted_at is None else [],
            "can_write": has_role(request.user, Role.MARKETER),
            "progress": run_progress(run) if run else None,
            "runs": campaign.runs.order_by("-number")[:20],
            "recurrence": recurrence,
            "steps": campaign.steps.select_related("template"),
            "launch_problem": _launch_problem(campaign),
            "send_window": SendWindow.of(campaign.send_window),
            "confirmed": CONFIRMED,
        },
    )


def _launch_problem(campaign: Campaign) -> str:
    """What keeps a campaign that has not started from launching on its integration or
    channels (the launch rule's own words), for the detail page to say before the click."""
    if campaign.deleted_at is not None or campaign.status not in (S.DRAFT, S.SCHEDULED):
        return ""
    refusal = lifecycle.campaign_launch_refusal(campaign)
    if refusal is None or refusal.field not in ("integration", "channels"):
        return ""
    # A refused launch already left these words as the status reason, shown beside the status.
    return "" if refusal.message == campaign.status_reason else refusal.message


ACTIONS = {
    "schedule": (lambda c, u: lifecycle.campaign_schedule(campaign=c), _("Campaign scheduled.")),
    "launch": (
        lambda c, u: lifecycle.campaign_launch_now(campaign=c, user=u),
        _("Campaign launched."),
    ),
    "pause": (lambda c, u: lifecycle.campaign_pause(campaign=c), _("Campaign paused.")),
    "resume": (lambda c, u: lifecycle.campaign_resume(campaign=c), _("Campaign resumed.")),
    "cancel": (lambda c, u: lifecycle.campaign_cancel(campaign=c), _("Campaign cancelled.")),
}


# Actions that send to an audience: they ask first (campaign_confirm), showing the reach.
CONFIRMED = ("launch", "schedule")


def _confirm_page(request, campaign: Campaign, action: str, form=None, summary=None, status=200):
    summary = summary or lifecycle.launch_summary(campaign)
    if form is None:
        form = LaunchConfirmForm(campaign=campaign, name_required=summary["name_required"])
    return render(
        request,
        "campaigns/campaign_confirm.html",
        {
            "campaign": campaign,
            "action": action,
            "summary": summary,
            "form": form,
            "threshold": settings.HERALD_LAUNCH_CONFIRM_NAME_AT,
        },
        status=status,
    )


@role_required(Role.MARKETER)
def campaign_action(request, pk: int, action: str):
    campaign = get_object_or_404(_campaigns(), pk=pk)
    if action in CONFIRMED:
        if request.method != "POST":
            return _confirm_page(request, campaign, action)
        summary = lifecycle.launch_summary(campaign)
        form = LaunchConfirmForm(
            request.POST, campaign=campaign, name_required=summary["name_required"]
        )
        if not form.is_valid():
            return _confirm_page(request, campaign, action, form, summary, status=400)
    elif request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if action == "duplicate":
        copy = lifecycle.campaign_duplicate(campaign=campaign, user=request.user)
        messages.success(request, gettext("Copied as “%(name)s” (a draft).") % {"name": copy.name})
        return redirect("campaign_edit", pk=copy.pk)
    if action == "delete":
        lifecycle.campaign_delete(campaign=campaign)
        messages.success(
            request,
            gettext("Campaign “%(name)s” deleted; its reports stay reachable from links.")
            % {"name": campaign.name},
        )
        return redirect("campaigns_home")
    if action not in ACTIONS:
        messages.error(request, gettext("Unknown action %(action)s.") % {"action": action})
        return redirect("campaign_detail", pk=pk)
    service, done = ACTIONS[action]
    try:
        service(campaign, request.user)
    except REFUSALS as exc:
        messages.error(
            request,
            gettext("Not done: %(reason)s") % {"reason": getattr(exc, "message", None) or exc},
        )
    else:
        campaign.refresh_from_db()
        if action == "launch" and campaign.status == S.DRAFT and campaign.status_reason:
            messages.error(request, campaign.status_reason)
        else:
            messages.success(request, done)
    return redirect("campaign_detail", pk=pk)


@require_POST
@role_required(Role.MARKETER)
def campaign_test_send_view(request, pk: int):
    """Send one address the campaign's real message, marked as a test (campaigns.messages
    campaign_test_send); it goes into the message log."""
    campaign = get_object_or_404(_campaigns(), pk=pk)
    try:
        delivery = campaign_test_send(campaign=campaign, email=request.POST.get("email", ""))
    except MessageError as exc:
        messages.error(request, gettext("Test not sent: %(reason)s") % {"reason": exc})
    else:
        messages.success(
            request,
            gettext("Test message to %(address)s queued; follow it in the message log.")
            % {"address": delivery.locator},
        )
    return redirect("campaign_detail", pk=pk)


@require_GET
@role_required(Role.VIEWER)
def campaign_progress(request, pk: int):
    """The progress bar partial, polled by htmx while a run is active."""
    campaign = get_object_or_404(Campaign, pk=pk)
    run = _active_run(campaign)
    response = render(
        request,
        "campaigns/campaign_progress.html",
        {"campaign": campaign, "progress": run_progress(run) if run else None},
    )
    if run is None:
        # 286 is htmx's "stop polling": nothing is left to watch once no run is active.
        response.status_code = 286
        response["HX-Trigger"] = "campaignSettled"
    return response


@role_required(Role.VIEWER)
@replica_reading
def campaign_report(request, pk: int):
    campaign = get_object_or_404(Campaign, pk=pk)
    data = campaign_analytics(campaign)
    chart = {
        "labels": [row["hour"].isoformat() for row in data["timeline"]],
        "opens": [row["opens"] for row in data["timeline"]],
        "clicks": [row["clicks"] for row in data["timeline"]],
    }
    test = ABTest.objects.filter(campaign=campaign, run__isnull=False).first()
    return render(
        request,
        "campaigns/report.html",
        {
            "campaign": campaign,
            "data": data,
            "chart": chart,
            "ab": ab_results(test) if test is not None else None,
            "can_write": has_role(request.user, Role.MARKETER) and campaign.deleted_at is None,
            "promo": promo_codes_report(campaign),
            "delivered": campaign_delivered(campaign),
        },
    )


@require_POST
@role_required(Role.VIEWER)
def audience_reach(request):
    """Live reach of the form's audience (segment or inline filter), for htmx."""
    segment_id = request.POST.get("segment", "")
    raw = request.POST.get("audience_filter", "").strip()
    if segment_id:
        segment = Segment.objects.filter(pk=segment_id if segment_id.isdigit() else 0).first()
        if segment is None:
            return _reach_html(error="That segment no longer exists.")
        try:
            return _reach_html(reach=segment_reach(segment), what=f"segment “{segment.name}”")
        except FilterError as exc:
            return _reach_html(error=f"The segment's filter no longer applies: {exc}")
    if not raw:
        return _reach_html(error="Pick a segment or write a filter to see the reach.", muted=True)
    try:
        parsed = json_text_load(raw)
    except json.JSONDecodeError as exc:
        return _reach_html(error=f"Not valid JSON yet (line {exc.lineno}, column {exc.colno}).")
    if not isinstance(parsed, dict):
        return _reach_html(
            error='The filter must be a JSON object, e.g. {"tags": {"$in": ["vip"]}}.'
        )
    try:
        return _reach_html(reach=filter_reach(parsed), what="this filter")
    except FilterError as exc:
        return _reach_html(error=f"{exc.path}: {exc.message}")


def _reach_html(*, reach: int | None = None, what: str = "", error: str = "", muted=False):
    if error:
        css = "muted" if muted else "error"
        return HttpResponse(f'<p class="{css}" data-testid="reach-error">{escape(error)}</p>')
    return HttpResponse(
        f'<p>Reach of {escape(what)}: <strong data-testid="reach">{reach:,}</strong> active '
        f"contact{'s' if reach != 1 else ''} now. Unsubscribed and unconfirmed contacts are left "
        "out at launch, when the audience is resolved again.</p>"
    )


def _recurrence(cron: str, tz_name: str) -> dict:
    try:
        cron_check(cron)
    except ValueError as exc:
        return {"error": f"Not a valid schedule: {exc}"}
    if tz_name not in zoneinfo.available_timezones():
        tz_name = "UTC"
    return {
        "description": cron_describe(cron),
        "timezone": tz_name,
        "next": cron_next(cron, tz_name, count=NEXT_RUNS),
    }


@require_GET
@role_required(Role.VIEWER)
def recurrence_preview(request):
    """The cron field in plain words and its next fire times, for htmx."""
    cron = " ".join(request.GET.get("cron", "").split())
    if not cron:
        return HttpResponse('<p class="muted">No repetition: the campaign sends once.</p>')
    return render(
        request,
        "campaigns/campaign_recurrence.html",
        {"recurrence": _recurrence(cron, request.GET.get("timezone", "UTC"))},
    )
