"""Ready-made scenarios (the automation use cases eSputnik documents) a marketer starts from.

Each builds a draft workflow: trigger, re-entry policy and steps. Message steps have no
template yet, because only the marketer knows which one to send; activation says which
steps still need one.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contacts.models import CustomField, CustomFieldType
from marketing.models import EventType
from marketing.workflows.models import ReEntry, TriggerKind, Workflow
from marketing.workflows.services import workflow_create

DAY = 86400
HOUR = 3600

# Event keys Herald itself emits: contacts' subscribe, and orders (marketing.orders emits
# "order<STATUS>" for a new order or a status change, the order and its items as params).
SUBSCRIBE_EVENT = "subscribeFromApi"
ABANDONED_CART_EVENT = "orderABANDONED_SHOPPING_CART"
ORDER_DELIVERED_EVENT = "orderDELIVERED"
# An event the site sends when a contact books a date (a webinar, an appointment).
REMINDER_EVENT = "reminderRequested"


def _steps(*specs: dict) -> dict:
    """A graph from step dicts given in order; `next` defaults to the following step."""
    steps = []
    for position, spec in enumerate(specs):
        step = {"id": f"s{position + 1}", "label": "", **spec}
        if step["kind"] not in ("condition", "exit") and "next" not in spec:
            step["next"] = f"s{position + 2}" if position + 1 < len(specs) else ""
        steps.append(step)
    return {"start": "s1", "steps": steps}


def _send(label: str, channel: str = "email") -> dict:
    return {"kind": "send", "label": label, "template_id": None, "channel": channel}


def _wait(label: str, seconds: int) -> dict:
    return {"kind": "wait", "label": label, "mode": "duration", "seconds": seconds, "time": "09:00"}


def _exit(label: str) -> dict:
    return {"kind": "exit", "label": label}


def double_opt_in() -> dict:
    return {
        "description": "Asks a new subscriber to confirm, reminds once, and stops when the "
        "address is confirmed.",
        "trigger_kind": TriggerKind.EVENT,
        "event_key": SUBSCRIBE_EVENT,
        "re_entry": ReEntry.ONCE,
        "graph": _steps(
            _send("Confirmation request"),
            _wait("Give them two days", 2 * DAY),
            {
                "kind": "condition",
                "label": "Confirmed?",
                "check": {"type": "contact", "filter": {"confirmed": True}},
                "yes": "s4",
                "no": "s5",
            },
            _exit("Confirmed"),
            _send("Confirmation reminder"),
            _exit("Reminded"),
        ),
    }


def welcome_series() -> dict:
    return {
        "description": "Three welcome emails over a week; the third only to those who "
        "engaged with the first two.",
        "trigger_kind": TriggerKind.EVENT,
        "event_key": SUBSCRIBE_EVENT,
        "re_entry": ReEntry.ONCE,
        "graph": _steps(
            _send("Welcome"),
            _wait("Two days later", 2 * DAY),
            _send("Get to know us"),
            _wait("Five days later", 5 * DAY),
            {
                "kind": "condition",
                "label": "Opened the welcome?",
                "check": {"type": "message", "event": "opened", "step": "s1"},
                "yes": "s6",
                "no": "s7",
            },
            _send("Special offer"),
            _exit("Series over"),
        ),
    }


def birthday_greeting() -> dict:
    return {
        "description": "Greets contacts on their birthday at 09:00 (needs a date custom field).",
        "trigger_kind": TriggerKind.DATE,
        "date_trigger": {"field": "", "offset_days": 0, "time": "09:00"},
        "re_entry": ReEntry.AFTER_DAYS,
        "re_entry_days": 300,
        "graph": _steps(_send("Happy birthday")),
    }


def abandoned_cart() -> dict:
    return {
        "description": "Reminds a shopper of the cart they left (order status "
        "ABANDONED_SHOPPING_CART; the cart's items are $data in the message), then once more "
        "if the first reminder was not clicked.",
        "trigger_kind": TriggerKind.EVENT,
        "event_key": ABANDONED_CART_EVENT,
        "re_entry": ReEntry.EVERY_TIME,
        "graph": _steps(
            _wait("One hour later", HOUR),
            _send("You left something in your cart"),
            _wait("One day later", DAY),
            {
                "kind": "condition",
                "label": "Clicked the reminder?",
                "check": {"type": "message", "event": "clicked", "step": "s2"},
                "yes": "s5",
                "no": "s6",
            },
            _exit("Came back"),
            _send("Last reminder"),
            _exit("Reminded twice"),
        ),
    }


def reactivation() -> dict:
    return {
        "description": "Wins back contacts who enter an “inactive” segment: a “we miss you” "
        "message, and if it is not opened within a week, a note on the contact.",
        "trigger_kind": TriggerKind.SEGMENT_ENTER,
        "re_entry": ReEntry.AFTER_DAYS,
        "re_entry_days": 90,
        "graph": _steps(
            _send("We miss you"),
            _wait("A week later", 7 * DAY),
            {
                "kind": "condition",
                "label": "Opened it?",
                "check": {"type": "message", "event": "opened", "step": "s1"},
                "yes": "s4",
                "no": "s5",
            },
            _exit("Reactivated"),
            {
                "kind": "update_field",
                "label": "Mark as lapsed",
                "field": "tags",
                "value": "lapsed",
                "next": "",
            },
        ),
    }


def order_feedback() -> dict:
    return {
        "description": "Asks for a review three days after an order is delivered.",
        "trigger_kind": TriggerKind.EVENT,
        "event_key": ORDER_DELIVERED_EVENT,
        "re_entry": ReEntry.EVERY_TIME,
        "graph": _steps(
            _wait("Three days after delivery", 3 * DAY),
            _send("How was your order?"),
        ),
    }


def event_reminder() -> dict:
    return {
        "description": "Reminds a contact of the date they chose (the event's `eventDate`, "
        "YYYY-MM-DD): the day before at 10:00 and on the morning itself, in their time zone; "
        "a sign-up without a date, or for a day already past, leaves at once.",
        "trigger_kind": TriggerKind.EVENT,
        "event_key": REMINDER_EVENT,
        "re_entry": ReEntry.EVERY_TIME,
        "graph": _steps(
            _date_wait("The day before, 10:00", offset_days=-1, time="10:00"),
            _send("Reminder: tomorrow"),
            _date_wait("On the day, 08:00", offset_days=0, time="08:00"),
            _send("Reminder: today"),
        ),
    }


def _date_wait(label: str, *, offset_days: int, time: str) -> dict:
    return {
        "kind": "wait",
        "label": label,
        "mode": "date",
        "source": "param",
        "param": "eventDate",
        "offset_days": offset_days,
        "time": time,
        "on_missing": "exit",
    }


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    build: Callable[[], dict]


SCENARIOS = {
    scenario.key: scenario
    for scenario in (
        Scenario("double_opt_in", "Double opt-in", double_opt_in),
        Scenario("welcome_series", "Welcome series", welcome_series),
        Scenario("birthday", "Birthday greeting", birthday_greeting),
        Scenario("abandoned_cart", "Abandoned cart", abandoned_cart),
        Scenario("reactivation", "Re-activation of inactive contacts", reactivation),
        Scenario("order_feedback", "Order feedback request", order_feedback),
        Scenario("event_reminder", "Reminders at the date the contact chose", event_reminder),
    )
}


def workflow_create_from_scenario(*, key: str, name: str = "", created_by: Any = None) -> Workflow:
    """A draft workflow built from a ready-made scenario (its event type created if new; a
    birthday takes the first date custom field, if there is one)."""

    scenario = SCENARIOS[key]
    spec = scenario.build()
    settings: dict[str, Any] = {
        "description": spec["description"],
        "trigger_kind": spec["trigger_kind"],
        "re_entry": spec["re_entry"],
        "scenario": key,
    }
    if "re_entry_days" in spec:
        settings["re_entry_days"] = spec["re_entry_days"]
    if spec.get("event_key"):
        settings["event_type"], _ = EventType.objects.get_or_create(
            key=spec["event_key"], defaults={"name": spec["event_key"]}
        )
    if "date_trigger" in spec:
        date_trigger = dict(spec["date_trigger"])
        field = CustomField.objects.filter(type=CustomFieldType.DATE).order_by("pk").first()
        date_trigger["field"] = str(field.pk) if field else ""
        settings["date_trigger"] = date_trigger
    return workflow_create(
        name=name or scenario.title, graph=spec["graph"], created_by=created_by, **settings
    )
