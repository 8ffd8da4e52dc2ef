"""The CRM campaigns API's analytics resources under /api/crm/marketing/: one campaign's
analytics, an aggregate over campaign ids and a date range, and the dashboard tiles.

Thin: request shapes are checked here, numbers come from campaigns.analytics (rollups only).
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import QueryDict
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.abtest import ab_results
from campaigns.analytics import (
    METRICS,
    aggregated_metrics,
    campaign_analytics,
    dashboard_metrics,
    day_bounds,
)
from campaigns.api import examples
from campaigns.api.abtest import ABTestResultSerializer
from campaigns.api.campaigns import campaign_or_404
from campaigns.models import ABTest, Campaign
from config.core.api_auth import HasAPIRight
from config.core.api_params import IntParam, read_all
from config.core.external_keys import IdOrKeyField, ids_or_keys, numeric_id
from config.core.models import APIKey, Organisation, Scope
from config.core.roles import Role, has_role

MAX_CAMPAIGN_IDS = 1000
DAYS = IntParam("days", 30, 1, 366, "How many days back the tiles cover.")

AGGREGATED_REQUEST = inline_serializer(
    "AggregatedMetricsRequest",
    {
        "campaignIds": serializers.ListField(
            child=IdOrKeyField(),
            help_text="Numeric ids or external keys (camp-1); a key that names no campaign is "
            "a 400, a number that names none is listed in unknownCampaignIds.",
        ),
        "range": inline_serializer(
            "DateRange", {"start": serializers.DateField(), "end": serializers.DateField()}
        ),
    },
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _metric_fields() -> dict:
    """The numbers every analytics answer carries: totals, per channel and per campaign."""
    fields: dict = {
        _camel(name): serializers.IntegerField() for name in METRICS if name != "revenue"
    }
    fields["revenue"] = serializers.FloatField()
    fields["openRate"] = serializers.FloatField(
        allow_null=True, help_text="Unique opens over messages that reached someone."
    )
    fields["clickRate"] = serializers.FloatField(allow_null=True)
    fields["pending"] = serializers.IntegerField(help_text="Recipients not sent yet.")
    return fields


METRICS_HELP = (
    "opens and clicks are people's; machineOpens and machineClicks (mail privacy proxies and "
    "link scanners) are counted apart."
)
METRIC_SET = inline_serializer("Metrics", _metric_fields(), help_text=METRICS_HELP)


def _per_channel():
    return serializers.DictField(
        child=METRIC_SET.__class__(), help_text="The same numbers per channel (email, sms, …)."
    )


TIMELINE = inline_serializer(
    "MetricsHour",
    {
        "hour": serializers.DateTimeField(),
        "opens": serializers.IntegerField(),
        "clicks": serializers.IntegerField(),
    },
)
CAMPAIGN_ANALYTICS = inline_serializer(
    "CampaignAnalytics",
    {
        "campaignId": serializers.IntegerField(),
        "externalId": serializers.CharField(allow_null=True),
        "name": serializers.CharField(),
        "status": serializers.CharField(),
        "deleted": serializers.BooleanField(),
        **_metric_fields(),
        "channels": _per_channel(),
        "runs": inline_serializer(
            "CampaignRunAnalytics",
            {
                "id": serializers.IntegerField(),
                "number": serializers.IntegerField(),
                "kind": serializers.CharField(help_text="send, or resend to non-openers."),
                "parentRunId": serializers.IntegerField(allow_null=True),
                "status": serializers.CharField(),
                "reach": serializers.IntegerField(allow_null=True),
                "startedAt": serializers.DateTimeField(allow_null=True),
                "finishedAt": serializers.DateTimeField(allow_null=True),
                **_metric_fields(),
                "channels": _per_channel(),
            },
            many=True,
        ),
        "timeline": TIMELINE.__class__(many=True),
        "links": inline_serializer(
            "LinkClicks",
            {
                "url": serializers.CharField(),
                "clicks": serializers.IntegerField(),
                "uniqueClicks": serializers.IntegerField(),
            },
            many=True,
        ),
        "refreshedAt": serializers.DateTimeField(allow_null=True),
        "abTest": ABTestResultSerializer(
            allow_null=True, help_text="As GET /api/herald/campaigns/{id}/ab-test, or null."
        ),
    },
)
AGGREGATED_RESPONSE = inline_serializer(
    "AggregatedMetrics",
    {
        "campaignIds": serializers.ListField(
            child=serializers.IntegerField(), help_text="The ids found."
        ),
        "unknownCampaignIds": serializers.ListField(
            child=serializers.JSONField(), help_text="Ids as sent that name no campaign."
        ),
        "range": inline_serializer(
            "AggregatedRange",
            {
                "start": serializers.DateField(),
                "end": serializers.DateField(),
                "timezone": serializers.CharField(),
                "basis": serializers.CharField(),
            },
        ),
        "runs": serializers.IntegerField(),
        **_metric_fields(),
        "channels": _per_channel(),
        "campaigns": inline_serializer(
            "CampaignMetrics",
            {"campaignId": serializers.IntegerField(), **_metric_fields()},
            many=True,
        ),
        "timeline": TIMELINE.__class__(many=True),
    },
)
DASHBOARD = inline_serializer(
    "Dashboard",
    {
        "days": serializers.IntegerField(),
        "range": inline_serializer(
            "DashboardRange",
            {"start": serializers.DateTimeField(), "end": serializers.DateTimeField()},
        ),
        "runs": serializers.IntegerField(),
        **_metric_fields(),
        "channels": _per_channel(),
        "runningCampaigns": serializers.IntegerField(),
        "scheduledCampaigns": serializers.IntegerField(),
        "running": inline_serializer(
            "RunningCampaign",
            {
                "campaignId": serializers.IntegerField(),
                "name": serializers.CharField(),
                "runId": serializers.IntegerField(),
                "runStatus": serializers.CharField(),
                "total": serializers.IntegerField(allow_null=True),
                "done": serializers.IntegerField(),
                "percent": serializers.IntegerField(),
            },
            many=True,
        ),
    },
)


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

    @extend_schema(
        summary="Analytics of one campaign",
        responses={200: CAMPAIGN_ANALYTICS},
        examples=[examples.ANALYTICS],
    )
    def get(self, request, campaign_id: str):
        campaign = campaign_or_404(campaign_id, deleted_ok=True)
        data = campaign_analytics(campaign)
        body = {
            "campaignId": campaign.pk,
            "externalId": campaign.external_key,
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
    """Campaign ids (JSON numbers or numeric strings) and external keys ("camp-1") as numeric
    ids. A number that names no campaign is reported back as unknown (a dashboard may
    remember a campaign purged since); a key that names none is a 400 naming its position."""
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
    for index, value in enumerate(raw):
        if isinstance(value, bool) or not isinstance(value, int | str):
            errors[f"campaignIds[{index}]"] = ["must be a campaign id (number or string)"]
    if errors:
        return [], []
    resolved = ids_or_keys(Campaign.objects.all(), raw)
    ids: list[int] = []
    unknown: list = []
    for index, value in enumerate(raw):
        number = numeric_id(value)
        if value in resolved:
            ids.append(resolved[value])
        elif number is not None:
            unknown.append(value)
        else:
            errors[f"campaignIds[{index}]"] = [f"no campaign with id or external key {value!r}"]
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
        responses={200: AGGREGATED_RESPONSE},
        examples=[examples.AGGREGATED_REQUEST, examples.AGGREGATED_ANSWER],
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
        summary="Last-30-days tiles",
        parameters=[DAYS.openapi()],
        responses={200: DASHBOARD},
        examples=[examples.DASHBOARD],
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
