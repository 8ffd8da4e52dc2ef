"""Django admin for integrations: connected providers (written through
integrations.services, so admin refuses what the pages refuse and never shows a credential),
template imports (read-only), API keys, and stored webhook requests (with replay)."""

import contextlib
import json
import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.text import Truncator

from campaigns.delivery.providers import ProviderError, provider_kinds
from config.core.api_keys import api_key_create, api_key_revoke
from config.core.errors import HeraldError
from config.core.models import APIKey, Integration
from contacts.models import ChannelType
from integrations.models import TemplateImport, WebhookOutcome, WebhookRequest
from integrations.services import (
    integration_delete,
    integration_disable,
    integration_enable,
    integration_save,
    integration_test,
    integration_values_check,
)
from integrations.webhooks import webhook_replay


class WriteOnlyTextarea(forms.Textarea):
    """Renders empty whatever it holds: what was typed into it is never sent back."""

    def format_value(self, value: Any) -> str | None:
        return None


def _kind_choices() -> list[tuple[str, str]]:
    return sorted(
        ((kind, cls.label or kind) for kind, cls in provider_kinds().items()),
        key=lambda choice: choice[1].lower(),
    )


class IntegrationAdminForm(forms.ModelForm):
    """The settings as JSON; the credentials through a write-only field that is never
    filled in (keys left out, or blank, keep their stored value)."""

    kind = forms.ChoiceField(choices=_kind_choices)
    channels = forms.MultipleChoiceField(
        choices=ChannelType.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    settings = forms.JSONField(
        required=False,
        initial=dict,
        help_text="The kind's settings that are not secret, as a JSON object.",
    )
    new_secrets = forms.JSONField(
        required=False,
        label="Credentials",
        widget=WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="Write-only: a JSON object of the secret settings to set, e.g. "
        '{"api_key": "…"} or {"api_key": "env:SENDGRID_KEY"}. Stored sealed and never '
        "shown; settings left out keep their stored value.",
    )

    class Meta:
        model = Integration
        fields = ["kind", "name", "channels", "enabled", "is_default", "rate_limit", "settings"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["kind"].disabled = True

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        settings = data.get("settings") or {}
        secrets = data.get("new_secrets") or {}
        for name, value in (("settings", settings), ("new_secrets", secrets)):
            if not isinstance(value, dict):
                self.add_error(name, "must be a JSON object")
                return data
        try:
            integration_values_check(
                kind=self.instance.kind if self.instance.pk else data.get("kind", ""),
                name=data.get("name", ""),
                channels=list(data.get("channels") or []),
                values={**settings, **secrets},
                rate_limit=data.get("rate_limit") or 0,
                integration=self.instance if self.instance.pk else None,
            )
        except HeraldError as exc:
            field = exc.field if exc.field in self.fields else None
            if field is None and exc.field:
                field = "new_secrets" if exc.field in secrets else "settings"
                self.add_error(field, f"{exc.field}: {exc.message}")
            else:
                self.add_error(field, exc.message or str(exc))
        return data


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    form = IntegrationAdminForm
    list_display = [
        "name",
        "kind",
        "channel_list",
        "enabled",
        "is_default",
        "rate_limit",
        "last_checked_at",
        "last_error_short",
        "stats_synced_at",
    ]
    list_filter = ["kind", "enabled", "is_default"]
    search_fields = ["name", "kind"]
    readonly_fields = ["last_checked_at", "last_error", "stats_synced_at", "created_at"]
    fields = [
        "kind",
        "name",
        "channels",
        "enabled",
        "is_default",
        "rate_limit",
        "settings",
        "new_secrets",
        *readonly_fields,
    ]
    actions = ["test_connection", "enable", "disable"]

    @admin.display(description="channels")
    def channel_list(self, obj: Integration) -> str:
        return ", ".join(obj.channels)

    @admin.display(description="last error")
    def last_error_short(self, obj: Integration) -> str:
        return obj.last_error[:80]

    def save_model(
        self, request: HttpRequest, obj: Integration, form: forms.ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        saved = integration_save(
            integration=obj if change else None,
            kind=obj.kind if change else data["kind"],
            name=data["name"],
            channels=list(data.get("channels") or []),
            values={**(data.get("settings") or {}), **(data.get("new_secrets") or {})},
            enabled=data.get("enabled", True),
            is_default=data.get("is_default", False),
            rate_limit=data.get("rate_limit") or 0,
            user=request.user,
        )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Integration) -> None:
        integration_delete(integration=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        for integration in queryset:
            integration_delete(integration=integration)

    @admin.action(description="Test the connection of the selected integrations")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        for integration in queryset:
            ok, message = integration_test(integration=integration)
            self.message_user(
                request,
                f"{integration.name}: {'connected' if ok else 'failed'} — {message}",
                messages.SUCCESS if ok else messages.ERROR,
            )

    @admin.action(description="Enable the selected integrations")
    def enable(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        for integration in queryset:
            integration_enable(integration=integration)
        self.message_user(request, "Enabled.")

    @admin.action(description="Disable the selected integrations")
    def disable(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        for integration in queryset:
            integration_disable(integration=integration)
        self.message_user(request, "Disabled.")


@admin.register(TemplateImport)
class TemplateImportAdmin(admin.ModelAdmin):
    """Read-only: imports are started and resumed from the integration's page."""

    list_display = [
        "integration",
        "state",
        "offset",
        "created",
        "updated",
        "started_at",
        "finished_at",
        "started_by",
    ]
    list_filter = ["state", "integration"]
    readonly_fields = [
        "integration",
        "state",
        "offset",
        "limit",
        "created",
        "updated",
        "error",
        "started_at",
        "finished_at",
        "started_by",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "rights",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["rights", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", "rights", *readonly_fields]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, secret = api_key_create(name=obj.name, rights=obj.rights, created_by=request.user)
        obj.pk = key.pk
        messages.warning(request, f"Copy the new key now, it is not shown again: {secret}")

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(key=key)
        self.message_user(request, "Keys revoked.")


# --- webhook requests -------------------------------------------------------------------------

# Header (and query) names whose values prove who sent a request: never shown.
_SECRET_NAME = re.compile(r"authorization|signature|secret|token|api[-_]?key|cookie|password")
WEBHOOK_BODY_SHOWN = 200_000  # characters of a stored body the detail page shows


def _masked(name: str, value: object) -> object:
    return "•••• (hidden)" if _SECRET_NAME.search(name.lower()) else value


@admin.register(WebhookRequest)
class WebhookRequestAdmin(admin.ModelAdmin):
    """Stored webhook requests, read-only, with their outcome; "Replay" processes the
    selected ones again (integrations.webhooks.webhook_replay) once a parser is fixed."""

    list_display = [
        "id",
        "integration",
        "received_at",
        "outcome",
        "response_status",
        "actions",
        "applied",
        "replays",
        "error_excerpt",
    ]
    list_filter = ["outcome", "response_status", "integration"]
    list_select_related = ["integration"]
    search_fields = ["error", "path"]
    date_hierarchy = "received_at"
    actions = ["replay"]
    readonly_fields = (
        "integration",
        "received_at",
        "method",
        "path",
        "remote_addr",
        "query_shown",
        "headers_shown",
        "body_shown",
        "outcome",
        "response_status",
        "actions",
        "applied",
        "replays",
        "processed_at",
        "error",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        # The list never needs the bodies (a provider's batch may be megabytes).
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            queryset = queryset.defer("body", "headers", "query")
        return queryset

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Requests are evidence: nothing edits them. The replay action asks for this
        # permission on the list (obj None) only.
        return obj is None and super().has_change_permission(request)

    @admin.display(description="error")
    def error_excerpt(self, obj: WebhookRequest) -> str:
        return Truncator(obj.error).chars(80)

    @admin.display(description="query")
    def query_shown(self, obj: WebhookRequest) -> str:
        shown = {name: _masked(name, values) for name, values in (obj.query or {}).items()}
        return format_html("<pre>{}</pre>", json.dumps(shown, indent=2, ensure_ascii=False))

    @admin.display(description="headers")
    def headers_shown(self, obj: WebhookRequest) -> str:
        shown = {name: _masked(name, value) for name, value in (obj.headers or {}).items()}
        return format_html("<pre>{}</pre>", json.dumps(shown, indent=2, ensure_ascii=False))

    @admin.display(description="body")
    def body_shown(self, obj: WebhookRequest) -> str:
        raw = bytes(obj.body or b"")
        text = raw.decode("utf-8", errors="replace")
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        if len(text) > WEBHOOK_BODY_SHOWN:
            text = f"{text[:WEBHOOK_BODY_SHOWN]}\n… ({len(raw)} bytes in all)"
        return format_html("<pre>{}</pre>", text)

    @admin.action(description="Replay the selected requests", permissions=["change"])
    def replay(self, request, queryset):
        for stored in queryset.select_related("integration").order_by("received_at", "id"):
            try:
                status = webhook_replay(stored)
            except ProviderError as exc:  # e.g. the integration's kind is no longer installed
                self.message_user(
                    request, f"Request {stored.pk}: not replayed: {exc.message}", messages.ERROR
                )
                continue
            stored.refresh_from_db(fields=["outcome", "applied", "error"])
            text = f"Request {stored.pk}: {status}, {stored.get_outcome_display().lower()}"
            if stored.outcome == WebhookOutcome.APPLIED:
                self.message_user(request, f"{text}, {stored.applied} changes.", messages.SUCCESS)
            else:
                excerpt = Truncator(stored.error).chars(200)
                self.message_user(request, f"{text}: {excerpt}", messages.WARNING)
