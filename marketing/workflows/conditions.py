"""Condition checks shared by the engine, the triggers and the simulator (reads only)."""

from decimal import Decimal, InvalidOperation
from typing import Any

from contacts.filters.compiler import compile_filter
from contacts.models import Contact
from marketing.workflows.models import WorkflowMessage


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def param_matches(params: dict, *, param: str, op: str, value: Any = None) -> bool:
    """One comparison on an event parameter. Numbers compare as numbers when both sides are
    numeric (event params often arrive as strings), otherwise as text."""
    present = param in params and params[param] not in (None, "")
    if op == "exists":
        return present
    if not present:
        return op == "ne"
    actual = params[param]
    if op == "in":
        options = value if isinstance(value, list) else str(value or "").split(",")
        return str(actual).strip() in {str(option).strip() for option in options}
    if op == "contains":
        if isinstance(actual, list):
            return any(str(item) == str(value) for item in actual)
        return str(value or "").lower() in str(actual).lower()
    left, right = _number(actual), _number(value)
    if left is None or right is None:
        left, right = str(actual), str(value if value is not None else "")
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    try:
        return {
            "gt": left > right,
            "gte": left >= right,
            "lt": left < right,
            "lte": left <= right,
        }[op]
    except (KeyError, TypeError):
        return False


def params_match_all(conditions: list[dict], params: dict) -> bool:
    return all(
        param_matches(
            params,
            param=str(item.get("param") or ""),
            op=str(item.get("op") or "eq"),
            value=item.get("value"),
        )
        for item in conditions or []
    )


def contact_matches(contact_id: int, filter: dict) -> bool:
    """The contact against the segment filter language (one indexed query on its row)."""
    return (
        Contact.objects.alive().filter(pk=contact_id).filter(compile_filter(filter or {})).exists()
    )


def run_message_engaged(run_id: int, *, event: str, step_id: str = "") -> bool:
    """Whether a message this run sent (at `step_id`, or any) was opened or clicked. A click
    implies an open, even when the pixel was blocked."""

    messages = WorkflowMessage.objects.filter(run_id=run_id)
    if step_id:
        messages = messages.filter(step_id=step_id)
    if event == "clicked":
        return messages.filter(delivery__clicked_at__isnull=False).exists()
    return (
        messages.filter(delivery__opened_at__isnull=False).exists()
        or messages.filter(delivery__clicked_at__isnull=False).exists()
    )
