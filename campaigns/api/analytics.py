"""The CRM campaigns API's analytics resources under /api/crm/marketing/: one campaign's
analytics, an aggregate over campaign ids and a date range, and the dashboard tiles.

Thin: request shapes are checked here, numbers come from campaigns.analytics (rollups only).
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import QueryDict
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.abtest import ab_results
from campaigns.analytics import (
    aggregated_metrics,
    campaign_analytics,
    dashboard_metrics,
    day_bounds,
)
from campaigns.api.abtest import ABTestResultSerializer
from campaigns.models import ABTest, Campaign
from config.core.api_auth import HasAPIRight
from config.core.api_params import ID_MAX, IntParam, read_all
from config.core.models import APIKey, Organisation, Scope
from config.core.roles import Role, has_role

MAX_CAMPAIGN_IDS = 1000
DAYS = IntParam("days", 30, 1, 366, "How many days back the tiles cover.")

AGGREGATED_REQUEST = inline_serializer(
    "AggregatedMetricsRequest",
    {
        "campaignIds": serializers.ListField(child=serializers.CharField()),
        "range": inline_serializer(
            "DateRange", {"start": serializers.DateField(), "end": serializers.DateField()}
        ),
    },
)
METRICS_RESPONSE = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="sends, deliveries, opens, uniqueOpens, clicks, uniqueClicks, replies, bounces, "
    "complaints, unsubscribes, failures, skipped, conversions, revenue, openRate, clickRate "
    "(opens and clicks are people's); machineOpens, machineClicks (mail privacy proxies and "
    "link scanners, counted apart); `channels` has the same per channel. One campaign's "
    "analytics also list its runs (`kind` send, or resend to non-openers with its "
    "`parentRunId`) and its `abTest` (as GET /api/herald/campaigns/{id}/ab-test, or null).",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _metrics(metrics: dict) -> dict:
    out = {}
    for name, value in metrics.items():
        out[_camel(name)] = float(value) if isinstance(value, Decimal) else value
    return out


def _channels(channels: dict[str, dict]) -> dict[str, dict]:
    return {name: _metrics(metrics) for name, metrics in channels.items()}


def _timeline(rows: list[dict]) -> list[dict]:
    return [
        {"hour": row["hour"].isoformat(), "opens": row["opens"], "clicks": row["clicks"]}
        for row in rows
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _ab_test(campaign: Campaign) -> dict | None:
    """The campaign's A/B test with each variant's figures and confidence, once started."""
    test = ABTest.objects.filter(campaign=campaign, run__isnull=False).first()
    if test is None:
        return None
    return ABTestResultSerializer(ab_results(test)).data


class ReadThroughPost(HasAPIRight):
    """aggregated-metrics is a read sent as POST (the id list may be long): viewers may call it."""

    def has_permission(self, request, view) -> bool:
        if (
            request.method == "POST"
            and request.user
            and request.user.is_authenticated
            and not isinstance(request.auth, APIKey)
            and has_role(request.user, Role.VIEWER)
        ):
            return True
        return super().has_permission(request, view)


class CampaignAnalyticsView(APIView):
    required_scope = Scope.MANAGE

    @extend_schema(responses={200: METRICS_RESPONSE}, summary="Analytics of one campaign")
    def get(self, request, campaign_id: str):
        campaign = Campaign.objects.filter(pk=int(campaign_id)).first()
        if campaign is None:
            raise NotFound(f"No campaign with id {campaign_id}.")
        data = campaign_analytics(campaign)
        body = {
            "campaignId": campaign.pk,
            "name": campaign.name,
            "status": campaign.status,
            "deleted": campaign.deleted_at is not None,
            **_metrics(data["totals"]),
            "channels": _channels(data["channels"]),
            "runs": [
                {
                    "id": run["id"],
                    "number": run["number"],
                    "kind": run["kind"],
                    "parentRunId": run["parent_id"],
                    "status": run["status"],
                    "reach": run["reach"],
                    "startedAt": _iso(run["started_at"]),
                    "finishedAt": _iso(run["finished_at"]),
                    **_metrics(run["metrics"]),
                    "channels": _channels(run["channels"]),
                }
                for run in data["runs"]
            ],
            "timeline": _timeline(data["timeline"]),
            "links": [_metrics(link) for link in data["links"]],
            "refreshedAt": _iso(data["refreshed_at"]),
            "abTest": _ab_test(campaign),
        }
        return Response(body)


def _parse_day(value: Any, field: str, errors: dict) -> date | None:
    if value in (None, ""):
        errors[field] = ["required: a date such as 2026-04-01"]
        return None
    if not isinstance(value, str):
        errors[field] = ["must be a date string such as 2026-04-01"]
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    moment = parse_datetime(value) if "T" in value else None
    if moment is None:
        errors[field] = [f"{value!r} is not a date (YYYY-MM-DD)"]
        return None
    return moment.date()


def _parse_ids(raw: Any, errors: dict) -> tuple[list[int], list]:
    """Campaign ids as integers (JSON numbers or numeric strings); other strings are ids this
    server cannot have, reported back as unknown rather than refused."""
    if raw is None:
        errors["campaignIds"] = ["required: a list of campaign ids"]
        return [], []
    if not isinstance(raw, list):
        errors["campaignIds"] = ["must be a list of campaign ids"]
        return [], []
    if not raw:
        errors["campaignIds"] = ["give at least one campaign id"]
        return [], []
    if len(raw) > MAX_CAMPAIGN_IDS:
        errors["campaignIds"] = [f"at most {MAX_CAMPAIGN_IDS} ids per call, got {len(raw)}"]
        return [], []
    ids: list[int] = []
    unknown: list = []
    for index, value in enumerate(raw):
        if isinstance(value, bool) or not isinstance(value, int | str):
            errors[f"campaignIds[{index}]"] = ["must be a campaign id (number or string)"]
        elif isinstance(value, int):
            if not 1 <= value <= ID_MAX:
                unknown.append(value)
            else:
                ids.append(value)
        elif value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 18:
            ids.append(int(value.strip()))
        else:
            unknown.append(value)
    return ids, unknown


def _range_field(body: Any, name: str) -> Any:
    if isinstance(body, QueryDict):
        return body.get(f"range[{name}]") or body.get(f"range.{name}") or body.get(name)
    rng = body.get("range") if isinstance(body, dict) else None
    if isinstance(rng, dict):
        return rng.get(name)
    return None


class AggregatedMetricsView(APIView):
    required_scope = Scope.MANAGE
    permission_classes = [ReadThroughPost]

    @extend_schema(
        request=AGGREGATED_REQUEST,
        responses={200: METRICS_RESPONSE},
        summary="Roll up campaigns over a date range (runs started in the range)",
    )
    def post(self, request):
        body = request.data
        errors: dict[str, list[str]] = {}
        if isinstance(body, QueryDict):
            # Form clients repeat the field (campaignIds=1&campaignIds=2) or join it with commas.
            raw_ids = [
                part.strip()
                for value in body.getlist("campaignIds")
                for part in value.split(",")
                if part.strip()
            ] or (None if "campaignIds" not in body else [])
        elif isinstance(body, dict):
            raw_ids = body.get("campaignIds")
            if "range" in body and not isinstance(body["range"], dict):
                errors["range"] = ['must be an object {"start": "YYYY-MM-DD", "end": ...}']
        else:
            raise ValidationError({"body": ["must be a JSON object"]})
        ids, unknown = _parse_ids(raw_ids, errors)
        if "range" not in errors:
            start = _parse_day(_range_field(body, "start"), "range.start", errors)
            end = _parse_day(_range_field(body, "end"), "range.end", errors)
            if start and end and end < start:
                errors["range.end"] = [f"{end.isoformat()} is before range.start"]
        if errors:
            raise ValidationError(errors)

        tz_name = Organisation.load().time_zone
        window_start, window_end = day_bounds(start, end, tz_name)
        data = aggregated_metrics(ids, window_start, window_end)
        return Response(
            {
                "campaignIds": data["campaign_ids"],
                "unknownCampaignIds": unknown + data["unknown_ids"],
                "range": {
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "timezone": tz_name,
                    "basis": "runs started in the range, both days included",
                },
                "runs": data["runs"],
                **_metrics(data["totals"]),
                "channels": _channels(data["channels"]),
                "campaigns": [
                    {"campaignId": pk, **_metrics(metrics)}
                    for pk, metrics in data["campaigns"].items()
                ],
                "timeline": _timeline(data["timeline"]),
            }
        )


class DashboardView(APIView):
    required_scope = Scope.MANAGE

    @extend_schema(
        parameters=[DAYS.openapi()], responses={200: METRICS_RESPONSE}, summary="Last-30-days tiles"
    )
    def get(self, request):
        (days,) = read_all(request.query_params, DAYS)
        data = dashboard_metrics(days=days)
        return Response(
            {
                "days": data["days"],
                "range": {"start": data["start"].isoformat(), "end": data["end"].isoformat()},
                "runs": data["runs"],
                **_metrics(data["totals"]),
                "channels": _channels(data["channels"]),
                "runningCampaigns": data["running_campaigns"],
                "scheduledCampaigns": data["scheduled_campaigns"],
                "running": [
                    {
                        "campaignId": item["run"].campaign_id,
                        "name": item["run"].campaign.name,
                        "runId": item["run"].pk,
                        "runStatus": item["run"].status,
                        "total": item["total"],
                        "done": item["done"],
                        "percent": item["percent"],
                    }
                    for item in data["running"]
                ],
            }
        )
