"""Webhook intake: every integration has its own URL, /webhooks/<webhook key>/.

A request is stored raw (integrations.WebhookRequest) before anything reads it; then the
integration's provider authenticates it (signature, basic auth or shared secret, with the
replay window of integrations.webhook_auth), parses it into actions, and
campaigns.delivery.feedback applies them (idempotently). What the service gets back is what
it expects: the parser's response, 401 for a refused request, the provider's answer to a
malformed payload, and for a parser that fails a 500, so that services that retry do, while
the stored request waits for a replay from admin. Nothing is lost either way.
"""

from __future__ import annotations

import json
import logging

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
        stored.outcome, stored.error = WebhookOutcome.FAILED, "the integration was deleted"
        stored.save(update_fields=["outcome", "error"])
        return JsonResponse({"detail": stored.error}, status=410)
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
    try:
        report = actions_apply(result.actions, integration=integration)
    except Exception as exc:
        logger.exception("applying webhook request %s of %s failed", stored.pk, integration)
        message = f"applying failed: {type(exc).__name__}: {exc}"
        return _finish(stored, WebhookOutcome.FAILED, 500, message, {"detail": "not processed"})
    stored.actions = len(result.actions)
    stored.applied = report.total
    response = result.response or WebhookResponse()
    _record(stored, WebhookOutcome.APPLIED, response.status, "")
    return _http(response)


def _record(stored: WebhookRequest, outcome: str, status: int, error: str) -> None:
    stored.outcome = outcome
    stored.response_status = status
    stored.error = error[:10_000]
    stored.processed_at = timezone.now()
    stored.save(
        update_fields=[
            "outcome",
            "response_status",
            "error",
            "actions",
            "applied",
            "processed_at",
            "replays",
        ]
    )


def _finish(stored: WebhookRequest, outcome: str, status: int, error: str, body) -> HttpResponse:
    _record(stored, outcome, status, error)
    return JsonResponse(body, status=status)


def webhook_replay(stored: WebhookRequest) -> int:
    """Process a stored request again (admin's replay action); returns the HTTP status the
    service would have got."""
    stored.replays += 1
    return webhook_process(stored).status_code


@csrf_exempt
def webhook_receive(request: HttpRequest, key: str) -> HttpResponse:
    integration = Integration.objects.filter(webhook_key=key).first()
    if integration is None:
        return JsonResponse({"detail": "no integration has this webhook URL"}, status=404)
    if not integration.enabled:
        return JsonResponse(
            {"detail": f"the integration {integration.name} is disabled"}, status=403
        )
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > WEBHOOK_MAX_BYTES:
        return JsonResponse(
            {"detail": f"body larger than {WEBHOOK_MAX_BYTES} bytes", "field": "body"}, status=413
        )
    # Read from the stream, not request.body: DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) is for
    # forms; a provider's batch of events may be larger.
    body = request.read(WEBHOOK_MAX_BYTES + 1)
    if len(body) > WEBHOOK_MAX_BYTES:
        return JsonResponse(
            {"detail": f"body larger than {WEBHOOK_MAX_BYTES} bytes", "field": "body"}, status=413
        )
    stored = WebhookRequest.objects.create(
        integration=integration,
        method=request.method or "",
        path=request.path[:500],
        query={name: request.GET.getlist(name) for name in request.GET},
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
        remote_addr=(request.META.get("REMOTE_ADDR") or "")[:64],
    )
    return webhook_process(stored)
