"""The generic HTTP provider against a local JSON gateway: email and SMS sent one request per
message through the delivery engine, the service's answers classified, its webhook mapped
onto the ledger (signature, replay window, malformed bodies), and its settings checked."""

import hashlib
import hmac
import json
import time

import pytest

from campaigns import pipeline
from campaigns.delivery import engine
from campaigns.delivery.providers import ProviderError, provider_of
from campaigns.models import CampaignRun, Delivery, DeliveryEvent
from config.core.errors import FieldError
from config.core.models import Integration, Organisation
from config.core.secrets import secrets_seal
from contacts.models import Suppression
from integrations.models import WebhookRequest
from integrations.providers.http_generic import GenericHttpProvider
from tests.campaigns.test_pipeline import make_campaign, make_run, make_template, vip
from tests.contacts.factories import ContactFactory
from tests.support.fake_http_gateway import FakeGateway

pytestmark = pytest.mark.django_db

TOKEN = "gw-token"
SECRET = "whsec-123"
EMAIL_BODY = json.dumps(
    {
        "recipient": "{{to}}",
        "sender": "{{from}}",
        "content": {"subject": "{{subject}}", "html": "{{html}}", "text": "{{text}}"},
        "ref": "herald-{{request_id}}",
        "headers": {"Message-ID": "{{message_id}}"},
    }
)


@pytest.fixture
def gateway():
    with FakeGateway(token=TOKEN) as server:
        yield server


def connect(gateway, channels=("email",), name="", **settings) -> Integration:
    values = {
        "send_url": gateway.url("/v1/messages"),
        "method": "POST",
        "auth_header_name": "Authorization",
        "body_template": EMAIL_BODY,
        "response_id_pointer": "/data/messageId",
        "success_codes": "200-299",
        "webhook_events_pointer": "/events",
        "webhook_message_id_pointer": "/msg",
        "webhook_status_pointer": "/state",
        "webhook_event_id_pointer": "/uid",
        "webhook_email_pointer": "/rcpt",
        "webhook_detail_pointer": "/reason",
        "webhook_timestamp_pointer": "/ts",
        "webhook_status_map": json.dumps(
            {"dlvrd": "delivered", "hard_bounce": "bounced", "spam": "complained"}
        ),
        "webhook_auth": "hmac",
        "webhook_auth_header": "X-Gw-Signature",
        "webhook_signature_encoding": "hex",
        "webhook_signature_prefix": "sha256=",
        "webhook_timestamp_header": "X-Gw-Timestamp",
        "auth_header_value": f"Bearer {TOKEN}",
        "webhook_secret": SECRET,
        **settings,
    }
    cleaned = GenericHttpProvider.settings_validate(values)
    secret_names = {f.name for f in GenericHttpProvider.fields if f.secret}
    return Integration.objects.create(
        kind="http",
        name=name or f"Gateway {'+'.join(channels)}",
        channels=list(channels),
        is_default=True,
        settings={k: v for k, v in cleaned.items() if k not in secret_names},
        secrets_sealed=secrets_seal({k: v for k, v in cleaned.items() if k in secret_names}),
    )


def send_all(run: CampaignRun) -> None:
    for _ in range(10):
        if engine.run_send(run_id=run.pk) is None:
            return


# --- sending --------------------------------------------------------------------------------


def test_a_campaign_goes_out_one_request_per_message_with_the_template_filled_in(gateway):
    integration = connect(gateway)
    people = vip(3)
    tricky = ContactFactory(tags=["vip"], first_name='Bob "}, {"x', email="bob@example.com")
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)

    send_all(run)

    assert len(gateway.received) == 4
    by_recipient = {body["recipient"]: body for body in gateway.received}
    assert set(by_recipient) == {p.email for p in people} | {tricky.email}
    body = by_recipient["bob@example.com"]
    # A value that looks like JSON stays a string inside the body.
    assert body["content"]["subject"] == 'Sale for Bob "}, {"x'
    assert 'Bob "}, {"x' in body["content"]["html"]
    assert body["sender"] == "Shop <news@shop.example>"
    delivery = Delivery.objects.get(run=run, locator="bob@example.com")
    assert body["ref"] == f"herald-{delivery.request_id.hex}"
    assert body["headers"]["Message-ID"] == delivery.message_id
    rows = Delivery.objects.filter(run=run)
    assert {row.status for row in rows} == {"sent"}
    assert {row.provider for row in rows} == {f"http#{integration.pk}"}
    assert sorted(row.provider_message_id for row in rows) == ["gw-1", "gw-2", "gw-3", "gw-4"]


def test_refusals_are_classified_429_and_5xx_retried_other_4xx_failed_with_the_body(gateway):
    connect(gateway)
    ContactFactory(tags=["vip"], email="slow@example.com")
    ContactFactory(tags=["vip"], email="bad@example.com")
    ContactFactory(tags=["vip"], email="ok@example.com")
    gateway.answers["slow@example.com"] = (429, {"error": "rate limit exceeded"})
    gateway.answers["bad@example.com"] = (422, {"error": "recipient domain blocked"})
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)

    engine.run_send(run_id=run.pk)

    slow = Delivery.objects.get(run=run, locator="slow@example.com")
    bad = Delivery.objects.get(run=run, locator="bad@example.com")
    assert slow.status == "queued"
    assert slow.next_attempt_at is not None
    assert "429" in slow.error and "rate limit exceeded" in slow.error
    assert bad.status == "failed"
    assert "422" in bad.error and "recipient domain blocked" in bad.error
    assert Delivery.objects.get(run=run, locator="ok@example.com").status == "sent"


def test_a_gateway_that_is_down_loses_nothing_and_the_retry_sends_each_message_once(gateway):
    connect(gateway)
    people = vip(5)
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)
    gateway.down = True

    engine.run_send(run_id=run.pk)

    rows = Delivery.objects.filter(run=run)
    assert {row.status for row in rows} == {"queued"}
    assert all("503" in row.error and row.next_attempt_at for row in rows)
    gateway.down = False
    Delivery.objects.filter(run=run).update(next_attempt_at=None)  # the back-off has passed
    send_all(run)
    assert sorted(body["recipient"] for body in gateway.received) == sorted(p.email for p in people)
    assert {row.status for row in Delivery.objects.filter(run=run)} == {"sent"}


def test_connections_are_kept_alive_and_one_closed_by_the_server_is_reopened_once(gateway):
    connect(gateway)
    vip(6)
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)
    gateway.drop_connections = True

    send_all(run)

    # Each message reached the gateway once: a request on a connection the server had closed
    # is sent again on a new one, and only then.
    assert gateway.count == 6
    assert len(gateway.requests) == 6
    assert {row.status for row in Delivery.objects.filter(run=run)} == {"sent"}


def test_an_unreachable_gateway_is_a_transient_failure(gateway):
    integration = connect(gateway)
    integration.settings["send_url"] = "http://127.0.0.1:9/v1/messages"  # discard port: closed
    integration.save()
    vip(1)
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)

    engine.run_send(run_id=run.pk)

    row = Delivery.objects.get(run=run)
    assert row.status == "queued"
    assert "unreachable" in row.error


def test_sms_go_through_the_gateway_with_their_text(gateway):
    sms_body = json.dumps({"to": "{{to}}", "text": "{{sms_text}}", "from": "{{from}}"})
    integration = connect(gateway, channels=("sms",), body_template=sms_body)
    person = ContactFactory(tags=["vip"], phone="+380501112233", first_name="Olena")
    template = make_template("Text", "sms")
    run = make_run(make_campaign(channels=["sms"], template=template))
    pipeline.run_materialise(run=run)

    send_all(run)

    # The SMS sender id: the organisation's name, cut to the 11 characters SMS allow.
    sender = Organisation.load().name[:11]
    assert gateway.received == [{"to": person.phone, "text": "Sale, Olena", "from": sender}]
    row = Delivery.objects.get(run=run)
    assert (row.status, row.provider, row.provider_message_id) == (
        "sent",
        f"http#{integration.pk}",
        "gw-1",
    )


def test_the_connection_test_reports_the_services_own_message(gateway):
    good = connect(gateway, test_url=gateway.url("/v1/health"))
    assert "200" in provider_of(good).connection_test()
    bad = connect(
        gateway, name="Wrong key", test_url=gateway.url("/v1/health"), auth_header_value="Bearer x"
    )
    with pytest.raises(ProviderError) as refused:
        provider_of(bad).connection_test()
    assert "401" in refused.value.message
    assert "invalid token" in refused.value.message
    assert refused.value.permanent


# --- webhook --------------------------------------------------------------------------------


def signed(body: bytes, secret: str = SECRET, stamp: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if stamp is None else stamp))
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {"HTTP_X_GW_TIMESTAMP": timestamp, "HTTP_X_GW_SIGNATURE": "sha256=" + digest.hexdigest()}


def post(client, integration, payload, headers=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(
        f"/webhooks/{integration.webhook_key}/",
        data=body,
        content_type="application/json",
        **(signed(body) if headers is None else headers),
    )


@pytest.fixture
def sent(gateway):
    integration = connect(gateway)
    vip(2)
    ContactFactory(tags=["vip"], email="gone@example.com")
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)
    send_all(run)
    ids = dict(Delivery.objects.filter(run=run).values_list("locator", "provider_message_id"))
    return integration, run, ids


def test_webhook_events_are_mapped_onto_the_ledger_and_a_hard_bounce_suppresses(client, sent):
    integration, run, ids = sent
    others = [locator for locator in ids if locator != "gone@example.com"]
    events = {
        "events": [
            {"msg": ids[others[0]], "state": "dlvrd", "uid": "e1", "ts": 1765000000},
            {"msg": ids[others[1]], "state": "processed", "uid": "e2"},  # not mapped: ignored
            {
                "msg": ids["gone@example.com"],
                "state": "hard_bounce",
                "uid": "e3",
                "reason": "550 5.1.1 user unknown",
                "rcpt": "gone@example.com",
            },
        ]
    }
    response = post(client, integration, events)
    assert response.status_code == 200
    assert Delivery.objects.get(run=run, locator=others[0]).status == "delivered"
    assert Delivery.objects.get(run=run, locator=others[1]).status == "sent"
    gone = Delivery.objects.get(run=run, locator="gone@example.com")
    assert gone.status == "bounced"
    assert "user unknown" in gone.error
    assert Suppression.objects.get(address="gone@example.com").reason == "hard_bounce"
    stored = WebhookRequest.objects.get()
    assert (stored.outcome, stored.actions) == ("applied", 2)
    # The same events again (a new request, new signature) change nothing.
    time.sleep(1)
    assert post(client, integration, events).status_code == 200
    assert DeliveryEvent.objects.filter(delivery=gone, status="bounced").count() == 1


def test_a_wrong_signature_is_refused_with_401_and_nothing_applied(client, sent):
    integration, run, ids = sent
    locator, message_id = next(iter(ids.items()))
    body = json.dumps({"events": [{"msg": message_id, "state": "dlvrd", "uid": "x"}]}).encode()
    response = post(client, integration, body, headers=signed(body, secret="wrong"))
    assert response.status_code == 401
    assert Delivery.objects.get(run=run, locator=locator).status == "sent"
    assert WebhookRequest.objects.get().outcome == "refused"


def test_an_old_timestamp_or_a_replayed_signature_is_refused(client, sent):
    integration, run, ids = sent
    locator, message_id = next(iter(ids.items()))
    body = json.dumps({"events": [{"msg": message_id, "state": "dlvrd", "uid": "y"}]}).encode()
    old = post(client, integration, body, headers=signed(body, stamp=time.time() - 600))
    assert old.status_code == 401
    headers = signed(body)
    assert post(client, integration, body, headers=headers).status_code == 200
    assert post(client, integration, body, headers=headers).status_code == 401
    assert Delivery.objects.get(run=run, locator=locator).status == "delivered"


def test_a_malformed_body_is_stored_answered_400_and_nothing_applied(client, sent):
    integration, run, _ids = sent
    assert post(client, integration, b"{not json").status_code == 400
    no_id = {"events": [{"state": "dlvrd", "uid": "z"}]}
    response = post(client, integration, no_id)
    assert response.status_code == 400
    assert "names no message" in response.json()["detail"]
    wrong_place = {"items": []}
    assert post(client, integration, wrong_place).status_code == 400
    assert WebhookRequest.objects.filter(outcome="failed").count() == 3
    assert {row.status for row in Delivery.objects.filter(run=run)} == {"sent"}


def test_a_shared_secret_header_authenticates_when_chosen(client, gateway):
    integration = connect(
        gateway,
        webhook_auth="header",
        webhook_auth_header="X-Hook-Key",
        webhook_timestamp_header="",
    )
    body = {"events": []}
    assert post(client, integration, body, headers={"HTTP_X_HOOK_KEY": SECRET}).status_code == 200
    assert post(client, integration, body, headers={"HTTP_X_HOOK_KEY": "no"}).status_code == 401
    assert post(client, integration, body, headers={}).status_code == 401


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"body_template": '{"to": "{{to}}"'}, "body_template", "Not valid JSON"),
        ({"body_template": '{"to": "{{recipient}}"}'}, "body_template", "Unknown placeholder"),
        ({"response_id_pointer": "data.id"}, "response_id_pointer", "not a JSON pointer"),
        ({"webhook_status_pointer": "status"}, "webhook_status_pointer", "not a JSON pointer"),
        ({"webhook_status_map": '{"dlvrd": "arrived"}'}, "webhook_status_map", "arrived"),
        ({"webhook_status_map": "[1]"}, "webhook_status_map", "JSON object"),
        ({"headers": '{"X-A": 1}'}, "headers", "must be a string"),
        ({"send_url": "ftp://x"}, "send_url", "http"),
        ({"success_codes": "2xx"}, "success_codes", "not a status code"),
        ({"method": "GET"}, "method", "POST or PUT"),
        ({"webhook_secret": ""}, "webhook_secret", "Required"),
    ],
)
def test_settings_are_checked_on_save_naming_the_field(gateway, change, field, words):
    values = {
        "send_url": gateway.url("/v1/messages"),
        "body_template": EMAIL_BODY,
        "webhook_auth": "hmac",
        "webhook_auth_header": "X-Sig",
        "webhook_secret": "s",
        **change,
    }
    with pytest.raises(FieldError) as error:
        GenericHttpProvider.settings_validate(values)
    assert error.value.field == field
    assert words in error.value.message
