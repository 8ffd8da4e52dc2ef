"""Declared event params: what an event type says its events carry, and the check of an
event against it.

A declaration is a list of `{"name", "type", "required"}` stored on the event type
(`EventType.params_declared`) with what to do with an event that breaks it
(`invalid_mode`: refuse it with a 400, or store it flagged). Types without a declaration take
any params, as Generate event always has.

Decisions:
- Params the declaration does not name are accepted: senders add params over time, and a
  template that does not read one is not hurt by it.
- The eSputnik v1 API sends every value as a string ("5", "true", "2026-12-01"), so a typed
  param accepts its type's JSON value or a string that reads as one; v2 senders may send
  either.
- A missing param, `null` and `""` are all "not given": an error only when `required`.
"""

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy as _

from config.core.errors import FieldError
from contacts.channels import email_normalise
from marketing.filters import FieldListError
from marketing.models import EventType, InvalidEventMode

PARAMS_DECLARED_MAX = 100
PARAM_NAME_MAX = 200
# Named as the param types of the eSputnik event editor and Brevo's event properties.
PARAM_TYPES = {
    "string": _("Text"),
    "number": _("Number"),
    "integer": _("Whole number"),
    "boolean": _("Yes/no (true or false)"),
    "date": _("Date (YYYY-MM-DD)"),
    "datetime": _("Date and time (ISO 8601)"),
    "email": _("Email address"),
    "url": _("Web address (http or https)"),
}
_INTEGER_RE = re.compile(r"^[+-]?\d{1,18}$")
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


class DeclarationError(FieldError):
    """A declaration that cannot be stored (400 naming the entry and the problem)."""


class EventParamsError(FieldListError):
    """An event refused by its type's declaration: 400 with every problem, in Generate
    event's error shape `{"params.<name>": ["<problem>"], ...}`."""

    def __init__(self, problems: list[dict]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(f"params.{first['param']}", first["problem"])

    def body(self) -> dict[str, Any]:
        return {f"params.{p['param']}": [p["problem"]] for p in self.problems}


@dataclass(frozen=True)
class DeclaredParam:
    name: str
    type: str
    required: bool

    def as_json(self) -> dict:
        return {"name": self.name, "type": self.type, "required": self.required}


def declaration_parse(raw: Any, *, field: str = "params") -> list[DeclaredParam]:
    """Read a declaration ([{name, type, required}]); raise DeclarationError naming the first
    bad entry as `<field>[i].<key>`."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise DeclarationError(field, "must be a list of {name, type, required} objects")
    if len(raw) > PARAMS_DECLARED_MAX:
        raise DeclarationError(field, f"at most {PARAMS_DECLARED_MAX} params (got {len(raw)})")
    declared: list[DeclaredParam] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise DeclarationError(where, "must be an object {name, type, required}")
        unknown = set(item) - {"name", "type", "required"}
        if unknown:
            raise DeclarationError(
                where, f"unknown key(s) {sorted(unknown)}; expected name, type and required"
            )
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise DeclarationError(f"{where}.name", "must be a non-empty string")
        name = name.strip()
        if len(name) > PARAM_NAME_MAX:
            raise DeclarationError(f"{where}.name", f"at most {PARAM_NAME_MAX} characters")
        if name in seen:
            raise DeclarationError(f"{where}.name", f"{name!r} is declared twice")
        seen.add(name)
        kind = item.get("type", "string")
        if kind not in PARAM_TYPES:
            raise DeclarationError(f"{where}.type", f"one of {', '.join(PARAM_TYPES)}")
        required = item.get("required", False)
        if not isinstance(required, bool):
            raise DeclarationError(f"{where}.required", "must be true or false")
        declared.append(DeclaredParam(name=name, type=kind, required=required))
    return declared


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return math.isfinite(float(value.strip()))
        except ValueError:
            return False
    return False


def _integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, str) and bool(_INTEGER_RE.match(value.strip()))


def _boolean(value: Any) -> bool:
    return isinstance(value, bool) or (
        isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE
    )


def _date(value: Any) -> bool:
    try:
        return isinstance(value, str) and parse_date(value.strip()) is not None
    except ValueError:
        return False


def _datetime(value: Any) -> bool:
    try:
        return isinstance(value, str) and parse_datetime(value.strip()) is not None
    except ValueError:
        return False


def _email(value: Any) -> bool:
    return isinstance(value, str) and email_normalise(value)[0] is not None


def _url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _string(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


_CHECKS = {
    "string": (_string, "must be text"),
    "number": (_number, "must be a number"),
    "integer": (_integer, "must be a whole number"),
    "boolean": (_boolean, "must be true or false"),
    "date": (_date, "must be a date (YYYY-MM-DD)"),
    "datetime": (_datetime, "must be an ISO 8601 date and time"),
    "email": (_email, "must be an email address"),
    "url": (_url, "must be an http or https address"),
}


def params_problems(declared: list[DeclaredParam], params: dict) -> list[dict]:
    """The ways `params` break the declaration, in declaration order:
    [{"param": name, "problem": text}]; empty when they meet it."""
    problems = []
    for param in declared:
        value = params.get(param.name)
        if value is None or value == "":
            if param.required:
                problems.append({"param": param.name, "problem": "required"})
            continue
        check, problem = _CHECKS[param.type]
        if not check(value):
            problems.append({"param": param.name, "problem": problem})
    return problems


def occurred_at_parse(raw: Any, *, now: dt.datetime, skew: dt.timedelta) -> dt.datetime | None:
    """An event's `occurredAt`: an ISO 8601 date-time (without an offset: UTC) no later than
    `now` + `skew`; None when not given. Raises FieldError naming `occurredAt`."""
    if raw is None or raw == "":
        return None
    moment = None
    if isinstance(raw, str):
        try:
            moment = parse_datetime(raw.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise FieldListError(
            "occurredAt", "must be an ISO 8601 date and time, e.g. 2026-12-01T09:30:00+02:00"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if moment > now + skew:
        raise FieldListError(
            "occurredAt",
            f"is in the future ({moment.isoformat()}); at most {int(skew.total_seconds())} "
            "seconds ahead of the server's clock",
        )
    if moment.year < 1970:
        raise FieldListError("occurredAt", "must be 1970 or later")
    return moment


@transaction.atomic
def event_type_declare(
    *,
    event_type: EventType,
    params: Any,
    invalid_mode: str,
    flagged_start_workflows: bool = False,
) -> EventType:
    """Store an event type's declared params and what to do with events that break them.
    Every web process checks the next event of the type against the new declaration (its
    token changes). An empty list removes the declaration: the type takes anything again."""
    declared = declaration_parse(params)
    if invalid_mode not in InvalidEventMode.values:
        raise DeclarationError("invalidMode", f"one of {', '.join(InvalidEventMode.values)}")
    if not isinstance(flagged_start_workflows, bool):
        raise DeclarationError("flaggedStartWorkflows", "must be true or false")
    event_type.params_declared = [param.as_json() for param in declared]
    event_type.invalid_mode = invalid_mode
    event_type.flagged_start_workflows = flagged_start_workflows
    event_type.save(update_fields=["params_declared", "invalid_mode", "flagged_start_workflows"])
    return event_type
