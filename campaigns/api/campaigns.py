"""The CRM campaigns API under /api/crm/marketing/: campaign CRUD with its campaign body,
lifecycle actions, discovery (platforms, campaign-types, social-profiles) and health.

Thin: bodies are checked by campaigns.lifecycle_input and written by campaigns.lifecycle;
domain errors map to 400 (bad input, naming the field) and 409 (a move the status forbids).
"""

import datetime as dt
import zoneinfo

from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import lifecycle
from campaigns.api import examples
from campaigns.craft import campaign_craft_json
from campaigns.delivery.providers import social_accounts
from campaigns.lifecycle_input import (
    CAMPAIGN_CHANNELS,
    SOCIAL_PLATFORMS,
    STATUS_ON_WRITE,
    TYPE_ALIASES,
    cron_describe,
    cron_next,
)
from campaigns.models import (
    Campaign,
    CampaignRun,
    CampaignStatus,
    CampaignType,
    Delivery,
    DeliveryStatus,
)
from campaigns.purge import campaign_purge
from campaigns.scheduling import campaign_cron
from campaigns.utm import utm_json
from config.core.api_params import POSITION_MAX, IntParam, read_all
from config.core.external_keys import IdOrKeyField, by_id_or_key
from config.core.models import Heartbeat
from config.core.parsers import request_body, request_body_refuse_malformed
from config.core.schema import error_response

LIMIT = IntParam("limit", 100, 1, 1000, "Campaigns to return, newest first.")
OFFSET = IntParam("offset", 0, 0, POSITION_MAX, "How many campaigns to skip.")
NEXT_RUNS = 3
# A worker heartbeat older than this means beat or the workers are not running
# (the heartbeat task fires every 30 s).
HEARTBEAT_STALE = dt.timedelta(minutes=2)
LAST_SEND_WINDOW = 200_000

TYPE_DESCRIPTIONS = {
    CampaignType.BLAST: "Sends once to the whole audience, now or at schedule.startAt.",
    CampaignType.DRIP: (
        "An ordered list of steps (template + delay); every contact in the audience walks the "
        "steps, and contacts who join the audience later enter too."
    ),
    CampaignType.RECURRING: (
        "Sends on a cron schedule (recurring.cron, in schedule.timezone); each tick is its own "
        "run with its own reach and report. Launching arms the schedule: the first run is the "
        "next tick."
    ),
    CampaignType.MILESTONE: (
        "Sends when a contact reaches a date held in a date custom field (birthday, "
        "anniversary), yearly or with an offset in days; evaluated daily."
    ),
}


CAMPAIGN = inline_serializer(
    "Campaign",
    {
        "id": serializers.IntegerField(),
        "externalId": serializers.CharField(
            allow_null=True, help_text="The campaign's external key (e.g. camp-1), or null."
        ),
        "name": serializers.CharField(),
        "type": serializers.ChoiceField(choices=CampaignType.values),
        "channels": serializers.ListField(child=serializers.CharField()),
        "audienceId": serializers.IntegerField(allow_null=True),
        "audienceExternalId": serializers.CharField(
            allow_null=True, help_text="The segment's external key, when it has one."
        ),
        "audience": serializers.JSONField(
            allow_null=True, help_text='An inline audience: {"type": "dynamic", "filter": …}.'
        ),
        "templateId": serializers.IntegerField(allow_null=True),
        "templateExternalId": serializers.CharField(
            allow_null=True, help_text="The template's external key, when it has one."
        ),
        "integrationId": serializers.IntegerField(
            allow_null=True,
            help_text='The integration ("Email service") the campaign goes through; it must '
            "connect every messaging channel of the campaign. null: each channel's default "
            "integration. A disabled one saves, and launching is refused with the reason.",
        ),
        "schedule": inline_serializer(
            "CampaignSchedule",
            {
                "startAt": serializers.DateTimeField(allow_null=True),
                "endAt": serializers.DateTimeField(allow_null=True),
                "timezone": serializers.CharField(),
            },
        ),
        "recurring": inline_serializer(
            "CampaignRecurring",
            {"cron": serializers.CharField(), "description": serializers.CharField()},
            allow_null=True,
        ),
        "utm": inline_serializer(
            "CampaignUtm",
            {
                "enabled": serializers.BooleanField(),
                "source": serializers.CharField(allow_blank=True),
                "medium": serializers.CharField(allow_blank=True),
                "campaign": serializers.CharField(allow_blank=True),
                "content": serializers.CharField(
                    allow_blank=True, help_text="Blank: the template's name."
                ),
            },
            help_text="Automatic UTM tagging of the tracked links of its emails (a link's own "
            "utm_* values win). In a body: an object with any of these keys (enabled defaults "
            'to true; source "herald", medium the channel, campaign a slug of the name when '
            "blank), or null to switch it off. Values: letters, digits, spaces and - _ . +, "
            "at most 100 characters; anything else is a 400 naming the key (utm.source).",
        ),
        "status": serializers.ChoiceField(choices=CampaignStatus.values),
        "statusReason": serializers.CharField(allow_blank=True),
        "state": serializers.CharField(help_text="The status, or deleted."),
        "nextRuns": inline_serializer(
            "CampaignNextRun",
            {"at": serializers.DateTimeField(), "inWords": serializers.CharField()},
            many=True,
        ),
        "reach": serializers.IntegerField(allow_null=True),
        "createdAt": serializers.DateTimeField(),
        "updatedAt": serializers.DateTimeField(),
        "deletedAt": serializers.DateTimeField(allow_null=True),
        "steps": inline_serializer(
            "CampaignStep",
            {"templateId": serializers.IntegerField(), "delay": serializers.CharField()},
            many=True,
            required=False,
            help_text="Drip campaigns only.",
        ),
        "milestone": serializers.JSONField(required=False, help_text="Milestone campaigns only."),
        "abTest": inline_serializer(
            "CampaignABTest",
            {
                "variants": inline_serializer(
                    "CampaignABVariant",
                    {
                        "variant": serializers.CharField(read_only=True, help_text="A, B, …"),
                        "subject": serializers.CharField(allow_blank=True),
                        "preheader": serializers.CharField(allow_blank=True),
                        "fromName": serializers.CharField(allow_blank=True),
                        "templateId": serializers.IntegerField(allow_null=True),
                    },
                    many=True,
                ),
                "testPercent": serializers.IntegerField(min_value=1, max_value=50),
                "winnerMetric": serializers.ChoiceField(choices=["opens", "clicks", "revenue"]),
                "waitHours": serializers.FloatField(min_value=0),
                "winnerSelection": serializers.ChoiceField(choices=["auto", "manual"]),
            },
            allow_null=True,
            help_text="Blast campaigns: 2 to 5 variants (blank fields keep the template's) "
            "sent to testPercent % of the audience; after waitHours the winner goes to the "
            "rest (winnerSelection auto), or the marketer picks it (manual).",
        ),
        "resend": inline_serializer(
            "CampaignResend",
            {
                "afterHours": serializers.FloatField(min_value=1),
                "subject": serializers.CharField(),
            },
            allow_null=True,
            help_text="Blast campaigns: afterHours after the first run finished, resend to "
            "the recipients who did not open it, with this subject.",
        ),
        "sendTime": inline_serializer(
            "CampaignSendTime",
            {"localTime": serializers.CharField(help_text="HH:MM, 24-hour.")},
            allow_null=True,
            help_text="Recipient-local send time: each contact gets the message at this time "
            "in its own time zone (the organisation's when it has none), the next one after "
            "the launch. null: at once.",
        ),
        "sendWindow": inline_serializer(
            "CampaignSendWindow",
            {
                "from": serializers.CharField(help_text="HH:MM, opening (inclusive)."),
                "to": serializers.CharField(
                    help_text="HH:MM, closing (exclusive); before `from`: over midnight."
                ),
                "days": serializers.ListField(
                    child=serializers.IntegerField(min_value=1, max_value=7),
                    help_text="ISO weekdays the window opens on (1 = Monday); default all.",
                ),
            },
            allow_null=True,
            help_text="Allowed sending window in each recipient's time zone: messages due "
            "outside it wait for its next opening. null: any time.",
        ),
    },
)
CAMPAIGNS = CAMPAIGN.__class__(many=True)
# The body of a create or an update: every key optional on update (only the keys sent change;
# null clears a nullable one). The read-only keys of CAMPAIGN are ignored when sent back.


def _as_input(name: str, **kwargs):
    """CAMPAIGN's nested shape `name` as an optional, nullable key of a body."""
    shape = CAMPAIGN.fields[name]
    many = isinstance(shape, serializers.ListSerializer)
    if many:
        shape = shape.child
    return shape.__class__(
        many=many, required=False, allow_null=True, help_text=CAMPAIGN.fields[name].help_text
    )


CAMPAIGN_REQUEST = inline_serializer(
    "CampaignInput",
    {
        "name": serializers.CharField(max_length=200, help_text="Required when creating."),
        "externalId": serializers.CharField(
            allow_null=True,
            max_length=100,
            help_text="Your own id for the campaign (e.g. camp-1): letters, digits, - _ and ., "
            "not only digits; unique. Every path and body that takes a campaign id takes it "
            "too. On create, a string `id` is taken as this key when externalId is absent.",
        ),
        "type": serializers.ChoiceField(
            choices=[*CampaignType.values, *TYPE_ALIASES],
            required=False,
            help_text="See GET campaign-types; multi-channel is a blast. Default blast.",
        ),
        "channels": serializers.ListField(
            child=serializers.ChoiceField(choices=list(CAMPAIGN_CHANNELS)),
            help_text="Required when creating. See GET platforms; an unconnected channel "
            "saves but cannot launch.",
        ),
        "audienceId": IdOrKeyField(
            help_text="A saved segment's numeric id or external key, e.g. aud-spring-prospects "
            "(or give `audience`).",
        ),
        "audience": inline_serializer(
            "CampaignAudience",
            {
                "type": serializers.ChoiceField(choices=["dynamic"], required=False),
                "filter": serializers.JSONField(
                    help_text='A dynamic segment filter, e.g. {"tags": {"$in": ["vip"]}}.'
                ),
            },
            allow_null=True,
            help_text="An inline audience; its reach is computed at launch.",
        ),
        "templateId": IdOrKeyField(
            help_text="A template's numeric id or external key, e.g. tpl-spring-launch.",
        ),
        "integrationId": serializers.IntegerField(allow_null=True),
        "schedule": inline_serializer(
            "CampaignScheduleInput",
            {
                "startAt": serializers.DateTimeField(
                    required=False, allow_null=True, help_text="ISO 8601; in the future."
                ),
                "endAt": serializers.DateTimeField(required=False, allow_null=True),
                "timezone": serializers.CharField(
                    required=False, help_text="IANA, e.g. America/New_York."
                ),
            },
            allow_null=True,
        ),
        "recurring": inline_serializer(
            "CampaignRecurringInput",
            {"cron": serializers.CharField(help_text='e.g. "0 9 * * 1" (Mondays 09:00).')},
            allow_null=True,
        ),
        "utm": _as_input("utm"),
        "status": serializers.ChoiceField(
            choices=sorted(STATUS_ON_WRITE),
            help_text="running without a schedule launches now; scheduled needs schedule.startAt.",
        ),
        "steps": _as_input("steps"),
        "milestone": inline_serializer(
            "CampaignMilestone",
            {
                "fieldId": serializers.IntegerField(help_text="A date custom field."),
                "offsetDays": serializers.IntegerField(required=False),
                "yearly": serializers.BooleanField(required=False),
                "sendAt": serializers.CharField(required=False, help_text="HH:MM"),
            },
            allow_null=True,
            help_text="Milestone campaigns only.",
        ),
        **{name: _as_input(name) for name in ("abTest", "resend", "sendTime", "sendWindow")},
    },
)
# Nothing is required of an update; create's required keys are in their descriptions.
for _field in CAMPAIGN_REQUEST.fields.values():
    _field.required = False
CONFLICT = error_response(
    "The campaign's status forbids the change (`status`, `wanted`, `allowed`), or a launch "
    "was refused (`field`, `channel`)."
)
PURGED = inline_serializer(
    "CampaignPurged",
    {
        "campaignId": serializers.IntegerField(),
        "externalId": serializers.CharField(allow_null=True),
        "name": serializers.CharField(),
        "deletedAt": serializers.DateTimeField(),
        "runs": serializers.IntegerField(help_text="Runs removed."),
        "deliveries": serializers.IntegerField(help_text="Ledger rows removed."),
        "dryRun": serializers.BooleanField(help_text="true: counted only, nothing removed."),
    },
)
PURGE_CONFLICT = error_response(
    "The campaign is not deleted (`field`: campaign, `status`): only deleted campaigns are purged."
)
PLATFORMS = inline_serializer(
    "Platform",
    {
        "id": serializers.CharField(),
        "name": serializers.CharField(),
        "connected": serializers.BooleanField(),
        "detail": serializers.CharField(),
        "social": serializers.BooleanField(),
    },
    many=True,
)
CAMPAIGN_TYPES = inline_serializer(
    "CampaignTypeInfo",
    {
        "id": serializers.CharField(help_text="The value of a campaign's `type`."),
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "aliases": serializers.ListField(child=serializers.CharField()),
    },
    many=True,
)
SOCIAL_PROFILES = inline_serializer(
    "SocialProfile",
    {
        "id": serializers.CharField(),
        "platform": serializers.CharField(),
        "name": serializers.CharField(),
    },
    many=True,
)
HEALTH = inline_serializer(
    "CampaignsHealth",
    {
        "status": serializers.ChoiceField(
            choices=["ok", "degraded"], help_text="degraded: no worker heartbeat lately."
        ),
        "scheduler": inline_serializer(
            "SchedulerHeartbeat",
            {
                "heartbeatAt": serializers.DateTimeField(allow_null=True),
                "alive": serializers.BooleanField(),
                "staleAfterSeconds": serializers.IntegerField(),
            },
        ),
        "queueDepth": serializers.IntegerField(help_text="Messages queued to send."),
        "campaigns": inline_serializer(
            "CampaignsByStatus",
            {"scheduled": serializers.IntegerField(), "running": serializers.IntegerField()},
        ),
        "lastSendAt": serializers.DictField(
            child=serializers.DateTimeField(allow_null=True),
            help_text="The last send per channel, among the recent ones.",
        ),
    },
)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _in_words(moment: dt.datetime) -> str:
    return moment.strftime("%A %d %B %Y, %H:%M ") + (moment.tzname() or "")


def next_runs(campaign: Campaign, *, count: int = NEXT_RUNS) -> list[dict]:
    """When beat will fire next, in UTC and in words in the campaign's time zone."""
    if campaign.deleted_at is not None or campaign.status in (
        CampaignStatus.COMPLETED,
        CampaignStatus.CANCELLED,
        CampaignStatus.FAILED,
    ):
        return []
    tz = zoneinfo.ZoneInfo(campaign.timezone)
    cron = campaign_cron(campaign)
    if cron:
        after = max(filter(None, [timezone.now(), campaign.start_at]))
        moments = [
            moment
            for moment in cron_next(cron, campaign.timezone, count=count, after=after)
            if campaign.end_at is None or moment < campaign.end_at
        ]
    elif campaign.start_at is not None and campaign.start_at > timezone.now():
        moments = [campaign.start_at.astimezone(tz)]
    else:
        moments = []
    return [{"at": _iso(moment), "inWords": _in_words(moment)} for moment in moments]


def campaign_json(campaign: Campaign) -> dict:
    reach = getattr(campaign, "latest_reach", None)
    if not hasattr(campaign, "latest_reach"):
        latest = campaign.runs.order_by("-number").values_list("reach", flat=True).first()
        reach = latest
    body = {
        "id": campaign.pk,
        "externalId": campaign.external_key,
        "name": campaign.name,
        "type": campaign.type,
        "channels": list(campaign.channels),
        "audienceId": campaign.segment_id,
        "audienceExternalId": campaign.segment.external_key if campaign.segment else None,
        "audience": (
            {"type": "dynamic", "filter": campaign.audience_filter}
            if campaign.audience_filter is not None
            else None
        ),
        "templateId": campaign.template_id,
        "templateExternalId": campaign.template.external_key if campaign.template else None,
        "integrationId": campaign.integration_id,
        "schedule": {
            "startAt": _iso(campaign.start_at),
            "endAt": _iso(campaign.end_at),
            "timezone": campaign.timezone,
        },
        "recurring": (
            {"cron": campaign.cron, "description": cron_describe(campaign.cron)}
            if campaign.cron
            else None
        ),
        "utm": utm_json(campaign),
        "status": campaign.status,
        "statusReason": campaign.status_reason,
        # The CRM campaigns API's wording for a soft-deleted campaign.
        "state": "deleted" if campaign.deleted_at else campaign.status,
        "nextRuns": next_runs(campaign),
        "reach": reach,
        "createdAt": _iso(campaign.created_at),
        "updatedAt": _iso(campaign.updated_at),
        "deletedAt": _iso(campaign.deleted_at),
    }
    if campaign.type == CampaignType.DRIP:
        body["steps"] = [
            {
                "templateId": step.template_id,
                "delay": _duration(step.delay),
            }
            for step in campaign.steps.all()
        ]
    if campaign.milestone is not None:
        body["milestone"] = campaign.milestone
    body.update(campaign_craft_json(campaign))
    body["sendTime"] = (
        {"localTime": campaign.send_local_time.strftime("%H:%M")}
        if campaign.send_local_time
        else None
    )
    body["sendWindow"] = campaign.send_window
    return body


def _duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else ("" if days else "T0S"))


def campaign_or_404(campaign_id: str, *, deleted_ok: bool = False) -> Campaign:
    """The campaign a path names by its numeric id or its external key (camp-1)."""
    campaign = by_id_or_key(Campaign.objects.all(), campaign_id)
    if campaign is None or (campaign.deleted_at is not None and not deleted_ok):
        raise NotFound(f"No campaign with id or external key {campaign_id}.")
    return campaign


class CampaignsView(APIView):
    @extend_schema(
        summary="List campaigns, newest first",
        operation_id="crm_campaigns_list",
        parameters=[
            OpenApiParameter("status", str, enum=CampaignStatus.values),
            OpenApiParameter("type", str, enum=CampaignType.values),
            LIMIT.openapi(),
            OFFSET.openapi(),
        ],
        responses={200: CAMPAIGNS},
        examples=[examples.CAMPAIGN_LIST],
    )
    def get(self, request):
        campaigns = Campaign.objects.filter(deleted_at__isnull=True)
        for name, known in (("status", CampaignStatus.values), ("type", CampaignType.values)):
            value = request.query_params.get(name)
            if value:
                if value not in known:
                    raise ValidationError({name: [f"must be one of {', '.join(known)}"]})
                campaigns = campaigns.filter(**{name: value})
        limit, offset = read_all(request.query_params, LIMIT, OFFSET)
        latest = CampaignRun.objects.filter(campaign=OuterRef("pk")).order_by("-number")
        campaigns = campaigns.annotate(latest_reach=Subquery(latest.values("reach")[:1]))
        page = campaigns.select_related(
            "ab_test", "resend", "segment", "template"
        ).prefetch_related("steps", "ab_test__variants")[offset : offset + limit]
        return Response([campaign_json(campaign) for campaign in page])

    @extend_schema(
        summary="Create a campaign; status running without a schedule launches now",
        request=CAMPAIGN_REQUEST,
        responses={201: CAMPAIGN, 409: CONFLICT},
        examples=[
            examples.CAMPAIGN_BODY,
            examples.CAMPAIGN_INLINE_AUDIENCE,
            examples.CAMPAIGN_RECURRING,
            examples.CAMPAIGN_LAUNCH_NOW,
            examples.CAMPAIGN_ANSWER,
        ],
    )
    def post(self, request):
        campaign = lifecycle.campaign_create(
            data=request_body(request, comma_lists=("channels",), object_only=False),
            user=request.user,
        )
        return Response(campaign_json(campaign), status=http.HTTP_201_CREATED)


class CampaignView(APIView):
    @extend_schema(
        summary="One campaign (a deleted one answers with state: deleted)",
        responses={200: CAMPAIGN},
        examples=[examples.CAMPAIGN_ANSWER],
    )
    def get(self, request, campaign_id):
        return Response(campaign_json(campaign_or_404(campaign_id, deleted_ok=True)))

    @extend_schema(
        summary="Update the fields the body carries",
        request=CAMPAIGN_REQUEST,
        responses={200: CAMPAIGN, 409: CONFLICT},
        examples=[examples.AUDIENCE_UPDATE, examples.CAMPAIGN_ANSWER],
    )
    def put(self, request, campaign_id):
        campaign = campaign_or_404(campaign_id)
        campaign = lifecycle.campaign_update(
            campaign=campaign,
            data=request_body(request, comma_lists=("channels",), object_only=False),
            user=request.user,
        )
        return Response(campaign_json(campaign))

    patch = put

    @extend_schema(
        summary="Soft delete: history stays, the schedule is cancelled",
        description="With purge=true: remove an already deleted campaign for good, as "
        "POST campaigns/:id/purge does (409 when it is not deleted).",
        parameters=[
            OpenApiParameter(
                "purge", str, description="true, 1 or yes: purge a deleted campaign for good."
            )
        ],
        responses={200: CAMPAIGN, 409: PURGE_CONFLICT},
        examples=[examples.CAMPAIGN_DELETED],
    )
    def delete(self, request, campaign_id):
        if _flag(request.query_params.get("purge")):
            return _purge(request, campaign_id)
        campaign = lifecycle.campaign_delete(campaign=campaign_or_404(campaign_id))
        return Response(campaign_json(campaign))


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _purge(request, campaign_id: str) -> Response:
    campaign = campaign_or_404(campaign_id, deleted_ok=True)
    result = campaign_purge(campaign=campaign, dry_run=_flag(request.query_params.get("dryRun")))
    return Response(result.as_json())


class CampaignPurgeView(APIView):
    @extend_schema(
        summary="Purge a deleted campaign for good (its runs and ledger rows too)",
        description="The org-level purge job for one campaign, at once whatever its age "
        "(the daily job takes those deleted more than HERALD_CAMPAIGN_PURGE_AFTER_DAYS ago). "
        "dryRun=true counts what would go. A campaign that is not deleted is a 409; delete "
        "it first. Takes no body.",
        parameters=[OpenApiParameter("dryRun", str, description="true: count, remove nothing.")],
        request=None,
        responses={200: PURGED, 409: PURGE_CONFLICT},
        examples=[examples.PURGED],
    )
    def post(self, request, campaign_id):
        request_body_refuse_malformed(request)
        return _purge(request, campaign_id)


class CampaignActionView(APIView):
    """POST campaigns/:id/schedule|launch|pause|resume|cancel|duplicate."""

    action = ""

    @extend_schema(
        description=(
            "schedule: start at schedule.startAt (or on the cron); launch: resolve the audience "
            "and send now; pause and resume a running campaign; cancel: send nothing more (the "
            "history stays); duplicate: a new draft with the same settings (201). Takes no "
            "body: the path names the campaign and the action. 409 when its status forbids "
            "the move."
        ),
        request=None,
        responses={200: CAMPAIGN, 201: CAMPAIGN, 409: CONFLICT},
        examples=[examples.CAMPAIGN_ANSWER],
    )
    def post(self, request, campaign_id):
        request_body_refuse_malformed(request)
        campaign = campaign_or_404(campaign_id)
        if self.action == "schedule":
            lifecycle.campaign_schedule(campaign=campaign)
        elif self.action == "launch":
            lifecycle.campaign_launch_now(campaign=campaign, user=request.user)
        elif self.action == "pause":
            lifecycle.campaign_pause(campaign=campaign)
        elif self.action == "resume":
            lifecycle.campaign_resume(campaign=campaign)
        elif self.action == "cancel":
            lifecycle.campaign_cancel(campaign=campaign)
        elif self.action == "duplicate":
            copy = lifecycle.campaign_duplicate(campaign=campaign, user=request.user)
            return Response(campaign_json(copy), status=http.HTTP_201_CREATED)
        campaign.refresh_from_db()
        return Response(campaign_json(campaign))


def platforms() -> list[dict]:
    out = []
    for channel, name in CAMPAIGN_CHANNELS.items():
        connected, how = lifecycle.channel_connection(channel)
        out.append(
            {
                "id": channel,
                "name": name,
                "connected": connected,
                "detail": how,
                "social": channel in SOCIAL_PLATFORMS,
            }
        )
    return out


class PlatformsView(APIView):
    @extend_schema(
        summary="Channels and whether the organisation has connected them",
        parameters=[
            OpenApiParameter(
                "connected", str, description="true, 1 or yes: only the connected channels."
            )
        ],
        responses={200: PLATFORMS},
        examples=[examples.PLATFORMS],
    )
    def get(self, request):
        answer = platforms()
        if request.query_params.get("connected", "").lower() in ("1", "true", "yes"):
            answer = [platform for platform in answer if platform["connected"]]
        return Response(answer)


class CampaignTypesView(APIView):
    @extend_schema(
        summary="Supported campaign types",
        responses={200: CAMPAIGN_TYPES},
        examples=[examples.CAMPAIGN_TYPES],
    )
    def get(self, request):
        aliases: dict[str, list[str]] = {}
        for alias, kind in TYPE_ALIASES.items():
            aliases.setdefault(kind, []).append(alias)
        return Response(
            [
                {
                    "id": kind,
                    "name": label,
                    "description": TYPE_DESCRIPTIONS[kind],
                    "aliases": aliases.get(kind, []),
                }
                for kind, label in CampaignType.choices
            ]
        )


class SocialProfilesView(APIView):
    @extend_schema(
        summary="Connected social accounts of a platform",
        description="The accounts the enabled integrations connecting the platform list "
        "(e.g. a social publishing webhook); empty until one is connected.",
        responses={200: SOCIAL_PROFILES},
        examples=[examples.SOCIAL_PROFILES],
    )
    def get(self, request, platform=None):
        if platform is not None and platform.lower() not in SOCIAL_PLATFORMS:
            raise NotFound(
                f"Unknown social platform {platform!r}; known: {', '.join(SOCIAL_PLATFORMS)}."
            )
        accounts = social_accounts(platform.lower() if platform else None)
        return Response([{"id": a.id, "platform": a.platform, "name": a.name} for a in accounts])


class SocialProfilesListView(SocialProfilesView):
    @extend_schema(
        summary="Connected social accounts of every platform",
        operation_id="crm_social_profiles_list",
        responses={200: SOCIAL_PROFILES},
        examples=[examples.SOCIAL_PROFILES],
    )
    def get(self, request, platform=None):
        return super().get(request, platform)


class HealthView(APIView):
    @extend_schema(
        summary="Scheduler heartbeat, queue depth and last send per channel",
        responses={200: HEALTH},
        examples=[examples.HEALTH],
    )
    def get(self, request):
        heartbeat = Heartbeat.objects.filter(name="worker").first()
        now = timezone.now()
        alive = heartbeat is not None and now - heartbeat.seen_at <= HEARTBEAT_STALE
        # The partial index on queued rows makes this count cheap however large the ledger.
        queue_depth = Delivery.objects.filter(status=DeliveryStatus.QUEUED).count()
        # sent_at has no index: look only at the newest rows (a pk range) so the page stays
        # fast on a ledger of millions; a channel silent for that long shows null.
        newest = Delivery.objects.aggregate(n=Max("pk"))["n"] or 0
        last_sent = dict(
            Delivery.objects.filter(pk__gt=newest - LAST_SEND_WINDOW, sent_at__isnull=False)
            .values("channel")
            .annotate(last=Max("sent_at"))
            .values_list("channel", "last")
        )
        scheduled = Campaign.objects.filter(
            deleted_at__isnull=True, status=CampaignStatus.SCHEDULED
        ).count()
        running = Campaign.objects.filter(
            deleted_at__isnull=True, status=CampaignStatus.RUNNING
        ).count()
        return Response(
            {
                "status": "ok" if alive else "degraded",
                "scheduler": {
                    "heartbeatAt": _iso(heartbeat.seen_at) if heartbeat else None,
                    "alive": alive,
                    "staleAfterSeconds": int(HEARTBEAT_STALE.total_seconds()),
                },
                "queueDepth": queue_depth,
                "campaigns": {"scheduled": scheduled, "running": running},
                "lastSendAt": {channel: _iso(at) for channel, at in sorted(last_sent.items())},
            }
        )
