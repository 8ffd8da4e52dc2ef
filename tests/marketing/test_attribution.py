"""Revenue attribution: orders credited to the last clicked campaign/workflow message within the
window, or to the campaign their UTM data names; conversions/revenue in campaign analytics and
on the workflow pages. Orders arrive through POST /api/v1/orders as a shop sends them."""

import datetime as dt
from decimal import Decimal

import pytest

from campaigns.analytics import stats_refresh
from campaigns.models import Delivery, RunStats, RunStatus
from campaigns.tasks import stats_refresh_task
from marketing.attribution import conversions_refresh
from marketing.models import Event, EventType, Order
from marketing.views.workflows import workflow_stats
from marketing.workflows.triggers import workflows_start_for_event
from tests.campaigns.test_analytics import make_campaign, make_delivery, make_run
from tests.contacts.factories import ContactFactory
from tests.workflows.conftest import chain, make_workflow, published

pytestmark = pytest.mark.django_db

ORDER_AT = dt.datetime(2026, 4, 10, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def post_order(api, key, contact, external: str, *, total=100, status="DELIVERED", **extra):
    body = {
        "externalOrderId": external,
        "externalCustomerId": f"cust-{contact.pk}",
        "totalCost": total,
        "status": status,
        "date": ORDER_AT.isoformat(),
        "email": contact.email,
        "currency": "USD",
        **extra,
    }
    response = api.post("/api/v1/orders", key=key, body={"orders": [body]})
    assert response.status_code == 200, response.content
    assert response.json()["failedOrders"] == []
    return Order.objects.get(external_order_id=external)


def clicked(run, n: int, at: dt.datetime, *, channel: str = "email", contact=None) -> Delivery:
    if contact is None:
        delivery = make_delivery(run, n, channel=channel, status="clicked", clicked_at=at)
    else:
        delivery = Delivery.objects.create(
            run=run,
            contact=contact,
            channel=channel,
            locator=contact.email,
            status="clicked",
            clicked_at=at,
        )
    return delivery


@pytest.fixture
def welcome(db):
    return published("Welcome")


@pytest.fixture
def campaign_run():
    campaign = make_campaign("April sale")
    return make_run(campaign, 1, status=RunStatus.COMPLETED)


def test_click_within_the_window_credits_the_delivery_and_its_campaign(api, full_key, campaign_run):
    delivery = clicked(campaign_run, 1, ORDER_AT - 6 * DAY)
    order = post_order(api, full_key, delivery.contact, "o-1")
    assert order.attribution == "click"
    assert order.attributed_delivery_id == delivery.pk
    assert order.attributed_campaign_id == campaign_run.campaign_id


def test_click_outside_the_window_or_after_the_order_does_not_credit(api, full_key, campaign_run):
    delivery = clicked(campaign_run, 1, ORDER_AT - 8 * DAY)
    order = post_order(api, full_key, delivery.contact, "o-old")
    assert (order.attribution, order.attributed_delivery_id) == ("", None)
    Delivery.objects.filter(pk=delivery.pk).update(clicked_at=ORDER_AT + dt.timedelta(hours=1))
    order = post_order(api, full_key, delivery.contact, "o-old")
    assert (order.attribution, order.attributed_campaign_id) == ("", None)


def test_window_is_configurable(api, full_key, campaign_run, settings):
    settings.HERALD_ATTRIBUTION_WINDOW_DAYS = 10
    delivery = clicked(campaign_run, 1, ORDER_AT - 8 * DAY)
    order = post_order(api, full_key, delivery.contact, "o-1")
    assert order.attributed_delivery_id == delivery.pk


def test_latest_click_wins(api, full_key, campaign_run):
    early = clicked(campaign_run, 1, ORDER_AT - 3 * DAY)
    other_campaign_run = make_run(make_campaign("Newsletter"), 1)
    late = clicked(other_campaign_run, 1, ORDER_AT - DAY, contact=early.contact)
    order = post_order(api, full_key, early.contact, "o-1")
    assert order.attributed_delivery_id == late.pk
    assert order.attributed_campaign_id == other_campaign_run.campaign_id


def test_utm_campaign_wins_over_a_click(api, full_key, campaign_run):
    delivery = clicked(campaign_run, 1, ORDER_AT - DAY)
    named = make_campaign("Instagram promo")
    order = post_order(
        api, full_key, delivery.contact, "o-1", additionalInfo={"utm_campaign": str(named.pk)}
    )
    assert (order.attribution, order.attributed_campaign_id) == ("utm", named.pk)
    assert order.attributed_delivery_id is None
    # camelCase at the top level works too; an id naming no campaign falls back to the click.
    order = post_order(api, full_key, delivery.contact, "o-2", utmCampaign=named.pk)
    assert (order.attribution, order.attributed_campaign_id) == ("utm", named.pk)
    order = post_order(
        api, full_key, delivery.contact, "o-3", additionalInfo={"utmCampaign": "987654"}
    )
    assert (order.attribution, order.attributed_delivery_id) == ("click", delivery.pk)
    order = post_order(api, full_key, delivery.contact, "o-4", additionalInfo=["not", "a dict"])
    assert order.attribution == "click"


def test_only_delivered_orders_count_and_refresh_is_idempotent(api, full_key, campaign_run):
    first = clicked(campaign_run, 1, ORDER_AT - DAY)
    second = clicked(campaign_run, 2, ORDER_AT - DAY)
    sms = clicked(campaign_run, 3, ORDER_AT - DAY, channel="sms")
    post_order(api, full_key, first.contact, "o-1", total="120.50")
    post_order(api, full_key, second.contact, "o-2", total=80)
    post_order(api, full_key, second.contact, "o-3", total=999, status="CANCELLED")
    post_order(api, full_key, sms.contact, "o-4", total=30, status="IN_PROGRESS")
    post_order(api, full_key, sms.contact, "o-5", total=5)
    stats_refresh(run_ids=[campaign_run.pk])
    assert conversions_refresh(run_ids=[campaign_run.pk]) == 2
    rows = {s.channel: (s.conversions, s.revenue) for s in RunStats.objects.all()}
    assert rows == {"email": (2, Decimal("200.50")), "sms": (1, Decimal("5.00"))}
    assert conversions_refresh() == 0  # nothing changed: no row rewritten
    assert conversions_refresh(run_ids=[campaign_run.pk]) == 0
    # The ledger rollup leaves the columns alone; a cancelled order leaves the totals.
    stats_refresh(run_ids=[campaign_run.pk])
    post_order(api, full_key, first.contact, "o-1", total="120.50", status="CANCELLED")
    conversions_refresh()
    rows = {s.channel: (s.conversions, s.revenue) for s in RunStats.objects.all()}
    assert rows == {"email": (1, Decimal("80.00")), "sms": (1, Decimal("5.00"))}


def test_utm_order_credits_the_latest_runs_email_row(api, full_key, campaign_run):
    campaign = campaign_run.campaign
    make_delivery(campaign_run, 1, status="sent")
    latest = make_run(campaign, 2, status=RunStatus.COMPLETED)
    make_delivery(latest, 1, channel="sms", status="sent")
    make_delivery(latest, 2, status="sent")
    stats_refresh(run_ids=[campaign_run.pk, latest.pk])
    contact = Delivery.objects.filter(run=latest).first().contact
    post_order(api, full_key, contact, "o-1", total=40, utm_campaign=str(campaign.pk))
    conversions_refresh()
    credited = RunStats.objects.filter(conversions__gt=0).values_list("run_id", "channel")
    assert list(credited) == [(latest.pk, "email")]


def test_campaign_analytics_api_shows_conversions_and_revenue_after_the_beat_task(
    api, full_key, campaign_run
):
    delivery = clicked(campaign_run, 1, ORDER_AT - DAY)
    post_order(api, full_key, delivery.contact, "o-1", total="59.90")
    stats_refresh_task(run_ids=[campaign_run.pk])
    response = api.get(
        f"/api/crm/marketing/campaigns/{campaign_run.campaign_id}/analytics", key=full_key
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["conversions"], body["revenue"]) == (1, 59.9)
    assert body["channels"]["email"]["conversions"] == 1


def test_workflow_pages_count_delivered_orders_credited_to_its_messages(
    api, full_key, client, viewer, welcome, django_capture_on_commit_callbacks
):
    workflow = make_workflow(chain({"kind": "send", "template_id": welcome.pk, "channel": "email"}))
    contact = ContactFactory()
    event = Event.objects.create(event_type=EventType.objects.get(key="signup"), contact=contact)
    with django_capture_on_commit_callbacks(execute=True):
        workflows_start_for_event(event=event)
    delivery = Delivery.objects.get(workflow_messages__run__workflow=workflow)
    Delivery.objects.filter(pk=delivery.pk).update(clicked_at=ORDER_AT - DAY)
    order = post_order(api, full_key, contact, "o-1")
    assert (order.attribution, order.attributed_delivery_id) == ("click", delivery.pk)
    assert order.attributed_campaign_id is None
    post_order(api, full_key, contact, "o-2", status="INITIALIZED")
    assert workflow_stats([workflow.pk])[workflow.pk]["conversions"] == 1
    client.force_login(viewer)
    page = client.get("/automation/").content.decode().replace("\n", "").replace(" ", "")
    # exited 0, failed 0, sent 1, conversions 1 (the INITIALIZED order does not count)
    assert "<td>0</td><td>0</td><td>1</td><td>1</td></tr>" in page
    detail = client.get(workflow.get_absolute_url())
    assert detail.status_code == 200
    assert "<small>Conversions</small><h3>1</h3>" in detail.content.decode()
