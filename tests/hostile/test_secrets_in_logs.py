"""Secrets never logged: flows that carry a secret (an API key in basic auth, a JWT and the
password that got it, a log-in, webhooks authenticated by basic auth, a shared secret and a
signature, a provider's API token, an SMTP password in EMAIL_URL) run with every logger at
DEBUG (django.request, celery, urllib3 and Herald's own included), and no log record, stored
webhook request or stored error holds any of the secret values."""

import contextlib
import json
import logging
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from campaigns.delivery.engine import send_request_process
from campaigns.delivery.providers import ProviderError, provider_of
from campaigns.models import Delivery
from config.core.models import Integration
from config.core.secrets import secrets_seal
from config.mail import email_settings_from_url
from integrations.models import WebhookRequest
from integrations.webhook_auth import CREDENTIAL_MASK
from integrations.webhooks import webhook_replay
from templates.services import template_create
from tests.factories import UserFactory
from tests.integrations.test_esp_webhooks import make_integration
from tests.support.esp_webhook_payloads import BASIC, basic_header, sendgrid_event
from tests.support.fake_contract_service import webhook_headers
from tests.support.fake_telegram import FakeTelegram
from tests.support.smtp import SMTPSink

pytestmark = pytest.mark.django_db
PASSWORD = "Corr3ct-h0rse-Battery-staple"
SMTP_PASSWORD = "smtp-Pa55-9f3kq"
HOOK_SECRET = "contract-hook-secret-71x"
TELEGRAM_TOKEN = "987654:TELEGRAM-token-Zk2"
TELEGRAM_HOOK_SECRET = "tg-secret-token-Q1w2"


class Records(logging.Handler):
    """Every record of every logger, as text: message, arguments and traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.name, str(record.msg), repr(record.args)]
        # The message as formatted; msg and args above cover a record that cannot format.
        with contextlib.suppress(TypeError, ValueError):
            parts.append(record.getMessage())
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        parts.extend(repr(value) for key, value in vars(record).items() if key == "request")
        self.texts.append(" ".join(parts))

    def holding(self, secret: str) -> list[str]:
        return [text for text in self.texts if secret in text]


@pytest.fixture
def records():
    """Every logger at DEBUG, each handing its records to one collector as well."""
    handler = Records()
    names = ["", "django", "django.request", "django.server", "celery", "urllib3", "kombu"]
    names += list(logging.root.manager.loggerDict)
    saved = {}
    for name in set(names):
        logger = logging.getLogger(name)
        saved[name] = (logger.level, logger.disabled)
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        logger.addHandler(handler)
    yield handler
    for name, (level, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled


def assert_unlogged(records: Records, secrets: dict[str, str]) -> None:
    print(f"\n{len(records.texts)} log records searched for {len(secrets)} secrets")
    for what, secret in secrets.items():
        assert records.holding(secret) == [], f"{what} was logged"


def test_api_keys_jwt_tokens_and_passwords_are_never_logged(client, api, full_key, records):
    user = UserFactory(role="admin", username="kim")
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    assert api.get("/api/v1/contacts", key=full_key).status_code == 200
    assert api.get("/api/v1/contacts", key=full_key.secret + "x").status_code == 401
    tokens = client.post(
        "/api/auth/token/",
        {"username": "kim", "password": PASSWORD},
        content_type="application/json",
    )
    assert tokens.status_code == 200, tokens.content
    access, refresh = tokens.json()["access"], tokens.json()["refresh"]
    bearer = {"Authorization": f"Bearer {access}"}
    assert client.get("/api/v1/contacts", headers=bearer).status_code == 200
    assert (
        client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {access}x"}).status_code
        == 401
    )
    assert (
        client.post(
            "/api/auth/token/refresh/", {"refresh": refresh}, content_type="application/json"
        ).status_code
        == 200
    )
    wrong = {"username": "kim", "password": PASSWORD + "!"}
    assert (
        client.post("/api/auth/token/", wrong, content_type="application/json").status_code == 401
    )
    assert (
        client.post("/login/", {"username": "kim", "password": PASSWORD + "!"}).status_code == 200
    )
    assert client.post("/login/", {"username": "kim", "password": PASSWORD}).status_code == 302
    assert_unlogged(
        records,
        {
            "the API key": full_key.secret,
            "the password": PASSWORD,
            "the JWT access token": access,
            "the JWT refresh token": refresh,
        },
    )


def test_webhook_credentials_are_masked_where_stored_and_never_logged(client, records):
    sendgrid = make_integration("sendgrid")
    contract = Integration.objects.create(
        kind="external",
        name="Contract ESP",
        channels=["email"],
        settings={"base_url": "https://contract.example"},
        secrets_sealed=secrets_seal({"api_key": "k", "webhook_secret": HOOK_SECRET}),
    )
    events = json.dumps([sendgrid_event("delivered", "ann@example.com", "id-1")])
    for credentials in (BASIC, "herald-hooks:wrong-password"):
        client.post(
            f"/webhooks/{sendgrid.webhook_key}/",
            data=events,
            content_type="application/json",
            **basic_header(credentials),
        )
    body = json.dumps({"actions": []}).encode()
    signed = {
        f"HTTP_{k.upper().replace('-', '_')}": v
        for k, v in webhook_headers(HOOK_SECRET, body).items()
    }
    answer = client.post(
        f"/webhooks/{contract.webhook_key}/", data=body, content_type="application/json", **signed
    )
    assert answer.status_code == 200, answer.content
    stored = [(row.headers, row.query) for row in WebhookRequest.objects.order_by("id")]
    authorization = [headers["authorization"] for headers, _query in stored[:2]]
    assert authorization == [CREDENTIAL_MASK, CREDENTIAL_MASK]
    everything_stored = json.dumps(stored)
    for secret in (BASIC, "wrong-password", HOOK_SECRET, basic_header()["HTTP_AUTHORIZATION"]):
        assert secret not in everything_stored
    # A replay from admin applies what was authenticated when it came, without the credential;
    # what was refused stays refused.
    accepted, refused = WebhookRequest.objects.order_by("id")[:2]
    assert (accepted.outcome, refused.outcome) == ("queued", "refused")
    assert (webhook_replay(accepted), webhook_replay(refused)) == (200, 401)
    # The signature is no secret (it is checked again on a replay) and is kept.
    assert stored[2][0]["x-signature"] == signed["HTTP_X_SIGNATURE"]
    assert_unlogged(
        records,
        {
            "the basic-auth password": BASIC.split(":")[1],
            "a wrong basic-auth password": "wrong-password",
            "the contract service's webhook secret": HOOK_SECRET,
        },
    )


def test_a_telegram_shared_secret_header_is_masked_where_stored(client, records):
    integration = Integration.objects.create(
        kind="telegram",
        name="Bot",
        channels=["telegram"],
        settings={"api_url": "https://telegram.example"},
        secrets_sealed=secrets_seal(
            {"bot_token": TELEGRAM_TOKEN, "webhook_secret": TELEGRAM_HOOK_SECRET}
        ),
    )
    update = {
        "update_id": 7,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": 5, "type": "private"},
            "text": "hi",
        },
    }
    answer = client.post(
        f"/webhooks/{integration.webhook_key}/",
        data=json.dumps(update),
        content_type="application/json",
        HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=TELEGRAM_HOOK_SECRET,
    )
    assert answer.status_code == 200, answer.content
    row = WebhookRequest.objects.get()
    assert row.headers["x-telegram-bot-api-secret-token"] == CREDENTIAL_MASK
    assert_unlogged(records, {"the Telegram webhook secret": TELEGRAM_HOOK_SECRET})


def test_a_providers_api_token_is_never_logged_or_stored_in_an_error(records, settings):
    settings.HERALD_BASE_URL = "https://herald.example.com"  # Telegram calls back over https
    with FakeTelegram(token=TELEGRAM_TOKEN) as bot:
        integration = Integration.objects.create(
            kind="telegram",
            name="Bot",
            channels=["telegram"],
            settings={"api_url": bot.url},
            secrets_sealed=secrets_seal({"bot_token": TELEGRAM_TOKEN}),
        )
        assert "herald_shop_bot" in provider_of(integration).connection_test()
        integration.secrets_sealed = secrets_seal({"bot_token": TELEGRAM_TOKEN + "x"})
        with pytest.raises(ProviderError) as refused:
            provider_of(integration).connection_test()
        assert TELEGRAM_TOKEN not in str(refused.value)
    assert_unlogged(records, {"the bot token": TELEGRAM_TOKEN})


def test_an_smtp_password_in_email_url_is_never_logged_or_stored(
    settings, client, marketer, records
):
    with pytest.raises(ImproperlyConfigured) as no_host:
        email_settings_from_url(f"smtp://herald:{SMTP_PASSWORD}@/")
    assert SMTP_PASSWORD not in str(no_host.value)
    with SMTPSink() as sink:
        # The sink offers no AUTH: the log-in fails, as a wrong password would.
        for name, value in email_settings_from_url(
            f"smtp://herald:{SMTP_PASSWORD}@127.0.0.1:{sink.port}"
        ).items():
            setattr(settings, name, value)
        assert settings.EMAIL_HOST_PASSWORD == SMTP_PASSWORD
        template = template_create(
            name="T", subject="Hi", html="<p>Hi</p>", from_email="s@shop.example"
        )
        client.force_login(marketer)
        client.post(f"/templates/{template.pk}/test-send/", {"email": "me@example.com"})
        delivery = Delivery.objects.get()
        send_request_process(send_request_id=delivery.send_request_id)
        delivery.refresh_from_db()
    print(f"\nSMTP delivery: {delivery.status} {delivery.error[:120]}")
    assert SMTP_PASSWORD not in delivery.error
    assert_unlogged(records, {"the SMTP password": SMTP_PASSWORD})
