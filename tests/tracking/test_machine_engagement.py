"""Machine opens and clicks (campaigns.engagement) are counted apart from people's, through
the real tracking endpoints."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import tracking
from campaigns.analytics import campaign_analytics, campaign_links, stats_refresh
from campaigns.models import Campaign, CampaignRun, DeliveryEvent
from tests.tracking.conftest import local

pytestmark = pytest.mark.django_db

PERSON = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
HOUR_AGO = timedelta(hours=1)


@pytest.fixture
def sent(make_delivery):
    """A message sent an hour ago: clicks on it are not too soon."""
    return make_delivery(sent_at=timezone.now() - HOUR_AGO)


def open_hit(client, delivery, **headers):
    return client.get(local(tracking.open_url(delivery.pk)), headers=headers)


def click_hit(client, delivery, url="https://shop.example/a", **headers):
    return client.get(local(tracking.click_url(delivery.pk, url)), headers=headers)


def trap_hit(client, delivery, **headers):
    return client.get(local(tracking.trap_url(delivery.pk)), headers=headers)


def counters(delivery):
    delivery.refresh_from_db()
    return {
        "status": delivery.status,
        "opens": delivery.open_count,
        "clicks": delivery.click_count,
        "machine_opens": delivery.machine_open_count,
        "machine_clicks": delivery.machine_click_count,
        "opened": delivery.opened_at is not None,
        "clicked": delivery.clicked_at is not None,
    }


def machine_details(delivery):
    return list(
        DeliveryEvent.objects.filter(delivery=delivery, machine=True)
        .order_by("id")
        .values_list("status", "detail")
    )


# --- opens ------------------------------------------------------------------------------------


def test_an_open_from_apples_network_is_a_machine_open_and_keeps_the_status(client, sent):
    response = open_hit(client, sent, user_agent=PERSON, **{"X-Forwarded-For": "1.2.3.4"})
    assert response.status_code == 200
    client.defaults["REMOTE_ADDR"] = "17.58.100.4"
    open_hit(client, sent, user_agent=PERSON)

    # The first open (a person's) counts; the second came through Apple's proxy.
    assert counters(sent) == {
        "status": "opened",
        "opens": 1,
        "clicks": 0,
        "machine_opens": 1,
        "machine_clicks": 0,
        "opened": True,
        "clicked": False,
    }
    assert machine_details(sent) == [("opened", "machine: apple-mpp")]


def test_a_machine_open_then_a_human_open_counts_the_human_one(client, sent):
    open_hit(client, sent, user_agent="Mozilla/5.0")  # Mail Privacy Protection's bare agent
    after_machine = counters(sent)
    open_hit(client, sent, user_agent=PERSON)

    assert after_machine["status"] == "sent" and not after_machine["opened"]
    assert after_machine["machine_opens"] == 1
    assert counters(sent)["status"] == "opened"
    assert (counters(sent)["opens"], counters(sent)["opened"]) == (1, True)


@pytest.mark.parametrize(
    ("agent", "rule"),
    [
        ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", "yahoo-proxy"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler"),
        ("curl/8.5.0", "http-library"),
    ],
)
def test_known_proxy_and_bot_agents_are_machine_opens(client, sent, agent, rule):
    open_hit(client, sent, user_agent=agent)

    assert counters(sent)["opens"] == 0 and counters(sent)["machine_opens"] == 1
    assert machine_details(sent) == [("opened", f"machine: user-agent:{rule}")]


def test_gmails_image_proxy_fetches_on_the_readers_open_so_it_counts_as_human(client, sent):
    open_hit(client, sent, user_agent="Mozilla/5.0 (Windows NT 5.1; rv:11.0) GoogleImageProxy")

    assert (counters(sent)["opens"], counters(sent)["machine_opens"]) == (1, 0)


def test_a_prefetch_and_a_head_request_are_machine_opens(client, sent):
    open_hit(client, sent, user_agent=PERSON, **{"Sec-Purpose": "prefetch"})
    client.head(local(tracking.open_url(sent.pk)))

    assert counters(sent)["opens"] == 0 and counters(sent)["machine_opens"] == 2
    assert [detail for _, detail in machine_details(sent)] == [
        "machine: prefetch",
        "machine: head",
    ]


# --- clicks -----------------------------------------------------------------------------------


def test_a_scanner_agent_click_still_redirects_but_counts_as_machine(client, sent):
    response = click_hit(client, sent, user_agent="Mozilla/5.0 Barracuda Sentinel")

    assert response.status_code == 302 and response["Location"] == "https://shop.example/a"
    assert counters(sent)["clicks"] == 0 and counters(sent)["machine_clicks"] == 1
    assert counters(sent)["status"] == "sent" and not counters(sent)["clicked"]


def test_a_click_from_microsofts_link_scanning_network_is_a_machine_click(client, sent):
    client.defaults["REMOTE_ADDR"] = "40.107.22.10"
    click_hit(client, sent, user_agent=PERSON)

    assert machine_details(sent) == [("clicked", "machine: scanner-network")]


def test_a_network_listed_in_the_setting_is_a_scanners(client, sent, settings):
    settings.HERALD_MACHINE_NETWORKS = "203.0.113.0/24"
    client.defaults["REMOTE_ADDR"] = "203.0.113.9"
    click_hit(client, sent, user_agent=PERSON)

    assert counters(sent)["machine_clicks"] == 1


def test_a_click_seconds_after_the_send_is_a_machine_click(client, make_delivery, settings):
    settings.HERALD_MACHINE_CLICK_SECONDS = 10
    fresh = make_delivery(sent_at=timezone.now() - timedelta(seconds=3))
    click_hit(client, fresh, user_agent=PERSON)

    assert machine_details(fresh) == [("clicked", "machine: too-soon")]
    assert counters(fresh)["clicks"] == 0


def test_a_human_click_counts_and_moves_the_status(client, sent):
    click_hit(client, sent, user_agent=PERSON)

    assert counters(sent) == {
        "status": "clicked",
        "opens": 0,
        "clicks": 1,
        "machine_opens": 0,
        "machine_clicks": 0,
        "opened": True,
        "clicked": True,
    }


def test_two_links_clicked_within_a_second_are_both_machine_clicks(client, sent):
    click_hit(client, sent, "https://shop.example/a", user_agent=PERSON)
    first = counters(sent)
    click_hit(client, sent, "https://shop.example/b", user_agent=PERSON)

    assert first["status"] == "clicked" and first["clicks"] == 1
    # The second click shows what the first was: the status falls back, nothing human is left.
    assert counters(sent) == {
        "status": "sent",
        "opens": 0,
        "clicks": 0,
        "machine_opens": 0,
        "machine_clicks": 2,
        "opened": False,
        "clicked": False,
    }
    assert [detail for _, detail in machine_details(sent)] == ["machine: burst"] * 2


def test_the_same_link_twice_is_not_a_burst(client, sent):
    click_hit(client, sent, "https://shop.example/a", user_agent=PERSON)
    click_hit(client, sent, "https://shop.example/a", user_agent=PERSON)

    assert (counters(sent)["clicks"], counters(sent)["machine_clicks"]) == (2, 0)


def test_prepared_html_carries_a_hidden_trap_link_first_in_the_body(delivery):
    html = tracking.prepare_html(
        '<html><body class="x"><a href="https://shop.example/a">Shop</a></body></html>', delivery
    )

    trap = re.search(r'<a href="([^"]+/t/h/[^"]+)"([^>]*)></a>', html)
    assert trap is not None
    assert html.index(trap.group(0)) < html.index("Shop")
    assert html.index('<body class="x">') < html.index(trap.group(0))
    assert "display:none" in trap.group(2) and 'aria-hidden="true"' in trap.group(2)
    assert 'tabindex="-1"' in trap.group(2)


def test_a_trap_hit_turns_the_clicks_around_it_into_machine_clicks(client, sent):
    open_hit(client, sent, user_agent=PERSON)
    click_hit(client, sent, "https://shop.example/a", user_agent=PERSON)
    response = trap_hit(client, sent, user_agent=PERSON)
    click_hit(client, sent, "https://shop.example/a", user_agent=PERSON)  # after it

    assert response.status_code == 200
    assert counters(sent) == {
        "status": "opened",  # the human open stays; the clicks were the scanner's
        "opens": 1,
        "clicks": 0,
        "machine_opens": 0,
        "machine_clicks": 3,
        "opened": True,
        "clicked": False,
    }
    assert [detail for _, detail in machine_details(sent)] == [
        "machine: trap",
        "machine: trap-link",
        "machine: trap",
    ]


def test_a_forged_trap_token_is_404(client, sent):
    response = client.get(local(tracking.trap_url(sent.pk)).replace("/t/h/", "/t/h/1") + "x")
    assert response.status_code == 404
    assert counters(sent)["machine_clicks"] == 0


# --- reports ----------------------------------------------------------------------------------


def test_reports_show_human_and_machine_figures_apart(
    client, make_delivery, api, full_key, admin_user
):
    campaign = Campaign.objects.create(name="Spring", channels=["email"])
    run = CampaignRun.objects.create(campaign=campaign, number=1)
    sent_at = timezone.now() - HOUR_AGO
    person = make_delivery(locator="p@example.com", run=run, sent_at=sent_at)
    scanned = make_delivery(locator="s@example.com", run=run, sent_at=sent_at)
    open_hit(client, person, user_agent=PERSON)
    click_hit(client, person, user_agent=PERSON)
    client.defaults["REMOTE_ADDR"] = "17.1.2.3"
    open_hit(client, scanned, user_agent=PERSON)
    click_hit(client, scanned, user_agent="Mimecast Link Scanner")
    trap_hit(client, scanned, user_agent=PERSON)

    stats_refresh(run_ids=[run.pk])
    totals = campaign_analytics(campaign)["totals"]

    assert (totals["opens"], totals["unique_opens"]) == (1, 1)
    assert (totals["clicks"], totals["unique_clicks"]) == (1, 1)
    assert (totals["machine_opens"], totals["machine_clicks"]) == (1, 2)
    assert campaign_links(campaign) == [
        {"url": "https://shop.example/a", "clicks": 1, "unique_clicks": 1}
    ]
    timeline = campaign_analytics(campaign)["timeline"]
    assert sum(row["opens"] for row in timeline) == 1
    assert sum(row["clicks"] for row in timeline) == 1

    body = api.get(f"/api/crm/marketing/campaigns/{campaign.pk}/analytics", key=full_key).json()
    assert (body["opens"], body["uniqueOpens"], body["clicks"]) == (1, 1, 1)
    assert (body["machineOpens"], body["machineClicks"]) == (1, 2)
    assert body["channels"]["email"]["machineClicks"] == 2

    client.force_login(admin_user)
    report = client.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    assert re.search(r'data-testid="machine-engagement">.*?<strong>1 / 2</strong>', report)
