"""Run a test contact through a workflow graph without sending or writing anything.

Sends, segment changes, field updates and webhooks are described, not done; waits are
skipped and listed; conditions on the contact, its orders and its engagement read the
database, conditions on this run's messages use the answers the marketer gives ("assume the
message was opened"). An A/B split by contact shows the contact's own branch; split by run,
the branch of a run of this contact's hash bucket (a real run's id decides).
"""

from dataclasses import dataclass, field

from django.utils import timezone

from campaigns.promo.models import PromoPool
from marketing.workflows import contact_blocks, logic_blocks, send_blocks
from marketing.workflows import graph as wf_graph
from marketing.workflows.conditions import contact_matches, param_matches
from marketing.workflows.engine import contact_zone, update_data, wait_until

MAX_SIMULATED_STEPS = 100


@dataclass
class SimulatedStep:
    step_id: str
    kind: str
    label: str
    description: str


@dataclass
class Simulation:
    path: list[SimulatedStep] = field(default_factory=list)
    waits: list[str] = field(default_factory=list)
    outcome: str = ""


def _describe(step: dict, contact, now, params: dict) -> str:
    kind = step.get("kind")
    if kind in send_blocks.SEND_KINDS:
        return send_blocks.describe(step, contact)
    if kind == "wait" and step.get("mode") in ("date", "window"):
        zone = contact_zone(contact)
        if step["mode"] == "date":
            plan = logic_blocks.date_wait_plan(
                step, contact=contact, params=params, zone=zone, now=now
            )
        else:
            plan = logic_blocks.window_wait_plan(step, zone=zone, now=now)
        return f"would wait {plan.note}" + ("" if plan.exit else "; skipped")
    if kind == "contact":
        return contact_blocks.contact_step_describe(step, params)
    if kind == "wait":
        if step.get("mode") == "time_of_day":
            until = wait_until(step, contact, now)
            return (
                f"would wait until {step.get('time')} in the contact's time zone "
                f"({until:%Y-%m-%d %H:%M %Z}); skipped"
            )
        return f"would wait {_duration(int(step.get('seconds') or 0))}; skipped"
    if kind in ("segment_add", "segment_remove"):
        verb = "add to" if kind == "segment_add" else "remove from"
        return f"would {verb} segment {step.get('segment_id')}"
    if kind == "update_field":
        return f"would set {step.get('field')} ({update_data(step['field'], step.get('value'))})"
    if kind == "webhook":
        return f"would POST to {step.get('url')}"
    if kind == "promo_issue":
        pool = PromoPool.objects.filter(pk=step.get("pool_id")).first()
        return f"would issue a code of promo pool {pool.key if pool else step.get('pool_id')}"
    if kind == "exit":
        return "exits the workflow"
    return ""


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{minutes} min" if minutes else "",
    ]
    return " ".join(part for part in parts if part) or f"{seconds} s"


def simulate(
    *,
    graph: dict,
    contact,
    params: dict | None = None,
    engaged: set[str] | None = None,
    workflow_id: int = 0,
) -> Simulation:
    """The path `contact` would take. `engaged` holds "opened"/"clicked" answers for message
    conditions (a click implies an open)."""
    params = params or {}
    engaged = set(engaged or ())
    if "clicked" in engaged:
        engaged.add("opened")
    steps = wf_graph.steps_by_id(graph)
    now = timezone.now()
    result = Simulation()
    step_id = graph.get("start") or ""
    for _ in range(MAX_SIMULATED_STEPS):
        step = steps.get(step_id)
        if step is None:
            result.outcome = "completed" if not step_id else f"stops: step {step_id} is missing"
            return result
        kind = step.get("kind")
        label = step.get("label") or wf_graph.STEP_KINDS.get(kind, kind)
        description = _describe(step, contact, now, params)
        next_id = step.get("next") or ""
        if kind == "wait" and step.get("mode") == "date":
            plan = logic_blocks.date_wait_plan(
                step, contact=contact, params=params, zone=contact_zone(contact), now=now
            )
            if plan.exit:
                result.path.append(SimulatedStep(step["id"], kind, label, description))
                result.outcome = "exited"
                return result
        if kind == "split":
            branch, why = logic_blocks.split_verdict(
                step, workflow_id=workflow_id, run_id=contact.pk, contact_id=contact.pk
            )
            description = f"takes {why}"
            if step.get("by") != "contact":
                description += "; split by run: a real run's own id decides its branch"
            next_id = branch.get("next") or ""
        if kind == "condition":
            check = step.get("check") or {}
            verdict = None
            if check.get("type") == "order":
                verdict = logic_blocks.order_verdict(check, contact_id=contact.pk, params=params)
            elif check.get("type") == "engagement":
                verdict = logic_blocks.engagement_verdict(
                    check, contact_id=contact.pk, run_id=None, now=now, assumed=engaged
                )
            if verdict is not None:
                holds = verdict.holds
            elif check.get("type") == "contact":
                holds = contact_matches(contact.pk, check.get("filter") or {})
            elif check.get("type") == "param":
                holds = param_matches(
                    params,
                    param=check.get("param", ""),
                    op=check.get("op", "eq"),
                    value=check.get("value"),
                )
            else:
                holds = check.get("event") in engaged
            side = "yes" if holds else "no"
            description = f"condition is {str(holds).lower()}: takes the “{side}” branch"
            if verdict is not None:
                description += f" ({verdict.reason})"
            next_id = step.get("yes" if holds else "no") or ""
        result.path.append(SimulatedStep(step["id"], kind, label, description))
        if kind == "wait":
            result.waits.append(f"{label}: {description}")
        if kind == "exit":
            result.outcome = "exited"
            return result
        step_id = next_id
    result.outcome = f"stopped after {MAX_SIMULATED_STEPS} steps (a loop?)"
    return result
