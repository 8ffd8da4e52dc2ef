"""Webhook intake: every integration has its own URL, /webhooks/<webhook key>/.

A request is stored raw (integrations.WebhookRequest) before anything reads it; then the
integration's provider authenticates it (signature, basic auth or shared secret, with the
replay window of integrations.webhook_auth) and parses it into actions, which wait on the
row (outcome "queued") for a drain to apply them (campaigns.delivery.feedback,
idempotently). What the service gets back is what it expects: the parser's response, 401 for
a refused request, the provider's answer to a malformed payload, and for a parser that fails
a 500, so that services that retry do, while the stored request waits for a replay from
admin. Nothing is lost either way.

What a request costs the database (a service may post thousands per second, one event each):
one statement finds the enabled integration by its key and stores the request, in autocommit
without waiting for the WAL flush; a second one records the parsed actions on it (outcome
"queued") with a durable commit, which flushes the stored request too. Only then does the
service get its 2xx: a crash after the answer loses nothing (the row is the job), and a
crash of the database server itself within the WAL writer's delay can only forget a request
whose service got no answer and posts again. A request whose parser yields no actions (a
Telegram update applies itself while parsed; an empty batch) is recorded applied at once; one
with APPLY_AT_ONCE_ACTIONS actions or more (a service's batch of events) is applied while its
service waits, with its outcome in the same transaction (failing: 500, and the service posts
it again), since it is a batch of its own.

Applying, the part that costs (finding the deliveries, the ledger's statement, a durable
commit), happens in drains (`webhook_requests_drain`, task integrations.webhooks_drain), as
the event API's processing does (marketing.events): each request that queues actions kicks
a drain once its commit is visible, debounced per process; a drain locks up to DRAIN_BATCH
queued rows FOR UPDATE SKIP LOCKED and applies their actions together, one
`actions_apply` per integration (one ledger statement per status for the whole batch),
recording each request's outcome and counts in the same transaction. The lock is the lease:
drains side by side share the queue without waiting for each other, and a drain that dies
rolls back, leaving its rows queued for the next. If applying a batch fails, it is applied
again request by request, and only a request that fails alone is recorded failed (kept for
replay from admin: its service already got its 2xx). The beat runs a drain every minute,
for rows whose kick was lost (broker down). Admin's replay parses and applies at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime
from functools import cache
from typing import Any

from celery import signature
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Field
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from campaigns.delivery.feedback import (
    Action,
    SendEmail,
    Unsubscribe,
    UpdateCampaign,
    UpdateCampaignStats,
    UpdateDeliveryStatus,
    WebhookResponse,
    actions_apply,
)
from campaigns.delivery.providers import (
    CampaignStats,
    CampaignStatus,
    DeliveryStatus,
    NotSupported,
    ProviderError,
    WebhookCall,
    WebhookRefused,
    provider_of,
)
from config.core.db import fetchone_prepared
from config.core.models import Integration
from config.core.queues import lock_claim
from integrations.models import WebhookOutcome, WebhookRequest
from integrations.webhook_auth import headers_storable

logger = logging.getLogger(__name__)

# A webhook body larger than this is refused (413) before it is stored.
WEBHOOK_MAX_BYTES = 20 * 1024 * 1024
# Requests a drain applies per transaction: 200 one-event requests are one ledger statement
# and one commit instead of 200; a SendGrid batch may hold 1000 events, so a batch of
# requests can reach a few hundred thousand actions, still seconds of work. Batches per
# task before it hands the rest to a fresh task (a backlog never pins one worker).
DRAIN_BATCH = 200
DRAIN_BATCHES = 25
# Kicks are debounced per process: at most one drain published per interval (seconds). A
# drain task costs its worker a few milliseconds whatever it applies; under steady traffic a
# quarter of a second gathers dozens of requests per drain, and a delivery status applied a
# quarter of a second later matters to no one. (A request after a quiet spell is applied at
# once: its kick publishes without delay.)
KICK_INTERVAL = 0.25
# A request carrying this many actions (a batch of events, as SendGrid and SparkPost post
# them) is a batch of its own: it is applied while its service waits, as a replay is. Queued,
# it would gain nothing from a drain's batching (one ledger statement per status either way)
# and lose the hand-over (writing and reading its actions, the drain's latency): measured
# with batches of 1000, its events were applied ~35% later (tests/benchmarks/bench_webhooks).
APPLY_AT_ONCE_ACTIONS = 100
# Outcomes only a request that passed its provider's authentication reaches.
AUTHENTICATED_OUTCOMES = {WebhookOutcome.QUEUED, WebhookOutcome.APPLIED, WebhookOutcome.FAILED}
# The drain task (integrations.tasks, which imports this module), by name.
DRAIN_TASK = "integrations.webhooks_drain"


class WebhookMalformed(ProviderError):
    """The payload is not what the provider sends (bad JSON, missing fields): stored, answered
    with the provider's `response` (400 by default), nothing applied."""

    def __init__(self, message: str, response: WebhookResponse | None = None) -> None:
        super().__init__(message, permanent=True)
        self.response = response


def _http(response: WebhookResponse) -> HttpResponse:
    answer = HttpResponse(response.body, status=response.status, content_type=response.content_type)
    for name, value in response.headers.items():
        answer[name] = value
    return answer


def webhook_call(stored: WebhookRequest) -> WebhookCall:
    return WebhookCall(
        method=stored.method,
        path=stored.path,
        query=stored.query or {},
        headers=stored.headers or {},
        body=bytes(stored.body),
        remote_addr=stored.remote_addr,
        received_at=stored.received_at,
    )


def webhook_process(stored: WebhookRequest, *, defer: bool = True) -> HttpResponse:
    """Authenticate and parse a stored request, then queue its actions for a drain (`defer`)
    or apply them at once; record the outcome on it. Used for live requests and for replays
    (admin, applied at once), which go through the same checks but the timestamp window (a
    replay is of a request already authenticated once)."""
    integration = stored.integration
    if integration is None:
        message = "the integration was deleted"
        return _finish(stored, WebhookOutcome.FAILED, 410, message, {"detail": message})
    call = webhook_call(stored)
    call.extra["replay"] = stored.replays > 0
    provider = provider_of(integration)
    # A replay of a request authenticated when it came (parsed since: queued, applied or
    # failed) is not authenticated again: its credentials were never stored
    # (webhook_auth.headers_storable). Any other is checked again, and without them stays
    # refused.
    authenticated_before = call.extra["replay"] and stored.outcome in AUTHENTICATED_OUTCOMES
    try:
        if not authenticated_before:
            provider.webhook_authenticate(call)
    except WebhookRefused as exc:
        answer = _finish(stored, WebhookOutcome.REFUSED, 401, str(exc), {"detail": str(exc)})
        # A challenge the service waits for before it sends credentials (WWW-Authenticate).
        for name, value in getattr(exc, "headers", {}).items():
            answer[name] = value
        return answer
    try:
        result = provider.webhook_parse(call)
    except NotSupported as exc:
        # An integration whose provider takes no webhooks (SMTP, say) still has a webhook
        # URL: nothing listens there, which is the caller's mistake, not Herald's.
        message = f"the integration {integration.name} takes no webhooks"
        return _finish(stored, WebhookOutcome.FAILED, 404, str(exc), {"detail": message})
    except WebhookMalformed as exc:
        response = exc.response or WebhookResponse(
            status=400,
            body=json.dumps({"detail": exc.message}).encode(),
            content_type="application/json",
        )
        _record(stored, WebhookOutcome.FAILED, response.status, exc.message)
        return _http(response)
    except Exception as exc:
        logger.exception("webhook parser of %s failed on request %s", integration, stored.pk)
        message = f"parser error: {type(exc).__name__}: {exc}"
        return _finish(stored, WebhookOutcome.FAILED, 500, message, {"detail": "not processed"})
    response = result.response or WebhookResponse()
    stored.actions = len(result.actions)
    if not result.actions:
        stored.applied = 0
        _record(stored, WebhookOutcome.APPLIED, response.status, "")
    elif defer and len(result.actions) < APPLY_AT_ONCE_ACTIONS:
        _queue(stored, result.actions, response.status)
    else:
        try:
            # The changes and the outcome that records them commit together: the outcome
            # never says "applied" for changes that were rolled back.
            with transaction.atomic():
                stored.applied = actions_apply(result.actions, integration=integration).total
                _record(stored, WebhookOutcome.APPLIED, response.status, "")
        except Exception as exc:
            logger.exception("applying webhook request %s of %s failed", stored.pk, integration)
            stored.applied = 0
            message = f"applying failed: {type(exc).__name__}: {exc}"
            return _finish(stored, WebhookOutcome.FAILED, 500, message, {"detail": "not processed"})
    return _http(response)


def _queue(stored: WebhookRequest, actions: list[Action], status: int) -> None:
    """Record the parsed actions on the request for a drain (outcome "queued"), with a
    durable commit (see the module docstring), and kick a drain."""
    stored.outcome = WebhookOutcome.QUEUED
    stored.response_status = status
    fetchone_prepared(
        f"UPDATE {WebhookRequest._meta.db_table} SET outcome = %s, response_status = %s, "  # noqa: S608
        "actions = %s, pending = %s::jsonb, replays = %s WHERE id = %s RETURNING id",
        [stored.outcome, status, len(actions), actions_dump(actions), stored.replays, stored.pk],
    )
    webhooks_kick()


def _record(stored: WebhookRequest, outcome: str, status: int, error: str) -> None:
    """Write the outcome on the stored request (a prepared UPDATE: it runs once per
    request)."""
    stored.outcome = outcome
    stored.response_status = status
    stored.error = error[:10_000]
    stored.processed_at = timezone.now()
    fetchone_prepared(
        f"UPDATE {WebhookRequest._meta.db_table} SET outcome = %s, response_status = %s, "  # noqa: S608
        "error = %s, actions = %s, applied = %s, processed_at = %s, replays = %s, "
        "pending = NULL WHERE id = %s RETURNING id",
        [
            stored.outcome,
            stored.response_status,
            stored.error,
            stored.actions,
            stored.applied,
            stored.processed_at,
            stored.replays,
            stored.pk,
        ],
    )


def _finish(stored: WebhookRequest, outcome: str, status: int, error: str, body) -> HttpResponse:
    _record(stored, outcome, status, error)
    return JsonResponse(body, status=status)


def webhook_replay(stored: WebhookRequest) -> int:
    """Process a stored request again (admin's replay action); returns the HTTP status the
    service would have got."""
    stored.replays += 1
    return webhook_process(stored, defer=False).status_code


@cache
def _integration_fields() -> tuple[Field, ...]:
    return tuple(Integration._meta.concrete_fields)


@cache
def _store_sql() -> str:
    """The statement that stores a request for the enabled integration with a given webhook
    key and returns the request's id and the integration's row (no row: no such enabled
    integration). Its commit does not wait for the WAL flush: the request's own durable
    commit comes later (module docstring). The columns are the models' own, so a field
    added to either model needs no change here."""
    columns = [
        f.column for f in WebhookRequest._meta.concrete_fields if f.column and not f.primary_key
    ]
    values = ["i.id" if c == "integration_id" else "%s" for c in columns]
    wanted = ", ".join(f"i.{f.column}" for f in _integration_fields())
    return (
        "WITH async AS (SELECT set_config('synchronous_commit', 'off', true)), "  # noqa: S608
        f"i AS (SELECT {wanted} FROM {Integration._meta.db_table} i "
        "WHERE webhook_key = %s AND enabled), "
        f"stored AS (INSERT INTO {WebhookRequest._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM i CROSS JOIN async RETURNING id) "
        f"SELECT stored.id, {wanted} FROM stored CROSS JOIN i"
    )


def _request_store(key: str, request: HttpRequest, body: bytes) -> WebhookRequest | None:
    """Store the request for the enabled integration whose webhook key is `key` (None: there
    is none) in one statement; the stored row comes back with its integration loaded."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    stored = WebhookRequest(
        method=request.method or "",
        path=request.path[:500],
        query={name: request.GET.getlist(name) for name in request.GET},
        headers=headers_storable(headers),
        body=body,
        remote_addr=(request.META.get("REMOTE_ADDR") or "")[:64],
    )
    values = [
        field.get_db_prep_save(field.pre_save(stored, add=True), connection)
        for field in WebhookRequest._meta.concrete_fields
        if not field.primary_key and field.column != "integration_id"
    ]
    row = fetchone_prepared(_store_sql(), [key, *values])
    if row is None:
        return None
    fields = _integration_fields()
    loaded = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, row[1:], strict=True)
    ]
    stored.pk = row[0]
    # The live request is authenticated with what it carried; only the row is masked.
    stored.headers = headers
    stored.integration = Integration.from_db(
        DEFAULT_DB_ALIAS, [field.attname for field in fields], loaded
    )
    stored._state.adding, stored._state.db = False, DEFAULT_DB_ALIAS
    return stored


def _integration_refusal(key: str) -> JsonResponse:
    integration = Integration.objects.filter(webhook_key=key).first()
    if integration is None:
        return JsonResponse({"detail": "no integration has this webhook URL"}, status=404)
    return JsonResponse({"detail": f"the integration {integration.name} is disabled"}, status=403)


@csrf_exempt
def webhook_receive(request: HttpRequest, key: str) -> HttpResponse:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse(
            {"detail": "Content-Length is not a number", "field": "Content-Length"}, status=400
        )
    # Read from the stream, not request.body: DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) is for
    # forms; a provider's batch of events may be larger.
    body = request.read(WEBHOOK_MAX_BYTES + 1) if length <= WEBHOOK_MAX_BYTES else b""
    if length > WEBHOOK_MAX_BYTES or len(body) > WEBHOOK_MAX_BYTES:
        if not Integration.objects.filter(webhook_key=key, enabled=True).exists():
            return _integration_refusal(key)
        return JsonResponse(
            {"detail": f"body larger than {WEBHOOK_MAX_BYTES} bytes", "field": "body"}, status=413
        )
    stored = _request_store(key, request, body)
    if stored is None:
        return _integration_refusal(key)
    return webhook_process(stored)


# --- Parsed actions on the queued row -------------------------------------------------------

_ACTION_TYPES: dict[str, type] = {
    kind.__name__: kind
    for kind in (UpdateDeliveryStatus, Unsubscribe, UpdateCampaign, UpdateCampaignStats, SendEmail)
}


def actions_dump(actions: list[Action]) -> str:
    """The actions as JSON (a list of {"action": class name, its fields...}), as a queued
    request keeps them until a drain applies them (`actions_load` reads them back)."""
    return json.dumps([_plain(action) for action in actions], ensure_ascii=False)


def _plain(action: Any) -> dict[str, Any]:
    # The instance's own dict, not dataclasses.asdict (which copies every value deeply): a
    # batch of a thousand events is dumped while its service waits. Only UpdateDeliveryStatus
    # has a datetime (`at`), only UpdateCampaignStats a dataclass (`stats`).
    values = {"action": type(action).__name__, **action.__dict__}
    if values.get("at") is not None:
        values["at"] = values["at"].isoformat()
    if values.get("stats") is not None:
        values["stats"] = dict(values["stats"].__dict__)
    return values


def actions_load(data: str | list) -> list[Action]:
    """The actions `actions_dump` wrote; ValueError (KeyError, TypeError) if they are not."""
    items = json.loads(data) if isinstance(data, str) else data
    actions: list[Action] = []
    for item in items:
        values = dict(item)
        kind = _ACTION_TYPES[values.pop("action")]
        if kind is UpdateDeliveryStatus:
            values["status"] = DeliveryStatus(values["status"])
            if values.get("at"):
                values["at"] = datetime.fromisoformat(values["at"])
        elif kind is UpdateCampaign:
            values["status"] = CampaignStatus(values["status"])
        elif kind is UpdateCampaignStats:
            stats = dict(values["stats"])
            stats["status"] = CampaignStatus(stats["status"]) if stats.get("status") else None
            values["stats"] = CampaignStats(**stats)
        actions.append(kind(**values))
    return actions


# --- Drains: queued rows are the queue ------------------------------------------------------


def _clock() -> float:
    return time.monotonic()


class _Kicker:
    """Debounced drain publishing, as marketing.events' (the layers keep the two apart): a
    commit when no drain of this process is due publishes one at once; commits while one is
    due publish nothing (it runs after them and sees their rows); a commit after that
    schedules the next drain KICK_INTERVAL after the previous one. (The countdown is an ETA
    on the worker's clock: hosts keep their clocks in step.)"""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # threaded gunicorn workers share it
        self.due = float("-inf")  # _clock() at which this process's drain is due

    def kick(self) -> None:
        now = _clock()
        with self.lock:
            if now < self.due:
                return
            self.due = max(now, self.due + KICK_INTERVAL)
            countdown = self.due - now
        _drain_publish(countdown or None)


_kicker = _Kicker()


def webhooks_kick() -> None:
    """Have the requests queued by the surrounding transaction applied soon."""
    transaction.on_commit(_kicker.kick)


def _drain_publish(countdown: float | None) -> None:
    try:
        signature(DRAIN_TASK).apply_async(countdown=countdown)
    except Exception:  # the broker's errors vary by transport; the requests themselves are stored
        logger.warning("could not publish a webhooks drain; the next one or the beat's will")


def webhook_requests_drain(*, batches: int = DRAIN_BATCHES) -> int:
    """Apply queued webhook requests, oldest first, up to `batches` batches of DRAIN_BATCH;
    return how many requests were done (applied or failed). More left: a fresh task goes on.

    Each batch is locked FOR UPDATE SKIP LOCKED and applied and recorded in the locking
    transaction, so drains side by side never wait for or repeat each other, and a drain
    that dies rolls back and leaves its rows queued."""
    done = 0
    for _ in range(batches):
        with transaction.atomic():
            rows = lock_claim(
                table=WebhookRequest._meta.db_table,
                columns="id, integration_id, pending",
                where="outcome = %s",
                params=[WebhookOutcome.QUEUED],
                order_by="id",
                limit=DRAIN_BATCH,
            )
            if not rows:
                return done
            _outcomes_record(_batch_apply(rows))
        done += len(rows)
        if len(rows) < DRAIN_BATCH:
            return done
    _drain_publish(None)
    return done


# A request's outcome from a drain: (outcome, actions, applied, error).
_Outcome = tuple[str, int, int, str]
_Queued = tuple[int, int, list[Action]]  # (request id, integration id, its actions)


def _batch_apply(rows: list[tuple]) -> dict[int, _Outcome]:
    """Apply a locked batch's actions together; if that fails, request by request, each in a
    savepoint, so that one failing request does not hold up the others."""
    outcomes: dict[int, _Outcome] = {}
    queued: list[_Queued] = []
    for pk, integration_id, pending in rows:
        if integration_id is None:
            outcomes[pk] = (WebhookOutcome.FAILED, 0, 0, "the integration was deleted")
            continue
        try:
            queued.append((pk, integration_id, actions_load(pending)))
        except (ValueError, KeyError, TypeError) as exc:
            error = f"queued actions unreadable: {type(exc).__name__}: {exc}"
            outcomes[pk] = (WebhookOutcome.FAILED, 0, 0, error)
    if not queued:
        return outcomes
    integrations = Integration.objects.in_bulk({integration_id for _, integration_id, _ in queued})
    try:
        with transaction.atomic():
            outcomes.update(_together_apply(queued, integrations))
        return outcomes
    except Exception:
        logger.exception("applying %d webhook requests together failed; one by one", len(queued))
    for request in queued:
        try:
            with transaction.atomic():
                outcomes.update(_together_apply([request], integrations))
        except Exception as exc:
            logger.exception("applying webhook request %s failed", request[0])
            error = f"applying failed: {type(exc).__name__}: {exc}"
            outcomes[request[0]] = (WebhookOutcome.FAILED, len(request[2]), 0, error)
    return outcomes


def _together_apply(
    queued: list[_Queued], integrations: dict[int, Integration]
) -> dict[int, _Outcome]:
    """One `actions_apply` per integration for all its requests' actions; each request's
    count is what its own actions changed (ApplyReport.credited)."""
    by_integration: dict[int, list[_Queued]] = {}
    for request in queued:
        by_integration.setdefault(request[1], []).append(request)
    outcomes: dict[int, _Outcome] = {}
    for integration_id, requests in by_integration.items():
        actions = [action for _, _, mine in requests for action in mine]
        report = actions_apply(actions, integration=integrations.get(integration_id))
        start = 0
        for pk, _, mine in requests:
            applied = sum(report.credited[index] for index in range(start, start + len(mine)))
            outcomes[pk] = (WebhookOutcome.APPLIED, len(mine), applied, "")
            start += len(mine)
    return outcomes


def _outcomes_record(outcomes: dict[int, _Outcome]) -> None:
    """Record a batch's outcomes in one statement; the queued actions go (a replay parses the
    body again)."""
    ids = list(outcomes)
    columns = list(zip(*(outcomes[pk] for pk in ids), strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {WebhookRequest._meta.db_table} q SET outcome = v.outcome, "  # noqa: S608
            "actions = v.actions, applied = v.applied, error = left(v.error, 10000), "
            "processed_at = %s, pending = NULL "
            "FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::int[], %s::text[]) "
            "AS v(id, outcome, actions, applied, error) WHERE q.id = v.id",
            [timezone.now(), ids, *(list(column) for column in columns)],
        )
