"""The Integrations page, admin and the "Email service" choice: connecting a provider through a
form built from its kind's settings (errors naming the field, nothing half-saved), secrets
sealed and never shown back, a blank secret keeping the stored one, the connection test with
the provider's own words, one default per channel, the webhook URL, the viewer who may look
but not change; campaigns and templates naming their integration (pages and the CRM
campaigns API).

The provider kind used here is registered by this module; its connection test and template
publishing talk HTTP to a local server speaking a small account API (bearer key, JSON errors)
the way a mail service's would."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from campaigns.delivery.providers import (
    ImportedTemplate,
    Provider,
    ProviderError,
    SettingField,
    provider_kinds,
    provider_register,
)
from campaigns.models import Campaign
from config.core.errors import FieldError
from config.core.models import Integration
from integrations.models import TemplateImport, WebhookRequest
from integrations.services import integration_save, integration_test
from tests.campaigns.support import CAMPAIGNS, email_template, segment_with, sms_template

pytestmark = pytest.mark.django_db

LIVE_KEY = "key-live-7f3a9c"
KIND = "test-pages"


class AccountAPI:
    """A mail service's account API on a free loopback port: `GET /v1/account` answers the
    account for the right bearer key and `401 {"error": "invalid API key"}` otherwise;
    `POST /v1/templates` stores a template and answers its id (422 for an empty one)."""

    def __init__(self, key: str = LIVE_KEY) -> None:
        self.key = key
        self.templates: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                api.requests.append((self.command, self.path))
                if self.headers.get("Authorization") != f"Bearer {api.key}":
                    self._answer(401, {"error": "invalid API key"})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                if self.path == "/v1/account":
                    self._answer(200, {"name": "Acme Mail", "plan": "pro"})
                else:
                    self._answer(404, {"error": f"no route {self.path}"})

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/v1/templates":
                    self._answer(404, {"error": f"no route {self.path}"})
                elif not body.get("html"):
                    self._answer(422, {"error": "html must not be empty"})
                else:
                    api.templates.append(body)
                    self._answer(201, {"id": f"tpl-{len(api.templates)}"})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AccountAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@provider_register
class PagesTestProvider(Provider):
    """A mail service reached over its account API (AccountAPI above)."""

    kind = KIND
    label = "Acme Mail (test)"
    channels = frozenset({"email", "sms"})
    has_templates = True
    fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField("base_url", "API base URL", kind="url"),
        SettingField("api_key", "API key", secret=True),
        SettingField(
            "region", "Region", kind="choice", required=False, choices=(("eu", "EU"), ("us", "US"))
        ),
        SettingField("batch_size", "Batch size", kind="int", required=False, default=100),
        SettingField("sandbox", "Sandbox mode", kind="bool", required=False),
        SettingField("reply_to", "Reply-to address", kind="email", required=False),
    )

    @classmethod
    def settings_validate(cls, values: dict[str, Any]) -> None:
        if values.get("sandbox") and values.get("region") == "us":
            raise FieldError("region", "the sandbox exists only in the EU region")

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.setting("base_url").rstrip("/") + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": f"Bearer {self.setting('api_key')}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            message = json.loads(exc.read() or b"{}").get("error", exc.reason)
            raise ProviderError(f"{exc.code} {message}", permanent=exc.code < 500) from None
        except OSError as exc:
            raise ProviderError(f"cannot reach the service: {exc}") from None

    def connection_test(self) -> str:
        account = self._call("GET", "/v1/account")
        return f"account {account['name']} ({account['plan']})"

    def templates_import(self, offset: int, limit: int) -> list[ImportedTemplate]:
        return []

    def template_html_set(self, html: str, name: str, external_id: str = "") -> str:
        return self._call("POST", "/v1/templates", {"html": html, "name": name})["id"]


@pytest.fixture
def account_api(settings):
    # It listens on 127.0.0.1: provider URLs there are saved only with the allow setting.
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True
    with AccountAPI() as api:
        yield api


def form_data(url: str = "https://api.acme.example", **overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Acme bulk",
        "channels": ["email"],
        "setting_base_url": url,
        "setting_api_key": LIVE_KEY,
        "setting_region": "eu",
        "setting_batch_size": "250",
        "rate_limit": "20",
        "enabled": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def connected(name: str = "Acme bulk", channels=("email",), **kwargs: Any) -> Integration:
    values = {"base_url": "https://api.acme.example", "api_key": LIVE_KEY}
    values.update(kwargs.pop("values", {}))
    return integration_save(kind=KIND, name=name, channels=list(channels), values=values, **kwargs)


# --- Connecting through the form ----------------------------------------------------------------


def test_admin_connects_a_provider_and_its_secret_is_sealed_apart(client, admin_user):
    client.force_login(admin_user)

    response = client.post(f"/integrations/new/{KIND}/", form_data())

    integration = Integration.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/integrations/{integration.pk}/"
    assert integration.kind == KIND
    assert integration.channels == ["email"]
    assert integration.rate_limit == 20
    assert integration.enabled is True
    assert integration.settings == {
        "base_url": "https://api.acme.example",
        "region": "eu",
        "batch_size": 250,
        "sandbox": False,
    }
    assert integration.secrets() == {"api_key": LIVE_KEY}
    assert LIVE_KEY not in integration.secrets_sealed


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"setting_base_url": "ftp://files.example"}, "setting_base_url", "http(s) URL"),
        ({"setting_base_url": ""}, "setting_base_url", "is required"),
        ({"setting_api_key": ""}, "setting_api_key", "is required"),
        ({"setting_batch_size": "lots"}, "setting_batch_size", "whole number"),
        ({"setting_reply_to": "not-an-address"}, "setting_reply_to", "email address"),
        ({"setting_region": "mars"}, "setting_region", "valid choice"),
        ({"name": ""}, "name", "is required"),
        ({"channels": []}, "channels", "at least one channel"),
        ({"channels": ["whatsapp"]}, "channels", "valid choice"),
        ({"rate_limit": "-5"}, "rate_limit", "0 (no limit) or more"),
        (
            {"setting_sandbox": "on", "setting_region": "us"},
            "setting_region",
            "only in the EU region",
        ),
    ],
)
def test_a_bad_value_is_a_form_error_naming_the_field_and_nothing_is_saved(
    client, admin_user, overrides, field, fragment
):
    client.force_login(admin_user)

    response = client.post(f"/integrations/new/{KIND}/", form_data(**overrides))

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert fragment in errors[field][0]
    assert f'data-testid="error-{field}"' in response.content.decode()
    assert not Integration.objects.exists()


def test_a_second_integration_with_the_same_name_is_refused_on_the_name(client, admin_user):
    connected()
    client.force_login(admin_user)

    response = client.post(f"/integrations/new/{KIND}/", form_data())

    assert response.status_code == 400
    assert "already exists" in response.context["form"].errors["name"][0]
    assert Integration.objects.count() == 1


def test_every_installed_kind_has_a_connect_form_and_an_empty_one_names_what_is_missing(
    client, admin_user
):
    client.force_login(admin_user)
    for kind, cls in provider_kinds().items():
        page = client.get(f"/integrations/new/{kind}/")
        assert page.status_code == 200, kind
        for spec in cls.fields:
            assert f'name="setting_{spec.name}"' in page.content.decode(), (kind, spec.name)
        refused = client.post(f"/integrations/new/{kind}/", {})
        assert refused.status_code == 400, kind
        assert refused.context["form"].errors, kind
    assert not Integration.objects.exists()


def test_an_unknown_kind_is_404(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/integrations/new/carrier-pigeon/").status_code == 404


def test_the_service_refuses_unknown_settings_a_kind_change_and_an_empty_env_reference():
    integration = connected()
    with pytest.raises(FieldError) as unknown:
        connected("Other", values={"base_url": "https://x.example", "api_kye": "typo"})
    assert unknown.value.field == "api_kye"
    with pytest.raises(FieldError) as kind:
        integration_save(
            integration=integration, kind="smtp", name="Acme bulk", channels=["email"], values={}
        )
    assert kind.value.field == "kind"
    with pytest.raises(FieldError) as env:
        connected("Env", values={"api_key": "env:"})
    assert env.value.field == "api_key"
    assert list(Integration.objects.values_list("name", flat=True)) == ["Acme bulk"]


def test_the_service_reads_typed_values_as_admin_and_api_give_them():
    integration = connected(values={"batch_size": 50, "sandbox": "yes", "region": "eu"})
    assert integration.settings["batch_size"] == 50
    assert integration.settings["sandbox"] is True
    with pytest.raises(FieldError) as wrong:
        connected("Typed", values={"sandbox": "perhaps"})
    assert wrong.value.field == "sandbox"
    with pytest.raises(FieldError) as boolean:
        connected("Typed", values={"batch_size": True})
    assert boolean.value.field == "batch_size"


# --- Secrets ------------------------------------------------------------------------------------


def test_secrets_never_appear_in_the_html_not_even_on_a_refused_form(client, admin_user):
    integration = connected()
    client.force_login(admin_user)

    page = client.get(f"/integrations/{integration.pk}/").content.decode()
    assert LIVE_KEY not in page
    assert 'type="password"' in page
    assert "leave blank to keep it" in page

    other_secret = "key-typed-but-refused-42"
    refused = client.post(
        f"/integrations/{integration.pk}/",
        form_data(setting_base_url="not a url", setting_api_key=other_secret),
    )
    assert refused.status_code == 400
    assert other_secret not in refused.content.decode()
    assert LIVE_KEY not in refused.content.decode()
    integration.refresh_from_db()
    assert integration.secrets() == {"api_key": LIVE_KEY}
    assert integration.settings["base_url"] == "https://api.acme.example"

    listing = client.get("/integrations/").content.decode()
    assert LIVE_KEY not in listing
    admin_page = client.get(f"/admin/core/integration/{integration.pk}/change/").content.decode()
    assert LIVE_KEY not in admin_page


def test_a_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(client, admin_user):
    integration = connected()
    client.force_login(admin_user)

    kept = client.post(
        f"/integrations/{integration.pk}/",
        form_data(name="Acme bulk (EU)", setting_api_key=""),
    )
    assert kept.status_code == 302
    integration.refresh_from_db()
    assert integration.name == "Acme bulk (EU)"
    assert integration.secrets() == {"api_key": LIVE_KEY}

    client.post(
        f"/integrations/{integration.pk}/",
        form_data(name="Acme bulk (EU)", setting_api_key="env:ACME_KEY"),
    )
    integration.refresh_from_db()
    assert integration.secrets_sealed
    assert integration.settings.get("api_key") is None
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACME_KEY", "from-the-environment")
        assert integration.secrets() == {"api_key": "from-the-environment"}


# --- The connection test ------------------------------------------------------------------------


def test_connection_test_shows_the_providers_answer_and_stores_the_check(
    client, admin_user, account_api
):
    integration = connected(values={"base_url": account_api.url})
    client.force_login(admin_user)

    response = client.post(f"/integrations/{integration.pk}/test/", follow=True)

    page = response.content.decode()
    assert "Connection test passed: account Acme Mail (pro)" in page
    integration.refresh_from_db()
    assert integration.last_checked_at is not None
    assert integration.last_error == ""
    assert ("GET", "/v1/account") in account_api.requests


def test_connection_test_with_a_wrong_key_shows_the_providers_error(
    client, admin_user, account_api
):
    integration = connected(values={"base_url": account_api.url, "api_key": "key-revoked"})
    client.force_login(admin_user)

    response = client.post(f"/integrations/{integration.pk}/test/", follow=True)

    page = response.content.decode()
    assert "Connection test failed: 401 invalid API key" in page
    integration.refresh_from_db()
    assert integration.last_error == "401 invalid API key"
    assert 'data-testid="last-error"' in page
    assert "key-revoked" not in page


def test_connection_test_of_an_unreachable_service_says_so_without_the_secret(admin_user, settings):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True  # a local URL, as account_api's
    # A port nothing listens on: bind one, close it, use it.
    with AccountAPI() as api:
        url = api.url
    integration = connected(values={"base_url": url})

    ok, message = integration_test(integration=integration)

    assert not ok
    assert message.startswith("cannot reach the service")
    assert LIVE_KEY not in message


# --- Defaults, list, webhook URL ------------------------------------------------------------------


def test_making_one_the_default_takes_the_flag_from_those_sharing_a_channel(client, admin_user):
    first = connected("Acme one", channels=("email",), is_default=True)
    sms_only = connected("Acme SMS", channels=("sms",), is_default=True)
    client.force_login(admin_user)

    response = client.post(
        f"/integrations/new/{KIND}/",
        form_data(name="Acme two", channels=["email", "sms"], is_default="on"),
    )

    assert response.status_code == 302
    second = Integration.objects.get(name="Acme two")
    first.refresh_from_db()
    sms_only.refresh_from_db()
    assert second.is_default
    assert not first.is_default
    assert not sms_only.is_default
    assert list(Integration.objects.filter(is_default=True)) == [second]


def test_a_default_on_another_channel_keeps_its_flag(admin_user):
    email = connected("Acme email", channels=("email",), is_default=True)
    connected("Acme SMS", channels=("sms",), is_default=True)
    email.refresh_from_db()
    assert email.is_default


def test_the_list_shows_each_integration_and_the_kinds_to_connect(client, admin_user):
    integration = connected(is_default=True)
    Integration.objects.filter(pk=integration.pk).update(last_error="535 authentication failed")
    client.force_login(admin_user)

    page = client.get("/integrations/").content.decode()

    assert f'href="/integrations/{integration.pk}/"' in page
    assert "Acme bulk" in page
    assert "535 authentication failed" in page
    assert f'data-testid="connect-{KIND}"' in page
    assert 'data-testid="email-transport"' in page


def test_the_page_shows_the_webhook_url_with_a_copy_button(client, admin_user, settings):
    settings.HERALD_BASE_URL = "https://herald.example.com"
    integration = connected()
    client.force_login(admin_user)

    page = client.get(f"/integrations/{integration.pk}/").content.decode()

    url = f"https://herald.example.com/webhooks/{integration.webhook_key}/"
    assert f'<code id="webhook-url" data-testid="webhook-url">{url}</code>' in page
    assert 'data-copy="webhook-url"' in page
    assert "integrations/integrations.js" in page


def test_the_page_lists_recent_webhook_requests_with_their_outcome(client, admin_user):
    integration = connected()
    WebhookRequest.objects.create(
        integration=integration,
        method="POST",
        path="/webhooks/x/",
        body=b"[]",
        outcome="applied",
        response_status=200,
        actions=3,
        applied=2,
    )
    WebhookRequest.objects.create(
        integration=integration,
        method="POST",
        path="/webhooks/x/",
        body=b"{",
        outcome="failed",
        response_status=500,
        error="JSONDecodeError: Expecting property name",
    )
    client.force_login(admin_user)

    page = client.get(f"/integrations/{integration.pk}/").content.decode()

    assert page.count('data-testid="webhook-row"') == 2
    assert "Parser failed (kept for replay)" in page
    assert "JSONDecodeError: Expecting property name" in page


def test_template_imports_show_progress_and_polling_stops_when_none_runs(client, admin_user):
    integration = connected()
    failed = TemplateImport.objects.create(
        integration=integration, state="failed", offset=100, created=100, error="503 busy"
    )
    client.force_login(admin_user)

    page = client.get(f"/integrations/{integration.pk}/").content.decode()
    partial = client.get(f"/integrations/{integration.pk}/imports/")

    assert "503 busy" in page
    assert partial.status_code == 286
    assert 'data-testid="import-resume"' in page
    TemplateImport.objects.filter(pk=failed.pk).update(state="running")
    assert client.get(f"/integrations/{integration.pk}/imports/").status_code == 200


def test_import_templates_starts_an_import(client, marketer):
    integration = connected()
    client.force_login(marketer)

    response = client.post(f"/integrations/{integration.pk}/import/", follow=True)

    shown = response.content.decode()
    assert "Template import started." in shown
    assert TemplateImport.objects.get().integration == integration


# --- Roles --------------------------------------------------------------------------------------


def test_a_viewer_may_look_but_not_change(client, viewer):
    integration = connected()
    client.force_login(viewer)

    page = client.get(f"/integrations/{integration.pk}/")
    assert page.status_code == 200
    assert 'data-testid="save"' not in page.content.decode()
    assert 'data-testid="test-connection"' not in page.content.decode()
    assert all(field.disabled for field in page.context["form"].fields.values())

    assert client.post(f"/integrations/{integration.pk}/", form_data(name="X")).status_code == 403
    assert client.post(f"/integrations/{integration.pk}/test/").status_code == 403
    assert client.post(f"/integrations/{integration.pk}/delete/").status_code == 403
    assert client.get(f"/integrations/new/{KIND}/").status_code == 403
    integration.refresh_from_db()
    assert integration.name == "Acme bulk"
    assert integration.last_checked_at is None


def test_an_account_without_a_role_cannot_see_integrations(client, outsider):
    connected()
    client.force_login(outsider)
    assert client.get("/integrations/").status_code == 403


def test_an_admin_removes_an_integration(client, admin_user):
    integration = connected()
    client.force_login(admin_user)
    response = client.post(f"/integrations/{integration.pk}/delete/")
    assert response.status_code == 302
    assert not Integration.objects.exists()


# --- Admin --------------------------------------------------------------------------------------


def test_admin_form_saves_through_the_service_and_refuses_what_it_refuses(client, admin_user):
    client.force_login(admin_user)
    url = "/admin/core/integration/add/"
    data = {
        "kind": KIND,
        "name": "Acme via admin",
        "channels": ["email"],
        "enabled": "on",
        "rate_limit": "0",
        "settings": json.dumps({"base_url": "gopher://old.example"}),
        "new_secrets": json.dumps({"api_key": LIVE_KEY}),
    }

    refused = client.post(url, data)
    assert refused.status_code == 200
    assert "base_url: must be an http(s) URL" in refused.content.decode()
    assert LIVE_KEY not in refused.content.decode()
    assert not Integration.objects.exists()

    data["settings"] = json.dumps({"base_url": "https://api.acme.example"})
    saved = client.post(url, data)
    assert saved.status_code == 302
    integration = Integration.objects.get()
    assert integration.secrets() == {"api_key": LIVE_KEY}
    assert integration.settings == {"base_url": "https://api.acme.example", "sandbox": False}


def test_admin_shows_template_imports_read_only(client, admin_user):
    integration = connected()
    item = TemplateImport.objects.create(integration=integration, state="failed", error="boom")
    client.force_login(admin_user)
    assert client.get("/admin/integrations/templateimport/").status_code == 200
    assert client.get("/admin/integrations/templateimport/add/").status_code == 403
    page = client.get(f"/admin/integrations/templateimport/{item.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


# --- Campaigns name their integration -----------------------------------------------------------


@pytest.fixture
def spring(db):
    segment, _ = segment_with(2)
    return {"segment": segment, "template": email_template()}


def campaign_body(spring, **overrides: Any) -> dict:
    body = {
        "name": "Spring",
        "type": "blast",
        "channels": ["email"],
        "audienceId": spring["segment"].pk,
        "templateId": spring["template"].pk,
    }
    body.update(overrides)
    return body


def test_the_campaigns_api_takes_an_integration_id(api, full_key, spring):
    integration = connected()

    created = api.post(
        CAMPAIGNS, key=full_key, body=campaign_body(spring, integrationId=integration.pk)
    )

    assert created.status_code == 201
    assert created.json()["integrationId"] == integration.pk
    campaign_id = created.json()["id"]
    assert Campaign.objects.get(pk=campaign_id).integration == integration
    cleared = api.put(f"{CAMPAIGNS}/{campaign_id}", key=full_key, body={"integrationId": None})
    assert cleared.status_code == 200
    assert cleared.json()["integrationId"] is None


def test_an_unknown_integration_id_is_400_naming_the_field(api, full_key, spring):
    response = api.post(CAMPAIGNS, key=full_key, body=campaign_body(spring, integrationId=987654))

    assert response.status_code == 400
    assert response.json() == {"integrationId": ["no integration with id 987654"]}
    assert not Campaign.objects.exists()


def test_an_integration_id_that_is_not_a_number_is_400(api, full_key, spring):
    response = api.post(CAMPAIGNS, key=full_key, body=campaign_body(spring, integrationId="smtp"))
    assert response.status_code == 400
    assert response.json() == {"integrationId": ["must be a numeric id, not 'smtp'"]}


def test_an_integration_not_serving_the_campaigns_channel_is_400(api, full_key, spring):
    sms_only = connected("Acme SMS", channels=("sms",))

    response = api.post(
        CAMPAIGNS, key=full_key, body=campaign_body(spring, integrationId=sms_only.pk)
    )

    assert response.status_code == 400
    assert list(response.json()) == ["integrationId"]
    assert "does not connect email; it connects sms" in response.json()["integrationId"][0]


def test_changing_the_channels_away_from_the_integration_is_400(api, full_key, spring):
    email_only = connected()
    created = api.post(
        CAMPAIGNS, key=full_key, body=campaign_body(spring, integrationId=email_only.pk)
    ).json()

    response = api.put(
        f"{CAMPAIGNS}/{created['id']}",
        key=full_key,
        body={"channels": ["sms"], "templateId": sms_template().pk},
    )

    assert response.status_code == 400
    assert "does not connect sms" in response.json()["integrationId"][0]


def test_a_disabled_integration_saves_but_launching_is_refused_and_the_page_says_so(
    api, full_key, spring, client, marketer
):
    integration = connected(enabled=False)
    created = api.post(
        CAMPAIGNS, key=full_key, body=campaign_body(spring, integrationId=integration.pk)
    )
    assert created.status_code == 201

    launch = api.post(f"{CAMPAIGNS}/{created.json()['id']}/launch", key=full_key)
    assert launch.status_code == 409
    assert launch.json()["field"] == "integration"
    assert "is disabled" in launch.json()["detail"]

    client.force_login(marketer)
    page = client.get(f"/campaigns/{created.json()['id']}/").content.decode()
    assert 'data-testid="launch-problem"' in page
    assert "cannot launch: the integration Acme bulk is disabled" in page
    assert "Acme bulk" in page
    assert "(disabled)" in page


def test_the_campaign_form_offers_enabled_integrations_and_saves_the_choice(
    client, marketer, spring
):
    integration = connected()
    connected("Old relay", enabled=False)
    client.force_login(marketer)

    form_page = client.get("/campaigns/new/").content.decode()
    assert "Email service" in form_page
    assert "Acme bulk (email)" in form_page
    assert f'<option value="{integration.pk}" data-channels="email">' in form_page
    assert "Old relay" not in form_page

    response = client.post(
        "/campaigns/new/",
        {
            "name": "Spring",
            "type": "blast",
            "channels": ["email"],
            "segment": spring["segment"].pk,
            "template": spring["template"].pk,
            "integration": integration.pk,
            "timezone": "UTC",
        },
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.integration == integration
    detail = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'data-testid="campaign-integration"' in detail
    assert f'href="/integrations/{integration.pk}/"' in detail


def test_the_campaign_form_names_the_integration_field_when_it_does_not_fit(
    client, marketer, spring
):
    sms_only = connected("Acme SMS", channels=("sms",))
    client.force_login(marketer)

    response = client.post(
        "/campaigns/new/",
        {
            "name": "Spring",
            "type": "blast",
            "channels": ["email"],
            "segment": spring["segment"].pk,
            "template": spring["template"].pk,
            "integration": sms_only.pk,
            "timezone": "UTC",
        },
    )

    assert response.status_code == 400
    assert "does not connect email" in response.context["form"].errors["integration"][0]
    assert not Campaign.objects.exists()


# --- Templates: their integration and publishing to it ------------------------------------------


def test_the_template_page_shows_its_integration_and_external_id(client, viewer):
    integration = connected()
    template = email_template()
    type(template).objects.filter(pk=template.pk).update(
        integration=integration, external_id="tpl-41"
    )
    client.force_login(viewer)

    page = client.get(f"/templates/{template.pk}/").content.decode()

    assert 'data-testid="external-id">tpl-41<' in page
    assert "Acme bulk" in page
    assert 'data-testid="publish-external"' not in page  # a viewer cannot publish


def test_a_marketer_sees_publish_to_the_templates_own_integration(client, marketer):
    integration = connected()
    template = email_template()
    type(template).objects.filter(pk=template.pk).update(integration=integration)
    client.force_login(marketer)

    page = client.get(f"/templates/{template.pk}/").content.decode()

    assert "Publish to Acme bulk" in page
    assert f'name="integration" value="{integration.pk}"' in page
    assert "not published there yet" in page


def test_publish_to_the_provider_stores_its_id_or_shows_its_error(client, marketer, account_api):
    integration = connected(values={"base_url": account_api.url})
    template = email_template()
    client.force_login(marketer)

    page = client.get(f"/templates/{template.pk}/").content.decode()
    assert 'data-testid="publish-external"' in page
    assert "Publish to provider" in page

    response = client.post(
        f"/templates/{template.pk}/publish-external/",
        {"integration": integration.pk},
        follow=True,
    )
    shown = response.content.decode()
    assert "Published to Acme bulk as tpl-1." in shown
    template.refresh_from_db()
    assert template.external_id == "tpl-1"
    assert template.integration == integration
    assert account_api.templates[0]["name"] == template.name

    account_api.key = "key-rotated"
    failed = client.post(f"/templates/{template.pk}/publish-external/", follow=True)
    assert "Not published to Acme bulk: 401 invalid API key" in failed.content.decode()


def test_publishing_a_template_needs_the_marketer_role(client, viewer):
    integration = connected()
    template = email_template()
    client.force_login(viewer)
    response = client.post(
        f"/templates/{template.pk}/publish-external/", {"integration": integration.pk}
    )
    assert response.status_code == 403
