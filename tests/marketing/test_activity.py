"""The contact activity timeline: API (GET /api/herald/contacts/<id>/activity) and page."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import tracking
from campaigns.models import Campaign, CampaignRun, Delivery, DeliveryEvent
from marketing.engagement import engagement_events_emit
from marketing.models import Event, EventType, Order
from marketing.services import event_emit
from marketing.workflows.models import WorkflowRun
from tests.contacts.factories import ContactFactory
from tests.workflows.conftest import chain, make_workflow

pytestmark = pytest.mark.django_db

URL = "/api/herald/contacts/{}/activity"


def ago(**delta):
    return timezone.now() - timedelta(**delta)


@pytest.fixture
def history():
    """One contact with a bit of everything, each at its own time (newest first):
    workflow run 10 min, event 20 min, click 30 min, open 40 min, order 50 min, message 60."""
    ann = ContactFactory(email="ann@example.com", first_name="Ann")
    other = ContactFactory(email="other@example.com")
    campaign = Campaign.objects.create(name="Spring sale", channels=["email"])
    run = CampaignRun.objects.create(campaign=campaign, number=1)
    message = Delivery.objects.create(
        contact=ann,
        run=run,
        channel="email",
        locator=ann.email,
        status="sent",
        sent_at=ago(hours=1),
    )
    Delivery.objects.create(
        contact=other, run=run, channel="email", locator=other.email, status="sent"
    )
    tracking.delivery_open_record(delivery_id=message.pk)
    DeliveryEvent.objects.filter(delivery=message, status="opened").update(at=ago(minutes=40))
    tracking.delivery_click_record(delivery_id=message.pk, url="https://shop.example/sale")
    DeliveryEvent.objects.filter(delivery=message, status="clicked").update(at=ago(minutes=30))
    # A machine's open: counted in reports, not listed.
    tracking.delivery_open_record(
        delivery_id=message.pk, hit=tracking.engagement.Hit(user_agent="YahooMailProxy")
    )
    DeliveryEvent.objects.filter(delivery=message, machine=True).update(at=ago(minutes=35))
    # Engagement events derived from those rows are not listed twice.
    engagement_events_emit(since=ago(days=1), click_holdback=timedelta(0))
    order = Order.objects.create(
        external_order_id="A-1",
        external_customer_id="c1",
        contact=ann,
        status="DELIVERED",
        total_cost=Decimal("42.00"),
        currency="EUR",
        date=ago(minutes=50),
    )
    event = event_emit(type_key="pageViewed", params={"page": "/shoes"}, contact_id=ann.pk)
    Event.objects.filter(pk=event.pk).update(created_at=ago(minutes=20))
    workflow = make_workflow(chain({"kind": "exit"}), event_key="signup")
    wf_run = WorkflowRun.objects.create(
        workflow=workflow, version=workflow.current_version, contact=ann, status="completed"
    )
    WorkflowRun.objects.filter(pk=wf_run.pk).update(started_at=ago(minutes=10))
    return {"ann": ann, "message": message, "order": order, "campaign": campaign, "run": wf_run}


def kinds_of(body) -> list[str]:
    return [item["kind"] for item in body["items"]]


def test_the_timeline_lists_everything_newest_first_without_machine_or_derived_rows(
    api, full_key, history
):
    assert EventType.objects.filter(key="emailOpened").exists()  # derived, not listed
    response = api.get(URL.format(history["ann"].pk), key=full_key)

    assert response.status_code == 200, response.content
    body = response.json()
    assert kinds_of(body) == ["workflow", "event", "click", "open", "order", "message"]
    click = body["items"][2]
    assert click["url"] == "https://shop.example/sale"
    assert click["title"] == "Spring sale" and click["ref"] == history["message"].pk
    message = body["items"][-1]
    assert (message["status"], message["detail"]["channel"]) == ("clicked", "email")
    assert body["items"][1]["title"] == "pageViewed"
    assert body["items"][1]["detail"] == {"page": "/shoes"}
    assert body["items"][4]["detail"] == {"total": 42.0, "currency": "EUR"}
    assert body["next"] is None


def test_kinds_filter_and_before_pages_through_without_gaps(api, full_key, history):
    path = URL.format(history["ann"].pk)
    only = api.get(path, key=full_key, data={"kinds": "order,click"}).json()
    assert kinds_of(only) == ["click", "order"]

    seen, before = [], None
    while True:
        data = {"limit": 2, **({"before": before} if before else {})}
        body = api.get(path, key=full_key, data=data).json()
        seen += kinds_of(body)
        before = body["next"]
        if before is None:
            break
    assert seen == ["workflow", "event", "click", "open", "order", "message"]

    older = api.get(path, key=full_key, data={"before": ago(minutes=45).isoformat()}).json()
    assert kinds_of(older) == ["order", "message"]


def test_items_sharing_one_timestamp_are_paged_once_each(api, full_key):
    ann = ContactFactory()
    at = ago(hours=2)
    for n in range(5):
        event = event_emit(type_key="tick", params={"n": n}, contact_id=ann.pk)
        Event.objects.filter(pk=event.pk).update(created_at=at)
    seen, before = [], None
    for _ in range(10):
        data = {"limit": 2, **({"before": before} if before else {})}
        body = api.get(URL.format(ann.pk), key=full_key, data=data).json()
        seen += [item["detail"]["n"] for item in body["items"]]
        before = body["next"]
        if before is None:
            break
    assert sorted(seen) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"before": "yesterday"}, "before"),
        ({"before": "2026-01-01T00:00:00"}, "before"),  # no offset
        ({"before": "2026-01-01T00:00:00+00:00~nope~1"}, "before"),
        ({"kinds": "open,sms"}, "kinds"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(api, full_key, params, field):
    ann = ContactFactory()
    response = api.get(URL.format(ann.pk), key=full_key, data=params)

    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_an_unknown_contact_is_404_and_a_key_without_contact_rights_is_403(
    api, full_key, limited_key
):
    ann = ContactFactory()
    assert api.get(URL.format(ann.pk + 1000), key=full_key).status_code == 404
    assert api.get(URL.format(ann.pk), key=limited_key).status_code == 403
    assert api.get(URL.format(ann.pk)).status_code in (401, 403)


def test_the_page_is_linked_from_the_contact_and_filters_by_kind(client, viewer, history):
    client.force_login(viewer)
    ann = history["ann"]
    contact_page = client.get(f"/contacts/{ann.pk}/").content.decode()
    assert f'href="/contacts/{ann.pk}/activity/"' in contact_page

    page = client.get(f"/contacts/{ann.pk}/activity/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('data-testid="activity-row"') == 6
    assert "https://shop.example/sale" in html and "Spring sale" in html
    assert f'href="/campaigns/{history["campaign"].pk}/"' in html
    assert f'href="/orders/{history["order"].pk}/"' in html

    clicks = client.get(f"/contacts/{ann.pk}/activity/", {"kind": "click"}).content.decode()
    assert clicks.count('data-testid="activity-row"') == 1


def test_an_outsider_cannot_see_the_timeline(client, outsider, history):
    client.force_login(outsider)
    response = client.get(f"/contacts/{history['ann'].pk}/activity/")
    assert response.status_code in (302, 403)


def test_an_id_past_the_largest_bigint_is_404(api, full_key):
    assert api.get(URL.format(2**63), key=full_key).status_code == 404
