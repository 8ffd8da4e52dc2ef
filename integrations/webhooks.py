"""Webhook intake: every integration has its own URL, /webhooks/<webhook key>/.

A request is stored raw (integrations.WebhookRequest) before anything reads it; then the
integration's provider authenticates it (signature, basic auth or shared secret, with the
replay window of integrations.webhook_auth), parses it into actions, and
campaigns.delivery.feedback applies them (idempotently). What the service gets back is what
it expects: the parser's response, 401 for a refused request, the provider's answer to a
malformed payload, and for a parser that fails a 500, so that services that retry do, while
the stored request waits for a replay from admin. Nothing is lost either way.

What a request costs the database (a service may post thousands per second, one event each):
one statement finds the enabled integration by its key and stores the request, in autocommit
without waiting for the WAL flush; then one transaction applies the actions and records the
outcome, and its durable commit flushes the stored request too. So a request is on the
server before it is parsed (a parser or worker that dies leaves it for replay), and on disk
before the service gets its 200; only a crash of the database server itself within the WAL
writer's delay could forget a request, one whose service then got no answer and posts again.
"""

from __future__ import annotations

import json
import logging
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Field
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from campaigns.delivery.feedback import WebhookResponse, actions_apply
from campaigns.delivery.providers import (
    ProviderError,
    WebhookCall,
    WebhookRefused,
    provider_of,
)
from config.core.db import fetchone_prepared
from config.core.models import Integration
from integrations.models import WebhookOutcome, WebhookRequest

logger = logging.getLogger(__name__)

# A webhook body larger than this is refused (413) before it is stored.
WEBHOOK_MAX_BYTES = 20 * 1024 * 1024


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


def webhook_process(stored: WebhookRequest) -> HttpResponse:
    """Authenticate, parse and apply a stored request; record the outcome on it. Used for
    live requests and for replays (admin), which go through the same checks but the
    timestamp window (a replay is of a request already authenticated once)."""
    integration = stored.integration
    if integration is None:
        message = "the integration was deleted"
        return _finish(stored, WebhookOutcome.FAILED, 410, message, {"detail": message})
    call = webhook_call(stored)
    call.extra["replay"] = stored.replays > 0
    provider = provider_of(integration)
    try:
        provider.webhook_authenticate(call)
    except WebhookRefused as exc:
        answer = _finish(stored, WebhookOutcome.REFUSED, 401, str(exc), {"detail": str(exc)})
        # A challenge the service waits for before it sends credentials (WWW-Authenticate).
        for name, value in getattr(exc, "headers", {}).items():
            answer[name] = value
        return answer
    try:
        result = provider.webhook_parse(call)
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
    try:
        # The changes and the outcome that records them commit together: one commit, and
        # the outcome never says "applied" for changes that were rolled back.
        with transaction.atomic():
            report = actions_apply(result.actions, integration=integration, savepoint=False)
            stored.actions = len(result.actions)
            stored.applied = report.total
            _record(stored, WebhookOutcome.APPLIED, response.status, "")
    except Exception as exc:
        logger.exception("applying webhook request %s of %s failed", stored.pk, integration)
        stored.actions = stored.applied = 0
        message = f"applying failed: {type(exc).__name__}: {exc}"
        return _finish(stored, WebhookOutcome.FAILED, 500, message, {"detail": "not processed"})
    return _http(response)


def _record(stored: WebhookRequest, outcome: str, status: int, error: str) -> None:
    """Write the outcome on the stored request (a prepared UPDATE: it runs once per
    request)."""
    stored.outcome = outcome
    stored.response_status = status
    stored.error = error[:10_000]
    stored.processed_at = timezone.now()
    fetchone_prepared(
        f"UPDATE {WebhookRequest._meta.db_table} SET outcome = %s, response_status = %s, "  # noqa: S608
        "error = %s, actions = %s, applied = %s, processed_at = %s, replays = %s "
        "WHERE id = %s RETURNING id",
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
    return webhook_process(stored).status_code


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
    stored = WebhookRequest(
        method=request.method or "",
        path=request.path[:500],
        query={name: request.GET.getlist(name) for name in request.GET},
        headers={name.lower(): value for name, value in request.headers.items()},
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
    length = int(request.META.get("CONTENT_LENGTH") or 0)
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
