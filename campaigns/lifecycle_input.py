"""The CRM campaigns API's campaign body (`name`, `externalId`, `type`, `channels`,
`audienceId` | `audience`, `templateId`, `integrationId` (the provider contract's "Email
service" field), `schedule`, `recurring`, `status`, plus Herald's `steps`, `milestone` and
`utm`) checked and turned into model values. Shared by the API and the marketer pages
through the lifecycle services, so a rule is written once. Every problem names the body's field.

`audienceId`, `templateId` and a drip step's `templateId` take Herald's numeric id or the
object's external key (`"aud-spring-prospects"`, config.core.external_keys); `externalId` is
the campaign's own key."""

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from celery.schedules import crontab
from cron_descriptor import get_description
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime, parse_duration

from campaigns.models import Campaign, CampaignType
from campaigns.send_rules import SendWindow, local_time_clean
from campaigns.utm import UtmInvalid, utm_input_clean
from config.core.errors import FieldError, HeraldError
from config.core.external_keys import by_id_or_key, external_key_clean, external_key_taken
from config.core.models import Integration, Organisation
from contacts.filters.compiler import FilterError, validate_filter
from contacts.models import ChannelType, CustomField, CustomFieldType, Segment
from templates.models import MessageTemplate

# Social platforms the CRM campaigns API names as campaign channels. One is connected when an
# enabled integration whose kind publishes to it (campaigns.delivery.providers.social_accounts)
# lists an account there; until then a campaign may list it (its documentation: "the campaign
# saves but cannot be launched on that channel"), launch refuses it by name, and
# social-profiles answers an empty list.
SOCIAL_PLATFORMS = {
    "facebook": "Facebook",
    "instagram": "Instagram",
    "linkedin": "LinkedIn",
    "twitter": "X (Twitter)",
    "tiktok": "TikTok",
}
CAMPAIGN_CHANNELS = {**dict(ChannelType.choices), **SOCIAL_PLATFORMS}

# The API's documented example posts `"type": "multi-channel"`; every Herald campaign may use
# several channels, so that word names the one-shot blast (its discovery list has no such type).
TYPE_ALIASES = {"multi-channel": CampaignType.BLAST, "multichannel": CampaignType.BLAST}
STATUS_ON_WRITE = {"draft", "scheduled", "running", "paused", "cancelled"}
MAX_STEPS = 50
SEND_AT_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
# Path words under campaigns/ that a campaign's key would shadow.
RESERVED_KEYS = ("aggregated-metrics",)


class CampaignInvalid(HeraldError):
    """Bad campaign input: `errors` maps a body field (`schedule.startAt`) to a message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors

    def body(self) -> dict:
        # One list of messages per field, as the API's other validation errors.
        return {field: [message] for field, message in self.errors.items()}


@dataclass
class CampaignInput:
    """Only the keys the body carried (`given`), with their checked model values."""

    values: dict[str, Any] = field(default_factory=dict)
    steps: list[dict] | None = None
    status: str | None = None


def cron_fields(expression: str) -> dict[str, str]:
    """A 5-field cron expression as CrontabSchedule/celery keyword arguments."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            f"not {len(parts)}"
        )
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def cron_check(expression: str) -> crontab:
    """Parse with celery's own parser: what beat will fire is what we accept."""
    schedule = crontab(**cron_fields(expression))
    # Celery parses each field alone; a day that never comes (31 February) would leave the
    # schedule silent forever, so make sure it fires at least once in the next 5 years.
    if not cron_next(expression, "UTC", count=1):
        raise ValueError("this schedule never fires (no such date)")
    return schedule


def cron_describe(expression: str) -> str:
    try:
        return get_description(expression)
    except Exception:  # a description is a nicety; the cron was already validated
        return expression


def cron_next(
    expression: str, tz_name: str, *, count: int = 3, after: dt.datetime | None = None
) -> list[dt.datetime]:
    """The next `count` fire times, computed minute-set by day so that no schedule (yearly,
    leap days) costs more than a few thousand steps; day-of-month and day-of-week must both
    match, as celery's crontab does."""
    schedule = crontab(**cron_fields(expression))
    tz = zoneinfo.ZoneInfo(tz_name)
    start = (after or timezone.now()).astimezone(tz)
    found: list[dt.datetime] = []
    day = start.date()
    times = sorted((h, m) for h in schedule.hour for m in schedule.minute)
    for _ in range(366 * 5):
        if (
            day.month in schedule.month_of_year
            and day.day in schedule.day_of_month
            and (day.isoweekday() % 7) in schedule.day_of_week
        ):
            for hour, minute in times:
                moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                if moment > start:
                    found.append(moment)
                    if len(found) == count:
                        return found
        day += dt.timedelta(days=1)
    return found


def _id(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise CampaignInvalid({name: "must be a numeric id"})
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise CampaignInvalid({name: f"must be a numeric id, not {value!r}"})


def _instant(value: Any, name: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise CampaignInvalid(
            {name: f"must be an ISO 8601 timestamp (2026-05-01T09:00:00Z), not {value!r}"}
        )
    return parsed


def _time_zone(value: Any, name: str) -> str:
    if not isinstance(value, str) or value not in zoneinfo.available_timezones():
        raise CampaignInvalid({name: f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)"})
    return value


def _channels(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise CampaignInvalid({"channels": "must be a non-empty list of channels"})
    channels: list[str] = []
    for position, channel in enumerate(value):
        if not isinstance(channel, str) or channel.lower() not in CAMPAIGN_CHANNELS:
            raise CampaignInvalid(
                {
                    f"channels.{position}": f"unknown channel {channel!r}; known: "
                    + ", ".join(CAMPAIGN_CHANNELS)
                }
            )
        if channel.lower() not in channels:
            channels.append(channel.lower())
    return channels


def _id_or_key(value: Any, name: str) -> Any:
    """A reference in a body: a numeric id (number or digits) or an external key (string)."""
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise CampaignInvalid({name: f"must be a numeric id or an external key, not {value!r}"})
    return value


def template_resolve(value: Any, name: str) -> MessageTemplate:
    """The template a body field names by numeric id or external key; else a 400 naming it."""
    template = by_id_or_key(MessageTemplate.objects.all(), _id_or_key(value, name))
    if template is None:
        raise CampaignInvalid({name: f"no template with id or external key {value!r}"})
    return template


def _external_key(value: Any, current_pk: int | None) -> str | None:
    try:
        key = external_key_clean(value, field="externalId", reserved=RESERVED_KEYS)
    except FieldError as exc:
        raise CampaignInvalid({exc.field: exc.message}) from None
    if external_key_taken(Campaign, key, pk=current_pk):
        raise CampaignInvalid({"externalId": f"another campaign has the external key {key!r}"})
    return key


def _template_fits(template: MessageTemplate, channels: list[str], name: str) -> None:
    """One template serves one messaging channel: each messaging channel of the campaign
    must be the template's (social channels carry no template and are refused at launch)."""
    messaging = [c for c in channels if c in ChannelType.values]
    mismatched = [c for c in messaging if c != template.channel]
    if mismatched or (messaging and template.channel not in messaging):
        raise CampaignInvalid(
            {
                name: f"template {template.pk} is a {template.channel} template but the "
                f"campaign's channels are {', '.join(channels)}"
            }
        )


def _integration(value: Any) -> Integration:
    integration = Integration.objects.filter(pk=_id(value, "integrationId")).first()
    if integration is None:
        raise CampaignInvalid({"integrationId": f"no integration with id {value!r}"})
    return integration


def _integration_fits(integration: Integration, channels: list[str]) -> None:
    """The named integration must connect every messaging channel of the campaign. (A
    disabled one is accepted: the campaign saves and its launch is refused with the reason,
    as for an unconnected channel.)"""
    missing = [c for c in channels if c in ChannelType.values and c not in integration.channels]
    if missing:
        connects = ", ".join(integration.channels) or "no channel"
        raise CampaignInvalid(
            {
                "integrationId": f"integration {integration.pk} ({integration.name}) does not "
                f"connect {', '.join(missing)}; it connects {connects}"
            }
        )


def _audience(value: Any) -> dict:
    if not isinstance(value, dict):
        raise CampaignInvalid({"audience": 'must be {"type": "dynamic", "filter": {...}}'})
    if value.get("type", "dynamic") != "dynamic":
        raise CampaignInvalid(
            {
                "audience.type": "only 'dynamic' inline audiences exist; "
                "use audienceId for a saved one"
            }
        )
    filter_ = value.get("filter")
    if not isinstance(filter_, dict):
        raise CampaignInvalid({"audience.filter": "must be a filter object"})
    try:
        validate_filter(filter_)
    except FilterError as exc:
        raise CampaignInvalid({f"audience.filter.{exc.path}": exc.message}) from None
    return filter_


def _steps(value: Any, channels: list[str]) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise CampaignInvalid({"steps": "a drip campaign needs a non-empty list of steps"})
    if len(value) > MAX_STEPS:
        raise CampaignInvalid({"steps": f"at most {MAX_STEPS} steps"})
    steps = []
    for position, step in enumerate(value):
        prefix = f"steps.{position}"
        if not isinstance(step, dict):
            raise CampaignInvalid({prefix: 'must be {"templateId": ..., "delay": "P1D"}'})
        template = template_resolve(step.get("templateId"), f"{prefix}.templateId")
        _template_fits(template, channels, f"{prefix}.templateId")
        raw = step.get("delay", "PT0S")
        delay = parse_duration(raw) if isinstance(raw, str) else None
        if delay is None or delay < dt.timedelta(0):
            raise CampaignInvalid(
                {f"{prefix}.delay": f"must be an ISO 8601 duration like P2D or PT6H, not {raw!r}"}
            )
        steps.append({"position": position, "template": template, "delay": delay})
    return steps


def _milestone(value: Any) -> dict:
    if not isinstance(value, dict):
        raise CampaignInvalid(
            {
                "milestone": 'must be {"fieldId": 12, "offsetDays": 0, "yearly": true, '
                '"sendAt": "09:00"}'
            }
        )
    field_id = _id(value.get("fieldId"), "milestone.fieldId")
    if not CustomField.objects.filter(pk=field_id, type=CustomFieldType.DATE).exists():
        raise CampaignInvalid({"milestone.fieldId": f"no date custom field with id {field_id}"})
    offset = value.get("offsetDays", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or abs(offset) > 3660:
        raise CampaignInvalid({"milestone.offsetDays": "must be a whole number of days"})
    yearly = value.get("yearly", True)
    if not isinstance(yearly, bool):
        raise CampaignInvalid({"milestone.yearly": "must be true or false"})
    send_at = value.get("sendAt", "09:00")
    if not isinstance(send_at, str) or not SEND_AT_RE.match(send_at):
        raise CampaignInvalid({"milestone.sendAt": "must be a time of day HH:MM (24-hour)"})
    return {"fieldId": field_id, "offsetDays": offset, "yearly": yearly, "sendAt": send_at}


def _send_rules(data: dict) -> dict[str, Any]:
    """`sendTime` ({"localTime": "10:00"}) and `sendWindow` ({"from", "to", "days"}), when
    the body carries them (null clears them)."""
    values: dict[str, Any] = {}
    try:
        if "sendTime" in data:
            local = local_time_clean(data["sendTime"])
            values["send_local_time"] = (
                None if local is None else dt.time.fromisoformat(local + ":00")
            )
        if "sendWindow" in data:
            window = SendWindow.clean(data["sendWindow"])
            values["send_window"] = None if window is None else window.as_json()
    except FieldError as exc:
        raise CampaignInvalid({exc.field: exc.message}) from None
    return values


def _default_time_zone() -> str:
    return Organisation.load().time_zone or "UTC"


def campaign_input_clean(data: Any, *, current: dict | None = None) -> CampaignInput:
    """Check a campaign body. `current` holds the saved values for an update, so that rules
    spanning fields (template vs channels, endAt after startAt) see the merged campaign."""
    if not isinstance(data, dict):
        raise CampaignInvalid({"body": "must be a JSON object"})
    current = current or {}
    creating = not current
    out = CampaignInput()
    values = out.values

    if "name" in data or creating:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise CampaignInvalid({"name": "is required"})
        if len(name.strip()) > 200:
            raise CampaignInvalid({"name": "at most 200 characters"})
        values["name"] = name.strip()

    # A client moving from a system with string ids may create with its own `id`
    # ("camp-1"): taken as the key when no externalId is given. A numeric `id` (one sent
    # back from a GET) is read-only and ignored, as every answer-only key is.
    given_id = data.get("id")
    keyed_by_id = isinstance(given_id, str) and not given_id.strip().isdigit()
    if creating and "externalId" not in data and keyed_by_id:
        data = {**data, "externalId": given_id}
    if "externalId" in data:
        values["external_key"] = _external_key(data["externalId"], current.get("pk"))

    if "type" in data or creating:
        raw_type = data.get("type", CampaignType.BLAST)
        kind = TYPE_ALIASES.get(raw_type, raw_type) if isinstance(raw_type, str) else None
        if kind not in CampaignType.values:
            raise CampaignInvalid(
                {
                    "type": f"unknown type {raw_type!r}; one of "
                    + ", ".join(CampaignType.values)
                    + " (see campaign-types)"
                }
            )
        values["type"] = kind
    kind = values.get("type", current.get("type"))

    if "channels" in data or creating:
        values["channels"] = _channels(data.get("channels"))
    channels = values.get("channels", current.get("channels", []))

    if "audienceId" in data and data["audienceId"] not in (None, ""):
        if data.get("audience"):
            raise CampaignInvalid({"audienceId": "give audienceId or audience, not both"})
        reference = _id_or_key(data["audienceId"], "audienceId")
        segment = by_id_or_key(Segment.objects.all(), reference)
        if segment is None:
            raise CampaignInvalid(
                {"audienceId": f"no audience (segment) with id or external key {reference!r}"}
            )
        values.update(segment=segment, audience_filter=None)
    elif data.get("audience") is not None:
        values.update(segment=None, audience_filter=_audience(data["audience"]))
    elif "audienceId" in data or "audience" in data:
        values.update(segment=None, audience_filter=None)

    if "templateId" in data:
        if data["templateId"] in (None, ""):
            values["template"] = None
        else:
            values["template"] = template_resolve(data["templateId"], "templateId")
    template = values.get("template", current.get("template"))
    if template is not None and ("templateId" in data or "channels" in data):
        _template_fits(template, channels, "templateId")

    if "integrationId" in data:
        if data["integrationId"] in (None, ""):
            values["integration"] = None
        else:
            values["integration"] = _integration(data["integrationId"])
    integration = values.get("integration", current.get("integration"))
    if integration is not None and ("integrationId" in data or "channels" in data):
        _integration_fits(integration, channels)

    if "schedule" in data:
        schedule = data["schedule"] or {}
        if not isinstance(schedule, dict):
            raise CampaignInvalid({"schedule": "must be {startAt, endAt, timezone}"})
        values["timezone"] = _time_zone(
            schedule.get("timezone") or current.get("timezone") or _default_time_zone(),
            "schedule.timezone",
        )
        start = _instant(schedule.get("startAt"), "schedule.startAt")
        end = _instant(schedule.get("endAt"), "schedule.endAt")
        # A timestamp without an offset is wall-clock time in the campaign's time zone.
        tz = zoneinfo.ZoneInfo(values["timezone"])
        if start is not None and timezone.is_naive(start):
            start = start.replace(tzinfo=tz)
        if end is not None and timezone.is_naive(end):
            end = end.replace(tzinfo=tz)
        # A little slack: a client that posts "now" must not be refused for network latency.
        unchanged = start is not None and start == current.get("start_at")
        if (
            not unchanged
            and start is not None
            and start
            < timezone.now()
            - dt.timedelta(seconds=getattr(settings, "HERALD_SCHEDULE_SLACK_SECONDS", 60))
        ):
            raise CampaignInvalid({"schedule.startAt": "is in the past"})
        if end is not None and end <= (start or timezone.now()):
            raise CampaignInvalid(
                {"schedule.endAt": "must be after startAt" if start else "is in the past"}
            )
        values.update(start_at=start, end_at=end)

    if creating and "timezone" not in values:
        values["timezone"] = _default_time_zone()

    if "recurring" in data:
        recurring = data["recurring"]
        if recurring in (None, {}):
            values["cron"] = ""
        else:
            cron = recurring.get("cron") if isinstance(recurring, dict) else None
            if not isinstance(cron, str) or not cron.strip():
                raise CampaignInvalid({"recurring.cron": 'is required, e.g. "0 9 * * 1"'})
            try:
                cron_check(cron.strip())
            except ValueError as exc:
                raise CampaignInvalid({"recurring.cron": f"invalid cron: {exc}"}) from None
            values["cron"] = " ".join(cron.split())
            # recurring implies the recurring type when the body did not say otherwise.
            if "type" not in data and creating:
                values["type"] = kind = CampaignType.RECURRING
    cron = values.get("cron", current.get("cron", ""))
    if kind == CampaignType.RECURRING and not cron:
        raise CampaignInvalid({"recurring.cron": "a recurring campaign needs a cron schedule"})

    if "steps" in data and data["steps"] is not None:
        out.steps = _steps(data["steps"], channels)
    elif kind == CampaignType.DRIP and creating:
        raise CampaignInvalid({"steps": "a drip campaign needs a non-empty list of steps"})

    if "milestone" in data and data["milestone"] is not None:
        values["milestone"] = _milestone(data["milestone"])
    elif kind == CampaignType.MILESTONE and not current.get("milestone"):
        raise CampaignInvalid({"milestone": "a milestone campaign needs its milestone settings"})

    if "utm" in data:
        name = values.get("name", current.get("name", ""))
        try:
            values.update(utm_input_clean(data["utm"], name=name, channels=channels))
        except UtmInvalid as exc:
            raise CampaignInvalid({exc.field: exc.message}) from None
    values.update(_send_rules(data))
    if values.get("send_local_time") and kind not in (CampaignType.BLAST, CampaignType.RECURRING):
        raise CampaignInvalid(
            {
                "sendTime": "a local send time is for blast and recurring campaigns (drip steps "
                "keep their delays; a milestone campaign has milestone.sendAt)"
            }
        )

    if "status" in data and data["status"] not in (None, ""):
        if data["status"] not in STATUS_ON_WRITE:
            raise CampaignInvalid(
                {"status": f"must be one of {', '.join(sorted(STATUS_ON_WRITE))}"}
            )
        out.status = data["status"]
    return out
