"""Who may call what: every route of the URL resolver against every kind of caller.

ROUTES is the one table: each named route (pages, public endpoints and the API; the Django
admin as one row) with, per HTTP method, what it needs: a role for a page, a scope for the
API (the users' roles follow from the method: viewers read, marketers write), or nothing
(PUBLIC). A route in the resolver but not in the table, a method the view answers but the
table does not name, or a table row for a route that is gone, fails the test.

Each caller kind is one test that walks the whole table; the expected answer comes from the
table alone:
- pages: 302 to the login page without a session (API keys and tokens open no page), 403
  for a role too weak, else past the door (not 401, 403 or 404: path parameters name real
  objects, so a 404 would hide a refusal);
- API: 401 without valid credentials (none, a revoked key, an expired token), 403 for a key
  whose right lacks the scope or a role too weak, else past the door.
Writes are sent with an empty body inside a savepoint that is rolled back, so every request
sees the same data and a caller who may write only meets the validation.
"""

import datetime as dt
import uuid
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from config.core.api_keys import api_key_create, api_key_revoke
from config.core.models import RIGHT_SCOPES, APIRight, Scope
from config.core.roles import Role
from tests.factories import UserFactory
from tests.support.api import APIClient

PUBLIC = "public"
# The Django admin is one row: it sends whoever is not staff to its own login page.
ADMIN_SITE = "admin site"
V, M, A = Role.VIEWER, Role.MARKETER, Role.ADMIN


@dataclass(frozen=True)
class Api:
    """An API method's scope, and the weakest role that may call it with a user's token."""

    scope: str
    role: Role | None = None


def reads(scope: str) -> Api:
    """A read sent as POST (the request names more ids than a query string holds)."""
    return Api(scope, V)


S = Scope
ROUTES: dict[str, dict[str, Any]] = {
    # Ground floor
    "admin:index": {"GET": ADMIN_SITE},
    "healthz": {"GET": PUBLIC},
    "favicon": {"GET": PUBLIC},
    "language_set": {"POST": PUBLIC},
    "login": {"GET": PUBLIC, "POST": PUBLIC},
    "logout": {"POST": PUBLIC},
    "jwt-obtain": {"POST": PUBLIC},
    "jwt-refresh": {"POST": PUBLIC},
    "api-schema": {"GET": PUBLIC},
    "api-docs": {"GET": PUBLIC},
    "dashboard": {"GET": V},
    "settings_home": {"GET": A, "POST": A},
    "audit_log": {"GET": A},
    "frequency_caps": {"GET": A, "POST": A},
    "api_keys": {"GET": A, "POST": A},
    "api_key_revoke": {"POST": A},
    # Contacts and segments
    "contacts_home": {"GET": V},
    "contact_create": {"GET": M, "POST": M},
    "contact_bulk": {"POST": M},
    "contact_detail": {"GET": V},
    "contact_edit": {"GET": M, "POST": M},
    "contact_delete": {"POST": M},
    "contact_restore": {"POST": M},
    "contact_activity": {"GET": V},
    "contact_export": {"GET": M},
    "custom_field_list": {"GET": V},
    "custom_field_create": {"GET": M, "POST": M},
    "custom_field_edit": {"GET": M, "POST": M},
    "custom_field_delete": {"POST": M},
    "unsubscribed_list": {"GET": V},
    "unsubscribed_add": {"POST": M},
    "unsubscribed_remove": {"POST": M},
    "suppression_list": {"GET": V},
    "suppression_add": {"POST": M},
    "suppression_lift": {"POST": M},
    "segments_home": {"GET": V},
    "segment_create": {"GET": M, "POST": M},
    "segment_filter_reach": {"POST": V},
    "segment_filter_row": {"GET": V},
    "segment_detail": {"GET": V},
    "segment_edit": {"GET": M, "POST": M},
    "segment_delete": {"POST": M},
    "segment_reach": {"GET": V},
    "segment_filter_save": {"POST": M},
    "segment_members_add": {"POST": M},
    "segment_members_remove": {"POST": M},
    "import_home": {"GET": M, "POST": M},
    "import_detail": {"GET": M},
    "import_mapping": {"GET": M, "POST": M},
    "import_progress": {"GET": M},
    "import_failures_csv": {"GET": M},
    "contacts_export_csv": {"GET": M},
    "contact_confirm": {"GET": PUBLIC},
    # Integrations
    "webhook_receive": {"POST": PUBLIC},
    "integrations_home": {"GET": V},
    "integration_new": {"GET": A, "POST": A},
    "integration_detail": {"GET": V, "POST": A},
    "integration_test": {"POST": A},
    "integration_delete": {"POST": A},
    "integration_import": {"POST": M},
    "integration_imports": {"GET": V},
    # Templates
    "templates_home": {"GET": V},
    "template_new": {"GET": M, "POST": M},
    "template_preview": {"POST": V},
    "template_edit": {"GET": V, "POST": M},
    "template_publish": {"POST": M},
    "template_publish_external": {"POST": M},
    "template_versions": {"GET": V},
    "template_version": {"GET": V},
    "template_languages": {"GET": V, "POST": M},
    "template_language_edit": {"GET": M, "POST": M},
    "template_language_delete": {"POST": M},
    "template_duplicate": {"POST": M},
    "template_delete": {"GET": M, "POST": M},
    "template_design": {"GET": V},
    "template_test_send": {"POST": M},
    "editor_image": {"GET": PUBLIC},
    "message_log": {"GET": V},
    "message_detail": {"GET": V},
    # Campaigns
    "campaigns_home": {"GET": V},
    "campaign_create": {"GET": M, "POST": M},
    "campaign_audience_reach": {"POST": V},
    "campaign_recurrence": {"GET": V},
    "campaign_detail": {"GET": V},
    "campaign_edit": {"GET": M, "POST": M},
    "campaign_progress": {"GET": V},
    "campaign_report": {"GET": V},
    "campaign_report_people": {"GET": V},
    "campaign_report_people_csv": {"GET": V},
    "campaign_utm": {"GET": M, "POST": M},
    "campaign_ab_test": {"GET": V, "POST": M},
    "campaign_ab_winner": {"POST": M},
    "campaign_promo_codes_csv": {"GET": V},
    "campaign_test_send": {"POST": M},
    "campaign_action": {"POST": M},
    "promo_home": {"GET": V, "POST": M},
    "promo_pool": {"GET": V},
    "promo_pool_upload": {"POST": M},
    "promo_pool_generate": {"POST": M},
    "promo_pool_delete": {"POST": M},
    "tracking_open": {"GET": PUBLIC},
    "tracking_click": {"GET": PUBLIC},
    "tracking_trap": {"GET": PUBLIC},
    "unsubscribe": {"GET": PUBLIC, "POST": PUBLIC},
    # Events, orders, automation, subscription forms
    "event_history": {"GET": V},
    "event_analytics": {"GET": V},
    "event_detail": {"GET": V},
    "event_delete": {"POST": M},
    "event_types": {"GET": V, "POST": M},
    "event_type_edit": {"POST": M},
    "event_type_detail": {"GET": V, "POST": M},
    "orders_home": {"GET": V},
    "rfm_grid": {"GET": V},
    "rfm_recompute": {"POST": M},
    "rfm_segment": {"POST": M},
    "order_detail": {"GET": V},
    "automation_home": {"GET": V, "POST": M},
    "workflow_detail": {"GET": V},
    "workflow_event_type_picker": {"GET": M},
    "workflow_param_row": {"GET": M},
    "workflow_contact_row": {"GET": M},
    "workflow_settings": {"POST": M},
    "workflow_step_add": {"POST": M},
    "workflow_step_save": {"POST": M},
    "workflow_step_delete": {"POST": M},
    "workflow_activate": {"POST": M},
    "workflow_pause": {"POST": M},
    "workflow_delete": {"POST": M},
    "workflow_simulate": {"GET": V},
    "workflow_runs": {"GET": V},
    "workflow_run_detail": {"GET": V},
    "workflow_button": {"GET": PUBLIC, "POST": PUBLIC},
    "signup_home": {"GET": V},
    "signup_new": {"GET": M, "POST": M},
    "signup_edit": {"GET": V, "POST": M},
    "signup_stats": {"GET": V},
    "signup_delete": {"POST": M},
    "signup_page": {"GET": PUBLIC, "POST": PUBLIC},
    "signup_thanks": {"GET": PUBLIC},
    "signup_frame": {"GET": PUBLIC, "POST": PUBLIC},
    "signup_frame_thanks": {"GET": PUBLIC},
    "signup_embed_js": {"GET": PUBLIC},
    # The eSputnik v1 API
    "account-info": {"GET": S.ACCOUNT},
    "event": {"POST": S.EVENTS},
    "event-v2": {"POST": S.EVENTS},
    "orders": {"POST": S.MANAGE, "DELETE": S.MANAGE},
    "contact-subscribe": {"POST": S.CONTACTS_ADD_UPDATE},
    "contacts": {"GET": S.CONTACTS, "POST": S.CONTACTS_ADD_UPDATE},
    "contacts-import-status": {"GET": S.CONTACTS_ADD_UPDATE},
    "contact": {"POST": S.CONTACTS_ADD_UPDATE, "DELETE": S.CONTACTS},
    "contact-detail": {"GET": S.CONTACTS, "PUT": S.CONTACTS_ADD_UPDATE, "DELETE": S.CONTACTS},
    "contacts-upload": {"POST": S.CONTACTS_ADD_UPDATE},
    "groups": {"GET": S.CONTACTS},
    "group-contacts": {"GET": S.CONTACTS},
    "group-attach": {"POST": S.CONTACTS},
    "group-detach": {"POST": S.CONTACTS},
    "addressbooks": {"GET": S.CONTACTS},
    "unsubscribed-add": {"POST": S.CONTACTS},
    "unsubscribed-delete": {"POST": S.CONTACTS},
    "smartsend": {"POST": S.MESSAGES},
    "message-email": {"POST": S.MESSAGES},
    "message-sms": {"POST": S.MESSAGES},
    "message-viber": {"POST": S.MESSAGES},
    "message-status": {"GET": S.MESSAGES},
    # Herald's own API
    "suppressions": {"GET": S.MANAGE, "POST": S.MANAGE},
    "suppression-lift": {"POST": S.MANAGE},
    "custom-field-list": {"GET": S.MANAGE, "POST": S.MANAGE},
    "custom-field-detail": {m: S.MANAGE for m in ("GET", "PUT", "PATCH", "DELETE")},
    "segment-list": {"GET": S.MANAGE, "POST": S.MANAGE},
    "segment-filter-reach": {"POST": S.MANAGE},
    "segment-detail": {m: S.MANAGE for m in ("GET", "PUT", "PATCH", "DELETE")},
    "segment-changes": {"GET": S.MANAGE},
    "segment-reach": {"GET": S.MANAGE},
    "contact-activity": {"GET": S.CONTACTS},
    "contact-export": {"GET": S.CONTACTS},
    "template-list": {"GET": S.MANAGE, "POST": S.MANAGE},
    "template-detail": {m: S.MANAGE for m in ("GET", "PUT", "PATCH", "DELETE")},
    "template-preview": {"POST": S.MANAGE},
    "template-publish": {"POST": S.MANAGE},
    "template-versions": {"GET": S.MANAGE},
    "template-languages": {"GET": S.MANAGE, "POST": S.MANAGE},
    "template-language": {"GET": S.MANAGE, "PUT": S.MANAGE, "DELETE": S.MANAGE},
    "template-design": {"GET": S.MANAGE, "POST": S.MANAGE},
    "image-upload": {"POST": S.MANAGE},
    "rfm": {"GET": S.MANAGE, "POST": S.MANAGE},
    "workflow-start": {"POST": S.EVENTS},
    "workflow-button-link": {"GET": S.EVENTS},
    "event-type-list": {"GET": S.MANAGE, "POST": S.MANAGE},
    "event-type-detail": {"GET": S.MANAGE, "PUT": S.MANAGE, "PATCH": S.MANAGE},
    "event-list": {"GET": S.MANAGE},
    "event-analytics": {"GET": S.MANAGE},
    "event-delete-many": {"POST": S.MANAGE},
    "event-detail": {"GET": S.MANAGE, "DELETE": S.MANAGE},
    "order-list": {"GET": S.MANAGE},
    "order-detail": {"GET": S.MANAGE},
    "signup-form-list": {"GET": S.MANAGE, "POST": S.MANAGE},
    "signup-form-detail": {m: S.MANAGE for m in ("GET", "PUT", "DELETE")},
    "signup-form-stats": {"GET": S.MANAGE},
    "integration-telegram-subscribe-link": {"GET": S.MANAGE},
    "herald-campaign-ab-test": {"GET": S.MANAGE},
    "herald-campaign-ab-test-winner": {"POST": S.MANAGE},
    "campaign-promo-codes": {"GET": S.MANAGE},
    "frequency-caps": {"GET": S.MANAGE, "PUT": S.MANAGE},
    "promo-pool-list": {"GET": S.MANAGE, "POST": S.MANAGE},
    "promo-pool-detail": {m: S.MANAGE for m in ("GET", "PATCH", "DELETE")},
    "promo-pool-codes-add": {"GET": S.MANAGE, "POST": S.MANAGE},
    "promo-pool-generate": {"POST": S.MANAGE},
    # The CRM campaigns API
    "crm-campaigns": {"GET": S.MANAGE, "POST": S.MANAGE},
    "crm-aggregated-metrics": {"POST": reads(S.MANAGE)},
    "crm-campaign": {m: S.MANAGE for m in ("GET", "PUT", "PATCH", "DELETE")},
    "crm-campaign-schedule": {"POST": S.MANAGE},
    "crm-campaign-launch": {"POST": S.MANAGE},
    "crm-campaign-pause": {"POST": S.MANAGE},
    "crm-campaign-resume": {"POST": S.MANAGE},
    "crm-campaign-cancel": {"POST": S.MANAGE},
    "crm-campaign-duplicate": {"POST": S.MANAGE},
    "crm-campaign-purge": {"POST": S.MANAGE},
    "crm-campaign-analytics": {"GET": S.MANAGE},
    "crm-platforms": {"GET": S.MANAGE},
    "crm-campaign-types": {"GET": S.MANAGE},
    "crm-social-profiles": {"GET": S.MANAGE},
    "crm-social-profile": {"GET": S.MANAGE},
    "crm-health": {"GET": S.MANAGE},
    "crm-dashboard": {"GET": S.MANAGE},
}

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Caller:
    """Who knocks: a session of a user (pages) who holds an access token (API), an API
    key, or a bare request. `credentials_valid` is False for a revoked key or an expired
    token."""

    name: str
    role: Role | None = None
    user: bool = False
    right: str | None = None
    credentials_valid: bool = True


CALLERS = [
    Caller("anonymous"),
    Caller("no role", user=True),
    Caller("viewer", role=V, user=True),
    Caller("marketer", role=M, user=True),
    Caller("admin", role=A, user=True),
    *(Caller(f"{right} key", right=right) for right in APIRight.values),
    Caller("revoked key", right=APIRight.FULL, credentials_valid=False),
    Caller("expired token", role=M, credentials_valid=False),
]

# Answers that mean the door stayed shut, or that the path named nothing.
REFUSED = {401, 403, 404, 405}


def expectation(caller: Caller, need, method: str, *, api: bool) -> str:
    """What the table says `caller` must get: "public" (or "public or 401"), "allowed",
    "login", "admin login", "401" or "403"."""
    if need == PUBLIC:
        # The API's schema and docs still check credentials sent along (a revoked key or an
        # expired token is told so); the token endpoints ignore them.
        return "public or 401" if api and not caller.credentials_valid else "public"
    if need == ADMIN_SITE:
        return "allowed" if caller.user and caller.role == A else "admin login"
    if not api:
        if not caller.user:
            return "login"
        return "allowed" if caller.role and has_role_rank(caller.role, need) else "403"
    if not isinstance(need, Api):
        need = Api(need)
    if not caller.credentials_valid or (not caller.user and caller.right is None):
        return "401"
    if caller.right is not None:
        return "allowed" if need.scope in RIGHT_SCOPES[caller.right] else "403"
    weakest = need.role or (V if method in SAFE_METHODS else M)
    return "allowed" if caller.role and has_role_rank(caller.role, weakest) else "403"


RANK = {V: 1, M: 2, A: 3}


def has_role_rank(role: Role, needed: Role) -> bool:
    return RANK[role] >= RANK[needed]


def answer_matches(response, expected: str) -> bool:
    status = response.status_code
    location = response.get("Location", "")
    if expected == "login":
        return status == 302 and location.startswith("/login/")
    if expected == "admin login":
        return status == 302 and location.startswith("/admin/login/")
    if expected in ("401", "403"):
        return status == int(expected)
    if expected == "public or 401" and status == 401:
        return True
    if expected.startswith("public"):
        # Whoever calls: no refusal; a made-up token may name nothing (404), and logging
        # out sends to the login page.
        return status not in (401, 403) and status < 500
    # Past the door: neither refused nor sent to log in, and no server error.
    return status not in REFUSED and status < 500 and not location.startswith("/login/")


@dataclass
class World:
    """The objects path parameters name, and a signed-in session per user."""

    site: Any
    suppression: Any
    static_segment: Any
    spare_key: Any
    step_id: str
    secrets: dict[str, str]
    sessions: dict[str, dict[str, str]]
    tokens: dict[str, str]


# Route name → its path parameters, from the data (no entry: the route takes none).
ARGS = {
    "contact_detail": lambda w: {"pk": w.site.contact.pk},
    "contact_edit": lambda w: {"pk": w.site.contact.pk},
    "contact_delete": lambda w: {"pk": w.site.contact.pk},
    "contact_restore": lambda w: {"pk": w.site.contact.pk},
    "contact_activity": lambda w: {"pk": w.site.contact.pk},
    "contact_export": lambda w: {"pk": w.site.contact.pk},
    "custom_field_edit": lambda w: {"pk": w.site.field.pk},
    "custom_field_delete": lambda w: {"pk": w.site.field.pk},
    "suppression_lift": lambda w: {"pk": w.suppression.pk},
    "segment_detail": lambda w: {"pk": w.site.segment.pk},
    "segment_edit": lambda w: {"pk": w.site.segment.pk},
    "segment_delete": lambda w: {"pk": w.site.segment.pk},
    "segment_reach": lambda w: {"pk": w.site.segment.pk},
    "segment_filter_save": lambda w: {"pk": w.site.segment.pk},
    "segment_members_add": lambda w: {"pk": w.static_segment.pk},
    "segment_members_remove": lambda w: {"pk": w.static_segment.pk},
    "import_detail": lambda w: {"session_id": w.site.import_job.session_id},
    "import_mapping": lambda w: {"session_id": w.site.mapping_job.session_id},
    "import_progress": lambda w: {"session_id": w.site.import_job.session_id},
    "import_failures_csv": lambda w: {"session_id": w.site.import_job.session_id},
    "contact_confirm": lambda w: {"token": "not-a-token"},
    "webhook_receive": lambda w: {"key": w.site.integration.webhook_key},
    "integration_new": lambda w: {"kind": "smtp"},
    "integration_detail": lambda w: {"pk": w.site.integration.pk},
    "integration_test": lambda w: {"pk": w.site.integration.pk},
    "integration_delete": lambda w: {"pk": w.site.integration.pk},
    "integration_import": lambda w: {"pk": w.site.integration.pk},
    "integration_imports": lambda w: {"pk": w.site.integration.pk},
    "api_key_revoke": lambda w: {"pk": w.spare_key.pk},
    "template_edit": lambda w: {"pk": w.site.template.pk},
    "template_publish": lambda w: {"pk": w.site.template.pk},
    "template_publish_external": lambda w: {"pk": w.site.template.pk},
    "template_versions": lambda w: {"pk": w.site.template.pk},
    "template_version": lambda w: {"pk": w.site.template.pk, "number": w.site.template_version},
    "template_languages": lambda w: {"pk": w.site.template.pk},
    "template_language_edit": lambda w: {"pk": w.site.template.pk, "code": "uk"},
    "template_language_delete": lambda w: {"pk": w.site.template.pk, "code": "uk"},
    "template_duplicate": lambda w: {"pk": w.site.template.pk},
    "template_delete": lambda w: {"pk": w.site.template.pk},
    "template_design": lambda w: {"pk": w.site.template.pk},
    "template_test_send": lambda w: {"pk": w.site.template.pk},
    "editor_image": lambda w: {"key": uuid.UUID(int=7), "extension": "png"},
    "message_detail": lambda w: {"request_id": w.site.message.request_id},
    "campaign_detail": lambda w: {"pk": w.site.campaign.pk},
    "campaign_edit": lambda w: {"pk": w.site.campaign.pk},
    "campaign_progress": lambda w: {"pk": w.site.campaign.pk},
    "campaign_report": lambda w: {"pk": w.site.campaign.pk},
    "campaign_report_people": lambda w: {"pk": w.site.campaign.pk, "kind": "clicked"},
    "campaign_report_people_csv": lambda w: {"pk": w.site.campaign.pk, "kind": "clicked"},
    "campaign_utm": lambda w: {"pk": w.site.campaign.pk},
    "campaign_ab_test": lambda w: {"pk": w.site.campaign.pk},
    "campaign_ab_winner": lambda w: {"pk": w.site.campaign.pk},
    "campaign_promo_codes_csv": lambda w: {"pk": w.site.campaign.pk},
    "campaign_test_send": lambda w: {"pk": w.site.campaign.pk},
    "campaign_action": lambda w: {"pk": w.site.campaign.pk, "action": "duplicate"},
    "promo_pool": lambda w: {"pk": w.site.pool.pk},
    "promo_pool_upload": lambda w: {"pk": w.site.pool.pk},
    "promo_pool_generate": lambda w: {"pk": w.site.pool.pk},
    "promo_pool_delete": lambda w: {"pk": w.site.pool.pk},
    "tracking_open": lambda w: {"token": "1.abc"},
    "tracking_click": lambda w: {"token": "1.abc"},
    "tracking_trap": lambda w: {"token": "1.abc"},
    "unsubscribe": lambda w: {"token": "1.abc"},
    "event_detail": lambda w: {"pk": w.site.event_type.events.order_by("pk").first().pk},
    "event_delete": lambda w: {"pk": w.site.event_type.events.order_by("pk").first().pk},
    "event_type_edit": lambda w: {"pk": w.site.event_type.pk},
    "event_type_detail": lambda w: {"pk": w.site.event_type.pk},
    "order_detail": lambda w: {"pk": w.site.order.pk},
    "workflow_detail": lambda w: {"pk": w.site.workflow.pk},
    "workflow_settings": lambda w: {"pk": w.site.workflow.pk},
    "workflow_step_add": lambda w: {"pk": w.site.workflow.pk},
    "workflow_step_save": lambda w: {"pk": w.site.workflow.pk, "step_id": w.step_id},
    "workflow_step_delete": lambda w: {"pk": w.site.workflow.pk, "step_id": w.step_id},
    "workflow_activate": lambda w: {"pk": w.site.workflow.pk},
    "workflow_pause": lambda w: {"pk": w.site.workflow.pk},
    "workflow_delete": lambda w: {"pk": w.site.workflow.pk},
    "workflow_simulate": lambda w: {"pk": w.site.workflow.pk},
    "workflow_runs": lambda w: {"pk": w.site.workflow.pk},
    "workflow_run_detail": lambda w: {"pk": w.site.workflow_run.pk},
    "workflow_button": lambda w: {"key": "not-a-key"},
    "signup_edit": lambda w: {"pk": w.site.signup.pk},
    "signup_stats": lambda w: {"pk": w.site.signup.pk},
    "signup_delete": lambda w: {"pk": w.site.signup.pk},
    "signup_page": lambda w: {"key": w.site.signup.key},
    "signup_thanks": lambda w: {"key": w.site.signup.key},
    "signup_frame": lambda w: {"key": w.site.signup.key},
    "signup_frame_thanks": lambda w: {"key": w.site.signup.key},
    "signup_embed_js": lambda w: {"key": w.site.signup.key},
    # API
    "contacts-import-status": lambda w: {"session_id": w.site.import_job.session_id},
    "contact-detail": lambda w: {"contact_id": w.site.contact.pk},
    "group-contacts": lambda w: {"group_id": w.site.segment.pk},
    "group-attach": lambda w: {"group_id": w.static_segment.pk},
    "group-detach": lambda w: {"group_id": w.static_segment.pk},
    "smartsend": lambda w: {"id": w.site.template.pk},
    "suppression-lift": lambda w: {"suppression_id": w.suppression.pk},
    "custom-field-detail": lambda w: {"pk": w.site.field.pk},
    "segment-detail": lambda w: {"pk": w.site.segment.pk},
    "segment-changes": lambda w: {"pk": w.site.segment.pk},
    "segment-reach": lambda w: {"pk": w.site.segment.pk},
    "contact-activity": lambda w: {"contact_id": w.site.contact.pk},
    "contact-export": lambda w: {"contact_id": w.site.contact.pk},
    "template-detail": lambda w: {"pk": w.site.template.pk},
    "template-preview": lambda w: {"pk": w.site.template.pk},
    "template-publish": lambda w: {"pk": w.site.template.pk},
    "template-versions": lambda w: {"pk": w.site.template.pk},
    "template-languages": lambda w: {"pk": w.site.template.pk},
    "template-language": lambda w: {"pk": w.site.template.pk, "code": "uk"},
    "template-design": lambda w: {"pk": w.site.template.pk},
    "workflow-start": lambda w: {"pk": w.site.workflow.pk},
    "workflow-button-link": lambda w: {"pk": w.site.workflow.pk},
    "event-type-detail": lambda w: {"pk": w.site.event_type.pk},
    "event-detail": lambda w: {"pk": w.site.event_type.events.order_by("pk").first().pk},
    "order-detail": lambda w: {"pk": w.site.order.pk},
    "signup-form-detail": lambda w: {"pk": w.site.signup.pk},
    "signup-form-stats": lambda w: {"pk": w.site.signup.pk},
    "integration-telegram-subscribe-link": lambda w: {"pk": w.site.integration.pk},
    "herald-campaign-ab-test": lambda w: {"campaign_id": w.site.campaign.pk},
    "herald-campaign-ab-test-winner": lambda w: {"campaign_id": w.site.campaign.pk},
    "campaign-promo-codes": lambda w: {"campaign_id": w.site.campaign.pk},
    "promo-pool-detail": lambda w: {"pk": w.site.pool.pk},
    "promo-pool-codes-add": lambda w: {"pk": w.site.pool.pk},
    "promo-pool-generate": lambda w: {"pk": w.site.pool.pk},
    **{
        name: (lambda w: {"campaign_id": w.site.campaign.pk})
        for name in (
            "crm-campaign",
            "crm-campaign-schedule",
            "crm-campaign-launch",
            "crm-campaign-pause",
            "crm-campaign-resume",
            "crm-campaign-cancel",
            "crm-campaign-duplicate",
            "crm-campaign-purge",
            "crm-campaign-analytics",
        )
    },
    "crm-social-profile": lambda w: {"platform": "facebook"},
}


@dataclass(frozen=True)
class Route:
    name: str
    api: bool
    view: Any


def resolver_routes() -> list[Route]:
    """Every named route; the admin site as its index only."""

    def walk(patterns, prefix: str):
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^")
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    yield Route("admin:index", False, None)
                else:
                    yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                assert pattern.name, f"the route {route} has no name: name it"
                yield Route(pattern.name, route.startswith("api/"), pattern.callback)

    return list(walk(get_resolver().url_patterns, ""))


def api_view_methods(callback) -> set[str]:
    """The methods a DRF view answers (HEAD and OPTIONS follow GET and need nothing more)."""
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:
        return set()
    served = set(view.http_method_names) - {"head", "options"}
    actions = getattr(callback, "actions", None)
    if actions:
        return {method.upper() for method in actions if method in served}
    return {method.upper() for method in served if hasattr(view, method)}


def test_every_route_is_in_the_table_with_the_methods_it_answers():
    routes = resolver_routes()
    names = [route.name for route in routes]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    missing = sorted(set(names) - set(ROUTES))
    gone = sorted(set(ROUTES) - set(names))
    methods_differ = sorted(
        f"{route.name}: the view answers {sorted(methods)}, "
        f"the table names {sorted(ROUTES[route.name])}"
        for route in routes
        if route.api
        and route.name in ROUTES
        and (methods := api_view_methods(route.view))
        and methods != set(ROUTES[route.name])
    )
    assert not missing, f"routes absent from ROUTES (add them to the table): {missing}"
    assert not gone, f"ROUTES names routes that are gone: {gone}"
    assert not duplicated, f"route names used twice: {duplicated}"
    assert not methods_differ, "\n".join(methods_differ)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module, inside a transaction rolled back at its end: building the
    site costs more than all of one caller's requests."""
    from tests.test_accessibility import build_site

    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield _world_build(build_site())
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def _world_build(site) -> World:
    from campaigns import abtest
    from contacts.models import Suppression
    from contacts.suppression import suppression_add_manual
    from tests.contacts.factories import SegmentFactory

    users = {
        caller.name: UserFactory(role=caller.role and caller.role.value, username=caller.name)
        for caller in CALLERS
        if caller.user
    }
    sessions = {}
    for name, user in users.items():
        client = Client()
        client.force_login(user)
        sessions[name] = {key: morsel.value for key, morsel in client.cookies.items()}
    tokens = {name: str(AccessToken.for_user(user)) for name, user in users.items()}
    expired = AccessToken.for_user(users["marketer"])
    expired.set_exp(
        from_time=timezone.now() - dt.timedelta(hours=2), lifetime=dt.timedelta(hours=1)
    )
    tokens["expired token"] = str(expired)

    secrets = {}
    for caller in CALLERS:
        if caller.right is not None:
            key, secrets[caller.name] = api_key_create(
                name=caller.name, rights=caller.right, created_by=users["admin"]
            )
            if not caller.credentials_valid:
                api_key_revoke(key=key)
    spare_key, _ = api_key_create(name="spare", rights=APIRight.EVENTS, created_by=users["admin"])

    suppression_add_manual(channel="email", address="bounced@example.com")
    variants = {"variants": [{"subject": "A"}, {"subject": "B"}], "testPercent": 50}
    abtest.ab_test_set(
        campaign=site.campaign, config=abtest.ab_test_clean(variants, channel="email")
    )
    return World(
        site=site,
        suppression=Suppression.objects.get(address="bounced@example.com"),
        static_segment=SegmentFactory(name="Matrix list"),
        spare_key=spare_key,
        step_id=site.workflow.draft_graph["steps"][0]["id"],
        secrets=secrets,
        sessions=sessions,
        tokens=tokens,
    )


def _call(client: Client, world: World, caller: Caller, route: Route, method: str, path: str):
    # The session cookie again before each request: logging out replaces it.
    client.cookies = SimpleCookie(world.sessions.get(caller.name, {}))
    headers = {}
    if caller.user:
        if route.api:
            headers["Authorization"] = f"Bearer {world.tokens[caller.name]}"
    elif caller.name in world.tokens:
        headers["Authorization"] = f"Bearer {world.tokens[caller.name]}"
    elif caller.name in world.secrets:
        headers["Authorization"] = APIClient.basic(world.secrets[caller.name])
    body = {}
    if method not in SAFE_METHODS and route.api:
        body = {"data": "{}", "content_type": "application/json"}
    # A savepoint per request: every request meets the same data.
    with transaction.atomic():
        response = getattr(client, method.lower())(path, headers=headers, **body)
        transaction.set_rollback(True)
    return response


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, ids=lambda caller: caller.name)
def test_each_caller_gets_what_the_table_says_on_every_route(world, caller):
    # One client for all the requests: a client builds the middleware on its first request,
    # and WhiteNoise's scan of the static files costs more than most requests.
    client = Client(raise_request_exception=False)
    wrong = []
    for route in resolver_routes():
        kwargs = ARGS[route.name](world) if route.name in ARGS else None
        path = reverse(route.name, kwargs=kwargs)
        for method, need in ROUTES.get(route.name, {}).items():
            expected = expectation(caller, need, method, api=route.api)
            response = _call(client, world, caller, route, method, path)
            if not answer_matches(response, expected):
                where = response.get("Location", "")
                wrong.append(
                    f"{method} {path} ({route.name}): expected {expected}, "
                    f"got {response.status_code} {where}".rstrip()
                )

    assert not wrong, f"{caller.name}:\n" + "\n".join(wrong)
