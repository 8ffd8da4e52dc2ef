"""OpenAPI examples of the CRM campaigns API and the eSputnik v1 message resources.

Request examples are the specification documents' own bodies, named in their wording ("A
campaign body looks like", "Send prepared message"). Two kinds of change, each said in the
example's description: the CRM document's string ids (audienceId "aud-spring-prospects",
campaign "camp-1") are external keys in Herald, which every id field also takes as numbers;
and the eSputnik document's message
answers show `results` as one object with ids and flags in strings, where Herald always
answers a list, with numbers and booleans. The other examples show what Herald answers.
"""

from drf_spectacular.utils import OpenApiExample

REQUEST_ID = "3ff28330-f8ef-4636-92ac-86345c16995e"

CAMPAIGN_BODY = OpenApiExample(
    "A campaign",
    summary="A campaign body (the campaigns document)",
    description="The document's campaign body, verbatim: its audienceId and templateId are "
    "the external keys of a segment and a template (their numeric ids work as well). "
    '"multi-channel" is taken as a blast campaign. Add "externalId": "camp-1" to name the '
    "campaign by your own id in later calls.",
    request_only=True,
    value={
        "name": "Spring 2026 Launch",
        "type": "multi-channel",
        "channels": ["email", "facebook", "linkedin"],
        "audienceId": "aud-spring-prospects",
        "templateId": "tpl-spring-launch",
        "schedule": {
            "startAt": "2026-05-01T09:00:00Z",
            "endAt": "2026-05-15T23:59:59Z",
            "timezone": "America/New_York",
        },
        "status": "draft",
    },
)
CAMPAIGN_INLINE_AUDIENCE = OpenApiExample(
    "Inline audience",
    summary="Audience targeting: an inline filter (the campaigns document)",
    description="The document's inline audience, in a whole campaign; its reach is "
    "computed at launch.",
    request_only=True,
    value={
        "name": "Prospects and VIPs",
        "channels": ["email"],
        "templateId": 34,
        "audience": {
            "type": "dynamic",
            "filter": {"datatype": "contact", "where": {"tags": {"$in": ["prospect", "vip"]}}},
        },
    },
)
CAMPAIGN_RECURRING = OpenApiExample(
    "Recurring",
    summary="Repeat every Monday at 09:00 (the campaigns document's cron)",
    request_only=True,
    value={
        "name": "Weekly digest",
        "channels": ["email"],
        "audienceId": 12,
        "templateId": 34,
        "recurring": {"cron": "0 9 * * 1"},
        "status": "scheduled",
    },
)
CAMPAIGN_LAUNCH_NOW = OpenApiExample(
    "Launch immediately",
    summary="Launch immediately: no schedule, status running (the campaigns document)",
    request_only=True,
    value={
        "name": "Flash sale",
        "channels": ["email"],
        "audienceId": 12,
        "templateId": 34,
        "status": "running",
    },
)
AUDIENCE_UPDATE = OpenApiExample(
    "Audience targeting",
    summary="Switch to an inline audience (the campaigns document's filter)",
    request_only=True,
    value={
        "audience": {
            "type": "dynamic",
            "filter": {"datatype": "contact", "where": {"tags": {"$in": ["prospect", "vip"]}}},
        }
    },
)

CAMPAIGN_VALUE = {
    "id": 56,
    "externalId": "camp-1",
    "name": "Spring 2026 Launch",
    "type": "blast",
    "channels": ["email", "facebook", "linkedin"],
    "audienceId": 12,
    "audienceExternalId": "aud-spring-prospects",
    "audience": None,
    "templateId": 34,
    "templateExternalId": "tpl-spring-launch",
    "integrationId": None,
    "schedule": {
        "startAt": "2026-05-01T09:00:00Z",
        "endAt": "2026-05-15T23:59:59Z",
        "timezone": "America/New_York",
    },
    "recurring": None,
    "utm": {
        "enabled": True,
        "source": "",
        "medium": "",
        "campaign": "",
        "content": "",
    },
    "status": "draft",
    "statusReason": "",
    "state": "draft",
    "nextRuns": [],
    "reach": None,
    "createdAt": "2026-04-20T08:15:00Z",
    "updatedAt": "2026-04-20T08:15:00Z",
    "deletedAt": None,
    "abTest": None,
    "resend": None,
    "sendTime": None,
    "sendWindow": None,
}
CAMPAIGN_ANSWER = OpenApiExample(
    "Campaign", summary="The campaign", response_only=True, value=CAMPAIGN_VALUE
)
# A list answer's example is one item: the schema generator shows it inside the list.
CAMPAIGN_LIST = OpenApiExample(
    "Campaigns", summary="Campaigns, newest first", response_only=True, value=CAMPAIGN_VALUE
)
CAMPAIGN_DELETED = OpenApiExample(
    "Deleted",
    summary="Soft deleted: state deleted, history kept",
    response_only=True,
    value={
        **CAMPAIGN_VALUE,
        "status": "cancelled",
        "state": "deleted",
        "deletedAt": "2026-04-21T10:00:00Z",
    },
)

PURGED = OpenApiExample(
    "Purged",
    summary="A deleted campaign removed for good",
    response_only=True,
    value={
        "campaignId": 56,
        "externalId": "camp-1",
        "name": "Spring 2026 Launch",
        "deletedAt": "2026-04-21T10:00:00+00:00",
        "runs": 1,
        "deliveries": 1843,
        "dryRun": False,
    },
)
PLATFORMS = OpenApiExample(
    "Platforms",
    summary="Channels and whether they are connected",
    response_only=True,
    value={
        "id": "email",
        "name": "Email",
        "connected": True,
        "detail": "SMTP relay (smtp.example.com)",
        "social": False,
    },
)
CAMPAIGN_TYPES = OpenApiExample(
    "Campaign types",
    summary="One of them: the one-shot blast",
    response_only=True,
    value={
        "id": "blast",
        "name": "Blast",
        "description": "Sends once to the whole audience, now or at schedule.startAt.",
        "aliases": ["multi-channel", "multichannel"],
    },
)
SOCIAL_PROFILES = OpenApiExample(
    "Social profile",
    summary="An account a connected integration lists (empty until one is connected)",
    response_only=True,
    value={"id": "1789", "platform": "facebook", "name": "Shop Example"},
)


def _metrics(sends: int, opens: int, clicks: int, revenue: float) -> dict:
    return {
        "recipients": sends,
        "sends": sends,
        "deliveries": sends - 12,
        "opens": opens + 40,
        "uniqueOpens": opens,
        "clicks": clicks + 9,
        "uniqueClicks": clicks,
        "machineOpens": 35,
        "machineClicks": 4,
        "replies": 0,
        "bounces": 12,
        "complaints": 1,
        "unsubscribes": 3,
        "failures": 0,
        "skipped": 2,
        "conversions": 18,
        "revenue": revenue,
        "openRate": round(opens / (sends - 12), 4),
        "clickRate": round(clicks / (sends - 12), 4),
        "pending": 0,
    }


EMAIL_METRICS = _metrics(1200, 540, 130, 2450.5)
HOUR = {"hour": "2026-05-01T09:00:00-04:00", "opens": 310, "clicks": 72}
ANALYTICS = OpenApiExample(
    "Campaign analytics",
    summary="Sends, opens, clicks, bounces, conversions, revenue; per channel and per run",
    response_only=True,
    value={
        "campaignId": 56,
        "externalId": "camp-1",
        "name": "Spring 2026 Launch",
        "status": "completed",
        "deleted": False,
        **EMAIL_METRICS,
        "channels": {"email": EMAIL_METRICS},
        "runs": [
            {
                "id": 91,
                "number": 1,
                "kind": "send",
                "parentRunId": None,
                "status": "completed",
                "reach": 1202,
                "startedAt": "2026-05-01T13:00:00+00:00",
                "finishedAt": "2026-05-01T13:04:10+00:00",
                **EMAIL_METRICS,
                "channels": {"email": EMAIL_METRICS},
            }
        ],
        "timeline": [HOUR],
        "links": [{"url": "https://shop.example.com/spring", "clicks": 120, "uniqueClicks": 101}],
        "refreshedAt": "2026-05-02T00:00:05+00:00",
        "abTest": None,
    },
)
AGGREGATED_REQUEST = OpenApiExample(
    "Aggregated metrics",
    summary="Three campaigns over April (the campaigns document)",
    description="The document's example: campaign external keys (numeric ids, as numbers or "
    "digit strings, work too). A key that names no campaign is a 400 naming its position; "
    "a number that names none is listed in unknownCampaignIds.",
    request_only=True,
    value={
        "campaignIds": ["camp-1", "camp-2", "camp-3"],
        "range": {"start": "2026-04-01", "end": "2026-04-30"},
    },
)
AGGREGATED_ANSWER = OpenApiExample(
    "Rolled up",
    summary="Totals, per channel, per campaign and per hour",
    response_only=True,
    value={
        "campaignIds": [56],
        "unknownCampaignIds": [987],
        "range": {
            "start": "2026-04-01",
            "end": "2026-04-30",
            "timezone": "America/New_York",
            "basis": "runs started in the range, both days included",
        },
        "runs": 1,
        **EMAIL_METRICS,
        "channels": {"email": EMAIL_METRICS},
        "campaigns": [{"campaignId": 56, **EMAIL_METRICS}],
        "timeline": [HOUR],
    },
)
DASHBOARD = OpenApiExample(
    "Last 30 days",
    summary="The dashboard's last-30-days tiles",
    response_only=True,
    value={
        "days": 30,
        "range": {"start": "2026-04-02T10:00:00+00:00", "end": "2026-05-02T10:00:00+00:00"},
        "runs": 4,
        **EMAIL_METRICS,
        "channels": {"email": EMAIL_METRICS},
        "runningCampaigns": 1,
        "scheduledCampaigns": 2,
        "running": [
            {
                "campaignId": 57,
                "name": "May newsletter",
                "runId": 93,
                "runStatus": "running",
                "total": 5000,
                "done": 3100,
                "percent": 62,
            }
        ],
    },
)
HEALTH = OpenApiExample(
    "Healthy",
    summary="Scheduler alive, queue and last sends",
    response_only=True,
    value={
        "status": "ok",
        "scheduler": {
            "heartbeatAt": "2026-05-02T10:00:00Z",
            "alive": True,
            "staleAfterSeconds": 120,
        },
        "queueDepth": 1900,
        "campaigns": {"scheduled": 2, "running": 1},
        "lastSendAt": {"email": "2026-05-02T09:59:58Z", "sms": None},
    },
)

# --- eSputnik v1 messages ----------------------------------------------------------

SMARTSEND = OpenApiExample(
    "Send prepared message",
    summary="Send prepared message (the eSputnik document)",
    description="The document's request body with its placeholders filled in: `locator` is "
    "the recipient's address and `jsonParam` the data for $data, a JSON object in a string "
    "(its quotes escaped).",
    request_only=True,
    value={
        "recipients": [
            {
                "locator": "test@gmail.com",
                "jsonParam": '{"discount": "5%", "link": "https://example.site.com/items_for_sale"}',
            }
        ]
    },
)
SEND_ANSWER = OpenApiExample(
    "Scheduled for sending",
    summary="One recipient: results is the object (the eSputnik document's answer)",
    description="The document's answer, verbatim: ids are strings.",
    response_only=True,
    value={
        "id": "0",
        "results": {
            "id": "0",
            "locator": "test@gmail.com",
            "status": "OK",
            "requestId": REQUEST_ID,
        },
    },
)
SEND_ANSWER_SEVERAL = OpenApiExample(
    "Scheduled for sending, several recipients",
    summary="Several recipients: results is a list, in the order given",
    description="A refused recipient is an ERROR with a `message`; the others are queued.",
    response_only=True,
    value={
        "id": "7",
        "results": [
            {
                "id": "1024",
                "locator": "test@gmail.com",
                "status": "OK",
                "requestId": REQUEST_ID,
            },
            {
                "id": None,
                "locator": "not-an-address",
                "status": "ERROR",
                "requestId": None,
                "message": "The email address is not valid. It must have exactly one @-sign.",
            },
        ],
    },
)
EMAIL = OpenApiExample(
    "Send email message",
    summary="An email with a Velocity placeholder",
    request_only=True,
    value={
        "from": '"Shop" <news@shop.example.com>',
        "subject": "Your discount",
        "htmlText": "<p>Hello $!contact.firstName, your discount: $!data.get('discount')</p>",
        "emails": ["test@gmail.com"],
        "tags": ["discount"],
        "externalRequestId": "order-100500",
    },
)
SMS = OpenApiExample(
    "Send SMS message",
    summary="An SMS to one number",
    request_only=True,
    value={"from": "Shop", "text": "Your order has shipped", "phoneNumbers": ["380942583691"]},
)
SMS_ANSWER = OpenApiExample(
    "Queued",
    summary="One number: results is the object",
    response_only=True,
    value={
        "id": "2",
        "results": {
            "id": "1024",
            "locator": "380942583691",
            "status": "OK",
            "requestId": "9b7c1f2e-5a44-4c1e-8f0d-6f2b9e3a7d10",
        },
        "count": 1,
    },
)
SMS_GROUP_ANSWER = OpenApiExample(
    "Queued to a group",
    summary="A group (or several numbers): results is a list of the numbers given",
    response_only=True,
    value={"id": "3", "results": [], "count": 1250},
)
VIBER = OpenApiExample(
    "Send Viber message",
    summary="A Viber message to one contact's number",
    request_only=True,
    value={"from": "Shop", "text": "Your order has shipped", "phoneNumbers": ["380942583691"]},
)
VIBER_ANSWER = OpenApiExample(
    "Queued for Viber",
    summary="One number: results is the object",
    response_only=True,
    value={
        "id": "4",
        "results": {
            "id": "1024",
            "locator": "380942583691",
            "status": "OK",
            "requestId": "5d0c8a4e-2b1f-4f7a-9c3e-1a2b3c4d5e6f",
        },
    },
)
STATUS_ANSWER = OpenApiExample(
    "Get single message status",
    summary="One requestId: results is the object (the eSputnik document's answer)",
    description="The document's answer, verbatim: `failed` and `delivered` are the strings "
    '"true" and "false".',
    response_only=True,
    value={
        "results": {
            "status": "DELIVERED",
            "requestId": REQUEST_ID,
            "failed": "false",
            "delivered": "true",
        }
    },
)
STATUS_ANSWER_SEVERAL = OpenApiExample(
    "Get single message status, several ids",
    summary="Several requestIds: results is a list, in the order asked",
    response_only=True,
    value={
        "results": [
            {
                "id": "1024",
                "requestId": REQUEST_ID,
                "status": "DELIVERED",
                "failed": "false",
                "delivered": "true",
            },
            {
                "id": "1025",
                "requestId": "9b7c1f2e-5a44-4c1e-8f0d-6f2b9e3a7d10",
                "status": "BOUNCED",
                "failed": "true",
                "delivered": "false",
                "message": "550 5.1.1 no such user",
            },
        ]
    },
)
