"""The workflow's logic blocks: conditions on orders and engagement, waits until a date or an
allowed sending window, and the A/B split. Each block has its shape, its validation (the
sentences activation shows) and its evaluation, which answers with the reason the run
history and the simulator show.

Shapes (in a step of the graph, marketing.workflows.graph):

    condition  {"check": {"type": "order", "order": "run" | "last", "attr": "total",
                          "op": "gte", "value": "100"}}
               {"check": {"type": "engagement", "event": "opened" | "clicked" | "not_sent",
                          "scope": "any" | "campaign" | "run", "campaign_id": 4, "step": "s1",
                          "days": 30}}
    wait       {"mode": "date", "source": "field" | "param", "field": "12", "param": "eventDate",
                "offset_days": -1, "time": "10:00", "yearly": false, "on_missing": "continue"}
               {"mode": "window", "window": {"from": "09:00", "to": "20:00", "days": [1, 2]}}
    split      {"by": "run" | "contact", "branches": [{"key": "A", "percent": 50, "next": "s4"},
                                                      {"key": "B", "percent": 50, "next": ""}]}

Decisions:
- The run's order is the one its event names (`orderId`, else `externalOrderId`: the order
  events carry both); the last order is the contact's latest by date. Without an order every
  comparison is false (the "no" branch) and the reason says so.
- An item comparison (SKU, category) holds when any item of the order matches; "does not
  equal" holds when no item equals the value.
- Engagement counts human opens and clicks only (Delivery.opened_at/clicked_at); a click is
  also an open. "Sent nothing for N days" reads the contact's sent messages of every kind.
- A date wait whose date is missing, unreadable or already past does what the step says:
  `continue` (go on at once, the default) or `exit` (leave the workflow). A yearly date
  waits for its next anniversary instead, so it is never past.
- A window wait goes on at once when the window is open, else wakes at its next opening in
  the contact's time zone (campaigns.send_rules.SendWindow, the rule sends use).
- The split ranks the run (or the contact, so a contact who enters again keeps its branch)
  with the hash the campaign A/B tests use (campaigns.abtest.hash_rank) modulo 100, and walks
  the branches' cumulative percentages: deterministic, and exact in proportion over many runs.
"""

# Table names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils.dateparse import parse_date

from campaigns.abtest import MAX_VARIANTS, MIN_VARIANTS, hash_rank, letter
from campaigns.models import Delivery
from campaigns.send_rules import SendWindow, window_opening
from config.core.errors import FieldError
from marketing.models import Order, OrderItem, OrderStatus
from marketing.workflows.conditions import param_matches
from marketing.workflows.message_names import run_order
from marketing.workflows.models import WorkflowMessage, WorkflowRun

TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
FIELD_ID_RE = re.compile(r"^[0-9]{1,18}$")
MAX_DAYS = 3650
MAX_OFFSET_DAYS = 365

ORDER_SOURCES = {"run": "the run's order", "last": "the contact's last order"}
# attr -> (how a reason names it, whether it is a per-item attribute)
ORDER_ATTRS: dict[str, tuple[str, bool]] = {
    "status": ("status", False),
    "total": ("total", False),
    "currency": ("currency", False),
    "items_count": ("number of items", False),
    "sku": ("an item's SKU", True),
    "category": ("an item's category", True),
}
ENGAGEMENT_EVENTS = {
    "opened": "opened",
    "clicked": "clicked",
    "not_sent": "was sent nothing",
}
ENGAGEMENT_SCOPES = {
    "any": "any message",
    "campaign": "a message of campaign",
    "run": "a message of this run",
}
MISSING_DATE = ("continue", "exit")
SPLIT_BY = ("run", "contact")


@dataclass
class Verdict:
    """A condition's answer and the reason the run history shows."""

    holds: bool
    reason: str


# --- validation -----------------------------------------------------------------------------


def _whole(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def order_check_problems(check: dict, ops: dict) -> list[str]:
    problems = []
    if check.get("order") not in ORDER_SOURCES:
        problems.append("choose the run's order or the contact's last order")
    if check.get("attr") not in ORDER_ATTRS:
        problems.append(f"unknown order attribute {check.get('attr')!r}")
    if check.get("op") not in ops:
        problems.append(f"unknown comparison {check.get('op')!r}")
    elif check.get("op") != "exists" and str(check.get("value") or "").strip() == "":
        problems.append("the value to compare the order with is missing")
    else:
        problems.extend(order_value_problems(check))
    return problems


# Comparisons that read the value as a number.
NUMERIC_OPS = ("gt", "gte", "lt", "lte")


def order_value_problems(check: dict) -> list[str]:
    """Values the comparison cannot take: a word where a number goes, an unknown status."""
    attr, op, value = check.get("attr"), check.get("op"), str(check.get("value") or "").strip()
    if attr in ("total", "items_count") and op in NUMERIC_OPS:
        try:
            Decimal(value)
        except InvalidOperation:
            return [f"the {ORDER_ATTRS[attr][0]} is compared with a number, not {value!r}"]
    if attr == "status" and op in ("eq", "ne", "in"):
        unknown = [
            item.strip()
            for item in (value.split(",") if op == "in" else [value])
            if item.strip() not in OrderStatus.values
        ]
        if unknown:
            return [f"unknown order status {unknown[0]!r}; one of {', '.join(OrderStatus.values)}"]
    return []


def engagement_check_problems(check: dict) -> list[str]:
    problems = []
    event = check.get("event")
    if event not in ENGAGEMENT_EVENTS:
        problems.append("check whether messages were opened, clicked or none was sent")
    days = _whole(check.get("days"))
    if days is None or not 1 <= days <= MAX_DAYS:
        problems.append(f"the number of days must be between 1 and {MAX_DAYS}")
    scope = check.get("scope") or "any"
    if event != "not_sent":
        if scope not in ENGAGEMENT_SCOPES:
            problems.append(f"unknown scope {scope!r}")
        elif scope == "campaign" and _whole(check.get("campaign_id")) is None:
            problems.append("choose the campaign whose messages count")
    return problems


def wait_problems(step: dict) -> list[str]:
    """Problems of the date and window waits (None when the mode is not one of them)."""
    mode = step.get("mode")
    problems = []
    if mode == "date":
        source = step.get("source") or "field"
        if source == "field" and not FIELD_ID_RE.match(str(step.get("field") or "")):
            problems.append("choose the contact's date field to wait for")
        elif source == "param" and not str(step.get("param") or "").strip():
            problems.append("name the event parameter holding the date")
        elif source not in ("field", "param"):
            problems.append("wait for a date of a contact field or an event parameter")
        offset = _whole(step.get("offset_days"))
        if offset is None or abs(offset) > MAX_OFFSET_DAYS:
            problems.append(
                f"the offset must be between -{MAX_OFFSET_DAYS} and {MAX_OFFSET_DAYS} days"
            )
        if not TIME_RE.match(str(step.get("time") or "")):
            problems.append("the time of day must be HH:MM (24-hour)")
        if step.get("on_missing", "continue") not in MISSING_DATE:
            problems.append("say what a missing or past date does: continue or exit")
    elif mode == "window":
        try:
            if SendWindow.clean(step.get("window"), field="window") is None:
                problems.append("set the window's hours")
        except FieldError as exc:
            problems.append(f"sending {exc.field}: {exc.message}")
    return problems


def split_problems(step: dict) -> list[str]:
    branches = step.get("branches")
    if not isinstance(branches, list) or not MIN_VARIANTS <= len(branches) <= MAX_VARIANTS:
        return [f"an A/B split has {MIN_VARIANTS} to {MAX_VARIANTS} branches"]
    problems = []
    if step.get("by", "run") not in SPLIT_BY:
        problems.append("split by run or by contact")
    keys = [branch.get("key") for branch in branches if isinstance(branch, dict)]
    if len(keys) != len(branches) or len(set(keys)) != len(keys) or not all(keys):
        problems.append("every branch needs its own letter")
    total = 0
    for branch in branches:
        percent = _whole(branch.get("percent")) if isinstance(branch, dict) else None
        if percent is None or not 1 <= percent <= 99:
            problems.append(f"branch {branch.get('key')}: the share must be 1 to 99 percent")
        else:
            total += percent
    if not problems and total != 100:
        problems.append(f"the branches' shares add up to {total}%, not 100%")
    return problems


def split_branch_key(branches: list[dict]) -> str:
    """The first letter no branch has yet."""
    used = {branch.get("key") for branch in branches}
    return next(letter(n) for n in range(MAX_VARIANTS + 1) if letter(n) not in used)


def default_split() -> dict:
    return {
        "by": "run",
        "branches": [
            {"key": "A", "percent": 50, "next": ""},
            {"key": "B", "percent": 50, "next": ""},
        ],
    }


def always_waits(step: dict) -> bool:
    """Whether the step is a wait that always takes time (a window that is open, or a date
    that is missing or past, goes on at once)."""
    return step.get("kind") == "wait" and step.get("mode") not in ("date", "window")


# --- conditions -----------------------------------------------------------------------------


def _last_order(contact_id: int) -> Order | None:
    return Order.objects.filter(contact_id=contact_id).order_by("-date", "-id").first()


def order_verdict(check: dict, *, contact_id: int, params: dict) -> Verdict:
    source = check.get("order") or "run"
    order = run_order(params) if source == "run" else _last_order(contact_id)
    if order is None:
        return Verdict(False, f"no {ORDER_SOURCES.get(source, source).removeprefix('the ')}")
    attr = check.get("attr") or "status"
    op = check.get("op") or "eq"
    value = check.get("value")
    what, per_item = ORDER_ATTRS.get(attr, (attr, False))
    name = f"order {order.external_order_id}"
    if per_item:
        column = "external_item_id" if attr == "sku" else "category"
        items = [
            str(v) for v in OrderItem.objects.filter(order=order).values_list(column, flat=True)
        ]
        if op == "ne":
            holds = not any(
                param_matches({"v": item}, param="v", op="eq", value=value) for item in items
            )
        else:
            holds = any(param_matches({"v": item}, param="v", op=op, value=value) for item in items)
        shown = ", ".join(items) or "no items"
        return Verdict(
            holds, f"{name}: {what} ({shown}) {op} {value if value is not None else ''}".rstrip()
        )
    actual: Any
    if attr == "items_count":
        actual = OrderItem.objects.filter(order=order).count()
    elif attr == "total":
        actual = str(order.total_cost)  # a Decimal compares as a number through its text
    else:
        actual = {"status": order.status, "currency": order.currency}.get(attr)
    holds = param_matches({"v": actual}, param="v", op=op, value=value)
    shown_value = "" if op == "exists" else f" {value}"
    return Verdict(holds, f"{name}: {what} {actual} {op}{shown_value}")


def engagement_verdict(
    check: dict,
    *,
    contact_id: int,
    run_id: int | None,
    now: dt.datetime,
    assumed: set[str] | None = None,
) -> Verdict:
    """`assumed` (the simulator's answers) stands in for this run's messages, which a
    simulated run does not have."""
    event = check.get("event") or "opened"
    days = int(check.get("days") or 1)
    since = now - dt.timedelta(days=days)
    period = f"in the last {days} day{'s' if days != 1 else ''}"
    if event == "not_sent":
        # The (contact, sent_at) partial index serves this range.
        sent = Delivery.objects.filter(contact_id=contact_id, sent_at__gte=since).exists()
        return Verdict(not sent, f"{'a message was' if sent else 'nothing was'} sent {period}")
    scope = check.get("scope") or "any"
    if scope == "run" and run_id is None:
        holds = event in (assumed or set())
        return Verdict(holds, f"assumed {'' if holds else 'not '}{event}")
    if scope == "run":
        messages = WorkflowMessage.objects.filter(run_id=run_id)
        if check.get("step"):
            messages = messages.filter(step_id=check["step"])
        deliveries = Delivery.objects.filter(pk__in=messages.values("delivery_id"))
    else:
        deliveries = Delivery.objects.filter(contact_id=contact_id, sent_at__isnull=False)
        if scope == "campaign":
            deliveries = deliveries.filter(run__campaign_id=int(check.get("campaign_id") or 0))
    if event == "clicked":
        hit = deliveries.filter(clicked_at__gte=since).exists()
    else:
        hit = deliveries.filter(Q(opened_at__gte=since) | Q(clicked_at__gte=since)).exists()
    where = ENGAGEMENT_SCOPES.get(scope, scope)
    if scope == "campaign":
        where = f"{where} {check.get('campaign_id')}"
    return Verdict(hit, f"{where} {'was' if hit else 'was not'} {event} {period}")


# --- waits ----------------------------------------------------------------------------------


@dataclass
class WaitPlan:
    """When a date or window wait wakes the run: `until` None goes on at once; `exit` leaves."""

    until: dt.datetime | None
    note: str
    exit: bool = False


def _date_of(step: dict, *, contact, params: dict) -> dt.date | None:
    if (step.get("source") or "field") == "param":
        raw = params.get(str(step.get("param") or ""))
    else:
        raw = (contact.fields or {}).get(str(step.get("field") or ""))
    if not isinstance(raw, str) or len(raw) < 10:
        return None
    try:
        return parse_date(raw[:10])
    except ValueError:
        return None


def _at(day: dt.date, time_text: str, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    hour, minute = (int(part) for part in time_text.split(":"))
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def _anniversary(day: dt.date, year: int) -> dt.date | None:
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a common year
        return None


def date_wait_plan(
    step: dict, *, contact, params: dict, zone: zoneinfo.ZoneInfo, now: dt.datetime
) -> WaitPlan:
    day = _date_of(step, contact=contact, params=params)
    where = (
        f"event parameter {step.get('param')}"
        if (step.get("source") or "field") == "param"
        else f"field {step.get('field')}"
    )
    exits = step.get("on_missing") == "exit"
    then = "exits" if exits else "goes on at once"
    if day is None:
        return WaitPlan(None, f"no date in {where}: {then}", exit=exits)
    offset = dt.timedelta(days=int(step.get("offset_days") or 0))
    time_text = str(step.get("time") or "09:00")
    if step.get("yearly"):
        local_year = now.astimezone(zone).year
        for year in range(local_year, local_year + 9):
            anniversary = _anniversary(day, year)
            if anniversary is not None and _at(anniversary + offset, time_text, zone) > now:
                target = _at(anniversary + offset, time_text, zone)
                return WaitPlan(target, f"until {target:%Y-%m-%d %H:%M %Z} ({where})")
    target = _at(day + offset, time_text, zone)
    if target <= now:
        return WaitPlan(None, f"{where} ({day.isoformat()}) is past: {then}", exit=exits)
    return WaitPlan(target, f"until {target:%Y-%m-%d %H:%M %Z} ({where})")


def window_wait_plan(step: dict, *, zone: zoneinfo.ZoneInfo, now: dt.datetime) -> WaitPlan:
    window = SendWindow.of(step.get("window"))
    if window is None:
        return WaitPlan(None, "no window set: goes on at once")
    opening = window_opening(window, zone=zone.key, at=now)
    if opening <= now:
        return WaitPlan(None, f"the window {window.describe()} is open")
    local = opening.astimezone(zone)
    return WaitPlan(
        opening, f"until the window {window.describe()} opens, {local:%Y-%m-%d %H:%M %Z}"
    )


# --- A/B split ------------------------------------------------------------------------------


def split_bucket(step: dict, *, workflow_id: int, run_id: int, contact_id: int) -> int:
    """0-99: the run's (or contact's) place in this step's split, the same on every call."""
    unit = contact_id if step.get("by") == "contact" else run_id
    return hash_rank(f"workflow-split:{workflow_id}:{step.get('id')}:{unit}") % 100


def split_branch(step: dict, bucket: int) -> dict:
    """The branch whose share of 0-99 holds `bucket` (the last takes any rounding rest)."""
    branches = step.get("branches") or []
    edge = 0
    for branch in branches:
        edge += int(branch.get("percent") or 0)
        if bucket < edge:
            return branch
    return branches[-1]


def split_verdict(
    step: dict, *, workflow_id: int, run_id: int, contact_id: int
) -> tuple[dict, str]:
    bucket = split_bucket(step, workflow_id=workflow_id, run_id=run_id, contact_id=contact_id)
    branch = split_branch(step, bucket)
    unit = "contact" if step.get("by") == "contact" else "run"
    return (
        branch,
        f"branch {branch.get('key')} ({branch.get('percent')}%; {unit} hash bucket {bucket})",
    )


# --- figures --------------------------------------------------------------------------------


def _downstream(graph_steps: dict[str, dict], start: str, split_id: str) -> set[str]:
    """Steps reachable from `start` without passing the split again."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        step_id = todo.pop()
        if not step_id or step_id in seen or step_id == split_id or step_id not in graph_steps:
            continue
        seen.add(step_id)
        step = graph_steps[step_id]
        todo.extend(b.get("next") or "" for b in step.get("branches") or [])
        todo.extend(step.get(edge) or "" for edge in ("next", "yes", "no"))
    return seen


def split_figures(*, workflow_id: int, graph: dict) -> dict[str, list[dict]]:
    """Per split step of `graph`, per branch: runs that took it, and the messages sent on the
    branch (by steps after it) with their human open and click rates. Two grouped queries
    over the workflow's runs (the wfrun_status index) and their messages."""
    steps = {s["id"]: s for s in graph.get("steps", []) if isinstance(s, dict)}
    splits = {sid: s for sid, s in steps.items() if s.get("kind") == "split"}
    if not splits:
        return {}
    run_table = WorkflowRun._meta.db_table
    message_table = WorkflowMessage._meta.db_table
    delivery_table = Delivery._meta.db_table
    taken = f"""FROM {run_table} r CROSS JOIN LATERAL jsonb_array_elements(r.path) e
               WHERE r.workflow_id = %s AND e->>'step' = ANY(%s) AND e ? 'branch'"""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e->>'step', e->>'branch', count(DISTINCT r.id) {taken} GROUP BY 1, 2",
            [workflow_id, list(splits)],
        )
        runs = {(row[0], row[1]): row[2] for row in cursor.fetchall()}
        cursor.execute(
            f"""SELECT e->>'step', e->>'branch', m.step_id, count(d.sent_at),
                       count(d.sent_at) FILTER (WHERE d.opened_at IS NOT NULL
                                                   OR d.clicked_at IS NOT NULL),
                       count(d.clicked_at)
                  FROM {run_table} r CROSS JOIN LATERAL jsonb_array_elements(r.path) e
                  JOIN {message_table} m ON m.run_id = r.id
                  JOIN {delivery_table} d ON d.id = m.delivery_id
                 WHERE r.workflow_id = %s AND e->>'step' = ANY(%s) AND e ? 'branch'
                 GROUP BY 1, 2, 3""",
            [workflow_id, list(splits)],
        )
        messages = cursor.fetchall()
    figures: dict[str, list[dict]] = {}
    for split_id, split in splits.items():
        rows = []
        for branch in split.get("branches") or []:
            key = branch.get("key")
            after = _downstream(steps, branch.get("next") or "", split_id)
            sent = opened = clicked = 0
            for step_id, branch_key, message_step, n_sent, n_opened, n_clicked in messages:
                if step_id == split_id and branch_key == key and message_step in after:
                    sent, opened, clicked = sent + n_sent, opened + n_opened, clicked + n_clicked
            rows.append(
                {
                    "key": key,
                    "percent": branch.get("percent"),
                    "next": branch.get("next") or "",
                    "runs": runs.get((split_id, key), 0),
                    "sent": sent,
                    "open_rate": round(100 * opened / sent, 1) if sent else None,
                    "click_rate": round(100 * clicked / sent, 1) if sent else None,
                }
            )
        figures[split_id] = rows
    return figures
