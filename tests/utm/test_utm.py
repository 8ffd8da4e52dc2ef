"""Automatic UTM tagging: tracked links get the campaign's utm_* parameters (a link's own
values win), the click redirect lands on the tagged URL, campaigns never share cached tags,
the CRM campaigns API's `utm` object and its bad input, and attribution by utm_campaign."""

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from campaigns import pipeline, tracking
from campaigns.delivery import engine
from campaigns.models import Campaign, CampaignRun
from campaigns.utm import UtmTags, campaign_utm, url_tag
from marketing.models import Order
from tests.campaigns.test_pipeline import make_campaign
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink, use_sink
from tests.tracking.conftest import local

pytestmark = pytest.mark.django_db

CAMPAIGNS = "/api/crm/marketing/campaigns"
SPRING = UtmTags(source="herald", medium="email", campaign="spring-sale", content="Spring")
HREF = re.compile(r'href="([^"]*)"')


def tracked_targets(prepared: str) -> list[str]:
    """The URLs the click links of a prepared email redirect to."""
    targets = []
    for href in HREF.findall(prepared):
        href = html.unescape(href)
        if "/t/c/" in href:
            targets.append(parse_qs(urlsplit(href).query)["u"][0])
    return targets


def test_url_tag_adds_missing_parameters_and_keeps_the_links_own():
    assert url_tag("https://shop.example/sale", SPRING) == (
        "https://shop.example/sale?utm_source=herald&utm_medium=email"
        "&utm_campaign=spring-sale&utm_content=Spring"
    )
    tagged = url_tag("https://shop.example/p?id=7&utm_source=partner#reviews", SPRING)
    parts = urlsplit(tagged)
    query = parse_qs(parts.query)
    assert query["utm_source"] == ["partner"] and query["id"] == ["7"]
    assert query["utm_campaign"] == ["spring-sale"] and parts.fragment == "reviews"
    spaced = url_tag("https://shop.example/", UtmTags("herald", "email", "big sale"))
    assert "utm_campaign=big+sale" in spaced and "utm_content" not in spaced


def test_tracked_links_are_tagged_and_mailto_and_unsubscribe_are_untouched(delivery):
    source = (
        '<body><a href="https://shop.example/sale">sale</a>'
        '<a href="https://shop.example/own?utm_campaign=mine">own</a>'
        '<a href="mailto:help@shop.example">mail</a>'
        '<a href="%UNSUBSCRIBE_URL%">unsubscribe</a></body>'
    )
    prepared = tracking.prepare_html(source, delivery, SPRING)
    targets = tracked_targets(prepared)
    assert len(targets) == 2
    assert parse_qs(urlsplit(targets[0]).query)["utm_campaign"] == ["spring-sale"]
    assert parse_qs(urlsplit(targets[1]).query)["utm_campaign"] == ["mine"]
    assert parse_qs(urlsplit(targets[1]).query)["utm_medium"] == ["email"]
    assert 'href="mailto:help@shop.example"' in prepared
    unsubscribe = tracking.unsubscribe_url(delivery.pk)
    assert f'href="{unsubscribe}"' in prepared and "utm_" not in unsubscribe


def test_the_link_cache_never_leaks_one_campaigns_tags_into_anothers(delivery):
    source = '<a href="https://shop.example/sale">sale</a>'
    autumn = UtmTags(source="herald", medium="email", campaign="autumn")
    first = tracked_targets(tracking.prepare_html(source, delivery, SPRING))
    second = tracked_targets(tracking.prepare_html(source, delivery, autumn))
    plain = tracked_targets(tracking.prepare_html(source, delivery))
    assert "utm_campaign=spring-sale" in first[0]
    assert "utm_campaign=autumn" in second[0] and "spring" not in second[0]
    assert plain == ["https://shop.example/sale"]


def test_the_click_redirect_lands_on_the_tagged_url(client, delivery):
    prepared = tracking.prepare_html('<a href="https://shop.example/sale">x</a>', delivery, SPRING)
    click = next(html.unescape(h) for h in HREF.findall(prepared) if "/t/c/" in h)
    response = client.get(local(click))
    assert response.status_code == 302
    assert response["Location"] == url_tag("https://shop.example/sale", SPRING)
    assert delivery.events.get().url == response["Location"]


def test_a_campaign_run_sends_tagged_links_with_the_template_name_as_content(settings):
    with SMTPSink() as sink:
        use_sink(settings, sink)
        ContactFactory(email="ann@example.com", tags=["vip"])
        campaign = make_campaign(
            name="Spring Sale 2026",
            utm_enabled=True,
            utm_source="herald",
            utm_medium="email",
            utm_campaign="spring-sale-2026",
        )
        campaign.template.html = '<p><a href="https://shop.example/">Shop</a></p>'
        campaign.template.save()
        from templates.services import template_publish

        version = template_publish(template=campaign.template)
        run = CampaignRun.objects.create(campaign=campaign, number=1, template_version=version)
        pipeline.run_materialise(run=run)
        for _ in range(5):
            if engine.run_send(run_id=run.pk) is None:
                break
        body = next(p for p in sink.messages[0].walk() if p.get_content_type() == "text/html")
        body = body.get_payload(decode=True).decode()
    target = tracked_targets(body)[0]
    query = parse_qs(urlsplit(target).query)
    assert query["utm_campaign"] == ["spring-sale-2026"]
    assert query["utm_content"] == [campaign.template.name]


def test_tagging_off_means_no_tags():
    campaign = make_campaign()
    assert campaign_utm(campaign) is None


# --- the CRM campaigns API ------------------------------------------------------------------


def test_api_utm_defaults_come_from_the_campaign(api, full_key):
    template = make_campaign().template
    body = {
        "name": "Black Friday!",
        "channels": ["email"],
        "templateId": template.pk,
        "audience": {"type": "dynamic", "filter": {"tags": {"$in": ["vip"]}}},
        "utm": {"enabled": True, "content": "hero banner"},
    }
    response = api.post(CAMPAIGNS, key=full_key, body=body)
    assert response.status_code == 201, response.json()
    assert response.json()["utm"] == {
        "enabled": True,
        "source": "herald",
        "medium": "email",
        "campaign": "black-friday",
        "content": "hero banner",
    }
    campaign_id = response.json()["id"]
    response = api.call(
        "PUT", f"{CAMPAIGNS}/{campaign_id}", key=full_key, body={"utm": {"source": "newsletter"}}
    )
    assert response.status_code == 200, response.json()
    assert response.json()["utm"]["source"] == "newsletter"
    response = api.call("PUT", f"{CAMPAIGNS}/{campaign_id}", key=full_key, body={"utm": None})
    assert response.json()["utm"]["enabled"] is False
    assert Campaign.objects.get(pk=campaign_id).utm_enabled is False


@pytest.mark.parametrize(
    ("utm", "field"),
    [
        ({"source": "news<letter>"}, "utm.source"),
        ({"medium": "x" * 101}, "utm.medium"),
        ({"campaign": "a&utm_source=evil"}, "utm.campaign"),
        ({"content": 12}, "utm.content"),
        ({"enabled": "yes"}, "utm.enabled"),
        ({"term": "shoes"}, "utm.term"),
        ("on", "utm"),
    ],
)
def test_api_bad_utm_value_is_a_400_naming_the_field(api, full_key, utm, field):
    template = make_campaign().template
    body = {
        "name": "Bad tags",
        "channels": ["email"],
        "templateId": template.pk,
        "audience": {"type": "dynamic", "filter": {"tags": {"$in": ["vip"]}}},
        "utm": utm,
    }
    response = api.post(CAMPAIGNS, key=full_key, body=body)
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Campaign.objects.filter(name="Bad tags").exists()


# --- attribution ----------------------------------------------------------------------------


def post_order(api, key, contact, external: str, **extra) -> Order:
    body = {
        "externalOrderId": external,
        "externalCustomerId": f"cust-{contact.pk}",
        "totalCost": 50,
        "status": "DELIVERED",
        "date": "2026-04-10T12:00:00+00:00",
        "email": contact.email,
        "currency": "USD",
        **extra,
    }
    response = api.post("/api/v1/orders", key=key, body={"orders": [body]})
    assert response.status_code == 200, response.content
    return Order.objects.get(external_order_id=external)


def test_an_order_carrying_a_utm_campaign_value_is_credited_to_that_campaign(api, full_key):
    contact = ContactFactory(email="buyer@example.com")
    older = make_campaign(name="Old", utm_enabled=True, utm_campaign="spring-sale")
    tagged = make_campaign(name="Spring", utm_enabled=True, utm_campaign="spring-sale")
    make_campaign(name="Off", utm_enabled=False, utm_campaign="autumn")
    order = post_order(
        api, full_key, contact, "o-1", additionalInfo={"utm_campaign": "Spring-Sale"}
    )
    assert (order.attribution, order.attributed_campaign_id) == ("utm", tagged.pk)
    assert older.pk != tagged.pk
    order = post_order(api, full_key, contact, "o-2", utm_campaign="autumn")
    assert (order.attribution, order.attributed_campaign_id) == ("", None)
    # A numeric id still names the campaign itself.
    order = post_order(api, full_key, contact, "o-3", utmCampaign=str(older.pk))
    assert (order.attribution, order.attributed_campaign_id) == ("utm", older.pk)
