"""`/healthz`: whether the database and the broker answer, for load balancers and operators;
and the background worker's state as the dashboard shows it."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app
from config.core.models import Heartbeat

# Beat asks the worker for a heartbeat every 30 s (settings.CELERY_BEAT_SCHEDULE): one missed
# tick is a busy worker, three are a stopped one.
HEARTBEAT_LATE = timedelta(seconds=90)
# How long after beat started a worker that has not yet answered counts as starting.
WORKER_START_GRACE = timedelta(minutes=2)


@dataclass(frozen=True)
class WorkerState:
    state: str  # "ok", "late", "starting" or "missing"
    seen_at: datetime | None = None


def worker_state(*, now: datetime | None = None) -> WorkerState:
    now = now or timezone.now()
    beats = Heartbeat.objects.filter(name__in=["worker", "beat"])
    seen = dict(beats.values_list("name", "seen_at"))
    worker, beat = seen.get("worker"), seen.get("beat")
    if worker and now - worker <= HEARTBEAT_LATE:
        return WorkerState("ok", worker)
    # Beat (re)started lately and the worker has not answered since: it is on its way.
    if beat and now - beat <= WORKER_START_GRACE and (worker is None or worker < beat):
        return WorkerState("starting", worker)
    return WorkerState("late" if worker else "missing", worker)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and broker reachability, for load balancers and operators."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not healthy"; the message says which
        checks["database"] = f"error: {exc.__class__.__name__}: {exc}".strip()
    checks["broker"] = _broker_status()
    healthy = all(value == "ok" for value in checks.values())
    failed = [name for name, value in checks.items() if value != "ok"]
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks, "failed": failed},
        status=200 if healthy else 503,
    )


def _broker_status() -> str:
    try:
        with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            # kombu's Redis transport connects lazily; a PING proves the server answers.
            client: Any = getattr(conn.default_channel, "client", None)
            if hasattr(client, "ping"):
                client.ping()
        return "ok"
    except Exception as exc:  # kombu raises many transport-specific errors
        return f"error: {exc.__class__.__name__}: {exc}".strip()
