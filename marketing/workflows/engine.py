"""The workflow engine: advance a run step by step until it waits, ends or fails.

A run is advanced by whoever holds its claim (status "running"): the event processor right
after it starts runs, or the beat tick that claims due runs with FOR UPDATE SKIP LOCKED. Each
step commits on its own (its effects and the run's new position together), so a worker that
dies mid-run repeats at most the step it was in. Waits set `wake_at` and release the run;
nothing ever sleeps in a worker.
"""

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from campaigns.promo.assign import pool_exhausted_reason
from campaigns.promo.models import PromoPool
from campaigns.promo.services import promo_code_issue
from config.core.models import Organisation
from config.core.queues import CLOCK, lease_claim, lease_expired
from contacts.models import Segment
from contacts.segments import SegmentError, segment_attach, segment_detach
from contacts.services import ContactError, contact_update
from marketing.workflows import contact_blocks, logic_blocks, send_blocks
from marketing.workflows import graph as wf_graph
from marketing.workflows.conditions import contact_matches, param_matches, run_message_engaged
from marketing.workflows.models import (
    Workflow,
    WorkflowRun,
    WorkflowRunStatus,
    WorkflowStatus,
)
from marketing.workflows.webhook import WebhookError, webhook_post

logger = logging.getLogger(__name__)

# A step that fails for a passing reason is tried this many times in all, waiting
# RETRY_BASE * 2^(n-1) between tries, then the run stops with the reason.
MAX_STEP_ATTEMPTS = 4
RETRY_BASE = dt.timedelta(seconds=30)
# Steps one advance may take before handing the run back to the beat; validation refuses
# loops without waits, this only bounds a pathological (very long) straight path.
STEPS_PER_ADVANCE = 100
# Runs one tick claims; each costs a few queries plus its steps' work (a webhook may take
# seconds), so a tick stays well under the beat interval on one worker. A full batch
# re-enqueues the tick, so a backlog is drained by every free worker.
WAKE_BATCH = 200
# A claim older than this belongs to a worker that died mid-run.
CLAIM_LEASE = dt.timedelta(minutes=10)


class StepError(Exception):
    """A step could not be done; `permanent` failures stop the run at once."""

    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


@dataclass
class Outcome:
    next_step: str = ""
    note: str = ""
    wake_at: dt.datetime | None = None
    exit: bool = False
    extra: dict = field(default_factory=dict)


def contact_zone(contact) -> zoneinfo.ZoneInfo:
    """The contact's own time zone, else the organisation's."""
    for name in (getattr(contact, "time_zone", ""), Organisation.load().time_zone):
        if name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return zoneinfo.ZoneInfo("UTC")


def wait_until(step: dict, contact, now: dt.datetime) -> dt.datetime:
    if step.get("mode") == "time_of_day":
        hour, minute = (int(part) for part in step["time"].split(":"))
        zone = contact_zone(contact)
        local = now.astimezone(zone)
        target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= local:
            target = (local + dt.timedelta(days=1)).replace(
                hour=hour, minute=minute, second=0, microsecond=0
            )
        # Re-attach the zone so a DST change between now and then shifts the wall time right.
        return target.replace(tzinfo=zone)
    return now + dt.timedelta(seconds=int(step["seconds"]))


def condition_verdict(step: dict, *, run: WorkflowRun) -> logic_blocks.Verdict:
    check = step.get("check") or {}
    kind = check.get("type")
    if kind == "order":
        return logic_blocks.order_verdict(check, contact_id=run.contact_id, params=run.params or {})
    if kind == "engagement":
        return logic_blocks.engagement_verdict(
            check, contact_id=run.contact_id, run_id=run.pk, now=timezone.now()
        )
    holds = _basic_condition_holds(check, run=run)
    return logic_blocks.Verdict(holds, "")


def _basic_condition_holds(check: dict, *, run: WorkflowRun) -> bool:
    kind = check.get("type")
    if kind == "contact":
        return contact_matches(run.contact_id, check.get("filter") or {})
    if kind == "param":
        return param_matches(
            run.params or {},
            param=check.get("param", ""),
            op=check.get("op", "eq"),
            value=check.get("value"),
        )
    if kind == "message":
        return run_message_engaged(
            run.pk, event=check.get("event", ""), step_id=check.get("step") or ""
        )
    raise StepError(f"unknown condition type {kind!r}", permanent=True)


def _send(step: dict, run: WorkflowRun) -> Outcome:
    """A message step (marketing.workflows.send_blocks): its messages are queued in the
    delivery ledger with the run's move, and sent by their task after commit."""
    try:
        sent = send_blocks.step_send(step, run)
    except send_blocks.SendStepError as exc:
        raise StepError(str(exc), permanent=exc.permanent) from None
    return Outcome(next_step=sent.next_step, note=sent.note, extra=sent.extra)


def _segment(step: dict, run: WorkflowRun) -> Outcome:
    segment_id = step.get("segment_id")
    segment = None if segment_id is None else Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise StepError(f"segment {step.get('segment_id')} no longer exists", permanent=True)
    try:
        if step["kind"] == "segment_add":
            segment_attach(segment=segment, contact_ids=[run.contact_id])
            note = f"added to {segment.name}"
        else:
            segment_detach(segment=segment, contact_ids=[run.contact_id])
            note = f"removed from {segment.name}"
    except SegmentError as exc:
        raise StepError(str(exc), permanent=True) from None
    return Outcome(next_step=step.get("next") or "", note=note)


def update_data(field_name: str, value) -> dict:
    """The eSputnik v1 contact body that sets one field (what contact_update takes)."""
    match = wf_graph.CUSTOM_FIELD_RE.match(field_name)
    if match:
        return {"fields": [{"id": int(match.group(1)), "value": value}]}
    if field_name == "tags":
        items = value if isinstance(value, list) else str(value or "").split(",")
        return {"tags": [item.strip() for item in items if str(item).strip()]}
    if field_name in ("region", "town", "postcode"):
        return {"address": {field_name: value}}
    return {field_name: value}


def _update_field(step: dict, run: WorkflowRun) -> Outcome:
    try:
        contact_update(contact=run.contact, data=update_data(step["field"], step.get("value")))
    except ContactError as exc:
        raise StepError(f"cannot update {step['field']}: {exc}", permanent=True) from None
    return Outcome(next_step=step.get("next") or "", note=f"{step['field']} set")


def _webhook(step: dict, run: WorkflowRun) -> Outcome:
    payload = {
        "workflowId": run.workflow_id,
        "workflowVersion": run.version.number,
        "runId": run.pk,
        "stepId": step["id"],
        "contactId": run.contact_id,
        "email": run.contact.email,
        "sms": run.contact.phone,
        "params": run.params or {},
    }
    try:
        status = webhook_post(
            url=step["url"],
            payload=payload,
            secret=run.workflow.webhook_secret,
            idempotency_key=f"herald-run-{run.pk}-{step['id']}",
        )
    except WebhookError as exc:
        raise StepError(str(exc), permanent=exc.permanent) from None
    return Outcome(next_step=step.get("next") or "", note=f"HTTP {status}")


def _promo_issue(step: dict, run: WorkflowRun) -> Outcome:
    """Give the contact a code of the pool; a later send step's `$!promo.KEY` shows it. A
    repeated step (a worker died after it) keeps the code the run already got."""
    pool_id = step.get("pool_id")
    pool = PromoPool.objects.filter(pk=pool_id).first() if isinstance(pool_id, int) else None
    if pool is None:
        raise StepError(f"promo pool {step.get('pool_id')} no longer exists", permanent=True)
    code = promo_code_issue(pool=pool, contact_id=run.contact_id, workflow_run_id=run.pk)
    if code is None:
        raise StepError(pool_exhausted_reason(pool.key), permanent=True)
    return Outcome(next_step=step.get("next") or "", note=f"promo code {code} of {pool.key}")


def _logic_wait(step: dict, run: WorkflowRun, now: dt.datetime) -> Outcome:
    """Wait until a date (of the contact or the event) or for an allowed sending window."""
    zone = contact_zone(run.contact)
    if step["mode"] == "date":
        plan = logic_blocks.date_wait_plan(
            step, contact=run.contact, params=run.params or {}, zone=zone, now=now
        )
    else:
        plan = logic_blocks.window_wait_plan(step, zone=zone, now=now)
    return Outcome(
        next_step=step.get("next") or "", wake_at=plan.until, note=plan.note, exit=plan.exit
    )


def execute_step(step: dict, run: WorkflowRun, now: dt.datetime) -> Outcome:
    kind = step.get("kind")
    if kind in send_blocks.SEND_KINDS:
        return _send(step, run)
    if kind == "wait" and step.get("mode") in ("date", "window"):
        return _logic_wait(step, run, now)
    if kind == "wait":
        until = wait_until(step, run.contact, now)
        return Outcome(
            next_step=step.get("next") or "", wake_at=until, note=f"until {until:%Y-%m-%d %H:%M %Z}"
        )
    if kind == "condition":
        verdict = condition_verdict(step, run=run)
        side = "yes" if verdict.holds else "no"
        return Outcome(
            next_step=step.get(side) or "",
            note=f"{side}: {verdict.reason}" if verdict.reason else side,
        )
    if kind == "split":
        branch, note = logic_blocks.split_verdict(
            step, workflow_id=run.workflow_id, run_id=run.pk, contact_id=run.contact_id
        )
        return Outcome(
            next_step=branch.get("next") or "", note=note, extra={"branch": branch["key"]}
        )
    if kind in ("segment_add", "segment_remove"):
        return _segment(step, run)
    if kind == "update_field":
        return _update_field(step, run)
    if kind == "webhook":
        return _webhook(step, run)
    if kind == "promo_issue":
        return _promo_issue(step, run)
    if kind == "contact":
        return contact_blocks.contact_step_run(step, run)
    if kind == "exit":
        return Outcome(exit=True, note="exit step")
    raise StepError(f"unknown step kind {kind!r}", permanent=True)


def _path_entry(step: dict, note: str, now: dt.datetime, **extra) -> dict:
    entry = {"step": step["id"], "kind": step.get("kind"), "at": now.isoformat(), "note": note}
    entry.update(extra)
    return entry


def _finish(run: WorkflowRun, status: str, now: dt.datetime, error: str = "") -> None:
    run.status = status
    run.finished_at = now
    run.wake_at = None
    run.claimed_at = None
    run.error = error
    run.save()


def _failed(run: WorkflowRun, step: dict, exc: StepError, now: dt.datetime) -> None:
    run.attempts += 1
    reason = f"{wf_graph.step_name(step)}: {exc}"
    if exc.permanent or run.attempts >= MAX_STEP_ATTEMPTS:
        run.path = [*run.path, _path_entry(step, f"failed: {exc}", now, failed=True)]
        tries = "" if exc.permanent else f" (after {run.attempts} attempts)"
        _finish(run, WorkflowRunStatus.FAILED, now, error=reason + tries)
        return
    # Back to waiting on the same step; the tick claims it again after the backoff.
    run.status = WorkflowRunStatus.WAITING
    run.wake_at = now + RETRY_BASE * (2 ** (run.attempts - 1))
    run.claimed_at = None
    run.error = f"attempt {run.attempts} failed: {reason}"
    run.save()


def _advance_one_step(run_id: int) -> bool:
    """Take one step of a claimed run; True when the run should go on."""
    with transaction.atomic():
        run = (
            WorkflowRun.objects.select_for_update(of=("self",))
            .select_related("version", "contact", "workflow")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.status != WorkflowRunStatus.RUNNING:
            return False
        now = timezone.now()
        if run.contact.deleted_at is not None:
            _finish(run, WorkflowRunStatus.EXITED, now, error="the contact was deleted")
            return False
        step = wf_graph.steps_by_id(run.version.graph).get(run.current_step)
        if step is None:
            _finish(run, WorkflowRunStatus.COMPLETED, now)
            return False
        try:
            # A savepoint: a step that fails leaves none of its own writes behind.
            with transaction.atomic():
                outcome = execute_step(step, run, now)
        except StepError as exc:
            _failed(run, step, exc, now)
            return False
        except Exception as exc:  # a bug or an outage below us: retried, then reported
            logger.exception("workflow run %s failed at step %s", run.pk, step.get("id"))
            _failed(run, step, StepError(f"{exc.__class__.__name__}: {exc}", permanent=False), now)
            return False
        run.path = [*run.path, _path_entry(step, outcome.note, now, **outcome.extra)]
        run.attempts = 0
        run.error = ""
        if outcome.exit:
            _finish(run, WorkflowRunStatus.EXITED, now)
            return False
        run.current_step = outcome.next_step
        if outcome.wake_at is not None:
            run.status = WorkflowRunStatus.WAITING
            run.wake_at = outcome.wake_at
            run.claimed_at = None
            run.save()
            return False
        if not outcome.next_step:
            _finish(run, WorkflowRunStatus.COMPLETED, now)
            return False
        run.save()
        return True


def run_advance(*, run_id: int) -> None:
    """Advance a claimed run until it waits, ends or fails."""
    for _ in range(STEPS_PER_ADVANCE):
        if not _advance_one_step(run_id):
            return
    # Still going after many steps: let the next tick continue it.
    WorkflowRun.objects.filter(pk=run_id, status=WorkflowRunStatus.RUNNING).update(
        status=WorkflowRunStatus.WAITING, wake_at=timezone.now(), claimed_at=None
    )


def runs_advance(*, run_ids: list[int]) -> None:
    for run_id in run_ids:
        run_advance(run_id=run_id)


def runs_claim_due(*, limit: int = WAKE_BATCH) -> list[int]:
    """Claim due runs (and runs whose worker died) for this worker. SKIP LOCKED lets several
    ticks claim side by side without waiting for or repeating each other; runs of paused
    workflows stay where they are until it is resumed. The partial indexes wfrun_due
    (waiting, by wake_at) and wfrun_running (running, by claimed_at) serve the two halves."""
    run_table = WorkflowRun._meta.db_table
    workflow_table = Workflow._meta.db_table
    expired, expired_params = lease_expired("r.claimed_at", CLAIM_LEASE)
    rows = lease_claim(
        table=run_table,
        source=f"{run_table} r JOIN {workflow_table} w ON w.id = r.workflow_id AND w.status = %s",
        lock_of="r",
        where=f"(r.status = %s AND r.wake_at <= {CLOCK}) OR (r.status = %s AND {expired})",
        params=[
            WorkflowStatus.ACTIVE,
            WorkflowRunStatus.WAITING,
            WorkflowRunStatus.RUNNING,
            *expired_params,
        ],
        order_by="r.wake_at NULLS FIRST",
        limit=limit,
        sets=f"status = %s, updated_at = {CLOCK}",
        set_params=[WorkflowRunStatus.RUNNING],
        label="workflow.claim",
    )
    return [row[0] for row in rows]


def runs_wake_due(*, limit: int = WAKE_BATCH) -> int:
    """The beat tick's work on runs: claim due runs and advance them. Returns how many."""
    run_ids = runs_claim_due(limit=limit)
    runs_advance(run_ids=sorted(run_ids))
    return len(run_ids)
