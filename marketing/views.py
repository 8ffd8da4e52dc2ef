from auditlog.models import LogEntry
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from marketing import services
from marketing.forms import OrganisationForm
from marketing.models import Heartbeat, Organisation
from marketing.roles import Role, role_required


@role_required(Role.VIEWER)
def dashboard(request):
    from campaigns.analytics import dashboard_metrics

    return render(
        request,
        "marketing/dashboard.html",
        {
            "worker_heartbeat": Heartbeat.objects.filter(name="worker").first(),
            # Last-30-days campaign tiles, read from the analytics rollups (no ledger scan).
            "campaign_metrics": dashboard_metrics(days=30),
        },
    )


@role_required(Role.ADMIN)
def settings_home(request):
    organisation = Organisation.load()
    if request.method == "POST":
        form = OrganisationForm(request.POST, instance=organisation)
        if form.is_valid():
            services.organisation_update(**form.cleaned_data)
            messages.success(request, "Organisation settings saved.")
            return redirect("settings_home")
    else:
        form = OrganisationForm(instance=organisation)
    return render(request, "marketing/settings.html", {"form": form})


@role_required(Role.ADMIN)
def audit_log(request):
    entries = LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp")
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "marketing/audit_log.html", {"page": page})


@never_cache
@require_GET
def healthz(request):
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
    from config.celery import app

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            # kombu's Redis transport connects lazily; a PING proves the server answers.
            client = getattr(conn.default_channel, "client", None)
            if hasattr(client, "ping"):
                client.ping()
        return "ok"
    except Exception as exc:  # kombu raises many transport-specific errors
        return f"error: {exc.__class__.__name__}: {exc}".strip()
