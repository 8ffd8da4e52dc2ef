"""Promo codes in sent messages: one code per delivery, kept on retry, never handed out
twice; an empty pool pauses the run, and adding codes lets it finish."""

import datetime as dt
import re
import threading

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from campaigns import lifecycle, pipeline
from campaigns.delivery import engine
from campaigns.models import Campaign, CampaignRun, Delivery, DeliveryStatus, RunStatus
from campaigns.promo.assign import codes_assign
from campaigns.promo.models import PromoCode
from campaigns.promo.services import promo_codes_add, promo_codes_generate, promo_pool_create
from contacts.models import ChannelType, Contact
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory

CODE = re.compile(r"Your code: (\S+)\.")


@pytest.fixture
def sink(mail_to_sink):
    return mail_to_sink


def promo_template(key: str = "SPRING"):
    template = template_create(
        name="Spring codes",
        subject="A code for $!contact.firstName",
        from_email="news@shop.example",
        html=f"<p>Your code: $!promo.{key}.</p>",
    )
    template_publish(template=template)
    return template


def promo_campaign(template) -> CampaignRun:
    campaign = Campaign.objects.create(
        name="Spring codes",
        channels=[ChannelType.EMAIL],
        template=template,
        status="running",
        audience_filter={"tags": {"$in": ["vip"]}},
    )
    version = template.versions.order_by("-number").first()
    run = CampaignRun.objects.create(campaign=campaign, number=1, template_version=version)
    pipeline.run_materialise(run=run)
    return run


def vip(n: int) -> list[Contact]:
    return Contact.objects.bulk_create(ContactFactory.build_batch(n, tags=["vip"]))


def send_all(run: CampaignRun, rounds: int = 20) -> None:
    for _ in range(rounds):
        if engine.run_send(run_id=run.pk) is None:
            return


def codes_in(sink) -> dict[str, str]:
    found = {}
    for message in sink.messages:
        html = message.get_body(("html",)).get_content()
        found[message["To"]] = CODE.search(html).group(1)
    return found


@pytest.mark.django_db
def test_each_recipient_gets_a_different_code_recorded_on_the_code(sink):
    pool = promo_pool_create(name="Spring", key="SPRING")
    promo_codes_generate(pool=pool, count=20, prefix="SPR-", length=8)
    people = vip(12)
    run = promo_campaign(promo_template())

    send_all(run)

    shown = codes_in(sink)
    assert sorted(shown) == sorted(p.email for p in people)
    assert len(set(shown.values())) == 12
    assert all(code.startswith("SPR-") and len(code) == 12 for code in shown.values())
    given = {
        c.delivery.locator: c.code
        for c in PromoCode.objects.filter(pool=pool, assigned_at__isnull=False).select_related(
            "delivery"
        )
    }
    assert given == shown
    assert PromoCode.objects.filter(pool=pool, assigned_at__isnull=True).count() == 8


@pytest.mark.django_db
def test_a_retried_delivery_keeps_its_code(sink, settings):
    settings.HERALD_RETRY_BASE = 1
    pool = promo_pool_create(name="Spring", key="SPRING")
    promo_codes_generate(pool=pool, count=5, length=8)
    busy, _fine = vip(2)
    sink.refuse(busy.email, "451 4.7.1 Try again later", once=True)
    run = promo_campaign(promo_template())

    engine.run_send(run_id=run.pk)
    first = PromoCode.objects.get(delivery__locator=busy.email).code
    Delivery.objects.filter(run=run, locator=busy.email).update(
        next_attempt_at=timezone.now() - dt.timedelta(minutes=1)
    )
    send_all(run)

    assert codes_in(sink)[busy.email] == first
    assert PromoCode.objects.filter(pool=pool, assigned_at__isnull=False).count() == 2


@pytest.mark.django_db
def test_an_empty_pool_pauses_the_run_keeps_the_rest_queued_and_resume_sends_it(sink):
    pool = promo_pool_create(name="Spring", key="SPRING")
    promo_codes_add(pool=pool, lines=[(1, "A1"), (2, "A2"), (3, "A3")])
    vip(5)
    run = promo_campaign(promo_template())

    send_all(run)

    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED
    assert run.status_reason == "promo pool SPRING has no free codes left (3 sent)"
    assert Campaign.objects.get(pk=run.campaign_id).status == "paused"
    assert len(sink.messages) == 3
    queued = Delivery.objects.filter(run=run, status=DeliveryStatus.QUEUED)
    assert queued.count() == 2
    assert not Delivery.objects.filter(run=run, status=DeliveryStatus.FAILED).exists()
    assert all(row.claimed_at is None and row.attempts == 0 for row in queued)

    promo_codes_add(pool=pool, lines=[(1, "B1"), (2, "B2")])
    lifecycle.campaign_resume(campaign=Campaign.objects.get(pk=run.campaign_id))
    send_all(run)

    assert sorted(codes_in(sink).values()) == ["A1", "A2", "A3", "B1", "B2"]
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claimers_never_take_the_same_code():
    pool = promo_pool_create(name="Spring", key="SPRING")
    promo_codes_generate(pool=pool, count=300, length=8)
    people = vip(400)
    run = promo_campaign(promo_template())
    ids = list(Delivery.objects.filter(run=run).order_by("pk").values_list("pk", flat=True))
    halves = [ids[::2], ids[1::2]]
    barrier = threading.Barrier(2)
    errors = []

    def claim(delivery_ids):
        try:
            with transaction.atomic():
                barrier.wait()
                for start in range(0, len(delivery_ids), 50):
                    codes_assign(pool=pool, delivery_ids=delivery_ids[start : start + 50])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim, args=(half,)) for half in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    given = PromoCode.objects.filter(pool=pool, delivery__isnull=False)
    assert given.count() == 300
    assert given.values("delivery").distinct().count() == 300
    assert len(people) == 400
    connection.close()


@pytest.mark.django_db
def test_report_api_and_csv_list_the_codes_a_campaign_sent(sink, api, full_key, client, viewer):
    pool = promo_pool_create(name="Spring", key="SPRING")
    promo_codes_generate(pool=pool, count=10, length=8)
    people = vip(4)
    run = promo_campaign(promo_template())
    send_all(run)
    shown = codes_in(sink)

    body = api.get(f"/api/herald/campaigns/{run.campaign_id}/promo-codes", key=full_key).json()
    assert body["count"] == 4
    assert {row["email"]: row["code"] for row in body["results"]} == shown
    assert all(row["pool"] == "SPRING" and row["sentAt"] for row in body["results"])
    assert {row["contactId"] for row in body["results"]} == {p.pk for p in people}

    client.force_login(viewer)
    report = client.get(f"/campaigns/{run.campaign_id}/report/").content.decode()
    assert 'data-testid="promo-count">4<' in report
    export = client.get(f"/campaigns/{run.campaign_id}/promo-codes.csv")
    lines = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0] == "code,pool,contact_id,email,sent_at"
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(shown.values())
    missing = api.get("/api/herald/campaigns/999999/promo-codes", key=full_key)
    assert missing.status_code == 404


@pytest.mark.django_db
def test_a_sender_that_ran_out_does_not_pause_a_run_whose_pool_was_refilled_meanwhile(sink):
    pool = promo_pool_create(name="Spring", key="SPRING")
    vip(1)
    run = promo_campaign(promo_template())
    late = engine.RunScope(run.pk)
    assert late.load()
    row = Delivery.objects.get(run=run)
    late.promo_exhausted([row.pk], "promo pool SPRING has no free codes left (0 sent)", "SPRING")

    # Meanwhile another sender paused the run, the marketer added codes and resumed it.
    promo_codes_add(pool=pool, lines=[(1, "C1")])

    assert late.finish(claimed_any=True, budget_spent=False) == 0.0
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    send_all(run)
    assert list(codes_in(sink).values()) == ["C1"]
