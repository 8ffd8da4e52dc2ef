"""A campaign's test send is the real message: sent through the same rendering, MIME and
delivery path as a run's row to the same address, and compared with one here in a real SMTP
server. Documented differences: the "[Test] " subject, the X-Herald-Test header, a sample
promo code instead of a pool's, and its own Message-ID and tracking tokens (a test send is
not a run's delivery, so its opens and clicks are not the campaign's)."""

import re

import pytest
from django.urls import reverse

from campaigns import lifecycle
from campaigns.delivery.engine import run_send, send_request_process
from campaigns.messages import MessageError, campaign_test_send
from campaigns.models import CampaignRun, Delivery, SendKind
from campaigns.promo.services import promo_codes_add, promo_pool_create
from templates.languages import template_language_create
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink, use_sink

pytestmark = pytest.mark.django_db

HTML = (
    "<html><head><style>.cta { color: #b00020; }</style></head><body>"
    "<p>Hello $!contact.firstName,</p>"
    '<p class="cta">Your code: $promo.SPRING</p>'
    '<p><a href="https://shop.example/sale">Shop the sale</a></p></body></html>'
)
# Per-delivery parts: tracking and unsubscribe tokens, Message-IDs, MIME boundaries, dates.
TOKEN = re.compile(r"/(t/[och]|u)/[0-9A-Za-z]{1,13}\.[0-9A-Za-z]{1,32}")
MAILTO = re.compile(r"unsubscribe\+[0-9A-Za-z]{1,13}\.[0-9A-Za-z]{1,32}@")
MESSAGE_ID = re.compile(r"^<[0-9a-f]{32}@shop\.example>$")


@pytest.fixture
def sink(settings):
    with SMTPSink() as server:
        use_sink(settings, server)
        yield server


@pytest.fixture
def campaign(db):
    pool = promo_pool_create(name="Spring", key="SPRING")
    promo_codes_add(pool=pool, lines=[(1, "SPRING-7Q2K")])
    template = template_create(
        name="Spring newsletter",
        subject="Spring sale, $!contact.firstName",
        preheader="Twenty per cent off everything",
        from_name="Shop",
        from_email="news@shop.example",
        html=HTML,
    )
    template_language_create(
        template=template,
        language_code="uk",
        subject="Весняний розпродаж, $!contact.firstName",
        preheader="Знижка двадцять відсотків на все",
        html=HTML.replace("Hello", "Вітаємо"),
    )
    template_publish(template=template)
    ContactFactory(email="olena@example.com", first_name="Olena", language_code="uk", tags=["vip"])
    return lifecycle.campaign_create(
        data={
            "name": "Spring sale",
            "type": "blast",
            "channels": ["email"],
            "audience": {"type": "dynamic", "filter": {"tags": {"$in": ["vip"]}}},
            "templateId": template.pk,
            "utm": {"enabled": True, "campaign": "spring"},
        }
    )


def normalised(raw: bytes, code: str) -> str:
    text = raw.decode()
    text = TOKEN.sub(r"/\1/TOKEN", text)
    text = MAILTO.sub("unsubscribe+TOKEN@", text)
    return text.replace(code, "CODE")


def parts(message) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_content()
        for part in message.walk()
        if part.get_content_maintype() == "text"
    }


def test_a_test_send_matches_the_real_message_apart_from_the_documented_marks(sink, campaign):
    run = lifecycle.campaign_launch_now(campaign=campaign)
    run_send(run_id=run.pk)
    delivery = campaign_test_send(campaign=campaign, email="Olena@Example.com")
    send_request_process(send_request_id=delivery.send_request_id)

    real, test = (received.message for received in sink.received)
    assert real["To"] == test["To"] == "olena@example.com"
    # The documented differences.
    # strip(): campaigns.mime folds a long encoded subject before its first word (the
    # decoded value then starts with a space), in real and test sends alike.
    assert str(real["Subject"]).strip() == "Весняний розпродаж, Olena"
    assert str(test["Subject"]).strip() == "[Test] Весняний розпродаж, Olena"
    assert test["X-Herald-Test"] == "1" and real["X-Herald-Test"] is None
    assert MESSAGE_ID.match(real["Message-ID"]) and MESSAGE_ID.match(test["Message-ID"])
    assert real["Message-ID"] != test["Message-ID"]
    # The same headers otherwise, with the same shape of per-message values.
    skip = {"subject", "x-herald-test", "message-id", "date", "content-type"}
    names = {name.lower() for name in real} - skip
    assert names == {name.lower() for name in test} - skip
    assert {"from", "to", "list-unsubscribe", "list-unsubscribe-post"} <= names
    for name in names:
        assert normalised(str(real[name]).encode(), "") == normalised(
            str(test[name]).encode(), ""
        ), name
    # The same bodies: language version, preheader, inlined CSS, UTM tags, tracking; the
    # promo code is the pool's in the real message and a marked sample in the test.
    real_parts, test_parts = parts(real), parts(test)
    assert real_parts.keys() == test_parts.keys() == {"text/plain", "text/html"}
    html = real_parts["text/html"]
    assert "Знижка двадцять відсотків на все" in html  # the preheader
    assert 'style="color:#b00020"' in html.replace(" ", "").replace(";", "")  # inlined CSS
    assert "SPRING-7Q2K" in html and "TEST-SPRING" in test_parts["text/html"]
    assert "utm_campaign%3Dspring" in html or "utm_campaign=spring" in html
    for kind in real_parts:
        assert normalised(real_parts[kind].encode(), "SPRING-7Q2K") == normalised(
            test_parts[kind].encode(), "TEST-SPRING"
        ), kind
    # The test spent no code and is not one of the campaign's runs.
    assert Delivery.objects.get(pk=delivery.pk).run_id is None
    assert Delivery.objects.get(pk=delivery.pk).send_request.kind == SendKind.TEST
    assert CampaignRun.objects.get().reach == 1


def test_the_campaign_page_sends_a_test_and_says_so(client, marketer, campaign, sink):
    client.force_login(marketer)
    response = client.post(
        reverse("campaign_test_send", args=[campaign.pk]), {"email": "me@example.com"}, follow=True
    )
    assert "Test message to me@example.com queued" in response.content.decode()
    delivery = Delivery.objects.get(locator="me@example.com")
    send_request_process(send_request_id=delivery.send_request_id)
    [mail] = sink.messages
    assert str(mail["Subject"]).startswith("[Test] Spring sale")


def test_a_bad_address_is_refused_and_nothing_is_queued(client, marketer, campaign):
    client.force_login(marketer)
    response = client.post(
        reverse("campaign_test_send", args=[campaign.pk]), {"email": "nope"}, follow=True
    )
    assert "Test not sent" in response.content.decode()
    assert not Delivery.objects.exists()


def test_a_viewer_cannot_send_tests(client, viewer, campaign):
    client.force_login(viewer)
    response = client.post(reverse("campaign_test_send", args=[campaign.pk]), {"email": "a@b.c"})
    assert response.status_code == 403


def test_a_campaign_without_a_template_cannot_be_test_sent(campaign):
    campaign.template = None
    campaign.save(update_fields=["template"])
    with pytest.raises(MessageError):
        campaign_test_send(campaign=campaign, email="a@example.com")
