"""The campaign form of the marketer pages. It only shapes input: `campaign_body()` turns it
into the CRM campaigns API's body that campaigns.lifecycle checks and saves, so the pages and
the API share one set of rules and one set of error messages."""

import json
import zoneinfo
from collections.abc import Iterable
from typing import Any

from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.lifecycle import channel_connection
from campaigns.lifecycle_input import CAMPAIGN_CHANNELS
from campaigns.models import Campaign, CampaignType
from campaigns.utm import FIELDS as UTM_FIELDS
from campaigns.utm import utm_json
from config.core.external_keys import external_key_form_field
from config.core.models import Integration, Organisation
from config.core.parsers import json_text_load
from contacts.models import ChannelType, Segment
from templates.models import MessageTemplate


def channel_choices(keep: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The channels the organisation has connected (the launch rule's channel_connection, as
    the platforms API reports them). A channel in `keep` (an edited campaign's own) stays
    offered, marked, so editing never drops it silently."""
    keep = set(keep)
    choices = []
    for channel, name in CAMPAIGN_CHANNELS.items():
        connected, _how = channel_connection(channel)
        if connected:
            choices.append((channel, name))
        elif channel in keep:
            choices.append((channel, gettext("%(name)s (not connected)") % {"name": name}))
    return choices


LOCAL_INPUT = "%Y-%m-%dT%H:%M"

# Lifecycle error keys (CRM campaigns API body paths) → form fields; longest prefix wins.
ERROR_FIELDS = {
    "name": "name",
    "externalId": "external_key",
    "type": "type",
    "channels": "channels",
    "audienceId": "segment",
    "audience": "audience_filter",
    "templateId": "template",
    "integrationId": "integration",
    # The launch rule's name for it (campaigns.lifecycle LaunchRefused).
    "integration": "integration",
    "schedule.startAt": "start_at",
    "schedule.endAt": "end_at",
    "schedule.timezone": "timezone",
    "schedule": "start_at",
    "recurring": "cron",
    "steps": "steps",
    "milestone": "milestone",
}


def error_field(key: str) -> str | None:
    for prefix in sorted(ERROR_FIELDS, key=len, reverse=True):
        if key == prefix or key.startswith(prefix + "."):
            return ERROR_FIELDS[prefix]
    return None


# Offered right after the organisation's own zone, before the long alphabetical list.
COMMON_ZONES = (
    "Europe/Kyiv",
    "Europe/Warsaw",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Vilnius",
    "Europe/Istanbul",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Dubai",
    "Asia/Tokyo",
    "UTC",
)
# tzdata ships aliases and build artefacts no marketer means: leave them out of the list.
JUNK_ZONES = {"Factory", "localtime", "posixrules"}
JUNK_PREFIXES = ("Etc/", "right/", "posix/", "SystemV/")


def time_zones(first: str = "") -> list[str]:
    """Zone names for the picker: `first` (the organisation's), the common ones, then every
    other real zone alphabetically."""
    available = zoneinfo.available_timezones()
    rest = sorted(
        name
        for name in available
        if name not in JUNK_ZONES and not name.startswith(JUNK_PREFIXES) and "/" in name
    )
    ordered: list[str] = []
    for name in [first, *COMMON_ZONES, *rest]:
        if name and (name in available or name == "UTC") and name not in ordered:
            ordered.append(name)
    return ordered


class TimeZoneField(forms.CharField):
    """A searchable zone: a text box with a datalist of zones (campaign_form.html); the
    server accepts only names zoneinfo knows."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "widget",
            forms.TextInput(
                attrs={"list": "time-zones", "autocomplete": "off", "spellcheck": "false"}
            ),
        )
        super().__init__(max_length=64, **kwargs)

    def clean(self, value):
        value = (super().clean(value) or "").strip()
        if value not in zoneinfo.available_timezones():
            raise forms.ValidationError(
                _("Pick a time zone from the list, e.g. Europe/Kyiv."), code="unknown_zone"
            )
        return value


class JSONText(forms.CharField):
    """A textarea holding JSON; empty means None."""

    def __init__(self, *, kind: type, example: str, **kwargs):
        self.kind = kind
        self.example = example
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}))
        super().__init__(required=False, **kwargs)

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text or not text.strip():
            return None
        try:
            parsed = json_text_load(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                gettext("Not valid JSON (line %(line)s, column %(column)s: %(problem)s).")
                % {"line": exc.lineno, "column": exc.colno, "problem": exc.msg}
            ) from None
        if not isinstance(parsed, self.kind):
            shape = gettext("a JSON list") if self.kind is list else gettext("a JSON object")
            raise forms.ValidationError(
                gettext("Must be %(shape)s, e.g. %(example)s")
                % {"shape": shape, "example": self.example}
            )
        return parsed

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict | list):
            return json.dumps(value, indent=2)
        return value


class IntegrationSelect(forms.Select):
    """Each option carries the channels its integration connects (data-channels), so the page
    can grey out the ones that do not serve the channels ticked (campaign_form.js); the
    lifecycle's check on save stays the rule."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.channels: dict[int, list[str]] = {}
        self.attrs["data-messaging"] = " ".join(ChannelType.values)

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        pk = getattr(value, "value", value)
        if pk in self.channels:
            option["attrs"]["data-channels"] = " ".join(self.channels[pk])
        return option


class IntegrationChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Integration) -> str:
        channels = ", ".join(obj.channels) or gettext("no channel")
        return f"{obj.name} ({channels})" + ("" if obj.enabled else gettext(" — disabled"))


def integration_queryset(current_id: int | None = None):
    """Enabled integrations; a campaign's current one stays listed even once disabled, so
    editing the campaign neither loses it silently nor refuses the form."""
    enabled = Q(enabled=True)
    if current_id:
        enabled |= Q(pk=current_id)
    return Integration.objects.filter(enabled).exclude(channels=[]).order_by("name")


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    # Checked by the lifecycle (format, uniqueness), as for the API's externalId.
    external_key = external_key_form_field("camp-1")
    type = forms.ChoiceField(choices=CampaignType.choices, initial=CampaignType.BLAST)
    channels = forms.MultipleChoiceField(
        choices=channel_choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ChannelType.EMAIL],
        label=_("Channels"),
    )
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.order_by("name"),
        required=False,
        empty_label=_("— inline filter below —"),
        label=_("Audience (saved segment)"),
    )
    audience_filter = JSONText(
        kind=dict,
        example='{"tags": {"$in": ["vip"]}}',
        label=_("…or an inline filter (JSON)"),
        help_text=_(
            'A contact filter in JSON, e.g. {"tags": {"$in": ["prospect", "vip"]}}. '
            "Filters in the eSputnik-compatible format work too: "
            '{"datatype": "contact", "where": {"tags": {"$in": ["vip"]}}}.'
        ),
    )
    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.order_by("name"),
        required=False,
        empty_label="—",
        label=_("Template"),
    )
    integration = IntegrationChoice(
        queryset=Integration.objects.none(),
        widget=IntegrationSelect,
        required=False,
        empty_label=_("— each channel's default —"),
        label=_("Email service"),
        help_text=_(
            "The service the campaign goes through; it must connect every channel of the campaign."
        ),
    )
    start_at = forms.DateTimeField(
        required=False,
        label=_("Start at"),
        input_formats=[LOCAL_INPUT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
        help_text=_("Wall-clock time in the campaign's time zone. Empty: launch by hand."),
    )
    end_at = forms.DateTimeField(
        required=False,
        label=_("End at"),
        input_formats=[LOCAL_INPUT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
    )
    timezone = TimeZoneField(
        initial="UTC",
        label=_("Time zone"),
        help_text=_("Type to search, e.g. Kyiv or New_York."),
    )
    cron = forms.CharField(
        required=False,
        max_length=100,
        label=_("Repeat (cron)"),
        help_text=_(
            "minute hour day-of-month month day-of-week, e.g. 0 9 * * 1 (Mondays at 09:00)."
        ),
    )
    steps = JSONText(
        kind=list,
        example='[{"templateId": 3, "delay": "P0D"}, {"templateId": 4, "delay": "P2D"}]',
        label=_("Drip steps (JSON)"),
        help_text=_(
            'Drip campaigns: [{"templateId": 3, "delay": "P0D"}, '
            '{"templateId": 4, "delay": "P2D"}] — template numbers and waits (P2D: two '
            "days), each wait counted from the previous step."
        ),
    )
    milestone = JSONText(
        kind=dict,
        example='{"fieldId": 12, "offsetDays": 0, "yearly": true, "sendAt": "09:00"}',
        label=_("Milestone (JSON)"),
        help_text=_(
            'Milestone campaigns: {"fieldId": 12, "offsetDays": 0, "yearly": true, '
            '"sendAt": "09:00"} — a date custom field (e.g. a birthday), checked daily.'
        ),
    )

    def __init__(
        self,
        *args,
        integration_id: int | None = None,
        channels: Iterable[str] = (),
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.fields["type"].label = _("Type")
        self.fields["name"].label = _("Name")
        keep = [*channels, *(self.initial.get("channels") or ())]
        self.fields["channels"].choices = channel_choices(keep=keep)
        self.zone_names = time_zones(Organisation.load().time_zone)
        current = integration_id or self.initial.get("integration")
        field = self.fields["integration"]
        field.queryset = integration_queryset(current)
        field.widget.channels = dict(field.queryset.values_list("pk", "channels"))

    def clean(self):
        data = super().clean()
        if data.get("segment") and data.get("audience_filter"):
            self.add_error("audience_filter", _("Choose a segment or an inline filter, not both."))
        # The repetition belongs to recurring campaigns only: another type's form may still
        # post the hidden field's old value, which is ignored rather than saved.
        if data.get("type") == CampaignType.RECURRING:
            if not (data.get("cron") or "").strip():
                self.add_error(
                    "cron", _("A recurring campaign needs a repetition, e.g. 0 9 * * 1.")
                )
        else:
            data["cron"] = ""
        return data

    def campaign_body(self) -> dict:
        """The cleaned form as a CRM campaigns API body (no status: saving never launches)."""
        data = self.cleaned_data
        body: dict[str, Any] = {
            "name": data["name"],
            "externalId": data.get("external_key") or None,
            "type": data["type"],
            "channels": list(data["channels"]),
            "templateId": data["template"].pk if data.get("template") else None,
            "integrationId": data["integration"].pk if data.get("integration") else None,
            "schedule": {
                "startAt": _wall_clock(data.get("start_at")),
                "endAt": _wall_clock(data.get("end_at")),
                "timezone": data["timezone"],
            },
            "recurring": {"cron": data["cron"]} if data.get("cron") else None,
        }
        if data.get("segment"):
            body["audienceId"] = data["segment"].pk
        elif data.get("audience_filter") is not None:
            body["audience"] = {"type": "dynamic", "filter": data["audience_filter"]}
        else:
            body["audienceId"] = None
        if data["type"] == CampaignType.DRIP or data.get("steps") is not None:
            body["steps"] = data.get("steps")
        if data["type"] == CampaignType.MILESTONE or data.get("milestone") is not None:
            body["milestone"] = data.get("milestone")
        return body

    @classmethod
    def initial_for(cls, campaign: Campaign) -> dict:
        tz = zoneinfo.ZoneInfo(campaign.timezone)
        steps = [
            {"templateId": step.template_id, "delay": _iso_duration(step.delay)}
            for step in campaign.steps.order_by("position")
        ]
        return {
            "name": campaign.name,
            "external_key": campaign.external_key or "",
            "type": campaign.type,
            "channels": campaign.channels,
            "segment": campaign.segment_id,
            "audience_filter": campaign.audience_filter,
            "template": campaign.template_id,
            "integration": campaign.integration_id,
            "start_at": _local(campaign.start_at, tz),
            "end_at": _local(campaign.end_at, tz),
            "timezone": campaign.timezone,
            "cron": campaign.cron,
            "steps": steps or None,
            "milestone": campaign.milestone,
        }


def _wall_clock(value) -> str | None:
    # The form's datetime is naive wall-clock time; the lifecycle reads an offset-less
    # timestamp in the campaign's time zone, so send it without one.
    if value is None:
        return None
    if timezone.is_aware(value):
        value = timezone.make_naive(value, timezone.get_current_timezone())
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def _local(value, tz):
    return value.astimezone(tz).replace(tzinfo=None) if value else None


def _iso_duration(delta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return f"P{days}D" + (f"T{clock}" if clock else "") if days or not clock else f"PT{clock}"


class CampaignUtmForm(forms.Form):
    """The campaign page's UTM section: automatic tags on the tracked links of its emails.
    Blank values take the defaults (campaigns.utm); the rules are the campaign body's."""

    enabled = forms.BooleanField(required=False, label=_("Add UTM tags to tracked links"))
    source = forms.CharField(required=False, max_length=200, help_text=_("Blank: herald"))
    medium = forms.CharField(required=False, max_length=200, help_text=_("Blank: the channel"))
    campaign = forms.CharField(
        required=False, max_length=200, help_text=_("Blank: a slug of the campaign's name")
    )
    content = forms.CharField(
        required=False, max_length=200, help_text=_("Blank: the template's name")
    )

    @classmethod
    def initial_for(cls, campaign: Campaign) -> dict:
        return utm_json(campaign)

    def utm_body(self) -> dict:
        """The campaign body's `utm` object."""
        data = self.cleaned_data
        return {
            "enabled": bool(data.get("enabled")),
            **{key: data.get(key) or "" for key in UTM_FIELDS},
        }


WEEKDAYS = [
    (str(n), name)
    for n, name in enumerate(
        [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")], 1
    )
]
# Lifecycle error keys of the send rules → SendRulesForm fields.
SEND_RULE_FIELDS = {
    "sendTime": "send_local_time",
    "sendWindow.from": "window_from",
    "sendWindow.to": "window_to",
    "sendWindow.days": "window_days",
    "sendWindow": "window_from",
}


class SendRulesForm(forms.Form):
    """When the campaign's messages may go: recipient-local send time and the allowed sending
    window. Shapes input only; `body()` gives the campaign body's `sendTime`/`sendWindow`,
    checked by campaigns.lifecycle_input like the API's."""

    send_local_time = forms.TimeField(
        required=False,
        input_formats=["%H:%M"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        label=_("Send at (each contact's local time)"),
        help_text=_(
            "Each contact gets it at this time in their own time zone (the "
            "organisation's when they have none), the next one after the launch. Empty: at once."
        ),
    )
    window_from = forms.CharField(
        required=False,
        max_length=5,
        widget=forms.TextInput(attrs={"type": "time"}),
        label=_("Allowed from"),
    )
    window_to = forms.CharField(
        required=False,
        max_length=5,
        widget=forms.TextInput(attrs={"type": "time"}),
        label=_("until"),
        help_text=_(
            "Quiet hours: messages due outside this window (recipient's time) wait for "
            "its next opening. Empty: any time."
        ),
    )
    window_days = forms.MultipleChoiceField(
        choices=WEEKDAYS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("On (none ticked: every day)"),
    )

    def body(self) -> dict[str, Any]:
        data = self.cleaned_data
        local = data.get("send_local_time")
        window: dict[str, Any] | None = None
        if data.get("window_from") or data.get("window_to"):
            window = {"from": data.get("window_from") or "", "to": data.get("window_to") or ""}
            if data.get("window_days"):
                window["days"] = [int(day) for day in data["window_days"]]
        return {
            "sendTime": {"localTime": local.strftime("%H:%M")} if local else None,
            "sendWindow": window,
        }

    def add_body_error(self, key: str, message: str) -> bool:
        """Put a lifecycle error about `sendTime`/`sendWindow` on its field; False if the key
        is not one of these."""
        for prefix in sorted(SEND_RULE_FIELDS, key=len, reverse=True):
            if key == prefix or key.startswith(prefix + "."):
                self.add_error(SEND_RULE_FIELDS[prefix], message)
                return True
        return False

    @classmethod
    def initial_for(cls, campaign: Campaign) -> dict:
        window = campaign.send_window or {}
        days = window.get("days") or []
        return {
            "send_local_time": campaign.send_local_time,
            "window_from": window.get("from", ""),
            "window_to": window.get("to", ""),
            "window_days": [] if len(days) == 7 else [str(day) for day in days],
        }


class LaunchConfirmForm(forms.Form):
    """The confirmation a launch or a schedule needs: a `confirm` flag posted by the
    confirmation page, and above the reach threshold the campaign's name typed again. Checked
    here, on the server, so no script and no hand-made POST can skip it."""

    confirm = forms.CharField(widget=forms.HiddenInput, required=False)
    typed_name = forms.CharField(
        required=False,
        max_length=200,
        label=_("Type the campaign's name to confirm"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, campaign: Campaign, name_required: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.name_required = name_required
        self.fields["confirm"].initial = "yes"
        if not name_required:
            del self.fields["typed_name"]

    def clean(self):
        data = super().clean()
        if data.get("confirm") != "yes":
            raise forms.ValidationError(
                _("Confirm on this page first: nothing was sent."), code="unconfirmed"
            )
        if self.name_required and (data.get("typed_name") or "").strip() != self.campaign.name:
            self.add_error(
                "typed_name",
                forms.ValidationError(
                    _("Type the campaign's name exactly as shown: “%(name)s”."),
                    code="name_mismatch",
                    params={"name": self.campaign.name},
                ),
            )
        return data
