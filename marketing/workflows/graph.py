"""The step graph of a workflow: its JSON shape, edits to it, and what makes it runnable.

    {"start": "s1", "steps": [
        {"id": "s1", "kind": "send", "label": "Welcome", "template_id": 7, "channel": "email",
         "next": "s2"},
        {"id": "s2", "kind": "wait", "mode": "duration", "seconds": 86400, "next": "s3"},
        {"id": "s3", "kind": "condition", "check": {"type": "message", "event": "opened",
         "step": "s1"}, "yes": "s4", "no": "s5"},
        ...]}

A send step may carry an allowed sending window, `"window": {"from": "09:00", "to": "20:00",
"days": [1, 2, 3, 4, 5]}` (campaigns.send_rules): its message waits for the window's next
opening in the contact's time zone.

Every step but `condition`, `split` and `exit` has one `next` (empty = the run completes
there); a condition has `yes` and `no`; an A/B split has 2 to 5 `branches`, each with its own
`next` (marketing.workflows.logic_blocks: those blocks' shapes and rules). Edges may point
back (a loop) as long as the loop waits.
"""

import copy
import re
from typing import Any

from django.utils.translation import gettext_lazy as _

from config.core.errors import FieldError
from marketing.workflows import contact_blocks, logic_blocks, send_blocks
from marketing.workflows.webhook import webhook_url_refusal

STEP_KINDS = {
    "send": _("Send a message"),
    "send_one_of": _("Send on the first channel that reaches the contact"),
    "send_group": _("Send a message to a group"),
    "wait": _("Wait"),
    "condition": _("Condition"),
    "segment_add": _("Add to a static segment"),
    "segment_remove": _("Remove from a static segment"),
    "update_field": _("Update a contact field"),
    "webhook": _("Call a webhook"),
    "promo_issue": _("Issue a promo code"),
    "split": _("A/B split"),
    "contact": _("Create or update the contact"),
    "exit": _("Exit"),
}
CHECK_TYPES = {
    "contact": _("Contact fields match a filter"),
    "param": _("An event parameter"),
    "message": _("A previous message of this run was opened/clicked"),
    "order": _("The run's order or the contact's last order"),
    "engagement": _("Opens, clicks or messages sent in the last days"),
}
PARAM_OPS = {
    "eq": _("equals"),
    "ne": _("does not equal"),
    "contains": _("contains"),
    "gt": _("is greater than"),
    "gte": _("is at least"),
    "lt": _("is less than"),
    "lte": _("is at most"),
    "exists": _("is present"),
    "in": _("is one of (comma-separated)"),
}
# Contact columns an update step may set (eSputnik v1 contact keys), besides custom fields.
UPDATABLE_FIELDS = {
    "firstName": "First name",
    "lastName": "Last name",
    "languageCode": "Language code",
    "timeZone": "Time zone",
    "region": "Region",
    "town": "Town",
    "postcode": "Postcode",
    "tags": "Tags (comma-separated, replaces the list)",
}
CUSTOM_FIELD_RE = re.compile(r"^fields\.([0-9]{1,18})$")
TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
STEP_ID_RE = re.compile(r"^s[0-9]{1,6}$")
MAX_STEPS = 200
MAX_WAIT_SECONDS = 366 * 86400


class GraphError(FieldError):
    """An edit the graph cannot take; `field` names the form field."""


def empty_graph() -> dict:
    return {"start": "", "steps": []}


def steps_by_id(graph: dict) -> dict[str, dict]:
    return {step["id"]: step for step in graph.get("steps", []) if isinstance(step, dict)}


def step_name(step: dict) -> str:
    """How messages name a step: its label (or kind) and its id."""
    kind = step.get("kind") or "step"
    label = step.get("label") or STEP_KINDS.get(kind, kind)
    return f"step “{label}” ({step.get('id')})"


def branch_edges(step: dict) -> list[tuple[str, str]]:
    """(branch, target) of each way out of the step: `next`, a condition's yes and no, a
    split's branch letters; the target may be empty (the run completes there)."""
    kind = step.get("kind")
    if kind == "condition":
        return [("yes", step.get("yes") or ""), ("no", step.get("no") or "")]
    if kind == "split":
        return [
            (str(branch.get("key")), branch.get("next") or "")
            for branch in step.get("branches") or []
            if isinstance(branch, dict)
        ]
    if kind == "exit":
        return []
    return [("next", step.get("next") or "")]


def _redirect(step: dict, *, old: str, new: str) -> None:
    """Point every edge of `step` that goes to `old` at `new`."""
    for edge in ("next", "yes", "no"):
        if edge in step and step.get(edge) == old:
            step[edge] = new
    for branch in step.get("branches") or []:
        if isinstance(branch, dict) and branch.get("next") == old:
            branch["next"] = new


def successors(step: dict) -> list[str]:
    return [target for _branch, target in branch_edges(step) if target]


def _new_id(graph: dict) -> str:
    numbers = [
        int(step["id"][1:]) for step in graph.get("steps", []) if STEP_ID_RE.match(step["id"])
    ]
    return f"s{max(numbers, default=0) + 1}"


def default_step(kind: str) -> dict:
    if kind not in STEP_KINDS:
        raise GraphError("kind", f"unknown step kind {kind!r}")
    defaults: dict[str, dict] = {
        "send": {"template_id": None, "channel": "email"},
        "wait": {"mode": "duration", "seconds": 86400, "time": "09:00"},
        "condition": {"check": {"type": "contact", "filter": {}}, "yes": "", "no": ""},
        "segment_add": {"segment_id": None},
        "segment_remove": {"segment_id": None},
        "update_field": {"field": "firstName", "value": ""},
        "webhook": {"url": ""},
        "promo_issue": {"pool_id": None},
        "split": logic_blocks.default_split(),
        "contact": {
            "create": True,
            "key_as": "auto",
            "fields": [],
            "tags_add": [],
            "tags_remove": [],
            "segment_ids": [],
        },
        "exit": {},
        **send_blocks.DEFAULTS,
    }
    step = {"kind": kind, "label": ""}
    step.update(copy.deepcopy(defaults[kind]))
    if kind not in ("condition", "split", "exit"):
        step["next"] = ""
    return step


def step_insert(
    graph: dict, *, kind: str, after: str = "", branch: str = "next"
) -> tuple[dict, str]:
    """A copy of the graph with a new step of `kind` placed after step `after` (on its `next`,
    or its `yes`/`no` branch for a condition), or first when `after` is empty. The new step
    takes over where that edge went, so the rest of the path stays connected."""
    graph = copy.deepcopy(graph) if graph else empty_graph()
    graph.setdefault("steps", [])
    if len(graph["steps"]) >= MAX_STEPS:
        raise GraphError("kind", f"a workflow has at most {MAX_STEPS} steps")
    step = default_step(kind)
    step["id"] = _new_id(graph)
    steps = steps_by_id(graph)
    if after:
        previous = steps.get(after)
        if previous is None:
            raise GraphError("after", f"no step {after!r} in this workflow")
        if previous["kind"] == "condition":
            if branch not in ("yes", "no"):
                raise GraphError("branch", "a step after a condition goes on its yes or no branch")
        elif previous["kind"] == "exit":
            raise GraphError("after", "nothing runs after an exit step")
        elif previous["kind"] != "split":
            branch = "next"
        edges = dict(branch_edges(previous))
        if branch not in edges:
            letters = ", ".join(edges)
            raise GraphError(
                "branch", f"a step after an A/B split goes on one of its branches: {letters}"
            )
        following = edges[branch]
        if previous["kind"] == "split":
            for item in previous["branches"]:
                if item.get("key") == branch:
                    item["next"] = step["id"]
        else:
            previous[branch] = step["id"]
    else:
        following = graph.get("start") or ""
        graph["start"] = step["id"]
    if kind == "condition":
        step["yes"] = following
    elif kind == "split":
        step["branches"][0]["next"] = following
    elif kind != "exit":
        step["next"] = following
    graph["steps"].append(step)
    return graph, step["id"]


def step_replace(graph: dict, *, step: dict) -> dict:
    graph = copy.deepcopy(graph)
    for position, existing in enumerate(graph.get("steps", [])):
        if existing["id"] == step["id"]:
            graph["steps"][position] = step
            return graph
    raise GraphError("step", f"no step {step['id']!r} in this workflow")


def step_remove(graph: dict, *, step_id: str) -> dict:
    """A copy without the step; edges into it are redirected to where it led (a condition's
    yes branch, a split's first branch with a step, since the others have nowhere to go)."""
    graph = copy.deepcopy(graph)
    steps = steps_by_id(graph)
    removed = steps.get(step_id)
    if removed is None:
        raise GraphError("step", f"no step {step_id!r} in this workflow")
    onward = next(iter(successors(removed)), "")
    if onward == step_id:
        onward = ""
    graph["steps"] = [step for step in graph["steps"] if step["id"] != step_id]
    for step in graph["steps"]:
        _redirect(step, old=step_id, new=onward)
    if graph.get("start") == step_id:
        graph["start"] = onward
    return graph


def outline(graph: dict) -> list[dict]:
    """The graph as nested rows for the editor: each row is {"step", "depth", "branch",
    "jump"}; a condition's branches follow it, one level deeper; a step reached a second
    time (a loop or a join) is a "jump" row instead of being repeated."""
    steps = steps_by_id(graph)
    rows: list[dict] = []
    shown: set[str] = set()

    def walk(step_id: str, depth: int, branch: str) -> None:
        while step_id:
            step = steps.get(step_id)
            if step is None:
                rows.append({"missing": step_id, "depth": depth, "branch": branch})
                return
            if step_id in shown:
                rows.append({"jump": step, "depth": depth, "branch": branch})
                return
            shown.add(step_id)
            rows.append({"step": step, "depth": depth, "branch": branch})
            branch = ""
            if step["kind"] in ("condition", "split"):
                for side, target in branch_edges(step):
                    if target:
                        walk(target, depth + 1, side)
                    else:
                        rows.append({"end": True, "depth": depth + 1, "branch": side})
                return
            step_id = step.get("next") or ""

    walk(graph.get("start") or "", 0, "")
    for step in graph.get("steps", []):
        if step["id"] not in shown:
            rows.append({"step": step, "depth": 0, "branch": "", "unreachable": True})
            shown.add(step["id"])
    return rows


def _check_value(step: dict, problems: list[str]) -> None:
    name = step_name(step)
    kind = step.get("kind")
    if kind in send_blocks.SEND_KINDS:
        problems.extend(send_blocks.value_problems(step, name))
    elif kind == "wait":
        if step.get("mode") == "duration":
            seconds = step.get("seconds")
            if not isinstance(seconds, int) or not 0 < seconds <= MAX_WAIT_SECONDS:
                problems.append(f"{name}: the wait must last between 1 second and 366 days")
        elif step.get("mode") == "time_of_day":
            if not TIME_RE.match(str(step.get("time") or "")):
                problems.append(f"{name}: the time of day must be HH:MM (24-hour)")
        elif step.get("mode") in ("date", "window"):
            problems.extend(f"{name}: {problem}" for problem in logic_blocks.wait_problems(step))
        else:
            problems.append(
                f"{name}: wait for a duration, until a time of day, until a date or for a window"
            )
    elif kind == "condition":
        check = step.get("check") or {}
        kind_of_check = check.get("type")
        if kind_of_check == "param":
            if not check.get("param"):
                problems.append(f"{name}: name the event parameter to check")
            if check.get("op") not in PARAM_OPS:
                problems.append(f"{name}: unknown comparison {check.get('op')!r}")
        elif kind_of_check == "message":
            if check.get("event") not in ("opened", "clicked"):
                problems.append(f"{name}: check whether a message was opened or clicked")
        elif kind_of_check == "order":
            problems.extend(
                f"{name}: {problem}"
                for problem in logic_blocks.order_check_problems(check, PARAM_OPS)
            )
        elif kind_of_check == "engagement":
            problems.extend(
                f"{name}: {problem}" for problem in logic_blocks.engagement_check_problems(check)
            )
        elif kind_of_check != "contact":
            problems.append(f"{name}: unknown condition type {kind_of_check!r}")
        for side in ("yes", "no"):
            if not step.get(side):
                problems.append(
                    f"{name}: the “{side}” branch is missing (end it with an exit step)"
                )
    elif kind in ("segment_add", "segment_remove"):
        if not isinstance(step.get("segment_id"), int):
            problems.append(f"{name}: choose the static segment")
    elif kind == "update_field":
        field = step.get("field") or ""
        if field not in UPDATABLE_FIELDS and not CUSTOM_FIELD_RE.match(field):
            problems.append(f"{name}: {field!r} is not a contact field a workflow can update")
    elif kind == "webhook":
        refusal = webhook_url_refusal(str(step.get("url") or ""))
        if refusal:
            problems.append(f"{name}: {refusal}")
    elif kind == "promo_issue":
        if not isinstance(step.get("pool_id"), int):
            problems.append(f"{name}: choose the promo code pool")
    elif kind == "split":
        problems.extend(f"{name}: {problem}" for problem in logic_blocks.split_problems(step))
    elif kind == "contact":
        problems.extend(contact_blocks.step_problems(step, name))
    elif kind != "exit":
        problems.append(f"{name}: unknown step kind {kind!r}")


def structure_problems(graph: dict) -> list[str]:
    """What stops the graph from running, independent of the database: missing fields, edges
    to nowhere, missing branches, loops that never wait."""
    problems: list[str] = []
    steps = graph.get("steps") if isinstance(graph, dict) else None
    if not steps:
        return ["The workflow has no steps yet."]
    by_id = steps_by_id(graph)
    if len(by_id) != len(steps):
        problems.append("Two steps share an id.")
    if graph.get("start") not in by_id:
        problems.append("The workflow has no first step.")
    for step in steps:
        _check_value(step, problems)
        for _branch, target in branch_edges(step):
            if target and target not in by_id:
                problems.append(f"{step_name(step)}: goes to step {target!r}, which does not exist")
    problems.extend(_waitless_loops(by_id))
    return problems


def _waitless_loops(by_id: dict[str, dict]) -> list[str]:
    """A cycle among steps that are not waits would spin forever in one go (a window that
    is open, or a date that is past, goes on at once: those waits do not count)."""
    color: dict[str, int] = {}
    found: list[str] = []

    def visit(step_id: str, trail: list[str]) -> None:
        color[step_id] = 1
        trail.append(step_id)
        for target in successors(by_id[step_id]):
            if target not in by_id or logic_blocks.always_waits(by_id[target]):
                continue
            if color.get(target) == 1:
                loop = trail[trail.index(target) :]
                names = ", ".join(step_name(by_id[i]) for i in loop)
                found.append(
                    f"Loop without a wait: {names} "
                    "(add a wait for a while or until a time of day to the loop)"
                )
            elif target not in color:
                visit(target, trail)
        trail.pop()
        color[step_id] = 2

    for step_id, step in by_id.items():
        if step_id not in color and not logic_blocks.always_waits(step):
            visit(step_id, [])
    return found


def reachable_templates(graph: dict) -> list[int]:
    return [
        step["template_id"]
        for step in graph.get("steps", [])
        if step.get("kind") == "send" and isinstance(step.get("template_id"), int)
    ]


def params_as_dict(params: Any) -> dict:
    """Event params as a dict: stored dicts as they are; the eSputnik v1 API's [{name, value}]
    list folded into one."""
    if isinstance(params, dict):
        return params
    if isinstance(params, list):
        folded = {}
        for item in params:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                folded[item["name"]] = item.get("value")
        return folded
    return {}
