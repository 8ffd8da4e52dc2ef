"""Campaigns handed whole to a service that implements the provider contract (a local
service speaking the protocol of integrations/providers/external.py): prepared in slices,
created once whatever crashes or repeats, the service's webhooks on the ledger, its figures
synced, the run completed; and its errors retried or pausing the run."""

import json
import os
import signal
import time
from datetime import timedelta

import psutil
import pytest
from django.utils import timezone

from campaigns import lifecycle, pipeline
from campaigns.delivery import engine, handover
from campaigns.delivery.providers import CampaignType, ProviderError, provider_of
from campaigns.models import CampaignRun, Delivery, DeliveryEvent, RunStatus
from config.core.models import Integration
from config.core.secrets import secrets_seal
from contacts.models import Suppression, Unsubscribed
from integrations.models import WebhookRequest
from integrations.tasks import campaign_stats_sync_task
from tests.campaigns.test_pipeline import make_campaign, make_run, make_template, vip
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory
from tests.support.fake_contract_service import ContractService, webhook_headers
from tests.support.worker import CeleryWorker

API_KEY = "contract-key"
HOOK_SECRET = "hook-secret"


@pytest.fixture
def service():
    with ContractService(api_key=API_KEY) as server:
        yield server


def connect(service, channels=("email",), api_key=API_KEY) -> Integration:
    return Integration.objects.create(
        kind="external",
        name="Contract ESP",
        channels=list(channels),
        settings={"base_url": service.url(), "timeout": 5},
        secrets_sealed=secrets_seal({"api_key": api_key, "webhook_secret": HOOK_SECRET}),
    )


def handed_run(service, n: int, **campaign) -> tuple[Integration, CampaignRun]:
    integration = connect(service)
    vip(n)
    run = make_run(make_campaign(integration=integration, **campaign))
    pipeline.run_materialise(run=run)
    return integration, run


def post(client, integration, actions, headers=None):
    body = json.dumps({"actions": actions}).encode()
    extra = webhook_headers(HOOK_SECRET, body) if headers is None else headers
    return client.post(
        f"/webhooks/{integration.webhook_key}/",
        data=body,
        content_type="application/json",
        **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in extra.items()},
    )


# --- the hand-over --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_is_prepared_in_slices_of_its_locators_then_created_once(service):
    integration, run = handed_run(service, 2300)

    assert engine.run_send(run_id=run.pk) is None

    campaign_id = f"herald-run-{run.pk}"
    slices = service.prepared[campaign_id]
    assert [len(part) for part in slices] == [1000, 1000, 300]
    ledger = list(Delivery.objects.filter(run=run).order_by("pk").values_list("locator", flat=True))
    assert [locator for part in slices for locator in part] == ledger
    assert len(service.exported) == 2300
    assert service.create_calls == 1
    created = service.campaigns[campaign_id]
    assert created["type"] == "email"
    assert created["subject"] == run.template_version.subject
    assert created["fromEmail"] == "news@shop.example"
    run.refresh_from_db()
    assert (run.integration_id, run.external_id) == (integration.pk, created["id"])
    assert run.external_status == "sending"
    rows = Delivery.objects.filter(run=run)
    assert {row.status for row in rows} == {"sent"}
    assert {row.provider for row in rows} == {f"external#{integration.pk}"}
    detail = DeliveryEvent.objects.filter(delivery__run=run, status="sent").first().detail
    assert created["id"] in detail
    # Herald's part is done: nothing left queued, the lifecycle completed the run.
    assert run.status == RunStatus.COMPLETED


@pytest.mark.django_db
def test_a_second_sender_task_creates_nothing_again(service):
    _integration, run = handed_run(service, 30)
    engine.run_send(run_id=run.pk)
    CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)

    engine.run_send(run_id=run.pk)

    assert service.create_calls == 1
    assert len(service.prepared[f"herald-run-{run.pk}"]) == 1


@pytest.mark.django_db
def test_a_task_that_dies_between_prepare_and_create_resumes_without_preparing_or_creating_twice(
    service,
):
    _integration, run = handed_run(service, 1500)
    # The service creates the campaign but its answer never arrives (the worker died, or the
    # connection broke): Herald only knows it asked.
    service.lose_response["POST /campaigns"] = 1

    wait = engine.run_send(run_id=run.pk)

    assert wait is not None and wait > 0  # a retry, after the back-off
    run.refresh_from_db()
    assert run.external_status == "creating"
    assert run.external_id == ""
    assert Delivery.objects.filter(run=run, status="queued").count() == 1500
    # A task started meanwhile (the recovery beat) leaves the retry to its time.
    assert engine.run_send(run_id=run.pk) is None
    assert service.create_calls == 1

    state = run.external_stats["handover"]
    state["retry_at"] = (timezone.now() - timedelta(seconds=1)).isoformat()
    CampaignRun.objects.filter(pk=run.pk).update(external_stats={"handover": state})
    engine.run_send(run_id=run.pk)

    campaign_id = f"herald-run-{run.pk}"
    assert len(service.prepared[campaign_id]) == 2  # the two slices, once each
    assert service.create_calls == 2  # asked again …
    assert len(service.campaigns) == 1  # … and the service answered the same campaign
    run.refresh_from_db()
    assert run.external_id == service.campaigns[campaign_id]["id"]
    assert not Delivery.objects.filter(run=run, status="queued").exists()


@pytest.mark.django_db
def test_a_service_that_is_down_is_retried_and_nothing_is_lost(service, settings):
    _integration, run = handed_run(service, 10)
    service.down = True

    first = engine.run_send(run_id=run.pk)

    assert first is not None and first > 0
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert "503" in run.external_stats["handover"]["error"]
    assert Delivery.objects.filter(run=run, status="queued").count() == 10
    service.down = False
    state = run.external_stats["handover"]
    state["retry_at"] = None
    CampaignRun.objects.filter(pk=run.pk).update(external_stats={"handover": state})
    engine.run_send(run_id=run.pk)
    assert sorted(service.audiences[f"herald-run-{run.pk}"]) == sorted(
        Delivery.objects.filter(run=run).values_list("locator", flat=True)
    )
    assert Delivery.objects.filter(run=run, status="sent").count() == 10


@pytest.mark.django_db
def test_a_service_that_stays_down_pauses_the_run_after_the_attempts(service):
    _integration, run = handed_run(service, 3)
    service.down = True
    for _ in range(5):
        CampaignRun.objects.filter(pk=run.pk).update(
            external_stats={
                "handover": {
                    **CampaignRun.objects.get(pk=run.pk).external_stats.get("handover", {}),
                    "retry_at": None,
                }
            }
        )
        engine.run_send(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED
    assert "failed 5 times" in run.status_reason and "503" in run.status_reason


@pytest.mark.django_db
def test_a_refusal_pauses_the_run_with_the_services_words_and_resuming_continues(service):
    _integration, run = handed_run(service, 5)
    service.fail["POST /campaigns/{id}/prepare"] = [422]

    assert engine.run_send(run_id=run.pk) is None

    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED
    assert "Contract ESP" in run.status_reason and "injected 422" in run.status_reason
    assert run.campaign.status == "paused"
    lifecycle.campaign_resume(campaign=run.campaign)
    engine.run_send(run_id=run.pk)
    run.refresh_from_db()
    assert run.external_id
    assert Delivery.objects.filter(run=run, status="sent").count() == 5


@pytest.mark.django_db
def test_an_sms_campaign_is_prepared_with_phones_and_created_as_sms(service):
    integration = connect(service, channels=("sms",))
    people = [ContactFactory(tags=["vip"], phone=f"+38050111220{n}") for n in range(3)]
    template = make_template("Text", "sms")
    run = make_run(make_campaign(channels=["sms"], template=template, integration=integration))
    pipeline.run_materialise(run=run)

    engine.run_send(run_id=run.pk)

    campaign_id = f"herald-run-{run.pk}"
    assert service.prepared[campaign_id] == [[p.phone for p in people]]
    created = service.campaigns[campaign_id]
    assert (created["type"], created["text"], created["html"]) == (
        "sms",
        "Sale, $!contact.firstName",
        "",
    )
    assert Delivery.objects.filter(run=run, status="sent").count() == 3


def test_the_stats_beat_entry_names_the_registered_task(settings):
    from config.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["integrations-campaign-stats-sync"]
    assert entry["task"] in app.tasks
    assert entry["task"] == campaign_stats_sync_task.name


@pytest.mark.django_db
def test_wrong_credentials_fail_the_connection_test_with_the_services_message(service):
    with pytest.raises(ProviderError) as refused:
        provider_of(connect(service, api_key="wrong")).connection_test()
    assert "401" in refused.value.message and "invalid API key" in refused.value.message
    assert refused.value.permanent


@pytest.mark.django_db
def test_messenger_types_and_bots_and_a_messenger_run_prepared_with_contact_ids(service):
    integration = connect(service, channels=("email", "telegram"))
    provider = provider_of(integration)
    assert provider.messenger_types() == ["telegram", "viber"]
    assert [bot.id for bot in provider.messenger_bots()] == ["b1"]
    provider.campaign_prepare("m-1", CampaignType.MESSENGER, ["17", "18"])
    assert service.prepared["m-1"] == [["17", "18"]]


# --- feedback, stats, completion ------------------------------------------------------------


@pytest.fixture
def handed(service, db):
    integration, run = handed_run(service, 3)
    engine.run_send(run_id=run.pk)
    run.refresh_from_db()
    return integration, run


@pytest.mark.django_db
def test_the_services_webhook_moves_deliveries_on_the_ledger_once(client, service, handed):
    integration, run = handed
    a, b, c = Delivery.objects.filter(run=run).order_by("pk")
    actions = [
        {"type": "UpdateDeliveryStatus", "status": "delivered", "externalId": run.external_id,
         "email": a.locator, "eventId": "ev-1"},
        {"type": "UpdateDeliveryStatus", "status": "opened", "externalId": run.external_id,
         "email": a.locator.upper(), "eventId": "ev-2"},
        {"type": "UpdateDeliveryStatus", "status": "bounced", "externalId": run.external_id,
         "email": b.locator, "eventId": "ev-3", "detail": "mailbox does not exist"},
        {"type": "Unsubscribe", "email": c.locator, "all": True},
        {"type": "UpdateCampaign", "externalId": run.external_id, "status": "sent"},
    ]  # fmt: skip
    assert post(client, integration, actions).status_code == 200
    time.sleep(1)  # a later request: a new timestamp, so a new signature
    assert post(client, integration, actions).status_code == 200

    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == "opened" and a.delivered_at and a.open_count == 1
    assert b.status == "bounced" and "mailbox does not exist" in b.error
    assert Suppression.objects.get(address=b.locator).reason == "hard_bounce"
    assert Unsubscribed.objects.filter(email=c.locator).exists()
    run.refresh_from_db()
    assert run.external_status == "sent"
    assert DeliveryEvent.objects.filter(delivery=a, status="delivered").count() == 1


@pytest.mark.django_db
def test_a_bad_signature_is_401_and_a_malformed_body_400_and_nothing_is_applied(
    client, service, handed
):
    integration, run = handed
    a = Delivery.objects.filter(run=run).first()
    actions = [
        {"type": "UpdateDeliveryStatus", "status": "delivered", "externalId": run.external_id,
         "email": a.locator},
    ]  # fmt: skip
    body = json.dumps({"actions": actions}).encode()
    forged = webhook_headers("not-the-secret", body)
    assert post(client, integration, actions, headers=forged).status_code == 401
    old = webhook_headers(HOOK_SECRET, body, timestamp=time.time() - 3600)
    assert post(client, integration, actions, headers=old).status_code == 401
    bad = [{"type": "UpdateDeliveryStatus", "status": "arrived", "email": a.locator}]
    response = post(client, integration, bad)
    assert response.status_code == 400
    assert "action 0" in response.json()["detail"]
    assert post(client, integration, [{"type": "Explode"}]).status_code == 400
    a.refresh_from_db()
    assert a.status == "sent"
    assert list(WebhookRequest.objects.values_list("outcome", flat=True).order_by("pk")) == [
        "refused",
        "refused",
        "failed",
        "failed",
    ]


@pytest.mark.django_db
def test_stats_are_synced_cached_and_stored_on_the_run_and_the_integration(service, handed):
    integration, run = handed
    service.stats[run.external_id] = {"status": "sent", "sent": 3, "delivered": 2, "opened": 1}

    stats = handover.campaign_stats_sync(run=run)
    again = handover.campaign_stats_sync(run=run)

    assert (stats.sent, stats.delivered, stats.opened, str(stats.status)) == (3, 2, 1, "sent")
    assert again == stats
    assert service.stats_calls == 1  # the second answer came from the run
    run.refresh_from_db()
    assert run.external_stats["delivered"] == 2
    assert run.external_status == "sent"
    integration.refresh_from_db()
    assert integration.stats_synced_at is not None
    # The beat task asks again once the cache has aged.
    CampaignRun.objects.filter(pk=run.pk).update(
        external_stats_at=timezone.now() - timedelta(minutes=10)
    )
    service.stats[run.external_id]["clicked"] = 1
    assert handover.handed_over_runs_sync() == {"synced": 1, "failed": 0}
    run.refresh_from_db()
    assert run.external_stats["clicked"] == 1


# --- with a real worker ---------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_launched_campaign_is_handed_over_by_the_worker_and_completes(service, client):
    integration = connect(service)
    people = vip(1200)
    with CeleryWorker():
        run = lifecycle.campaign_launch_now(
            campaign=make_campaign(status="draft", integration=integration)
        )
        run = wait_for(
            lambda: CampaignRun.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).first(),
            timeout=60,
        )
    assert service.create_calls == 1
    assert sorted(service.audiences[f"herald-run-{run.pk}"]) == sorted(p.email for p in people)
    assert run.external_id and run.campaign.status == "completed"
    actions = [
        {"type": "UpdateDeliveryStatus", "status": "delivered", "externalId": run.external_id,
         "email": person.email, "eventId": f"d-{person.pk}"}
        for person in people[:100]
    ]  # fmt: skip
    assert post(client, integration, actions).status_code == 200
    assert Delivery.objects.filter(run=run, status="delivered").count() == 100


def kill_worker(worker: CeleryWorker) -> None:
    """SIGKILL the worker and its pool at once: nothing cleans up or acknowledges."""
    main = psutil.Process(worker.process.pid)
    for process in [*main.children(recursive=True), main]:
        os.kill(process.pid, signal.SIGKILL)
    worker.process.wait()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_the_service_creates_the_campaign_resumes_and_creates_it_once(
    service,
):
    integration = connect(service)
    people = vip(1500)
    # The service creates the campaign, then takes its time answering: the worker dies
    # waiting, with the campaign created at the service and its id unknown to Herald.
    service.delay["POST /campaigns"] = 30.0
    dead = CeleryWorker()
    with dead:
        run = lifecycle.campaign_launch_now(
            campaign=make_campaign(status="draft", integration=integration)
        )
        wait_for(lambda: service.create_calls == 1, timeout=60)
        kill_worker(dead)
    run.refresh_from_db()
    assert (run.external_status, run.external_id, run.status) == ("creating", "", "running")
    service.delay.clear()

    # The recovery beat finds the run's rows untouched and starts its senders again.
    assert pipeline.runs_recover(stall=timedelta(0))["enqueued"] == 1
    with CeleryWorker():
        run = wait_for(
            lambda: CampaignRun.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).first(),
            timeout=60,
        )

    campaign_id = f"herald-run-{run.pk}"
    assert service.create_calls == 2
    assert len(service.campaigns) == 1
    assert run.external_id == service.campaigns[campaign_id]["id"]
    assert len(service.prepared[campaign_id]) == 2  # 1000 + 500, each once
    assert sorted(service.audiences[campaign_id]) == sorted(p.email for p in people)
    assert Delivery.objects.filter(run=run, status="sent").count() == 1500
