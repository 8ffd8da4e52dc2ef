"""The Viber bot provider against a local server speaking Viber's REST bot API: connecting,
POST /v1/message/viber through the delivery engine and its ledger, campaigns to subscribed
users, Viber's refusals, and the signed webhook that keeps contacts' Viber ids current."""

import json
import time
from collections import Counter

import pytest

from campaigns import pipeline
from campaigns.delivery.engine import send_request_process
from campaigns.delivery.providers import ProviderError, provider_of
from campaigns.models import Delivery, DeliveryStatus
from config.core.models import Integration
from config.core.secrets import secrets_seal
from contacts.models import ChannelType, Contact
from integrations.providers.telegram import subscribe_payload_make
from integrations.webhook_auth import hmac_hex
from templates.services import template_create, template_publish
from tests.campaigns.test_pipeline import make_campaign, make_run, send_all
from tests.contacts.factories import ContactFactory
from tests.support.fake_viber import FakeViber
from tests.support.webhooks import post_applied

pytestmark = pytest.mark.django_db

VIBER_API = "/api/v1/message/viber"


@pytest.fixture
def viber():
    with FakeViber() as fake:
        yield fake


def connect(viber: FakeViber, *, token: str | None = None, **settings) -> Integration:
    return Integration.objects.create(
        kind="viber",
        name="Shop on Viber",
        channels=[ChannelType.VIBER],
        settings={"api_url": viber.url, "sender_name": "Shop", **settings},
        secrets_sealed=secrets_seal({"auth_token": token or viber.token}),
    )


@pytest.fixture
def integration(viber):
    return connect(viber)


def on_viber(user: str, **kwargs) -> Contact:
    return ContactFactory(extra_channels=[{"type": "viber", "value": user}], **kwargs)


def viber_ids(contact: Contact) -> list[str]:
    contact.refresh_from_db()
    return [e["value"] for e in contact.extra_channels if e["type"] == "viber"]


def now_ms() -> int:
    """Viber's callback timestamp: milliseconds, checked against the replay window."""
    return int(time.time() * 1000)


def callback(client, integration: Integration, body: dict, *, token: str | None = None):
    raw = json.dumps(body).encode()
    signature = hmac_hex(token or integration.secrets()["auth_token"], raw)
    return post_applied(
        client,
        f"/webhooks/{integration.webhook_key}/",
        data=raw,
        content_type="application/json",
        headers={"X-Viber-Content-Signature": signature},
    )


# --- connecting ----------------------------------------------------------------------------


def test_connection_test_names_the_account_and_points_the_webhook_at_herald(viber, settings):
    settings.HERALD_BASE_URL = "https://herald.example.com"
    integration = connect(viber)

    said = provider_of(integration).connection_test()

    assert "Herald Shop" in said
    assert [method for method, _, _ in viber.calls] == ["get_account_info", "set_webhook"]
    assert all(headers["x-viber-auth-token"] == viber.token for _, _, headers in viber.calls)
    webhook = viber.calls[1][1]
    assert webhook["url"] == f"https://herald.example.com/webhooks/{integration.webhook_key}/"
    assert "conversation_started" in webhook["event_types"]
    integration.refresh_from_db()
    assert integration.settings["account_uri"] == "heraldshop"
    assert viber.token not in json.dumps(integration.settings)
    [bot] = provider_of(integration).messenger_bots()
    assert bot.link == "viber://pa?chatURI=heraldshop" and bot.messenger_type == "viber"


def test_a_wrong_token_fails_the_connection_test_with_vibers_words(viber):
    integration = connect(viber, token="not-the-token")
    with pytest.raises(ProviderError) as caught:
        provider_of(integration).connection_test()
    assert "invalidAuthToken" in str(caught.value) and caught.value.permanent


def test_the_connect_form_asks_for_the_auth_token_and_the_sender_name():
    from campaigns.delivery.providers import provider_kinds

    fields = {f.name: f for f in provider_kinds()["viber"].fields}
    assert fields["auth_token"].secret and fields["auth_token"].required
    assert fields["sender_name"].required and not fields["sender_name"].secret


# --- POST /v1/message/viber ----------------------------------------------------------------


def test_a_viber_message_reaches_the_users_of_the_numbers_through_the_ledger(
    api, full_key, viber, integration
):
    ann = on_viber("vb-ann==", phone="+380501110001", first_name="Ann")
    ContactFactory(phone="+380501110002")  # a number without Viber
    body = {
        "from": "Shop",
        "text": "Hi $!contact.firstName, your parcel is here",
        "phoneNumbers": ["380501110001", "+380501110002", "12"],
        "tags": ["parcel"],
    }
    contacts_before = Contact.objects.count()

    response = api.post(VIBER_API, key=full_key, body=body)

    assert response.status_code == 200, response.content
    answer = response.json()
    ok, no_viber, bad = answer["results"]
    assert (ok["status"], ok["id"], ok["locator"]) == ("OK", str(ann.pk), "380501110001")
    assert no_viber["status"] == "ERROR" and "Viber channel" in no_viber["message"]
    assert bad["status"] == "ERROR" and bad["requestId"] is None
    assert Contact.objects.count() == contacts_before
    delivery = Delivery.objects.get(request_id=ok["requestId"])
    assert (delivery.channel, delivery.locator, delivery.status) == ("viber", "vb-ann==", "queued")
    assert delivery.send_request.get_kind_display() == "Viber"  # the message log's "Sent as"

    send_request_process(send_request_id=int(answer["id"]))

    assert viber.sent("vb-ann==") == ["Hi Ann, your parcel is here"]
    [(_, sent, _)] = [call for call in viber.calls if call[0] == "send_message"]
    assert sent["sender"] == {"name": "Shop"} and sent["type"] == "text"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.provider == f"viber#{integration.pk}"
    assert delivery.provider_message_id.isdigit()
    status = api.get(f"/api/v1/message/status?ids={ok['requestId']}", key=full_key).json()
    assert status["results"]["status"] == "SENT" and status["results"]["failed"] == "false"


def test_one_number_is_answered_with_the_object_and_a_form_body_is_accepted(
    api, full_key, client, viber, integration
):
    on_viber("vb-1", phone="+380501110011")
    response = client.post(
        VIBER_API + "/",
        data={"text": "Hello", "phoneNumbers": "380501110011"},
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 200, response.content
    result = response.json()["results"]
    assert isinstance(result, dict) and result["status"] == "OK"


def test_without_a_connected_viber_integration_the_message_is_refused_naming_the_channel(
    api, full_key, viber
):
    on_viber("vb-2", phone="+380501110021")
    body = {"text": "Hello", "phoneNumbers": ["380501110021"]}
    response = api.post(VIBER_API, key=full_key, body=body)
    assert response.status_code == 409
    assert "viber is not connected" in response.json()["channel"][0]
    assert not Delivery.objects.exists()
    connect(viber)
    Integration.objects.filter(kind="viber").update(enabled=False)
    assert api.post(VIBER_API, key=full_key, body=body).status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phoneNumbers": ["380501110021"]}, "text"),
        ({"text": "Hi"}, "phoneNumbers"),
        ({"text": "Hi", "phoneNumbers": "380501110021"}, "phoneNumbers"),
        ({"text": "x" * 7001, "phoneNumbers": ["380501110021"]}, "text"),
        ({"text": "Hi", "from": "y" * 29, "phoneNumbers": ["380501110021"]}, "from"),
        ({"text": "#if($x)", "phoneNumbers": ["380501110021"]}, "text"),
    ],
)
def test_bad_viber_requests_are_400_naming_the_field(api, full_key, integration, body, field):
    response = api.post(VIBER_API, key=full_key, body=body)
    assert response.status_code == 400
    assert field in response.json()


def test_the_viber_message_needs_the_messages_right(api, limited_key, integration):
    body = {"text": "Hi", "phoneNumbers": ["380501110021"]}
    assert api.post(VIBER_API, key=limited_key, body=body).status_code == 403


# --- Viber's answers -----------------------------------------------------------------------


def viber_campaign(tag: str = "vb"):
    template = template_create(
        name="Viber sale", channel=ChannelType.VIBER, sms_text="Sale for $!contact.firstName"
    )
    template_publish(template=template)
    return make_campaign(
        channels=[ChannelType.VIBER], template=template, audience_filter={"tags": {"$in": [tag]}}
    )


def test_a_campaign_reaches_the_subscribed_users_and_unsubscribed_ones_leave(viber, integration):
    viber.unsubscribed = {"vb-gone"}
    viber.unknown = {"vb-unknown"}
    kim = on_viber("vb-kim", tags=["vb"], first_name="Kim")
    gone = on_viber("vb-gone", tags=["vb"])
    unknown = on_viber("vb-unknown", tags=["vb"])
    ContactFactory(tags=["vb"])  # no Viber id
    run = make_run(viber_campaign())

    assert pipeline.run_materialise(run=run) == 3
    send_all(run)

    rows = {row.locator: row for row in Delivery.objects.filter(run=run)}
    assert rows["vb-kim"].status == DeliveryStatus.SENT
    assert viber.sent("vb-kim") == ["Sale for Kim"]
    assert rows["vb-gone"].status == DeliveryStatus.FAILED
    assert "notSubscribed" in rows["vb-gone"].error
    assert "receiverNotRegistered" in rows["vb-unknown"].error
    assert viber_ids(kim) == ["vb-kim"]
    assert viber_ids(gone) == viber_ids(unknown) == []


def test_a_suspended_account_fails_the_batch_with_one_call_and_throttling_is_retried(
    viber, integration
):
    from campaigns.delivery.content import SendContent
    from campaigns.delivery.senders import Message
    from templates.services import RenderedMessage

    rows = [
        Delivery.objects.create(channel="viber", locator=f"vb-{n}", contact=on_viber(f"vb-{n}"))
        for n in range(3)
    ]
    sender = provider_of(integration).sender(SendContent(), [])
    viber.suspended = True
    outcomes = sender.send([Message(row, RenderedMessage("", "", "hello")) for row in rows])
    assert Counter(o.status for o in outcomes.values()) == {"permanent": 3}
    assert "publicAccountSuspended" in outcomes[rows[2].pk].detail
    assert len([c for c in viber.calls if c[0] == "send_message"]) == 1

    viber.suspended = False
    viber.throttle = {"vb-0": 1}
    outcomes = sender.send([Message(row, RenderedMessage("", "", "hello")) for row in rows])
    assert all(o.status == "transient" and o.throttled for o in outcomes.values())
    outcomes = sender.send([Message(row, RenderedMessage("", "", "hello")) for row in rows])
    assert all(o.status == "accepted" for o in outcomes.values())
    integration.settings = {"api_url": "http://127.0.0.1:9"}
    down = provider_of(integration).sender(SendContent(), [])
    (outcome,) = down.send([Message(rows[0], RenderedMessage("", "", "hello"))]).values()
    assert outcome.status == "transient" and "unreachable" in outcome.detail
    # Viber down: the batch waits for a retry after one call, not one timeout per row.
    viber.unavailable = True
    calls = len(viber.calls)
    outcomes = sender.send([Message(row, RenderedMessage("", "", "hello")) for row in rows])
    assert Counter(o.status for o in outcomes.values()) == {"transient": 3}
    assert len(viber.calls) == calls + 1


# --- the webhook ---------------------------------------------------------------------------


def test_opening_the_subscribe_link_gives_the_contact_its_viber_id(client, integration):
    contact = ContactFactory()
    payload = subscribe_payload_make(integration, contact.pk)
    body = {
        "event": "conversation_started",
        "timestamp": now_ms(),
        "message_token": 4912661846655238145,
        "type": "open",
        "context": payload,
        "user": {"id": "01234567890A=", "name": "John McClane", "api_version": 1},
        "subscribed": False,
    }
    assert callback(client, integration, body).status_code == 200
    assert viber_ids(contact) == ["01234567890A="]

    forged = {**body, "context": payload[:-2] + "xx", "user": {"id": "other"}}
    assert callback(client, integration, forged).status_code == 200
    assert viber_ids(contact) == ["01234567890A="]

    gone = {"event": "unsubscribed", "timestamp": now_ms(), "user_id": "01234567890A="}
    assert callback(client, integration, gone).status_code == 200
    assert viber_ids(contact) == []


def test_a_callback_without_the_right_signature_is_401_and_changes_nothing(client, integration):
    contact = on_viber("vb-keep")
    body = {"event": "unsubscribed", "user_id": "vb-keep"}
    response = callback(client, integration, body, token="someone-else")
    assert response.status_code == 401
    assert viber_ids(contact) == ["vb-keep"]


def test_a_viber_channel_written_through_the_contacts_api_is_messaged(
    api, full_key, viber, integration
):
    contact = {
        "firstName": "Olena",
        "channels": [
            {"type": "sms", "value": "380501110031"},
            {"type": "viber", "value": "vb-olena=="},
        ],
    }
    created = api.post("/api/v1/contact", key=full_key, body=contact)
    assert created.status_code == 200, created.content
    read = api.get(f"/api/v1/contact/{created.json()['id']}", key=full_key).json()
    assert {"type": "viber", "value": "vb-olena=="} in read["channels"]
    answer = api.post(
        VIBER_API,
        key=full_key,
        body={"text": "Hi $!contact.firstName", "phoneNumbers": ["+380501110031"]},
    ).json()
    send_request_process(send_request_id=int(answer["id"]))
    assert viber.sent("vb-olena==") == ["Hi Olena"]


def test_delivery_reports_move_the_message_through_the_ledger_once(
    api, client, full_key, viber, integration
):
    on_viber("vb-ann==", phone="+380501110041")
    on_viber("vb-bob==", phone="+380501110042")
    answer = api.post(
        VIBER_API,
        key=full_key,
        body={"text": "Your parcel", "phoneNumbers": ["+380501110041", "+380501110042"]},
    ).json()
    send_request_process(send_request_id=int(answer["id"]))
    ann, bob = (Delivery.objects.get(locator=user) for user in ("vb-ann==", "vb-bob=="))
    assert ann.status == bob.status == DeliveryStatus.SENT

    def report(event: str, delivery: Delivery, **extra) -> None:
        body = {
            "event": event,
            "timestamp": now_ms(),
            "message_token": int(delivery.provider_message_id),
            "user_id": delivery.locator,
            **extra,
        }
        assert callback(client, integration, body).status_code == 200

    report("delivered", ann)
    report("delivered", ann)  # Viber repeats a callback: applied once
    ann.refresh_from_db()
    assert ann.status == DeliveryStatus.DELIVERED
    report("seen", ann)
    ann.refresh_from_db()
    assert ann.status == DeliveryStatus.OPENED
    report("failed", bob, desc="receiver is not subscribed")
    bob.refresh_from_db()
    assert bob.status == DeliveryStatus.FAILED
    status = api.get(f"/api/v1/message/status?ids={bob.request_id}", key=full_key).json()
    assert status["results"]["failed"] == "true"
    assert "receiver is not subscribed" in status["results"]["message"]
