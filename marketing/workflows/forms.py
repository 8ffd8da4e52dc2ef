"""Forms of the workflow pages: new workflow, trigger settings, one step, simulation."""

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.promo.models import PromoPool
from campaigns.send_rules import SendWindow
from config.core.errors import FieldError
from config.core.parsers import json_text_load
from contacts.filters.builder import Catalog, Row, filter_from_rows, rows_from_filter
from contacts.filters.compiler import FilterError, validate_filter
from contacts.models import Contact, CustomField, CustomFieldType, Segment, SegmentKind
from marketing.models import EventType
from marketing.workflows import contact_blocks, send_blocks
from marketing.workflows import graph as wf_graph
from marketing.workflows.logic_forms import (
    CONDITION_FIELDS,
    SPLIT_FIELDS,
    WAIT_FIELDS,
    WAIT_MODES,
    LogicStepForm,
)
from marketing.workflows.models import ReEntry, TriggerKind
from marketing.workflows.scenarios import SCENARIOS
from marketing.workflows.webhook import webhook_url_refusal
from templates.models import MessageTemplate

WAIT_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


class WorkflowNewForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, label=_("Name"))
    scenario = forms.ChoiceField(
        required=False,
        choices=[("", _("From scratch"))] + [(s.key, s.title) for s in SCENARIOS.values()],
        label=_("Start from"),
    )


def _conditions_text(conditions: list[dict]) -> str:
    lines = []
    for item in conditions or []:
        value = item.get("value")
        lines.append(f"{item.get('param')} {item.get('op')} {'' if value is None else value}")
    return "\n".join(line.rstrip() for line in lines)


def param_ops() -> list[tuple[str, Any]]:
    """The event-parameter comparisons (marketing.workflows.conditions), labelled for people."""
    return list(wf_graph.PARAM_OPS.items())


@dataclass
class ParamRow:
    """One "event parameter · comparison · value" row of a trigger's conditions."""

    param: str = ""
    op: str = "eq"
    value: str = ""
    error: str = ""


def _time_of_day(label) -> forms.RegexField:
    return forms.RegexField(regex=wf_graph.TIME_RE, required=False, initial="09:00", label=label)


WEEKDAY_CHOICES = [
    (n, name)
    for n, name in enumerate(
        [
            _("Monday"),
            _("Tuesday"),
            _("Wednesday"),
            _("Thursday"),
            _("Friday"),
            _("Saturday"),
            _("Sunday"),
        ],
        1,
    )
]


def stop_initial(conditions: list[dict]) -> dict:
    """The settings form's stop fields for saved stop conditions (workflows.stops)."""
    return {
        "stop_events": [c["event_type_id"] for c in conditions if c.get("type") == "event"],
        "stop_segment": next(
            (c["segment_id"] for c in conditions if c.get("type") == "segment_leave"), None
        ),
        "stop_unsubscribed": any(c.get("type") == "unsubscribed" for c in conditions),
    }


class WorkflowSettingsForm(forms.Form):
    name = forms.CharField(max_length=200, label=_("Name"))
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label=_("Description")
    )
    trigger_kind = forms.ChoiceField(choices=TriggerKind.choices, label=_("Starts when"))
    event_type = forms.ModelChoiceField(
        queryset=EventType.objects.all(), required=False, label=_("Event type")
    )
    # Posted as rows (cond_param, cond_op, cond_value); the one-line-per-condition text
    # ("totalCost gte 100") is still read when posted instead.
    trigger_conditions = forms.CharField(required=False, widget=forms.HiddenInput)
    segment = forms.ModelChoiceField(queryset=Segment.objects.all(), required=False)
    date_field = forms.ModelChoiceField(
        queryset=CustomField.objects.filter(type=CustomFieldType.DATE),
        required=False,
        label=_("Date field"),
    )
    date_offset_days = forms.IntegerField(
        required=False,
        initial=0,
        min_value=-365,
        max_value=365,
        label=_("Days after the date (negative: before)"),
    )
    date_time = _time_of_day(_("At (HH:MM, organisation time)"))
    schedule_every = forms.ChoiceField(
        choices=[("day", _("Every day")), ("week", _("Every week"))],
        required=False,
        label=_("Schedule"),
    )
    schedule_time = _time_of_day(_("Schedule at (HH:MM, organisation time)"))
    schedule_weekday = forms.TypedChoiceField(
        choices=WEEKDAY_CHOICES, coerce=int, required=False, label=_("On (weekly schedule)")
    )
    re_entry = forms.ChoiceField(choices=ReEntry.choices, label=_("A contact may enter"))
    re_entry_days = forms.IntegerField(min_value=1, max_value=3650, initial=30, label=_("N days"))
    stop_events = forms.ModelMultipleChoiceField(
        queryset=EventType.objects.order_by("key"),
        required=False,
        label=_("Stop a run when its contact produces one of these events"),
    )
    stop_segment = forms.ModelChoiceField(
        queryset=Segment.objects.all(),
        required=False,
        label=_("Stop a run when its contact is no longer in this segment"),
    )
    stop_unsubscribed = forms.BooleanField(
        required=False, label=_("Stop a run when its contact unsubscribes")
    )

    @classmethod
    def for_workflow(cls, workflow, data=None):
        date_trigger = workflow.date_trigger or {}
        field_id = str(date_trigger.get("field") or "")
        initial = {
            "name": workflow.name,
            "description": workflow.description,
            "trigger_kind": workflow.trigger_kind,
            "event_type": workflow.event_type_id,
            "trigger_conditions": _conditions_text(workflow.trigger_conditions),
            "conditions": workflow.trigger_conditions or [],
            "segment": workflow.segment_id,
            "date_field": int(field_id) if field_id.isdigit() else None,
            "date_offset_days": date_trigger.get("offset_days", 0),
            "date_time": date_trigger.get("time", "09:00"),
            "re_entry": workflow.re_entry,
            "re_entry_days": workflow.re_entry_days,
            "schedule_every": (workflow.schedule or {}).get("every", "day"),
            "schedule_time": (workflow.schedule or {}).get("time", "09:00"),
            "schedule_weekday": (workflow.schedule or {}).get("weekday", 1),
            **stop_initial(workflow.stop_conditions or []),
        }
        return cls(data, initial=initial)

    ROW_FIELDS = ("cond_param", "cond_op", "cond_value")

    def condition_rows(self) -> list[ParamRow]:
        """The rows to show: as posted (with their errors) on a bound form, else saved."""
        if self.is_bound and self.ROW_FIELDS[0] in self.data:
            return getattr(self, "_rows", None) or self._posted_rows()
        return [
            ParamRow(
                param=str(item.get("param") or ""),
                op=str(item.get("op") or "eq"),
                value="" if item.get("value") is None else str(item.get("value")),
            )
            for item in self.initial.get("conditions") or []
        ]

    def _posted_rows(self) -> list[ParamRow]:
        params, ops, values = (self.data.getlist(name) for name in self.ROW_FIELDS)
        return [
            ParamRow(
                param=param.strip(),
                op=ops[i] if i < len(ops) else "eq",
                value=(values[i] if i < len(values) else "").strip(),
            )
            for i, param in enumerate(params)
        ]

    def _clean_rows(self) -> list[dict]:
        self._rows = [row for row in self._posted_rows() if row.param or row.value]
        conditions = []
        for row in self._rows:
            if not row.param:
                row.error = gettext("Name the event parameter.")
            elif row.op not in wf_graph.PARAM_OPS:
                row.error = gettext("Choose a comparison.")
            elif row.op != "exists" and not row.value:
                row.error = gettext("The value is missing.")
            else:
                value = None if row.op == "exists" else row.value
                conditions.append({"param": row.param, "op": row.op, "value": value})
        if any(row.error for row in self._rows):
            raise forms.ValidationError(gettext("Check the conditions marked below."))
        return conditions

    def clean_trigger_conditions(self) -> list[dict]:
        if self.ROW_FIELDS[0] in self.data:
            return self._clean_rows()
        conditions = []
        for number, line in enumerate(self.cleaned_data["trigger_conditions"].splitlines(), 1):
            if not line.strip():
                continue
            parts = line.strip().split(None, 2)
            if len(parts) < 2 or parts[1] not in wf_graph.PARAM_OPS:
                raise forms.ValidationError(
                    f"Line {number}: write “param op value” with op one of "
                    + ", ".join(wf_graph.PARAM_OPS)
                )
            if parts[1] != "exists" and len(parts) < 3:
                raise forms.ValidationError(f"Line {number}: the value is missing")
            conditions.append(
                {"param": parts[0], "op": parts[1], "value": parts[2] if len(parts) > 2 else None}
            )
        return conditions

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        date_trigger = {}
        if data["trigger_kind"] == TriggerKind.DATE:
            date_trigger = {
                "field": str(data["date_field"].pk) if data.get("date_field") else "",
                "offset_days": data.get("date_offset_days") or 0,
                "time": data.get("date_time") or "09:00",
            }
        schedule = {}
        if data["trigger_kind"] == TriggerKind.SCHEDULE:
            schedule = {
                "every": data.get("schedule_every") or "day",
                "time": data.get("schedule_time") or "09:00",
            }
            if schedule["every"] == "week":
                schedule["weekday"] = data.get("schedule_weekday") or 1
        stop_conditions: list[dict] = [
            {"type": "event", "event_type_id": event_type.pk}
            for event_type in data.get("stop_events") or []
        ]
        if data.get("stop_segment"):
            stop_conditions.append({"type": "segment_leave", "segment_id": data["stop_segment"].pk})
        if data.get("stop_unsubscribed"):
            stop_conditions.append({"type": "unsubscribed"})
        return {
            "schedule": schedule,
            "stop_conditions": stop_conditions,
            "name": data["name"],
            "description": data["description"],
            "trigger_kind": data["trigger_kind"],
            "event_type": data.get("event_type"),
            "trigger_conditions": data["trigger_conditions"],
            "segment": data.get("segment"),
            "date_trigger": date_trigger,
            "re_entry": data["re_entry"],
            "re_entry_days": data["re_entry_days"],
        }


def _field_choices() -> list[tuple[str, str]]:
    custom = [
        (f"fields.{field.pk}", f"{field.name} (custom field {field.pk})")
        for field in CustomField.objects.order_by("name")
    ]
    return list(wf_graph.UPDATABLE_FIELDS.items()) + custom


def _window_days(window: dict) -> list[str]:
    """The ticked weekdays of a step's window: none ticked when it opens every day."""
    days = window.get("days") or []
    return [] if len(days) == 7 else [str(day) for day in days]


WINDOW_DAYS = [
    (str(n), name)
    for n, name in enumerate(
        [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")], 1
    )
]


class StepForm(LogicStepForm):
    """One step of any kind; only the fields of the step's kind are shown and used."""

    label = forms.CharField(max_length=100, required=False)
    next = forms.ChoiceField(required=False, label=_("Then"))
    yes = forms.ChoiceField(required=False, label=_("If yes, go to"))
    no = forms.ChoiceField(required=False, label=_("If no, go to"))
    # send
    template = forms.ModelChoiceField(queryset=MessageTemplate.objects.all(), required=False)
    # Message steps replace it with the channels the organisation can send on (send_blocks).
    channel = forms.ChoiceField(required=False)
    window_from = forms.RegexField(
        regex=wf_graph.TIME_RE, required=False, label=_("Send only from (contact's zone, HH:MM)")
    )
    window_to = forms.RegexField(regex=wf_graph.TIME_RE, required=False, label=_("…until (HH:MM)"))
    window_days = forms.MultipleChoiceField(
        choices=WINDOW_DAYS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("…on (none ticked: every day)"),
    )
    # wait
    mode = forms.ChoiceField(choices=WAIT_MODES, required=False)
    amount = forms.IntegerField(min_value=1, max_value=527040, required=False)
    unit = forms.ChoiceField(
        choices=[("minutes", _("minutes")), ("hours", _("hours")), ("days", _("days"))],
        required=False,
    )
    time = forms.RegexField(
        regex=wf_graph.TIME_RE, required=False, label=_("Time (contact's zone)")
    )
    # condition
    check_type = forms.ChoiceField(
        choices=wf_graph.CHECK_TYPES.items(), required=False, label=_("Check")
    )
    filter = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": '{"tags": "vip"}'}),
        label=_("Contact filter (segment filter language, JSON)"),
    )
    param = forms.CharField(max_length=100, required=False, label=_("Event parameter"))
    op = forms.ChoiceField(
        choices=wf_graph.PARAM_OPS.items(), required=False, label=_("Comparison")
    )
    value = forms.CharField(max_length=500, required=False)
    event = forms.ChoiceField(
        choices=[("opened", _("opened")), ("clicked", _("clicked"))], required=False, label=_("Was")
    )
    message_step = forms.ChoiceField(required=False, label=_("Message of step"))
    # segments, fields, webhooks
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.filter(kind=SegmentKind.STATIC), required=False
    )
    field = forms.ChoiceField(required=False, label=_("Contact field"))
    url = forms.URLField(
        max_length=2000, required=False, assume_scheme="https", label=_("Webhook URL")
    )
    pool = forms.ModelChoiceField(
        queryset=PromoPool.objects.all(), required=False, label=_("Promo code pool")
    )
    # contact block (marketing.workflows.contact_blocks)
    create = forms.BooleanField(
        required=False, label=_("Create the contact when the event's keyValue matches none")
    )
    key_as = forms.ChoiceField(
        choices=contact_blocks.KEY_KINDS.items(), required=False, label=_("Read keyValue as")
    )
    contact_fields = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "firstName = {name}\ntown = Kyiv"}),
        label=_("Fields, one per line: field = {parameter} (an event parameter) or field = value"),
    )
    tags_add = forms.CharField(
        max_length=2000, required=False, label=_("Add tags (comma-separated)")
    )
    tags_remove = forms.CharField(
        max_length=2000, required=False, label=_("Remove tags (comma-separated)")
    )
    segments = forms.ModelMultipleChoiceField(
        queryset=Segment.objects.filter(kind=SegmentKind.STATIC),
        required=False,
        label=_("Add to static segments"),
    )

    def __init__(self, *args, step: dict, graph: dict, **kwargs):
        self.step = step
        self._catalog: Catalog | None = None
        self._rows: list[Row] | None = None
        initial = self._initial(step)
        super().__init__(*args, initial=initial, prefix=step["id"], **kwargs)
        targets = [("", gettext("— end of the workflow —"))] + [
            (
                other["id"],
                f"{other['id']}: {other.get('label') or wf_graph.STEP_KINDS[other['kind']]}",
            )
            for other in graph.get("steps", [])
            if other["id"] != step["id"]
        ]
        for name in ("next", "yes", "no"):
            self.fields[name].choices = targets
        self.fields["message_step"].choices = [("", gettext("any message of this run"))] + [
            (other["id"], f"{other['id']}: {other.get('label') or gettext('Send')}")
            for other in graph.get("steps", [])
            if other["kind"] in ("send", "send_one_of")
        ]
        self.fields["field"].choices = _field_choices()
        self.logic_setup()
        if step["kind"] in send_blocks.SEND_KINDS:
            self.fields.update(send_blocks.form_fields(step))
            self.initial.update(send_blocks.form_initial(step))
        self.visible = self._visible(step)

    @staticmethod
    def _initial(step: dict) -> dict:
        check = step.get("check") or {}
        seconds = step.get("seconds") or 86400
        unit = next(
            u
            for u in ("days", "hours", "minutes")
            if seconds % WAIT_UNITS[u] == 0 or u == "minutes"
        )
        return {
            "label": step.get("label", ""),
            "next": step.get("next", ""),
            "yes": step.get("yes", ""),
            "no": step.get("no", ""),
            "template": step.get("template_id"),
            "channel": step.get("channel", "email"),
            "window_from": (step.get("window") or {}).get("from", ""),
            "window_to": (step.get("window") or {}).get("to", ""),
            "window_days": _window_days(step.get("window") or {}),
            "mode": step.get("mode", "duration"),
            "amount": max(1, seconds // WAIT_UNITS[unit]),
            "unit": unit,
            "time": step.get("time", "09:00"),
            "check_type": check.get("type", "contact"),
            "filter": json.dumps(check.get("filter") or {}, ensure_ascii=False),
            "param": check.get("param", ""),
            "op": check.get("op", "eq"),
            "value": check.get("value", ""),
            "event": check.get("event", "opened"),
            "message_step": check.get("step", ""),
            "segment": step.get("segment_id"),
            "field": step.get("field", "firstName"),
            "url": step.get("url", ""),
            "pool": step.get("pool_id"),
            "create": bool(step.get("create")),
            "key_as": step.get("key_as", "auto"),
            "contact_fields": _contact_fields_text(step.get("fields") or []),
            "tags_add": ", ".join(step.get("tags_add") or []),
            "tags_remove": ", ".join(step.get("tags_remove") or []),
            "segments": step.get("segment_ids") or [],
        } | (
            ({"value": step.get("value", "")} if step.get("kind") == "update_field" else {})
            | LogicStepForm.logic_initial(step)
        )

    @staticmethod
    def _visible(step: dict) -> list[str]:
        kind = step["kind"]
        fields = {
            "send": ["template", "channel", "window_from", "window_to", "window_days", "next"],
            "wait": ["mode", "amount", "unit", "time", *WAIT_FIELDS, "next"],
            "condition": [
                "check_type",
                "filter",
                "param",
                "op",
                "value",
                "event",
                "message_step",
                *CONDITION_FIELDS,
                "yes",
                "no",
            ],
            "split": SPLIT_FIELDS,
            "segment_add": ["segment", "next"],
            "segment_remove": ["segment", "next"],
            "update_field": ["field", "value", "next"],
            "webhook": ["url", "next"],
            "promo_issue": ["pool", "next"],
            "contact": [
                "create",
                "key_as",
                "contact_fields",
                "tags_add",
                "tags_remove",
                "segments",
                "next",
            ],
            "exit": [],
            **send_blocks.FORM_VISIBLE,
        }[kind]
        return ["label", *fields]

    def shown(self) -> list:
        """The bound fields of this step's kind, in reading order (where it goes last)."""
        return [self[name] for name in self.visible]

    # The contact check as segment-builder rows (contacts.filters.builder): field, operator,
    # value lists and "all"/"any", posted with the step's prefix. A saved filter the rows
    # cannot express stays a JSON text box.
    ROW_FIELDS = ("cf_field", "cf_op", "cf_value")

    def rows_posted(self) -> bool:
        return self.is_bound and self.add_prefix("cf_field") in self.data

    def contact_rows(self) -> tuple[str, list[Row]] | None:
        """(combinator, rows) of the contact check to show, or None for the JSON box."""
        if self.step["kind"] != "condition":
            return None
        catalog = self.catalog
        if self.rows_posted():
            if self._rows is None:
                self._rows = self._posted_contact_rows()
            return self.data.get(self.add_prefix("cf_join")) or "and", self._rows
        if self.is_bound:
            return None  # the JSON box was posted: show it again, with its error
        check = self.step.get("check") or {}
        parsed = rows_from_filter(catalog, check.get("filter") or {})
        if parsed is None:
            return None
        combinator, rows = parsed
        return combinator, rows or [catalog.row()]

    def _posted_contact_rows(self) -> list[Row]:
        fields, ops, values = (self.data.getlist(self.add_prefix(name)) for name in self.ROW_FIELDS)
        return [
            self.catalog.row(
                key, ops[i] if i < len(ops) else "", values[i] if i < len(values) else ""
            )
            for i, key in enumerate(fields)
            if key
        ]

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog()
        return self._catalog

    def _filter_from_rows(self) -> dict:
        self._rows = self._posted_contact_rows()
        combinator = self.data.get(self.add_prefix("cf_join")) or "and"
        value, _skipped = filter_from_rows(self._rows, combinator, strict=True)
        if any(row.error for row in self._rows):
            raise forms.ValidationError(gettext("Check the conditions marked below."))
        try:
            validate_filter(value)
        except FilterError as exc:
            raise forms.ValidationError(f"{exc.path}: {exc.message}") from None
        return value

    def clean_filter(self):
        if self.step["kind"] == "condition" and self.rows_posted():
            if self.data.get(self.add_prefix("check_type")) == "contact":
                return self._filter_from_rows()
            return {}
        text = self.cleaned_data["filter"].strip() or "{}"
        try:
            value = json_text_load(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError(gettext("The filter must be a JSON object."))
        if (
            self.step["kind"] == "condition"
            and self.data.get(self.add_prefix("check_type")) == "contact"
        ):
            try:
                validate_filter(value)
            except FilterError as exc:
                raise forms.ValidationError(f"{exc.path}: {exc.message}") from None
        return value

    def clean(self):
        data = super().clean()
        data["window"] = None
        windowed = self.step["kind"] in ("send", "send_one_of") or data.get("mode") == "window"
        if windowed and (data.get("window_from") or data.get("window_to")):
            raw = {"from": data.get("window_from"), "to": data.get("window_to")}
            if data.get("window_days"):
                raw["days"] = [int(day) for day in data["window_days"]]
            try:
                window = SendWindow.clean(raw, field="window")
            except FieldError as exc:
                name = {"window.from": "window_from", "window.to": "window_to"}.get(
                    exc.field, "window_days"
                )
                self.add_error(name, exc.message)
            else:
                data["window"] = window.as_json() if window else None
        if self.step["kind"] == "webhook" and data.get("url"):
            refusal = webhook_url_refusal(data["url"])
            if refusal:
                self.add_error("url", gettext("Not allowed: %(reason)s.") % {"reason": refusal})
        self.logic_clean(data)
        return data

    def to_step(self) -> dict:
        data = self.cleaned_data
        step = {"id": self.step["id"], "kind": self.step["kind"], "label": data["label"].strip()}
        kind = step["kind"]
        if kind not in ("condition", "split", "exit"):
            step["next"] = data["next"]
        if kind == "send":
            step["template_id"] = data["template"].pk if data.get("template") else None
            step["channel"] = data["channel"] or "email"
            if data.get("window"):
                step["window"] = data["window"]
        elif kind in send_blocks.FORM_VISIBLE:
            step.update(send_blocks.form_to_step(kind, data))
            if data.get("window") and kind == "send_one_of":
                step["window"] = data["window"]
        elif kind == "wait":
            step["mode"] = data["mode"] or "duration"
            step["seconds"] = (data.get("amount") or 1) * WAIT_UNITS[data.get("unit") or "days"]
            step["time"] = data.get("time") or "09:00"
        elif kind == "condition":
            check_type = data["check_type"] or "contact"
            if check_type == "contact":
                check = {"type": "contact", "filter": data["filter"]}
            elif check_type == "param":
                check = {
                    "type": "param",
                    "param": data["param"].strip(),
                    "op": data["op"] or "eq",
                    "value": data["value"],
                }
            else:
                check = {
                    "type": "message",
                    "event": data["event"] or "opened",
                    "step": data["message_step"],
                }
            step.update(check=check, yes=data["yes"], no=data["no"])
        elif kind in ("segment_add", "segment_remove"):
            step["segment_id"] = data["segment"].pk if data.get("segment") else None
        elif kind == "update_field":
            step["field"] = data["field"]
            step["value"] = data["value"]
        elif kind == "webhook":
            step["url"] = data["url"]
        elif kind == "promo_issue":
            step["pool_id"] = data["pool"].pk if data.get("pool") else None
        elif kind == "contact":
            step.update(
                create=bool(data.get("create")),
                key_as=data.get("key_as") or "auto",
                fields=data.get("contact_fields") or [],
                tags_add=_tags(data.get("tags_add") or ""),
                tags_remove=_tags(data.get("tags_remove") or ""),
                segment_ids=[segment.pk for segment in data.get("segments") or []],
            )
        return self.logic_step(step)

    def clean_contact_fields(self) -> list[dict]:
        """`field = {param}` (an event parameter) or `field = value` lines, as field rows."""
        rows = []
        allowed = contact_blocks.mappable_fields()
        for number, line in enumerate(self.cleaned_data["contact_fields"].splitlines(), 1):
            if not line.strip():
                continue
            field, equals, value = (part.strip() for part in line.partition("="))
            if not equals or not field:
                raise forms.ValidationError(
                    gettext("Line %(n)s: write “field = {parameter}” or “field = value”.")
                    % {"n": number}
                )
            if field not in allowed and not wf_graph.CUSTOM_FIELD_RE.match(field):
                raise forms.ValidationError(
                    gettext("Line %(n)s: %(field)s is not a contact field.")
                    % {"n": number, "field": field}
                )
            if value.startswith("{") and value.endswith("}") and len(value) > 2:
                rows.append({"field": field, "param": value[1:-1].strip()})
            else:
                rows.append({"field": field, "value": value})
        if len(rows) > contact_blocks.MAX_FIELD_ROWS:
            raise forms.ValidationError(
                gettext("At most %(n)s fields.") % {"n": contact_blocks.MAX_FIELD_ROWS}
            )
        return rows


def _tags(text: str) -> list[str]:
    tags: list[str] = []
    for tag in (part.strip() for part in text.split(",")):
        if tag and tag not in tags:
            tags.append(tag[: contact_blocks.TAG_MAX])
    return tags[: contact_blocks.MAX_TAGS]


def _contact_fields_text(rows: list[dict]) -> str:
    return "\n".join(
        f"{row.get('field')} = {{{row['param']}}}"
        if row.get("param")
        else f"{row.get('field')} = {row.get('value', '')}"
        for row in rows
    )


class SimulateForm(forms.Form):
    contact = forms.IntegerField(min_value=1, label=_("Test contact id"))
    params = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"orderId": "A-17"}'}),
        label=_("Sample event params (JSON)"),
    )
    opened = forms.BooleanField(required=False, label=_("Assume its messages were opened"))
    clicked = forms.BooleanField(required=False, label=_("Assume its messages were clicked"))

    def clean_contact(self):
        contact = Contact.objects.alive().filter(pk=self.cleaned_data["contact"]).first()
        if contact is None:
            raise forms.ValidationError(gettext("No contact with this id."))
        return contact

    def clean_params(self):
        text = self.cleaned_data["params"].strip() or "{}"
        try:
            value = json_text_load(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError(gettext("The params must be a JSON object."))
        return value
