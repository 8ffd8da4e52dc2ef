"""A/B tests and resends to non-openers: the campaign body's `abTest` / `resend` (good and bad
input), Herald's ab-test resources, deterministic and crash-safe assignment, winners by each
metric, and the follow-up run to non-openers."""

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import abtest, lifecycle, pipeline, resend
from campaigns.delivery.content import SendContent, delivery_render
from campaigns.models import (
    ABTest,
    Campaign,
    CampaignRun,
    Delivery,
    DeliveryStatus,
    RunKind,
    RunStatus,
)
from marketing.models import Order, OrderStatus
from tests.campaigns.support import CAMPAIGNS, email_template, segment_with
from tests.campaigns.test_pipeline import make_campaign, make_template, vip

pytestmark = pytest.mark.django_db

AB = {
    "variants": [{"subject": "Spring A"}, {"subject": "Spring B", "fromName": "Team B"}],
    "testPercent": 20,
    "winnerMetric": "opens",
    "waitHours": 4,
    "winnerSelection": "auto",
}


def ab_url(campaign_id: int) -> str:
    return f"/api/herald/campaigns/{campaign_id}/ab-test"


@pytest.fixture
def spring(db):
    segment, contacts = segment_with(3)
    return {"segment": segment, "contacts": contacts, "template": email_template()}


def body(spring, **overrides) -> dict:
    data = {
        "name": "Spring 2026 Launch",
        "type": "blast",
        "channels": ["email"],
        "audienceId": spring["segment"].pk,
        "templateId": spring["template"].pk,
    }
    data.update(overrides)
    return data


def ab_campaign(*, percent: int = 20, metric: str = "opens", selection: str = "auto", **kw):
    campaign = make_campaign(status="draft", **kw)
    config = abtest.ab_test_clean(
        {**AB, "testPercent": percent, "winnerMetric": metric, "winnerSelection": selection},
        channel="email",
    )
    abtest.ab_test_set(campaign=campaign, config=config)
    return campaign


def rows(run, **filters) -> list[Delivery]:
    return list(Delivery.objects.filter(run=run, **filters).order_by("contact_id"))


# --- the campaign body ------------------------------------------------------------------------


def test_campaign_body_with_ab_test_and_resend_is_saved_and_answered(api, full_key, spring):
    other = email_template("Autumn")
    ab = {**AB, "variants": [*AB["variants"], {"templateId": other.pk, "preheader": "Pre C"}]}
    response = api.post(
        CAMPAIGNS,
        key=full_key,
        body=body(spring, abTest=ab, resend={"afterHours": 48, "subject": "Did you miss it?"}),
    )

    assert response.status_code == 201, response.json()
    answer = response.json()
    assert answer["abTest"]["testPercent"] == 20
    assert [v["variant"] for v in answer["abTest"]["variants"]] == ["A", "B", "C"]
    assert answer["abTest"]["variants"][2]["templateId"] == other.pk
    assert answer["resend"] == {"afterHours": 48.0, "subject": "Did you miss it?"}
    test = ABTest.objects.get(campaign_id=answer["id"])
    assert test.wait == dt.timedelta(hours=4)
    assert list(test.variants.values_list("from_name", flat=True)) == ["", "Team B", ""]


def test_ab_test_can_be_removed_by_an_update_with_null(api, full_key, spring):
    created = api.post(CAMPAIGNS, key=full_key, body=body(spring, abTest=AB)).json()

    response = api.put(f"{CAMPAIGNS}/{created['id']}", key=full_key, body={"abTest": None})

    assert response.status_code == 200
    assert response.json()["abTest"] is None
    assert not ABTest.objects.filter(campaign_id=created["id"]).exists()


@pytest.mark.parametrize(
    ("ab", "field", "words"),
    [
        ({**AB, "variants": [{"subject": "Only one"}]}, "abTest.variants", "2 to 5 variants"),
        ({**AB, "variants": [{"subject": str(n)} for n in range(6)]}, "abTest.variants", "not 6"),
        ({**AB, "testPercent": 0}, "abTest.testPercent", "between 1 and 50"),
        ({**AB, "testPercent": 51}, "abTest.testPercent", "between 1 and 50"),
        ({**AB, "winnerMetric": "likes"}, "abTest.winnerMetric", "unknown metric"),
        ({**AB, "waitHours": -1}, "abTest.waitHours", "between 0"),
        ({**AB, "winnerSelection": "coin"}, "abTest.winnerSelection", "auto or manual"),
        (
            {**AB, "variants": [{"templateId": 999999}, {}]},
            "abTest.variants.0.templateId",
            "no template",
        ),
        ("yes", "abTest", "must be"),
    ],
)
def test_bad_ab_test_is_400_naming_the_field(api, full_key, spring, ab, field, words):
    response = api.post(CAMPAIGNS, key=full_key, body=body(spring, abTest=ab))

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert words in response.json()[field][0]
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({"afterHours": 48, "subject": "  "}, "resend.subject", "is required"),
        ({"afterHours": 48}, "resend.subject", "is required"),
        ({"afterHours": 0, "subject": "Again"}, "resend.afterHours", "between 1"),
        ({"afterHours": "soon", "subject": "Again"}, "resend.afterHours", "number of hours"),
    ],
)
def test_bad_resend_is_400_naming_the_field(api, full_key, spring, value, field, words):
    response = api.post(CAMPAIGNS, key=full_key, body=body(spring, resend=value))

    assert response.status_code == 400
    assert words in response.json()[field][0]
    assert not Campaign.objects.exists()


def test_ab_test_on_a_drip_campaign_is_400(api, full_key, spring):
    drip = body(
        spring,
        type="drip",
        steps=[{"templateId": spring["template"].pk, "delay": "PT0S"}],
        abTest=AB,
    )

    response = api.post(CAMPAIGNS, key=full_key, body=drip)

    assert response.status_code == 400
    assert "only blast campaigns" in response.json()["abTest"][0]


def test_a_started_ab_test_cannot_change_but_may_be_sent_back_unchanged(api, full_key, spring):
    created = api.post(CAMPAIGNS, key=full_key, body=body(spring, abTest=AB)).json()
    api.post(f"{CAMPAIGNS}/{created['id']}/launch", key=full_key)
    api.post(f"{CAMPAIGNS}/{created['id']}/pause", key=full_key)

    same = api.put(f"{CAMPAIGNS}/{created['id']}", key=full_key, body={"abTest": AB})
    changed = api.put(
        f"{CAMPAIGNS}/{created['id']}", key=full_key, body={"abTest": {**AB, "testPercent": 30}}
    )

    assert same.status_code == 200
    assert changed.status_code == 409
    assert changed.json()["field"] == "abTest"


# --- assignment ---------------------------------------------------------------------------------


def test_launch_materialises_only_the_test_share_split_evenly_between_variants():
    vip(200)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=20))

    assert run.reach == 40
    assert Counter(d.ab_variant for d in rows(run)) == {0: 20, 1: 20}
    test = ABTest.objects.get(run=run)
    assert test.decide_at == pytest.approx(
        timezone.now() + dt.timedelta(hours=4), abs=dt.timedelta(minutes=1)
    )


def test_assignment_is_deterministic_per_run_and_contact():
    vip(120)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=30))
    first = {d.contact_id: d.ab_variant for d in rows(run)}

    # Materialise the same run again from nothing: the same contacts get the same variants.
    Delivery.objects.filter(run=run).delete()
    test = ABTest.objects.get(run=run)
    test.run = None
    test.save()
    abtest.run_materialise(run=run)

    assert {d.contact_id: d.ab_variant for d in rows(run)} == first
    assert len(first) == 36


def test_materialising_the_test_share_twice_inserts_nothing_new():
    vip(50)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=50))
    before = Delivery.objects.filter(run=run).count()
    test = ABTest.objects.get(run=run)
    ABTest.objects.filter(pk=test.pk).update(run=None)

    abtest.run_materialise(run=run)

    assert Delivery.objects.filter(run=run).count() == before == 25


def test_the_run_waits_for_the_winner_after_its_test_share_is_sent():
    vip(40)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=50))
    Delivery.objects.filter(run=run).update(status=DeliveryStatus.SENT, sent_at=timezone.now())

    pipeline.runs_recover()

    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert run.campaign.status == "running"


def test_each_variant_renders_its_own_subject_and_sender_name():
    vip(20)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=50))
    run = CampaignRun.objects.select_related("campaign", "template_version").get(pk=run.pk)
    content = SendContent.of_run(run)
    by_variant = {d.ab_variant: d for d in rows(run)}

    a = delivery_render(content, by_variant[0], [])
    b = delivery_render(content, by_variant[1], [])

    assert (a.subject, a.from_name) == ("Spring A", "")
    assert (b.subject, b.from_name) == ("Spring B", "Team B")


# --- the winner ---------------------------------------------------------------------------------


def _engage(run, variant: int, *, opens: int = 0, clicks: int = 0) -> list[Delivery]:
    chosen = rows(run, ab_variant=variant)
    now = timezone.now()
    for delivery in chosen[:opens]:
        delivery.opened_at = now
    for delivery in chosen[:clicks]:
        delivery.clicked_at = now
        delivery.opened_at = now
    Delivery.objects.bulk_update(chosen, ["opened_at", "clicked_at"])
    return chosen


def _due(run) -> None:
    ABTest.objects.filter(run=run).update(decide_at=timezone.now() - dt.timedelta(seconds=1))


def test_winner_by_opens_goes_to_the_rest_of_the_audience_once():
    vip(100)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=20, metric="opens"))
    _engage(run, 1, opens=6)
    _engage(run, 0, opens=2)
    _due(run)

    first = abtest.ab_tests_due()
    again = abtest.ab_tests_due()

    test = ABTest.objects.get(run=run)
    assert (first["chosen"], again["chosen"]) == (1, 0)
    assert test.winner == 1
    assert "unique opens" in test.decided_how
    assert Delivery.objects.filter(run=run).count() == 100
    assert Delivery.objects.filter(run=run, ab_variant__isnull=True).count() == 80
    run.refresh_from_db()
    assert run.reach == 100


def test_winner_by_clicks_ignores_opens():
    vip(100)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=20, metric="clicks"))
    _engage(run, 1, opens=9)
    _engage(run, 0, clicks=3)
    _due(run)

    abtest.ab_tests_due()

    assert ABTest.objects.get(run=run).winner == 0


def test_winner_by_revenue_counts_delivered_orders_credited_to_each_variant():
    vip(100)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=20, metric="revenue"))
    (a_row,) = _engage(run, 0, clicks=1)[:1]
    b_rows = _engage(run, 1, clicks=2)[:2]
    for delivery, total, status in (
        (a_row, "300.00", OrderStatus.DELIVERED),
        (b_rows[0], "100.00", OrderStatus.DELIVERED),
        (b_rows[1], "900.00", OrderStatus.CANCELLED),
    ):
        Order.objects.create(
            external_order_id=f"o-{delivery.pk}",
            external_customer_id=f"c-{delivery.contact_id}",
            currency="EUR",
            contact_id=delivery.contact_id,
            status=status,
            date=timezone.now(),
            total_cost=Decimal(total),
            attributed_delivery=delivery,
            attribution="click",
        )
    _due(run)

    abtest.ab_tests_due()

    test = ABTest.objects.get(run=run)
    assert test.winner == 0
    revenue = {v.position: v.revenue for v in test.variants.all()}
    assert revenue == {0: Decimal("300.00"), 1: Decimal("100.00")}


def test_choosing_the_winner_twice_materialises_the_rest_once():
    vip(60)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=50))
    test = ABTest.objects.get(run=run)

    abtest.ab_winner_choose(test=test)
    abtest.ab_winner_choose(test=test)

    assert Delivery.objects.filter(run=run).count() == 60
    keys = Delivery.objects.filter(run=run).values_list("contact_id", flat=True)
    assert len(set(keys)) == 60


def test_manual_test_waits_for_the_marketer_pick_through_the_api(api, full_key):
    vip(40)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=50, selection="manual"))
    _due(run)
    abtest.ab_tests_due()
    waiting = api.get(ab_url(run.campaign_id), key=full_key).json()

    picked = api.post(f"{ab_url(run.campaign_id)}/winner", key=full_key, body={"variant": "b"})

    assert waiting["state"] == "awaiting pick"
    assert waiting["winner"] is None
    assert picked.status_code == 200, picked.json()
    assert picked.json()["winner"] == "B"
    assert picked.json()["state"] == "decided"
    assert Delivery.objects.filter(run=run).count() == 40


@pytest.mark.parametrize(
    ("pick", "field"),
    [({"variant": "Z"}, "variant"), ({}, "variant"), ({"variant": "AB"}, "variant")],
)
def test_bad_winner_pick_is_400_naming_the_variant(api, full_key, pick, field):
    vip(10)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=50, selection="manual"))

    response = api.post(f"{ab_url(run.campaign_id)}/winner", key=full_key, body=pick)

    assert response.status_code == 400
    assert field in response.json()
    assert ABTest.objects.get(run=run).winner is None


def test_picking_another_winner_after_the_decision_is_409(api, full_key):
    vip(10)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=50))
    abtest.ab_winner_choose(test=ABTest.objects.get(run=run), position=0)

    response = api.post(f"{ab_url(run.campaign_id)}/winner", key=full_key, body={"variant": "B"})

    assert response.status_code == 409


def test_ab_test_resource_shows_figures_rates_and_confidence(api, full_key, limited_key):
    vip(400)
    run = lifecycle.campaign_launch_now(campaign=ab_campaign(percent=50))
    _engage(run, 0, opens=20)
    _engage(run, 1, opens=60)
    abtest.ab_tests_due()

    response = api.get(ab_url(run.campaign_id), key=full_key)
    refused = api.get(ab_url(run.campaign_id), key=limited_key)

    assert response.status_code == 200
    a, b = response.json()["variants"]
    assert (a["recipients"], a["uniqueOpens"], a["openRate"]) == (100, 20, 20.0)
    assert (b["recipients"], b["uniqueOpens"], b["openRate"]) == (100, 60, 60.0)
    assert a["comparedWith"] == "B"
    assert a["confidence"] > 99
    assert refused.status_code == 403


def test_ab_test_resource_of_a_campaign_without_one_is_404(api, full_key):
    campaign = make_campaign(status="draft")

    assert api.get(ab_url(campaign.pk), key=full_key).status_code == 404


def test_confidence_of_equal_rates_is_zero_and_of_no_recipients_unknown():
    assert abtest._confidence(10, 100, 10, 100) == 0.0
    assert abtest._confidence(0, 0, 10, 100) is None
    assert 90 < abtest._confidence(30, 100, 18, 100) < 96


# --- resend to non-openers -------------------------------------------------------------------


def test_resend_goes_to_non_openers_only_after_the_wait_and_completes_the_campaign():
    people = vip(6)
    campaign = make_campaign(status="draft", template=make_template())
    resend.resend_set(
        campaign=campaign, config={"after": dt.timedelta(hours=48), "subject": "Again?"}
    )
    run = lifecycle.campaign_launch_now(campaign=campaign)
    by_contact = {d.contact_id: d for d in rows(run)}
    now = timezone.now()
    statuses = ["sent", "delivered", "opened", "bounced", "unsubscribed", "sent"]
    for person, status in zip(people, statuses, strict=True):
        delivery = by_contact[person.pk]
        delivery.status = status
        delivery.sent_at = now
        if status == "opened":
            delivery.opened_at = now
    # A machine open moved the status but is no human open: still a non-opener.
    by_contact[people[5].pk].status = "opened"
    Delivery.objects.bulk_update(list(by_contact.values()), ["status", "sent_at", "opened_at"])

    pipeline.runs_recover()
    campaign.refresh_from_db()
    early = resend.resends_due()
    CampaignRun.objects.filter(pk=run.pk).update(finished_at=now - dt.timedelta(hours=49))
    started = resend.resends_due()
    again = resend.resends_due()

    assert campaign.status == "running"
    assert campaign.status_reason == "waiting to resend to non-openers"
    assert (early, started, again) == (0, 1, 0)
    follow_up = CampaignRun.objects.get(campaign=campaign, kind=RunKind.RESEND)
    assert follow_up.parent_id == run.pk
    assert sorted(d.contact_id for d in rows(follow_up)) == sorted(
        [people[0].pk, people[1].pk, people[5].pk]
    )
    content = SendContent.of_run(
        CampaignRun.objects.select_related("campaign", "template_version").get(pk=follow_up.pk)
    )
    assert delivery_render(content, rows(follow_up)[0], []).subject == "Again?"

    Delivery.objects.filter(run=follow_up).update(status="sent", sent_at=now)
    pipeline.runs_recover()
    campaign.refresh_from_db()
    assert campaign.status == "completed"


def test_the_ab_test_and_resend_are_copied_by_duplicate():
    campaign = ab_campaign()
    resend.resend_set(campaign=campaign, config={"after": dt.timedelta(hours=2), "subject": "Re"})

    copy = lifecycle.campaign_duplicate(campaign=campaign)

    assert ABTest.objects.get(campaign=copy).variants.count() == 2
    assert copy.resend.subject == "Re"


def test_campaign_analytics_list_the_resend_run_and_the_ab_test(api, full_key):
    vip(20)
    campaign = ab_campaign(percent=50)
    resend.resend_set(campaign=campaign, config={"after": dt.timedelta(hours=1), "subject": "Re"})
    run = lifecycle.campaign_launch_now(campaign=campaign)
    abtest.ab_winner_choose(test=ABTest.objects.get(run=run), position=1)
    Delivery.objects.filter(run=run).update(status="sent", sent_at=timezone.now())
    pipeline.runs_recover()
    CampaignRun.objects.filter(pk=run.pk).update(finished_at=timezone.now() - dt.timedelta(hours=2))
    resend.resends_due()

    answer = api.get(f"{CAMPAIGNS}/{campaign.pk}/analytics", key=full_key).json()

    assert [(r["number"], r["kind"], r["parentRunId"]) for r in answer["runs"]] == [
        (1, "send", None),
        (2, "resend", run.pk),
    ]
    assert answer["abTest"]["winner"] == "B"
    assert [v["recipients"] for v in answer["abTest"]["variants"]] == [5, 5]
