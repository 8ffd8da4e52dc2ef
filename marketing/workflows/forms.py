"""Forms of the workflow pages: new workflow, trigger settings, one step, simulation."""

import json

from django import forms

from campaigns.promo.models import PromoPool
from campaigns.send_rules import SendWindow
from config.core.errors import FieldError
from config.core.parsers import json_text_load
from contacts.filters.compiler import FilterError, validate_filter
from contacts.models import Contact, CustomField, CustomFieldType, Segment, SegmentKind
from marketing.models import EventType
from marketing.workflows import graph as wf_graph
from marketing.workflows.models import ReEntry, TriggerKind
from marketing.workflows.scenarios import SCENARIOS
from templates.models import MessageTemplate

WAIT_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


class WorkflowNewForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    scenario = forms.ChoiceField(
        required=False,
        choices=[("", "From scratch")] + [(s.key, s.title) for s in SCENARIOS.values()],
        label="Start from",
    )


def _conditions_text(conditions: list[dict]) -> str:
    lines = []
    for item in conditions or []:
        value = item.get("value")
        lines.append(f"{item.get('param')} {item.get('op')} {'' if value is None else value}")
    return "\n".join(line.rstrip() for line in lines)


class WorkflowSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    trigger_kind = forms.ChoiceField(choices=TriggerKind.choices, label="Starts when")
    event_type = forms.ModelChoiceField(
        queryset=EventType.objects.all(), required=False, label="Event type"
    )
    trigger_conditions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "totalCost gte 100"}),
        label="Only when the event's params match (one per line: param op value)",
        help_text="Operators: "
        + ", ".join(f"{op} ({label})" for op, label in wf_graph.PARAM_OPS.items()),
    )
    segment = forms.ModelChoiceField(queryset=Segment.objects.all(), required=False)
    date_field = forms.ModelChoiceField(
        queryset=CustomField.objects.filter(type=CustomFieldType.DATE),
        required=False,
        label="Date field",
    )
    date_offset_days = forms.IntegerField(
        required=False,
        initial=0,
        min_value=-365,
        max_value=365,
        label="Days after the date (negative: before)",
    )
    date_time = forms.RegexField(
        regex=wf_graph.TIME_RE,
        required=False,
        initial="09:00",
        label="At (HH:MM, organisation time)",
    )
    re_entry = forms.ChoiceField(choices=ReEntry.choices, label="A contact may enter")
    re_entry_days = forms.IntegerField(min_value=1, max_value=3650, initial=30, label="N days")

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
            "segment": workflow.segment_id,
            "date_field": int(field_id) if field_id.isdigit() else None,
            "date_offset_days": date_trigger.get("offset_days", 0),
            "date_time": date_trigger.get("time", "09:00"),
            "re_entry": workflow.re_entry,
            "re_entry_days": workflow.re_entry_days,
        }
        return cls(data, initial=initial)

    def clean_trigger_conditions(self) -> list[dict]:
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
        return {
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
    (str(n), name) for n, name in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], 1)
]


class StepForm(forms.Form):
    """One step of any kind; only the fields of the step's kind are shown and used."""

    label = forms.CharField(max_length=100, required=False)
    next = forms.ChoiceField(required=False, label="Then")
    yes = forms.ChoiceField(required=False, label="If yes, go to")
    no = forms.ChoiceField(required=False, label="If no, go to")
    # send
    template = forms.ModelChoiceField(queryset=MessageTemplate.objects.all(), required=False)
    channel = forms.ChoiceField(choices=[("email", "Email"), ("sms", "SMS")], required=False)
    window_from = forms.RegexField(
        regex=wf_graph.TIME_RE, required=False, label="Send only from (contact's zone, HH:MM)"
    )
    window_to = forms.RegexField(regex=wf_graph.TIME_RE, required=False, label="…until (HH:MM)")
    window_days = forms.MultipleChoiceField(
        choices=WINDOW_DAYS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="…on (none ticked: every day)",
    )
    # wait
    mode = forms.ChoiceField(
        choices=[("duration", "For a while"), ("time_of_day", "Until a time of day")],
        required=False,
    )
    amount = forms.IntegerField(min_value=1, max_value=527040, required=False)
    unit = forms.ChoiceField(choices=[(u, u) for u in WAIT_UNITS], required=False)
    time = forms.RegexField(regex=wf_graph.TIME_RE, required=False, label="Time (contact's zone)")
    # condition
    check_type = forms.ChoiceField(
        choices=wf_graph.CHECK_TYPES.items(), required=False, label="Check"
    )
    filter = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": '{"tags": "vip"}'}),
        label="Contact filter (segment filter language, JSON)",
    )
    param = forms.CharField(max_length=100, required=False, label="Event parameter")
    op = forms.ChoiceField(choices=wf_graph.PARAM_OPS.items(), required=False, label="Comparison")
    value = forms.CharField(max_length=500, required=False)
    event = forms.ChoiceField(
        choices=[("opened", "opened"), ("clicked", "clicked")], required=False, label="Was"
    )
    message_step = forms.ChoiceField(required=False, label="Message of step")
    # segments, fields, webhooks
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.filter(kind=SegmentKind.STATIC), required=False
    )
    field = forms.ChoiceField(required=False, label="Contact field")
    url = forms.URLField(
        max_length=2000, required=False, assume_scheme="https", label="Webhook URL"
    )
    pool = forms.ModelChoiceField(
        queryset=PromoPool.objects.all(), required=False, label="Promo code pool"
    )

    def __init__(self, *args, step: dict, graph: dict, **kwargs):
        self.step = step
        initial = self._initial(step)
        super().__init__(*args, initial=initial, prefix=step["id"], **kwargs)
        targets = [("", "— end of the workflow —")] + [
            (
                other["id"],
                f"{other['id']}: {other.get('label') or wf_graph.STEP_KINDS[other['kind']]}",
            )
            for other in graph.get("steps", [])
            if other["id"] != step["id"]
        ]
        for name in ("next", "yes", "no"):
            self.fields[name].choices = targets
        self.fields["message_step"].choices = [("", "any message of this run")] + [
            (other["id"], f"{other['id']}: {other.get('label') or 'Send'}")
            for other in graph.get("steps", [])
            if other["kind"] == "send"
        ]
        self.fields["field"].choices = _field_choices()
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
        } | ({"value": step.get("value", "")} if step.get("kind") == "update_field" else {})

    @staticmethod
    def _visible(step: dict) -> list[str]:
        kind = step["kind"]
        fields = {
            "send": ["template", "channel", "window_from", "window_to", "window_days", "next"],
            "wait": ["mode", "amount", "unit", "time", "next"],
            "condition": [
                "check_type",
                "filter",
                "param",
                "op",
                "value",
                "event",
                "message_step",
                "yes",
                "no",
            ],
            "segment_add": ["segment", "next"],
            "segment_remove": ["segment", "next"],
            "update_field": ["field", "value", "next"],
            "webhook": ["url", "next"],
            "promo_issue": ["pool", "next"],
            "exit": [],
        }[kind]
        return ["label", *fields]

    def shown(self) -> list:
        """The bound fields of this step's kind, in reading order (where it goes last)."""
        return [self[name] for name in self.visible]

    def clean_filter(self):
        text = self.cleaned_data["filter"].strip() or "{}"
        try:
            value = json_text_load(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The filter must be a JSON object.")
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
        if self.step["kind"] == "send" and (data.get("window_from") or data.get("window_to")):
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
        return data

    def to_step(self) -> dict:
        data = self.cleaned_data
        step = {"id": self.step["id"], "kind": self.step["kind"], "label": data["label"].strip()}
        kind = step["kind"]
        if kind not in ("condition", "exit"):
            step["next"] = data["next"]
        if kind == "send":
            step["template_id"] = data["template"].pk if data.get("template") else None
            step["channel"] = data["channel"] or "email"
            if data.get("window"):
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
        return step


class SimulateForm(forms.Form):
    contact = forms.IntegerField(min_value=1, label="Test contact id")
    params = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"orderId": "A-17"}'}),
        label="Sample event params (JSON)",
    )
    opened = forms.BooleanField(required=False, label="Assume its messages were opened")
    clicked = forms.BooleanField(required=False, label="Assume its messages were clicked")

    def clean_contact(self):
        contact = Contact.objects.alive().filter(pk=self.cleaned_data["contact"]).first()
        if contact is None:
            raise forms.ValidationError("No contact with this id.")
        return contact

    def clean_params(self):
        text = self.cleaned_data["params"].strip() or "{}"
        try:
            value = json_text_load(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The params must be a JSON object.")
        return value
