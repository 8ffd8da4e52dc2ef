"""The sending pipeline in one process: materialising a run into the ledger, and senders
sending into a real SMTP server (aiosmtpd). Worker and crash tests: test_pipeline_worker.py."""

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from campaigns import pipeline
from campaigns.delivery import engine, policy
from campaigns.ledger import delivery_transition
from campaigns.models import (
    Campaign,
    CampaignRun,
    CampaignStep,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    RunStatus,
)
from contacts.models import ChannelType, Contact, SegmentKind, SegmentMembership, Unsubscribed
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory, CustomFieldFactory, SegmentFactory
from tests.support.smtp import SMTPSink, use_sink

HTML = (
    '<p>Hello $!contact.firstName,</p><p><a href="https://shop.example/sale">See the sale</a></p>'
)


def make_template(name: str = "Sale", channel: str = ChannelType.EMAIL):
    if channel == ChannelType.SMS:
        template = template_create(name=name, channel=channel, sms_text="Sale, $!contact.firstName")
    else:
        template = template_create(
            name=name,
            subject="Sale for $!contact.firstName",
            from_name="Shop",
            from_email="news@shop.example",
            html=HTML,
        )
    template_publish(template=template)
    return template


def make_run(campaign: Campaign) -> CampaignRun:
    version = campaign.template.versions.order_by("-number").first()
    number = campaign.runs.count() + 1
    return CampaignRun.objects.create(campaign=campaign, number=number, template_version=version)


def make_campaign(**kwargs) -> Campaign:
    kwargs.setdefault("name", "Spring sale")
    kwargs.setdefault("channels", [ChannelType.EMAIL])
    kwargs.setdefault("template", make_template())
    kwargs.setdefault("status", "running")
    if "segment" not in kwargs:
        kwargs.setdefault("audience_filter", {"tags": {"$in": ["vip"]}})
    return Campaign.objects.create(**kwargs)


def vip(n: int, **kwargs) -> list[Contact]:
    return Contact.objects.bulk_create(ContactFactory.build_batch(n, tags=["vip"], **kwargs))


def locators(run: CampaignRun, **filters) -> list[str]:
    return sorted(Delivery.objects.filter(run=run, **filters).values_list("locator", flat=True))


@pytest.fixture
def sink(settings):
    with SMTPSink() as server:
        use_sink(settings, server)
        yield server


# --- materialise ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_materialise_excludes_unsubscribed_unconfirmed_deleted_and_addressless_contacts():
    kept = vip(3)
    ContactFactory(tags=["vip"], confirmed=False)
    ContactFactory(tags=["vip"], deleted_at=timezone.now())
    ContactFactory(tags=["vip"], email="", phone="+380501234567")
    gone = ContactFactory(tags=["vip"], email="gone@example.com")
    Unsubscribed.objects.create(email="gone@example.com")
    ContactFactory(tags=["other"])
    run = make_run(make_campaign())

    reach = pipeline.run_materialise(run=run)

    assert reach == 3
    run.refresh_from_db()
    assert run.reach == 3
    assert locators(run) == sorted(c.email for c in kept)
    assert gone.email not in locators(run)
    rows = Delivery.objects.filter(run=run)
    assert {row.status for row in rows} == {DeliveryStatus.QUEUED}
    assert {row.template_version_id for row in rows} == {run.template_version_id}
    # The Message-ID is fixed at materialisation, unique per row, in the sender's domain.
    ids = [row.message_id for row in rows]
    assert len(set(ids)) == 3
    assert all(mid.startswith("<") and mid.endswith("@shop.example>") for mid in ids)


@pytest.mark.django_db
def test_unsubscribed_address_still_gets_sms_but_not_email():
    person = ContactFactory(tags=["vip"], email="gone@example.com", phone="+380501234567")
    ContactFactory(tags=["vip"], email="nophone@example.com", phone="")
    Unsubscribed.objects.create(email="gone@example.com")
    template = make_template("Text", ChannelType.SMS)
    run = make_run(make_campaign(channels=[ChannelType.SMS], template=template))

    assert pipeline.run_materialise(run=run) == 1

    assert locators(run) == [person.phone]
    assert Delivery.objects.get(run=run).channel == ChannelType.SMS


@pytest.mark.django_db
def test_materialise_twice_inserts_each_recipient_once_and_keeps_message_ids():
    vip(5)
    run = make_run(make_campaign(channels=[ChannelType.EMAIL, ChannelType.SMS]))
    pipeline.run_materialise(run=run)
    before = dict(Delivery.objects.filter(run=run).values_list("contact_id", "message_id"))

    assert pipeline.run_materialise(run=run) == 5

    after = dict(Delivery.objects.filter(run=run).values_list("contact_id", "message_id"))
    assert after == before
    # Factory contacts have no phone: email rows only, one per contact.
    assert Delivery.objects.filter(run=run).count() == 5


@pytest.mark.django_db
def test_a_segment_that_grew_after_the_campaign_was_saved_is_sent_to_the_new_members():
    segment = SegmentFactory(kind=SegmentKind.STATIC)
    early = ContactFactory()
    SegmentMembership.objects.create(segment=segment, contact=early)
    campaign = make_campaign(segment=segment, audience_filter=None)
    late = ContactFactory()
    SegmentMembership.objects.create(segment=segment, contact=late)

    assert pipeline.run_materialise(run=make_run(campaign)) == 2

    assert locators(campaign.runs.get()) == sorted([early.email, late.email])


@pytest.mark.django_db
def test_drip_steps_are_scheduled_by_their_delays_and_later_members_enter_once():
    campaign = make_campaign(type="drip")
    second = make_template("Follow-up")
    CampaignStep.objects.create(
        campaign=campaign, position=1, template=campaign.template, delay=dt.timedelta(0)
    )
    CampaignStep.objects.create(
        campaign=campaign, position=2, template=second, delay=dt.timedelta(days=2)
    )
    first = vip(2)
    run = make_run(campaign)
    start = timezone.now()

    assert pipeline.run_materialise(run=run) == 2

    step2 = Delivery.objects.filter(run=run, step=2)
    assert step2.count() == 2
    for row in step2:
        assert row.next_attempt_at - start >= dt.timedelta(days=2) - dt.timedelta(seconds=5)
        assert row.template_version.template_id == second.pk
    assert all(
        row.next_attempt_at <= timezone.now() for row in Delivery.objects.filter(run=run, step=1)
    )

    newcomer = ContactFactory(tags=["vip"])
    assert pipeline.drip_enter() == 1
    assert pipeline.drip_enter() == 0

    run.refresh_from_db()
    assert run.reach == 3
    assert Delivery.objects.filter(run=run).count() == 6
    assert Delivery.objects.filter(run=run, contact=newcomer).count() == 2
    assert {d.contact_id for d in Delivery.objects.filter(run=run)} == {
        c.pk for c in [*first, newcomer]
    }


@pytest.mark.django_db
def test_milestone_picks_contacts_whose_date_is_today_in_their_time_zone():
    birthday = CustomFieldFactory(type="date")
    zone = "Pacific/Kiritimati"  # UTC+14: often already tomorrow
    today_there = timezone.now().astimezone(ZoneInfo(zone)).date()
    today_utc = timezone.now().date()

    def born(day: dt.date, **kwargs):
        return ContactFactory(
            tags=["vip"], fields={str(birthday.pk): f"1990-{day:%m-%d}"}, **kwargs
        )

    local = born(today_there, time_zone=zone)
    utc = born(today_utc)
    ContactFactory(tags=["vip"], fields={str(birthday.pk): "not a date"})
    other_day = today_utc + dt.timedelta(days=3)
    born(other_day)
    born(other_day, time_zone="Not/AZone")
    campaign = make_campaign(
        type="milestone",
        timezone="UTC",
        milestone={"fieldId": birthday.pk, "yearly": True, "sendAt": "09:00"},
    )
    run = make_run(campaign)

    assert pipeline.run_materialise(run=run) == 2

    rows = {d.contact_id: d for d in Delivery.objects.filter(run=run)}
    assert set(rows) == {local.pk, utc.pk}
    sent_at = rows[local.pk].next_attempt_at.astimezone(ZoneInfo(zone))
    assert (sent_at.date(), sent_at.time()) == (today_there, dt.time(9, 0))


# --- sending in process --------------------------------------------------------------------


def send_all(run: CampaignRun, rounds: int = 20) -> None:
    for _ in range(rounds):
        if engine.run_send(run_id=run.pk) is None:
            return


@pytest.mark.django_db
def test_senders_send_every_recipient_once_with_its_message_id(sink):
    people = vip(30)
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)

    send_all(run)
    send_all(run)

    received = sink.messages
    assert sorted(m["To"] for m in received) == sorted(p.email for p in people)
    ledger = dict(Delivery.objects.filter(run=run).values_list("locator", "message_id"))
    assert {m["To"]: m["Message-ID"] for m in received} == ledger
    first = next(m for m in received if m["To"] == people[0].email)
    assert first["Subject"] == f"Sale for {people[0].first_name}"
    assert "List-Unsubscribe" in first
    html = first.get_body(("html",)).get_content()
    assert "/t/c/" in html and "/t/o/" in html  # tracked: click redirect and open pixel
    rows = Delivery.objects.filter(run=run)
    assert {r.status for r in rows} == {DeliveryStatus.SENT}
    assert all(r.sent_at and r.claimed_at is None and r.attempts == 1 for r in rows)
    assert DeliveryEvent.objects.filter(delivery__run=run, status="sent").count() == 30
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


@pytest.mark.django_db
def test_permanent_refusal_fails_the_delivery_with_the_reason(sink):
    good, bad = vip(2)
    sink.refuse(bad.email, "550 5.1.1 No such user")
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)

    send_all(run)

    assert [m["To"] for m in sink.messages] == [good.email]
    failed = Delivery.objects.get(run=run, locator=bad.email)
    assert failed.status == DeliveryStatus.FAILED
    assert "550" in failed.error and "No such user" in failed.error


@pytest.mark.django_db
def test_transient_refusal_is_retried_after_a_backoff_and_delivered(sink, settings):
    settings.HERALD_RETRY_BASE = 1
    busy, fine = vip(2)
    sink.refuse(busy.email, "451 4.7.1 Try again later", once=True)
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)

    wait = engine.run_send(run_id=run.pk)

    assert [m["To"] for m in sink.messages] == [fine.email]
    row = Delivery.objects.get(run=run, locator=busy.email)
    assert row.status == DeliveryStatus.QUEUED and row.next_attempt_at > timezone.now()
    assert "451" in row.error
    assert 0 < wait <= 1.5
    # (The test runs in one transaction, where now() stands still: move the retry back.)
    Delivery.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(minutes=1)
    )
    send_all(run)
    row.refresh_from_db()
    assert row.status == DeliveryStatus.SENT and row.attempts == 2
    assert sorted(m["To"] for m in sink.messages) == sorted([busy.email, fine.email])
    assert len({m["Message-ID"] for m in sink.messages}) == 2


@pytest.mark.django_db
def test_transient_failures_become_final_after_the_attempt_limit(sink, settings):
    settings.HERALD_RETRY_BASE = 0
    (person,) = vip(1)
    sink.refuse(person.email, "452 4.2.2 Mailbox full")
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)

    send_all(run, rounds=policy.MAX_ATTEMPTS + 2)

    row = Delivery.objects.get(run=run)
    assert row.status == DeliveryStatus.FAILED
    assert row.attempts == policy.MAX_ATTEMPTS
    assert "gave up after" in row.error and "452" in row.error


@pytest.mark.django_db
def test_a_paused_run_sends_nothing_and_continues_when_running_again(sink):
    vip(5)
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)
    CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.PAUSED)

    assert engine.run_send(run_id=run.pk) is None
    assert sink.messages == []
    assert not Delivery.objects.filter(run=run, claimed_at__isnull=False).exists()

    CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    send_all(run)
    assert len(sink.messages) == 5


@pytest.mark.django_db
def test_error_threshold_pauses_the_run_with_the_reason(sink):
    people = vip(engine.RunScope.ERROR_THRESHOLD_MIN_ATTEMPTS + 20)
    for person in people[::2]:
        sink.refuse(person.email, "550 5.1.1 No such user")
    for person in people[1::4]:
        sink.refuse(person.email, "550 5.1.1 No such user")
    run = make_run(make_campaign(error_threshold=50))
    pipeline.run_materialise(run=run)

    send_all(run)

    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED
    assert "error threshold" in run.status_reason
    assert Delivery.objects.filter(run=run, status=DeliveryStatus.FAILED).count() >= 50


@pytest.mark.django_db
def test_recovery_releases_stale_claims_and_keeps_message_ids(sink):
    vip(3)
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)
    ids = dict(Delivery.objects.filter(run=run).values_list("pk", "message_id"))
    # A worker claimed the rows and died.
    Delivery.objects.filter(run=run).update(
        claimed_at=timezone.now() - dt.timedelta(hours=1), attempts=1
    )
    assert engine.run_send(run_id=run.pk) is None
    assert sink.messages == []

    assert pipeline.claims_reclaim() == 3
    send_all(run)

    sent = {m["Message-ID"] for m in sink.messages}
    assert sent == set(ids.values())


@pytest.mark.django_db
def test_recovery_completes_a_run_with_nothing_left_and_leaves_fresh_claims_alone():
    vip(2)
    done = make_run(make_campaign())
    busy_campaign = make_campaign(name="Busy")
    busy = make_run(busy_campaign)
    pipeline.run_materialise(run=busy)
    Delivery.objects.filter(run=busy).update(claimed_at=timezone.now())

    result = pipeline.runs_recover()

    assert result == {"reclaimed": 0, "completed": 1, "enqueued": 0}
    done.refresh_from_db()
    busy.refresh_from_db()
    assert done.status == RunStatus.COMPLETED
    assert busy.status == RunStatus.RUNNING


@pytest.mark.django_db
def test_recovery_restarts_senders_only_for_a_run_without_recent_progress():
    vip(3)
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)
    first = Delivery.objects.filter(run=run).first()
    delivery_transition(status=DeliveryStatus.SENT, delivery_ids=[first.pk])

    assert pipeline.runs_recover()["enqueued"] == 0  # a message went out just now
    assert pipeline.runs_recover(stall=dt.timedelta(0))["enqueued"] == 1


@pytest.mark.django_db
def test_rate_limit_paces_the_channel_across_its_senders(sink, settings):
    settings.HERALD_RATE_LIMIT_EMAIL = 10  # messages/s through the transport, all senders
    vip(policy.RECORD_EVERY + 20)
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)

    began = time.monotonic()
    send_all(run)

    # The first chunk goes at once (a full bucket); the next 20 wait for 20 tokens at 10/s.
    assert time.monotonic() - began >= 20 / 10 - 0.1
    assert len(sink.received) == policy.RECORD_EVERY + 20
