import contextlib
import json
import re

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.text import Truncator

from campaigns.delivery.providers import ProviderError
from config.core.api_keys import api_key_create, api_key_revoke
from config.core.models import APIKey
from integrations.models import WebhookOutcome, WebhookRequest
from integrations.webhooks import webhook_replay


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
