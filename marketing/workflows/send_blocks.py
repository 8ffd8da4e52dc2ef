"""The workflow "Messages" blocks: what they hold, what makes them runnable, how a run sends
them, how the simulator and the editor show them.

    {"kind": "send", "template_id": 7, "channel": "telegram", "window": {...}}
    {"kind": "send_one_of", "options": [{"channel": "telegram", "template_id": 9},
                                        {"channel": "email", "template_id": 7}]}
    {"kind": "send_group", "template_id": 8, "channel": "email", "segment_id": 4,
     "addresses": []}

Decisions:
- A message step sends on any channel a connected provider serves (email, SMS, the
  messengers of campaigns.messages.SENDABLE_CHANNELS); activation refuses a channel nothing
  serves, naming the step and the field.
- "One of many" tries its channels in order and sends on the first one that can reach the
  contact now: a connected provider, an address (or chat) on the channel, the address not
  suppressed, and for email not on the unsubscribed list. The run's history names the
  channel used and why each one before it was passed over. When none can, the step records
  that and the run goes on along `next` (a condition on "a message of this step was
  opened" then takes its "no" branch); nothing fails.
- "Message to a group" sends one template either to a whole segment (a marketing send: the
  campaign audience rules, caps and windows apply) or to fixed addresses (a notification,
  transactional like a single message; an unknown address becomes a contact as it does for
  the message API). `$contact` is the recipient; `$workflowContact` is the contact the run is
  about, `$data`/`$event` the event's params and `$order` its order.
- Every send of a step is recorded once per visit (WorkflowSend, unique per run, step and
  visit) in the same transaction as the run's move, so a retried step never queues twice.
- `$order` and `$event` (marketing.workflows.message_names): a run started by an order event
  (marketing.orders: its params carry orderId) gets the order with its items, loaded once
  when the step runs and kept with the send, so a retried message says what the first try
  said. `$event` holds the event's params (the same values as `$data`). Outside such runs
  the names are absent and render as any unknown name does (`$!order.totalCost` empty,
  `$order.totalCost` as written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.lifecycle import channel_connection
from campaigns.messages import (
    SENDABLE_CHANNELS,
    MessageError,
    messenger_chat,
    segment_message_start,
    smartsend_start,
)
from campaigns.models import Delivery, SendKind, SendRequest
from campaigns.send_rules import SendWindow
from config.core.errors import FieldError
from contacts.channels import email_normalise, phone_normalise
from contacts.filters.compiler import segment_contacts
from contacts.models import ChannelType, Segment, Unsubscribed
from contacts.suppression import SUPPRESSIBLE_CHANNELS, suppression_explain, suppressions_active
from marketing.workflows.message_names import run_names
from marketing.workflows.models import WorkflowMessage, WorkflowRun, WorkflowSend
from templates.models import MessageTemplate

SEND_KINDS = ("send", "send_one_of", "send_group")
CHANNELS = tuple(str(channel) for channel in SENDABLE_CHANNELS)
# Channels a "one of many" step tries: one row per channel the org may have.
MAX_OPTIONS = 4
# Fixed addresses of a group message: managers to notify, not an audience (use a segment).
MAX_GROUP_ADDRESSES = 50
DEFAULTS: dict[str, dict] = {
    "send_one_of": {"options": []},
    "send_group": {"template_id": None, "channel": "email", "segment_id": None, "addresses": []},
}


class SendStepError(Exception):
    """The step could not send; `permanent` failures stop the run."""

    def __init__(self, message: str, *, permanent: bool = True):
        super().__init__(message)
        self.permanent = permanent


@dataclass
class StepSent:
    next_step: str
    note: str
    extra: dict = field(default_factory=dict)


# --- what makes a step runnable ------------------------------------------------------------


def _channel_problem(channel: Any, where: str) -> str:
    if channel not in CHANNELS:
        return f"{where}: {channel!r} is not a channel Herald sends on ({', '.join(CHANNELS)})"
    return ""


def value_problems(step: dict, name: str) -> list[str]:
    """What is missing or malformed in a message step, without the database."""
    problems: list[str] = []
    kind = step.get("kind")
    if kind in ("send", "send_group"):
        if not isinstance(step.get("template_id"), int):
            problems.append(f"{name}: choose the message template to send")
        problem = _channel_problem(step.get("channel"), "channel")
        if problem:
            problems.append(f"{name}: {problem}")
    if kind == "send_one_of":
        options = step.get("options")
        if not isinstance(options, list) or not options:
            problems.append(f"{name}: add at least one channel with its template")
            options = []
        if len(options) > MAX_OPTIONS:
            problems.append(f"{name}: at most {MAX_OPTIONS} channels")
        seen: set[str] = set()
        for position, option in enumerate(options, 1):
            option = option if isinstance(option, dict) else {}
            problem = _channel_problem(option.get("channel"), f"channel {position}")
            if problem:
                problems.append(f"{name}: {problem}")
            elif option["channel"] in seen:
                problems.append(f"{name}: channel {position}: {option['channel']} is listed twice")
            seen.add(str(option.get("channel")))
            if not isinstance(option.get("template_id"), int):
                problems.append(f"{name}: channel {position}: choose its message template")
    if kind == "send_group":
        segment_id, addresses = step.get("segment_id"), step.get("addresses") or []
        if segment_id is not None and not isinstance(segment_id, int):
            problems.append(f"{name}: segment: choose the segment")
        if not isinstance(addresses, list):
            problems.append(f"{name}: addresses: a list of addresses")
            addresses = []
        if (segment_id is None) == (not addresses):
            problems.append(f"{name}: send to a segment or to addresses (one of the two)")
        if len(addresses) > MAX_GROUP_ADDRESSES:
            problems.append(f"{name}: addresses: at most {MAX_GROUP_ADDRESSES}")
        for address in addresses:
            problem = _address_problem(str(step.get("channel")), address)
            if problem:
                problems.append(f"{name}: addresses: {address!r} {problem}")
    if kind in ("send", "send_one_of") and step.get("window"):
        try:
            SendWindow.clean(step["window"], field="window")
        except FieldError as exc:
            problems.append(f"{name}: sending {exc.field}: {exc.message}")
    return problems


def _address_problem(channel: str, address: Any) -> str:
    if channel == ChannelType.EMAIL:
        return email_normalise(address)[1] or ""
    if channel == ChannelType.SMS:
        return phone_normalise(address)[1] or ""
    text = str(address).strip()
    return "" if text and not any(c.isspace() for c in text) else f"is not a {channel} chat id"


def _templates_of(step: dict) -> list[tuple[str, str, Any]]:
    """(field, channel, template id) the step sends."""
    if step.get("kind") == "send_one_of":
        return [
            (f"channel {position}", str(option.get("channel")), option.get("template_id"))
            for position, option in enumerate(step.get("options") or [], 1)
            if isinstance(option, dict)
        ]
    return [("template", str(step.get("channel")), step.get("template_id"))]


def reference_problems(graph: dict, step_name) -> list[str]:
    """What the database says against the graph's message steps: a channel no provider
    serves, a template that is gone, unpublished or for another channel, a segment that is
    gone. (A plain send step's template is checked by the workflow services.)"""
    problems: list[str] = []
    connections: dict[str, tuple[bool, str]] = {}
    for step in graph.get("steps", []):
        kind = step.get("kind")
        if kind not in SEND_KINDS:
            continue
        name = step_name(step)
        for where, channel, template_id in _templates_of(step):
            if channel not in CHANNELS:
                continue
            if channel not in connections:
                connections[channel] = channel_connection(channel)
            connected, how = connections[channel]
            label = "channel" if where == "template" else where
            if not connected:
                problems.append(f"{name}: {label}: no provider serves {channel} ({how})")
            if kind != "send" and isinstance(template_id, int):
                problem = _template_problem(template_id, channel)
                if problem:
                    problems.append(f"{name}: {where}: {problem}")
        segment_id = step.get("segment_id")
        if (
            kind == "send_group"
            and isinstance(segment_id, int)
            and not Segment.objects.filter(pk=segment_id).exists()
        ):
            problems.append(f"{name}: segment: segment {segment_id} no longer exists")
    return problems


def _template_problem(template_id: int, channel: str) -> str:
    template = MessageTemplate.objects.filter(pk=template_id).first()
    if template is None:
        return f"template {template_id} no longer exists"
    version = template.versions.order_by("-number").first()
    if version is None:
        return f"template “{template.name}” has no published version"
    if version.channel != channel:
        return f"template “{template.name}” is a {version.channel} message, not {channel}"
    return ""


# --- sending -------------------------------------------------------------------------------


def reach_problem(contact, channel: str, connections: dict | None = None) -> tuple[str, str]:
    """(address, "") when a message on `channel` can reach the contact now, else ("", why)."""
    connections = {} if connections is None else connections
    if channel not in connections:
        connections[channel] = channel_connection(channel)
    connected, how = connections[channel]
    if not connected:
        return "", f"no provider serves {channel} ({how})"
    if channel == ChannelType.EMAIL:
        address = contact.email
    elif channel == ChannelType.SMS:
        address = contact.phone
    else:
        address = messenger_chat(contact.extra_channels, channel)
    if not address:
        return "", f"the contact has no {ChannelType(channel).label} address"
    if channel in SUPPRESSIBLE_CHANNELS:
        active = suppressions_active(channel, [address])
        if active:
            return "", suppression_explain(next(iter(active.values())))
    if channel == ChannelType.EMAIL and Unsubscribed.objects.filter(email__iexact=address).exists():
        return "", "the address is on the unsubscribed list"
    return address, ""


def _visit(run: WorkflowRun, step_id: str) -> int:
    return sum(1 for entry in run.path or [] if entry.get("step") == step_id)


def _to_contact(
    step: dict, run: WorkflowRun, *, channel: str, template_id: int, names: dict, visit: int
) -> tuple[Delivery, str]:
    """Queue one message to the run's contact through the single-message service (one
    ledger row, sent by its task after commit) with the event params as $data; (the row,
    what the history says)."""
    try:
        send_request, results = smartsend_start(
            template_id=template_id,
            recipients=[{"contactId": run.contact_id, "jsonParam": run.params or {}}],
            email=channel == ChannelType.EMAIL,
            kind=SendKind.WORKFLOW,
            send_window=step.get("window") or None,
        )
    except MessageError as exc:
        raise SendStepError(str(exc)) from None
    result = results[0]
    if result.request_id is None:
        raise SendStepError(result.message)
    delivery = Delivery.objects.get(request_id=result.request_id)
    WorkflowMessage.objects.create(run=run, step_id=step["id"], delivery=delivery)
    _record(run, step, visit, channel=channel, send_request=send_request, names=names)
    if not result.ok:
        # A refused recipient with a ledger row: its address is suppressed (a bounce, a
        # complaint). The message is recorded as skipped and the journey goes on, as it
        # would for a message that bounced.
        return delivery, f"{delivery.channel} to {result.locator} not sent: {result.message}"
    return delivery, f"{delivery.channel} to {result.locator} queued (request {result.request_id})"


def _record(
    run: WorkflowRun,
    step: dict,
    visit: int,
    *,
    channel: str = "",
    send_request: SendRequest | None = None,
    names: dict | None = None,
) -> None:
    """The step's send on this visit (none: no channel could reach the contact)."""
    WorkflowSend.objects.create(
        run=run,
        step_id=step["id"],
        visit=visit,
        channel=channel,
        send_request=send_request,
        names=names or {},
    )


def _skipped_text(skipped: list[dict]) -> str:
    return "; ".join(f"{item['channel']} skipped: {item['reason']}" for item in skipped)


def _send_one(step: dict, run: WorkflowRun, visit: int) -> StepSent:
    delivery, note = _to_contact(
        step,
        run,
        channel=step.get("channel", "email"),
        template_id=step["template_id"],
        names=run_names(run),
        visit=visit,
    )
    return StepSent(step.get("next") or "", note, {"delivery": delivery.pk})


def _send_one_of(step: dict, run: WorkflowRun, visit: int) -> StepSent:
    skipped: list[dict] = []
    connections: dict = {}
    for option in step.get("options") or []:
        channel = option["channel"]
        _address, problem = reach_problem(run.contact, channel, connections)
        if problem:
            skipped.append({"channel": channel, "reason": problem})
            continue
        delivery, note = _to_contact(
            step,
            run,
            channel=channel,
            template_id=option["template_id"],
            names=run_names(run),
            visit=visit,
        )
        if skipped:
            note = f"{note}; {_skipped_text(skipped)}"
        extra = {"delivery": delivery.pk, "channel": channel, "skipped": skipped}
        return StepSent(step.get("next") or "", f"sent by {channel}: {note}", extra)
    _record(run, step, visit)
    note = f"no channel can reach the contact, nothing sent: {_skipped_text(skipped)}"
    return StepSent(step.get("next") or "", note, {"channel": "", "skipped": skipped})


def _send_group(step: dict, run: WorkflowRun, visit: int) -> StepSent:
    names = run_names(run)
    channel = step.get("channel", "email")
    segment_id = step.get("segment_id")
    try:
        if isinstance(segment_id, int):
            segment = Segment.objects.filter(pk=segment_id).first()
            if segment is None:
                raise SendStepError(f"segment {segment_id} no longer exists")
            send_request, queued = segment_message_start(
                template_id=step["template_id"], segment=segment, params=run.params or {}
            )
            note = f"{channel} to {queued} contacts of segment “{segment.name}” queued"
        else:
            send_request, results = smartsend_start(
                template_id=step["template_id"],
                recipients=[
                    {"locator": address, "jsonParam": run.params or {}}
                    for address in step.get("addresses") or []
                ],
                email=channel == ChannelType.EMAIL,
                kind=SendKind.SMARTSEND,
            )
            queued = sum(result.ok for result in results)
            refused = [f"{r.locator} not sent: {r.message}" for r in results if not r.ok]
            note = "; ".join([f"{channel} to {queued} addresses queued", *refused])
    except MessageError as exc:
        raise SendStepError(str(exc)) from None
    _record(run, step, visit, channel=channel, send_request=send_request, names=names)
    return StepSent(step.get("next") or "", note, {"queued": queued, "request": send_request.pk})


def step_send(step: dict, run: WorkflowRun) -> StepSent:
    """Do a message step of a claimed run (the caller holds the run's row lock, so the
    visit's send is looked up and made by one worker at a time)."""
    visit = _visit(run, step["id"])
    done = WorkflowSend.objects.filter(run=run, step_id=step["id"], visit=visit).first()
    if done is not None:
        note = f"already sent on this visit (request {done.send_request_id})"
        return StepSent(step.get("next") or "", note)
    if step.get("kind") == "send_one_of":
        return _send_one_of(step, run, visit)
    if step.get("kind") == "send_group":
        return _send_group(step, run, visit)
    return _send_one(step, run, visit)


# --- the simulator -------------------------------------------------------------------------


def _template_name(template_id: Any) -> str:
    template = MessageTemplate.objects.filter(pk=template_id).first()
    return f"“{template.name}”" if template else f"template {template_id}"


def describe(step: dict, contact) -> str:
    """What a message step would send to `contact`, and on which channel."""
    kind = step.get("kind")
    if kind == "send_one_of":
        skipped: list[dict] = []
        connections: dict = {}
        for option in step.get("options") or []:
            address, problem = reach_problem(contact, option.get("channel"), connections)
            if problem:
                skipped.append({"channel": option.get("channel"), "reason": problem})
                continue
            name = _template_name(option.get("template_id"))
            text = f"would send {name} by {option['channel']} to {address}"
            return f"{text} ({_skipped_text(skipped)})" if skipped else text
        return f"would send nothing, no channel reaches the contact ({_skipped_text(skipped)})"
    name = _template_name(step.get("template_id"))
    channel = step.get("channel")
    if kind == "send_group":
        segment = Segment.objects.filter(pk=step.get("segment_id")).first()
        if segment is not None:
            count = segment_contacts(segment).count()
            return f"would send {name} by {channel} to the {count} contacts of “{segment.name}”"
        addresses = ", ".join(str(a) for a in step.get("addresses") or [])
        return f"would send {name} by {channel} to {addresses or '(no addresses!)'}"
    address, problem = reach_problem(contact, str(channel))
    return f"would send {name} by {channel} to {address or f'nobody: {problem}'}"


# --- the editor ----------------------------------------------------------------------------


def channel_choices(*current: str) -> list[tuple[str, str]]:
    """The channels the organisation can send on now, and those the step already names."""
    return [
        (channel, str(ChannelType(channel).label))
        for channel in CHANNELS
        if channel in current or channel_connection(channel)[0]
    ]


FORM_VISIBLE = {
    "send_one_of": [
        *(
            f"option{n}_{part}"
            for n in range(1, MAX_OPTIONS + 1)
            for part in ("channel", "template")
        ),
        "window_from",
        "window_to",
        "window_days",
        "next",
    ],
    "send_group": ["template", "channel", "group_segment", "addresses", "next"],
}


def form_fields(step: dict) -> dict[str, forms.Field]:
    """The fields of the message steps beyond those of a plain send (forms.StepForm)."""
    named = [str(step.get("channel") or "")] + [
        str(option.get("channel") or "") for option in step.get("options") or []
    ]
    channels = channel_choices(*named)
    fields: dict[str, forms.Field] = {
        "channel": forms.ChoiceField(choices=channels, required=False, label=_("Channel"))
    }
    for n in range(1, MAX_OPTIONS + 1):
        fields[f"option{n}_channel"] = forms.ChoiceField(
            choices=[("", _("— not used —")), *channels],
            required=False,
            label=_("Channel %(n)s") % {"n": n},
        )
        fields[f"option{n}_template"] = forms.ModelChoiceField(
            queryset=MessageTemplate.objects.all(),
            required=False,
            label=_("Its template"),
        )
    fields["group_segment"] = forms.ModelChoiceField(
        queryset=Segment.objects.all(), required=False, label=_("To every contact of the segment")
    )
    fields["addresses"] = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "manager@shop.example"}),
        label=_("…or to these addresses (one a line)"),
    )
    return fields


def form_initial(step: dict) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "group_segment": step.get("segment_id"),
        "addresses": "\n".join(str(a) for a in step.get("addresses") or []),
    }
    for n, option in enumerate(step.get("options") or [], 1):
        initial[f"option{n}_channel"] = option.get("channel", "")
        initial[f"option{n}_template"] = option.get("template_id")
    return initial


def form_to_step(kind: str, data: dict) -> dict[str, Any]:
    """The settings of a "one of many" or group step from a valid StepForm's data."""
    if kind == "send_one_of":
        options = []
        for n in range(1, MAX_OPTIONS + 1):
            channel, template = data.get(f"option{n}_channel"), data.get(f"option{n}_template")
            if channel or template:
                options.append(
                    {"channel": channel or "", "template_id": template.pk if template else None}
                )
        return {"options": options}
    segment = data.get("group_segment")
    addresses = [line.strip() for line in (data.get("addresses") or "").splitlines()]
    return {
        "template_id": data["template"].pk if data.get("template") else None,
        "channel": data.get("channel") or "email",
        "segment_id": segment.pk if segment else None,
        "addresses": [address for address in addresses if address],
    }
