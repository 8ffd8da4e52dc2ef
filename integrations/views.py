"""Integrations' marketer pages: the list of connected providers and the kinds one can
connect, the connect/edit form of one integration (with its connection test, webhook URL,
recent webhook requests, template imports and stats sync), publishing a template to a
provider, and API keys.

Thin: every write is an integrations.services or integrations.template_sync call; the
adaptive rate shown is campaigns.delivery.rate's.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from campaigns.delivery.providers import (
    Provider,
    ProviderError,
    provider_kinds,
    provider_label,
)
from campaigns.delivery.rate import rate_current
from config.core.api_keys import api_key_create, api_key_revoke
from config.core.errors import HeraldError
from config.core.models import APIKey, Integration
from config.core.roles import Role, has_role, role_required
from integrations.forms import APIKeyForm, IntegrationForm, channel_label
from integrations.models import ImportState, TemplateImport, WebhookRequest
from integrations.services import (
    integration_delete,
    integration_save,
    integration_test,
)
from integrations.template_sync import template_import_start, template_publish_external
from templates.models import MessageTemplate

RECENT_WEBHOOKS = 20
RECENT_IMPORTS = 10


def rate_now(integration: Integration) -> str:
    """The adaptive send rate the provider is allowed right now, in words."""
    rate = rate_current(provider_label(integration))
    if rate is None:
        return gettext("unlimited")
    return gettext("%(rate)s messages/s") % {"rate": f"{rate:g}"}


def webhook_url(integration: Integration) -> str:
    return f"{settings.HERALD_BASE_URL}/webhooks/{integration.webhook_key}/"


def _email_transport() -> str:
    backend = settings.EMAIL_BACKEND.rsplit(".", 2)[-2]
    return {
        "smtp": gettext("SMTP via %(host)s") % {"host": getattr(settings, "EMAIL_HOST", "")},
        "filebased": gettext("Local outbox folder (%(path)s)") % {"path": settings.EMAIL_FILE_PATH}
        if hasattr(settings, "EMAIL_FILE_PATH")
        else gettext("Local outbox folder"),
        "console": gettext("Console (development)"),
        "locmem": gettext("In-memory (tests)"),
    }.get(backend, settings.EMAIL_BACKEND)


@role_required(Role.VIEWER)
def integrations_home(request: HttpRequest) -> HttpResponse:
    kinds = provider_kinds()
    rows = [
        {
            "integration": integration,
            "label": kinds[integration.kind].label if integration.kind in kinds else "",
            "installed": integration.kind in kinds,
            "channels": [channel_label(channel) for channel in integration.channels],
            "rate": rate_now(integration),
        }
        for integration in Integration.objects.order_by("name")
    ]
    return render(
        request,
        "integrations/home.html",
        {
            "email_transport": _email_transport(),
            "rows": rows,
            "kinds": [
                _kind_info(cls)
                for cls in sorted(kinds.values(), key=lambda cls: (cls.label or cls.kind).lower())
            ],
            "can_change": has_role(request.user, Role.ADMIN),
        },
    )


def _kind_info(cls: type[Provider]) -> dict[str, Any]:
    return {
        "kind": cls.kind,
        "label": cls.label or cls.kind,
        "channels": [channel_label(channel) for channel in sorted(cls.channels)],
        "accepts_campaigns": cls.accepts_campaigns,
        "has_templates": cls.has_templates,
    }


def _provider_or_404(kind: str) -> type[Provider]:
    cls = provider_kinds().get(kind)
    if cls is None:
        raise Http404(f"No provider kind {kind!r} is installed.")
    return cls


@role_required(Role.ADMIN)
def integration_new(request: HttpRequest, kind: str) -> HttpResponse:
    provider = _provider_or_404(kind)
    if request.method != "POST":
        form = IntegrationForm(provider=provider, initial=IntegrationForm.initial_new(provider))
        return _form_page(request, form, provider)
    form = IntegrationForm(request.POST, provider=provider)
    if form.is_valid():
        try:
            integration = integration_save(kind=kind, user=request.user, **form.service_kwargs())
        except HeraldError as exc:
            form.service_error(exc)
        else:
            messages.success(
                request,
                gettext(
                    "“%(name)s” connected. Test its connection, then give the provider "
                    "the webhook URL below."
                )
                % {"name": integration.name},
            )
            return redirect("integration_detail", pk=integration.pk)
    return _form_page(request, form, provider, status=400)


@role_required(Role.VIEWER)
def integration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    provider = provider_kinds().get(integration.kind)
    can_change = has_role(request.user, Role.ADMIN)
    if provider is None:
        return _form_page(request, None, None, integration=integration)
    if request.method != "POST":
        form = IntegrationForm(
            provider=provider,
            integration=integration,
            initial=IntegrationForm.initial_for(integration, provider),
        )
        if not can_change:
            form.read_only()
        return _form_page(request, form, provider, integration=integration)
    if not can_change:
        raise PermissionDenied("Changing an integration needs the admin role.")
    form = IntegrationForm(request.POST, provider=provider, integration=integration)
    if form.is_valid():
        try:
            integration_save(
                integration=integration,
                kind=integration.kind,
                user=request.user,
                **form.service_kwargs(),
            )
        except HeraldError as exc:
            form.service_error(exc)
        else:
            messages.success(
                request, gettext("“%(name)s” saved.") % {"name": form.cleaned_data["name"]}
            )
            return redirect("integration_detail", pk=integration.pk)
    integration.refresh_from_db()
    return _form_page(request, form, provider, integration=integration, status=400)


def _form_page(
    request: HttpRequest,
    form: IntegrationForm | None,
    provider: type[Provider] | None,
    *,
    integration: Integration | None = None,
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {
        "form": form,
        # What the template reads of the kind (a class would be called by the template).
        "provider": _kind_info(provider) if provider else None,
        "integration": integration,
        "can_change": has_role(request.user, Role.ADMIN),
        "can_import": _can_import(request),
    }
    if integration is not None:
        context.update(
            webhook_url=webhook_url(integration),
            webhooks=WebhookRequest.objects.filter(integration=integration)[:RECENT_WEBHOOKS],
            rate=rate_now(integration),
            imports=_imports(integration),
        )
    return render(request, "integrations/integration_form.html", context, status=status)


def _can_import(request: HttpRequest) -> bool:
    return has_role(request.user, Role.MARKETER)


def _imports(integration: Integration) -> list[TemplateImport]:
    return list(
        TemplateImport.objects.filter(integration=integration).select_related("started_by")[
            :RECENT_IMPORTS
        ]
    )


@require_POST
@role_required(Role.ADMIN)
def integration_test_view(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    ok, message = integration_test(integration=integration)
    if ok:
        messages.success(
            request, gettext("Connection test passed: %(detail)s") % {"detail": message}
        )
    else:
        messages.error(request, gettext("Connection test failed: %(detail)s") % {"detail": message})
    return redirect("integration_detail", pk=pk)


@require_POST
@role_required(Role.ADMIN)
def integration_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    integration_delete(integration=integration)
    messages.success(request, gettext("“%(name)s” removed.") % {"name": integration.name})
    return redirect("integrations_home")


@require_POST
@role_required(Role.MARKETER)
def integration_import_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a template import, or resume the failed or interrupted one."""
    integration = get_object_or_404(Integration, pk=pk)
    try:
        started = template_import_start(integration=integration, user=request.user)
    except (ProviderError, HeraldError) as exc:
        messages.error(
            request,
            gettext("Template import not started: %(problem)s") % {"problem": exc.message or exc},
        )
    else:
        offset = started.offset
        messages.success(
            request,
            gettext("Template import started.")
            if not offset
            else gettext("Template import resumed at template %(number)s.")
            % {"number": offset + 1},
        )
    return redirect("integration_detail", pk=pk)


@require_GET
@role_required(Role.VIEWER)
def integration_imports(request: HttpRequest, pk: int) -> HttpResponse:
    """The template imports table, polled by htmx while an import runs."""
    integration = get_object_or_404(Integration, pk=pk)
    imports = _imports(integration)
    response = render(
        request,
        "integrations/_imports.html",
        {
            "integration": integration,
            "imports": imports,
            "can_import": _can_import(request),
        },
    )
    if not any(item.state == ImportState.RUNNING for item in imports):
        response.status_code = 286  # htmx: stop polling, nothing is moving
    return response


@require_POST
@role_required(Role.MARKETER)
def template_publish_external_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The template page's "Publish to <integration>": hands the template's HTML to the
    provider, which answers with its own id for it."""
    template = get_object_or_404(MessageTemplate, pk=pk)
    integration = template.integration
    chosen = request.POST.get("integration", "").strip()
    if chosen:
        integration = Integration.objects.filter(pk=int(chosen) if chosen.isdigit() else 0).first()
        if integration is None:
            messages.error(request, gettext("Not published: that integration no longer exists."))
            return redirect("template_edit", pk=pk)
    if integration is None:
        messages.error(request, gettext("Not published: choose the integration to publish to."))
        return redirect("template_edit", pk=pk)
    try:
        external_id = template_publish_external(template=template, integration=integration)
    except (ProviderError, HeraldError) as exc:
        # The sync service may already name the integration; say it once.
        reason = str(exc.message or exc).removeprefix(f"{integration.name}: ")
        messages.error(
            request,
            gettext("Not published to %(name)s: %(problem)s")
            % {"name": integration.name, "problem": reason},
        )
    else:
        messages.success(
            request,
            gettext("Published to %(name)s as %(id)s.")
            % {"name": integration.name, "id": external_id},
        )
    return redirect("template_edit", pk=pk)


@role_required(Role.ADMIN)
def api_keys(request: HttpRequest) -> HttpResponse:
    new_secret = None
    if request.method == "POST":
        form = APIKeyForm(request.POST)
        if form.is_valid():
            key, new_secret = api_key_create(
                name=form.cleaned_data["name"],
                rights=form.cleaned_data["rights"],
                created_by=request.user,
            )
            messages.success(
                request,
                gettext("API key “%(name)s” created. Copy it now: it is not shown again.")
                % {"name": key.name},
            )
            form = APIKeyForm()
    else:
        form = APIKeyForm()
    return render(
        request,
        "integrations/api_keys.html",
        {
            "form": form,
            "keys": APIKey.objects.select_related("created_by"),
            "new_secret": new_secret,
        },
    )


@role_required(Role.ADMIN)
@require_POST
def api_key_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(APIKey, pk=pk)
    api_key_revoke(key=key)
    messages.success(request, gettext("API key “%(name)s” revoked.") % {"name": key.name})
    return redirect("api_keys")
