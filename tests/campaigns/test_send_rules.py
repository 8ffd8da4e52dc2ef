"""When a message may go: recipient-local send time, sending windows and frequency caps, in
the pipeline's materialisation and the engine's batch (in process, real SMTP sink)."""

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from campaigns import pipeline
from campaigns.delivery import engine
from campaigns.messages import send_requests_wake_due, smartsend_start
from campaigns.models import (
    CampaignRun,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    FrequencyCap,
    RunStatus,
    SendKind,
)
from campaigns.send_rules import SendWindow, local_time_sql, window_opening
from config.core.models import Organisation
from contacts.models import ChannelType
from tests.campaigns.test_pipeline import make_campaign, make_run, send_all, vip

UTC = dt.UTC


@pytest.fixture
def sink(settings):
    from tests.support.smtp import SMTPSink, use_sink

    with SMTPSink() as server:
        use_sink(settings, server)
        yield server


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def hhmm(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M")


def closed_window() -> dict:
    """A window (in UTC) that opens two hours from now: closed at the moment."""
    now = timezone.now()
    return {"from": hhmm(now + dt.timedelta(hours=2)), "to": hhmm(now + dt.timedelta(hours=3))}


def open_window() -> dict:
    now = timezone.now()
    return {"from": hhmm(now - dt.timedelta(hours=1)), "to": hhmm(now + dt.timedelta(hours=1))}


def next_local(moment: dt.datetime) -> dt.datetime:
    return moment if moment > timezone.now() else moment + dt.timedelta(days=1)


# --- planning: recipient-local send time ---------------------------------------------------


@pytest.mark.django_db
def test_local_send_time_plans_each_contact_at_that_hour_in_its_own_zone():
    Organisation.objects.update_or_create(pk=1, defaults={"time_zone": "Europe/Lisbon"})
    zones = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati"]
    people = [vip(1, time_zone=zone)[0] for zone in zones]
    unknown = vip(1, time_zone="Mars/Olympus_Mons")[0]
    without = vip(1, time_zone="")[0]
    run = make_run(make_campaign(send_local_time=dt.time(10, 0)))
    before = timezone.now()

    assert pipeline.run_materialise(run=run) == 6

    planned = dict(Delivery.objects.filter(run=run).values_list("contact_id", "next_attempt_at"))
    expected_zone = {p.pk: zone for p, zone in zip(people, zones, strict=True)}
    expected_zone[unknown.pk] = expected_zone[without.pk] = "Europe/Lisbon"
    for contact_id, moment in planned.items():
        local = moment.astimezone(ZoneInfo(expected_zone[contact_id]))
        assert local.time() == dt.time(10, 0), expected_zone[contact_id]
        assert before - dt.timedelta(seconds=1) <= moment <= before + dt.timedelta(hours=24)
    # Inserted in the order they fall due: the claim meets the due rows first.
    ordered = list(Delivery.objects.filter(run=run).order_by("id"))
    assert [d.next_attempt_at for d in ordered] == sorted(d.next_attempt_at for d in ordered)


@pytest.mark.django_db
def test_local_send_time_keeps_the_wall_clock_across_a_daylight_saving_change():
    sql = "SELECT " + local_time_sql("10:00", "'Europe/Berlin'", at="%(at)s::timestamptz")
    with connection.cursor() as cursor:
        # Saturday noon before the spring change (29 March 2026, 01:00 UTC): Sunday 10:00
        # is already summer time, 08:00 UTC.
        cursor.execute(sql, {"at": at("2026-03-28T12:00:00")})
        assert cursor.fetchone()[0] == at("2026-03-29T08:00:00")
        cursor.execute(sql, {"at": at("2026-10-24T12:00:00")})
        assert cursor.fetchone()[0] == at("2026-10-25T09:00:00")  # back to winter time
        cursor.execute(sql, {"at": at("2026-10-24T07:00:00")})
        assert cursor.fetchone()[0] == at("2026-10-24T08:00:00")  # later that same day


@pytest.mark.django_db
def test_a_run_planned_for_later_waits_and_completes_only_after_its_last_row(sink):
    vip(2, time_zone="UTC")
    later = vip(1, time_zone="Asia/Tokyo")[0]
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)
    Delivery.objects.filter(run=run, contact=later).update(
        next_attempt_at=timezone.now() + dt.timedelta(hours=5)
    )

    send_all(run)
    assert len(sink.messages) == 2
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING  # the far row holds it open
    result = pipeline.runs_recover()
    assert result["completed"] == 0 and result["enqueued"] == 0

    # Once due, the recovery task starts a sender for it (the test's transaction froze now()).
    Delivery.objects.filter(run=run, contact=later).update(
        next_attempt_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert pipeline.runs_recover(stall=dt.timedelta(0))["enqueued"] == 1
    send_all(run)
    assert len(sink.messages) == 3
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


# --- windows -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("window", "moment", "opening"),
    [
        # Inside: at once.
        ({"from": "09:00", "to": "20:00"}, "2026-12-09T10:00:00", "2026-12-09T10:00:00"),
        # After closing: tomorrow's opening.
        ({"from": "09:00", "to": "20:00"}, "2026-12-09T21:00:00", "2026-12-10T09:00:00"),
        # Saturday, weekdays only: Monday.
        (
            {"from": "09:00", "to": "20:00", "days": [1, 2, 3, 4, 5]},
            "2026-12-12T10:00:00",
            "2026-12-14T09:00:00",
        ),
        # Over midnight: open at 03:00, next opening at 22:00 from noon.
        ({"from": "22:00", "to": "06:00"}, "2026-12-09T03:00:00", "2026-12-09T03:00:00"),
        ({"from": "22:00", "to": "06:00"}, "2026-12-09T12:00:00", "2026-12-09T22:00:00"),
    ],
)
def test_window_opening(window, moment, opening):
    cleaned = SendWindow.clean(window)
    assert window_opening(cleaned, zone="UTC", at=at(moment)) == at(opening)


@pytest.mark.django_db
def test_window_opens_in_the_recipients_zone_across_a_daylight_saving_change():
    window = SendWindow.clean({"from": "09:00", "to": "20:00"})
    # Saturday 24 October 2026, 20:30 in Berlin (summer time): next opening is Sunday 09:00,
    # winter time by then.
    assert window_opening(window, zone="Europe/Berlin", at=at("2026-10-24T18:30:00")) == at(
        "2026-10-25T08:00:00"
    )
    # An unknown zone falls back to the organisation's.
    Organisation.objects.update_or_create(pk=1, defaults={"time_zone": "Asia/Tokyo"})
    assert window_opening(window, zone="Nowhere/Land", at=at("2026-12-09T12:00:00")) == at(
        "2026-12-10T00:00:00"
    )


@pytest.mark.django_db
def test_materialise_plans_rows_due_outside_the_window_at_its_next_opening():
    vip(3, time_zone="UTC")
    window = closed_window()
    run = make_run(make_campaign(send_window=window))
    pipeline.run_materialise(run=run)

    opens = dt.datetime.combine(timezone.now().date(), dt.time.fromisoformat(window["from"]), UTC)
    expected = next_local(opens)
    assert set(Delivery.objects.filter(run=run).values_list("next_attempt_at", flat=True)) == {
        expected
    }


@pytest.mark.django_db
def test_engine_defers_rows_outside_their_window_without_using_an_attempt_and_says_why(sink):
    people = vip(4, time_zone="UTC")
    campaign = make_campaign()
    run = make_run(campaign)
    pipeline.run_materialise(run=run)  # planned for now, before the window was set
    campaign.send_window = {**closed_window(), "days": [1, 2, 3, 4, 5, 6, 7]}
    campaign.save()

    assert engine.run_send(run_id=run.pk) is None  # nothing claimable for an hour and more

    assert sink.messages == []
    rows = list(Delivery.objects.filter(run=run))
    assert {r.status for r in rows} == {DeliveryStatus.QUEUED}
    assert all(r.attempts == 0 and r.claimed_at is None for r in rows)
    assert all(r.next_attempt_at > timezone.now() + dt.timedelta(minutes=50) for r in rows)
    events = DeliveryEvent.objects.filter(delivery__run=run, status=DeliveryStatus.QUEUED)
    assert events.count() == 4
    assert all("outside its sending window" in e.detail for e in events)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING

    # The window opens: the rows go, each once.
    campaign.send_window = open_window()
    campaign.save()
    Delivery.objects.filter(run=run).update(next_attempt_at=timezone.now())
    send_all(run)
    assert sorted(m["To"] for m in sink.messages) == sorted(p.email for p in people)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


@pytest.mark.django_db
def test_workflow_sends_keep_their_steps_window_but_transactional_ones_do_not(sink):
    from tests.campaigns.test_pipeline import make_template

    person = vip(1, time_zone="UTC")[0]
    template = make_template()
    workflow_request, _ = smartsend_start(
        template_id=template.pk,
        recipients=[{"contactId": person.pk}],
        kind=SendKind.WORKFLOW,
        send_window=closed_window(),
    )
    api_request, _ = smartsend_start(template_id=template.pk, recipients=[{"contactId": person.pk}])
    api_request.send_window = closed_window()  # not a marketing message: ignored
    api_request.save()

    # Hours to wait: the task stops rather than sleep in the broker; beat wakes it.
    assert engine.send_request_process(send_request_id=workflow_request.pk) is None
    engine.send_request_process(send_request_id=api_request.pk)

    assert len(sink.messages) == 1
    assert Delivery.objects.get(send_request=workflow_request).status == DeliveryStatus.QUEUED
    assert Delivery.objects.get(send_request=api_request).status == DeliveryStatus.SENT
    assert send_requests_wake_due() == 0  # not open yet

    # The window opens (the test's transaction froze now(): the row is made due before it).
    Delivery.objects.filter(send_request=workflow_request).update(
        next_attempt_at=timezone.now() - dt.timedelta(hours=1)
    )
    workflow_request.send_window = open_window()
    workflow_request.save()
    assert send_requests_wake_due() == 1
    engine.send_request_process(send_request_id=workflow_request.pk)
    assert Delivery.objects.get(send_request=workflow_request).status == DeliveryStatus.SENT
    assert len(sink.messages) == 2


# --- frequency caps ------------------------------------------------------------------------


STEPS = itertools.count(100)


def sent_before(contact, *, days_ago: float, run: CampaignRun | None = None, request=None):
    return Delivery.objects.create(
        run=run,
        send_request=request,
        contact=contact,
        channel=ChannelType.EMAIL,
        locator=contact.email,
        status=DeliveryStatus.SENT,
        sent_at=timezone.now() - dt.timedelta(days=days_ago),
        step=next(STEPS),  # unique per (run, contact, channel, step) across these rows
    )


@pytest.mark.django_db
def test_frequency_cap_skips_contacts_over_it_with_the_reason_and_sends_the_rest(sink):
    FrequencyCap.objects.create(channel=ChannelType.EMAIL, limit=2, period_days=7)
    capped, one_marketing, old_ones, sms_only_cap = vip(4, time_zone="UTC")
    earlier = make_run(make_campaign(name="Earlier"))
    for days in (1, 3):
        sent_before(capped, days_ago=days, run=earlier)
    sent_before(one_marketing, days_ago=1, run=earlier)
    # Transactional messages do not count.
    test_send, _ = smartsend_start(
        template_id=earlier.campaign.template_id, recipients=[{"contactId": one_marketing.pk}]
    )
    Delivery.objects.filter(send_request=test_send).update(
        status=DeliveryStatus.SENT, sent_at=timezone.now()
    )
    for days in (8, 9):  # outside the period
        sent_before(old_ones, days_ago=days, run=earlier)
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)

    send_all(run)

    assert sorted(m["To"] for m in sink.messages) == sorted(
        [one_marketing.email, old_ones.email, sms_only_cap.email]
    )
    skipped = Delivery.objects.get(run=run, contact=capped)
    assert skipped.status == DeliveryStatus.SKIPPED
    assert skipped.error == "frequency cap: 2 emails in 7 days"
    assert skipped.events.get().status == DeliveryStatus.SKIPPED
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


@pytest.mark.django_db
def test_frequency_cap_counts_workflow_sends_and_exempts_transactional_messages(sink):
    from tests.campaigns.test_pipeline import make_template

    FrequencyCap.objects.create(channel=ChannelType.EMAIL, limit=1, period_days=7)
    person = vip(1)[0]
    template = make_template()
    first_workflow, _ = smartsend_start(
        template_id=template.pk, recipients=[{"contactId": person.pk}], kind=SendKind.WORKFLOW
    )
    engine.send_request_process(send_request_id=first_workflow.pk)
    second_workflow, _ = smartsend_start(
        template_id=template.pk, recipients=[{"contactId": person.pk}], kind=SendKind.WORKFLOW
    )
    engine.send_request_process(send_request_id=second_workflow.pk)
    for kind in (SendKind.SMARTSEND, SendKind.TEST):
        request, _ = smartsend_start(
            template_id=template.pk, recipients=[{"contactId": person.pk}], kind=kind
        )
        engine.send_request_process(send_request_id=request.pk)

    assert len(sink.messages) == 3  # the first workflow send and both transactional ones
    second = Delivery.objects.get(send_request=second_workflow)
    assert (second.status, second.error) == (
        DeliveryStatus.SKIPPED,
        "frequency cap: 1 emails in 7 days",
    )


@pytest.mark.django_db
def test_frequency_cap_counts_a_contacts_earlier_rows_in_the_same_batch(sink):
    FrequencyCap.objects.create(channel=ChannelType.EMAIL, limit=1, period_days=1)
    person = vip(1)[0]
    campaign = make_campaign()
    run = make_run(campaign)
    pipeline.run_materialise(run=run)
    # A second row of the same contact in the same run (a later drip step now due).
    Delivery.objects.create(
        run=run, contact=person, channel=ChannelType.EMAIL, locator=person.email, step=2
    )

    send_all(run)

    statuses = sorted(Delivery.objects.filter(run=run).values_list("step", "status"))
    assert statuses == [(0, DeliveryStatus.SENT), (2, DeliveryStatus.SKIPPED)]
    assert len(sink.messages) == 1


def test_a_window_that_never_opens_is_refused_by_the_admin_form_validation():
    from django.core.exceptions import ValidationError

    from campaigns.models import validate_send_window

    validate_send_window({"from": "09:00", "to": "20:00", "days": [1]})
    with pytest.raises(ValidationError, match="never opens"):
        validate_send_window({"from": "09:00", "to": "09:00"})
    # One stored by other means is ignored by the sender rather than stopping it.
    assert SendWindow.of({"from": "09:00", "to": "09:00"}) is None


@pytest.mark.django_db
def test_drip_and_milestone_rows_are_planned_into_the_window_too():
    from campaigns.models import CampaignStep
    from tests.contacts.factories import ContactFactory, CustomFieldFactory

    window = {"from": "03:00", "to": "04:00"}  # in each contact's zone (UTC here)
    drip = make_campaign(type="drip", send_window=window)
    CampaignStep.objects.create(
        campaign=drip, position=1, template=drip.template, delay=dt.timedelta(days=2)
    )
    vip(2, time_zone="UTC")
    drip_run = make_run(drip)
    pipeline.run_materialise(run=drip_run)
    for moment in Delivery.objects.filter(run=drip_run).values_list("next_attempt_at", flat=True):
        assert moment.astimezone(UTC).time() >= dt.time(3, 0)
        assert moment.astimezone(UTC).time() < dt.time(4, 0)
        assert moment >= timezone.now() + dt.timedelta(days=2) - dt.timedelta(minutes=1)

    birthday = CustomFieldFactory(type="date")
    today = timezone.now().date()
    person = ContactFactory(
        tags=["vip"], time_zone="UTC", fields={str(birthday.pk): f"1990-{today:%m-%d}"}
    )
    milestone = make_campaign(
        type="milestone",
        timezone="UTC",
        milestone={"fieldId": birthday.pk, "yearly": True, "sendAt": "09:00"},
        send_window={"from": "18:00", "to": "19:00"},
    )
    run = make_run(milestone)
    assert pipeline.run_materialise(run=run) == 1
    planned = Delivery.objects.get(run=run, contact=person).next_attempt_at.astimezone(UTC)
    # 09:00 today (now, if that has passed) moved into the window: its next opening, or now
    # when the window is open.
    assert dt.time(18, 0) <= planned.time() < dt.time(19, 0)
    assert planned >= timezone.now() - dt.timedelta(minutes=1)
    assert planned <= timezone.now() + dt.timedelta(days=1)


def test_the_send_windows_beat_entry_names_a_registered_task(settings):
    from config.celery import app

    app.loader.import_default_modules()
    assert settings.CELERY_BEAT_SCHEDULE["campaigns-send-windows-wake"]["task"] in app.tasks
