"""Webhook requests are answered once their parsed actions are queued on the stored row, and
drains apply them later in batches (integrations.webhooks): one batch of many requests is one
ledger statement per status, with each request's own counts; a request that fails to apply
does not hold up the others; a drain that dies leaves its batch queued for the next; the beat
drain applies requests whose kick was lost; the same event in two requests applies once; and
a real worker applies what a request kicked."""

import json
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

import integrations.tasks  # noqa: F401 (registers the tasks beat starts)
from campaigns.delivery import feedback
from campaigns.delivery.feedback import (
    SendEmail,
    Unsubscribe,
    UpdateCampaign,
    UpdateCampaignStats,
    UpdateDeliveryStatus,
    WebhookResult,
)
from campaigns.delivery.providers import (
    CampaignStats,
    CampaignStatus,
    DeliveryStatus,
    Provider,
    WebhookCall,
    provider_register,
)
from campaigns.models import Delivery, DeliveryEvent
from config.celery import app as celery_app
from config.core.models import Integration
from contacts.models import Suppression, Unsubscribed
from integrations import webhooks
from integrations.models import WebhookRequest
from integrations.webhooks import actions_dump, actions_load, webhook_requests_drain
from tests.conftest import wait_for
from tests.support import worker
from tests.support.webhooks import webhooks_drain


@provider_register
class QueueingProvider(Provider):
    """Its body is a JSON list of events: {"status", "id" (provider message id), "event"},
    or {"unsubscribe": address}."""

    kind = "test-queueing"
    channels = frozenset({"email"})

    def webhook_authenticate(self, call: WebhookCall) -> None:
        return None

    def webhook_parse(self, call: WebhookCall) -> WebhookResult:
        actions: list = []
        for item in call.json():
            if "unsubscribe" in item:
                actions.append(Unsubscribe(email=item["unsubscribe"]))
            else:
                actions.append(
                    UpdateDeliveryStatus(
                        status=DeliveryStatus(item["status"]),
                        message_id=item["id"],
                        event_id=item["event"],
                        detail=item.get("detail", ""),
                    )
                )
        return WebhookResult(actions=actions)


@pytest.fixture
def integration(db):
    return Integration.objects.create(kind="test-queueing", name="Queueing", channels=["email"])


def sent(email: str, provider_id: str) -> Delivery:
    return Delivery.objects.create(
        channel="email", locator=email, status="sent", provider_message_id=provider_id
    )


def post(client, integration, events: list[dict]):
    """POST without draining: what the service sees."""
    return client.post(
        f"/webhooks/{integration.webhook_key}/",
        data=json.dumps(events),
        content_type="application/json",
    )


def delivered(provider_id: str, event: str) -> dict:
    return {"status": "delivered", "id": provider_id, "event": event}


@pytest.mark.django_db
def test_the_service_is_answered_once_the_actions_are_queued_and_a_drain_applies_them(
    client, integration
):
    delivery = sent("reader@example.com", "q-1")
    response = post(client, integration, [delivered("q-1", "ev-1")])
    assert response.status_code == 200
    stored = WebhookRequest.objects.get()
    assert (stored.outcome, stored.actions, stored.applied) == ("queued", 1, 0)
    assert stored.response_status == 200 and stored.processed_at is None
    assert actions_load(stored.pending) == [
        UpdateDeliveryStatus(status=DeliveryStatus.DELIVERED, message_id="q-1", event_id="ev-1")
    ]
    delivery.refresh_from_db()
    assert delivery.status == "sent"  # nothing applied while the service waited

    assert webhook_requests_drain() == 1
    stored.refresh_from_db()
    assert (stored.outcome, stored.actions, stored.applied) == ("applied", 1, 1)
    assert stored.pending is None and stored.processed_at is not None
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert webhook_requests_drain() == 0


@pytest.mark.django_db
def test_a_request_without_actions_is_recorded_applied_without_a_drain(client, integration):
    assert post(client, integration, []).status_code == 200
    stored = WebhookRequest.objects.get()
    assert (stored.outcome, stored.actions, stored.applied) == ("applied", 0, 0)
    assert webhook_requests_drain() == 0


@pytest.mark.django_db
def test_many_requests_are_applied_in_one_batch_with_each_requests_own_counts(
    client, integration, monkeypatch
):
    readers = [sent(f"r{n}@example.com", f"m-{n}") for n in range(40)]
    gone = sent("gone@example.com", "m-gone")
    answers = [post(client, integration, [delivered(f"m-{n}", f"d-{n}")]) for n in range(40)]
    # One request with three events: two opens of one message (each counts) and a hard
    # bounce, which suppresses its address (a change of its own).
    answers.append(
        post(
            client,
            integration,
            [
                {"status": "opened", "id": "m-0", "event": "o-1"},
                {"status": "opened", "id": "m-0", "event": "o-2"},
                {"status": "bounced", "id": "m-gone", "event": "b-1", "detail": "550 unknown"},
            ],
        )
    )
    answers.append(post(client, integration, [delivered("m-1", "d-1")]))  # a repeat of d-1
    answers.append(post(client, integration, [delivered("never-sent", "x-1")]))
    assert {answer.status_code for answer in answers} == {200}
    ids = list(WebhookRequest.objects.order_by("id").values_list("id", flat=True))
    assert WebhookRequest.objects.filter(outcome="queued").count() == 43

    statements: list[set[str]] = []  # the ledger's statements: one per status in each call
    real = feedback.deliveries_feedback

    def deliveries_feedback(rows):
        statements.append({row[1] for row in rows})
        return real(rows)

    monkeypatch.setattr(feedback, "deliveries_feedback", deliveries_feedback)
    assert webhook_requests_drain(batches=1) == 43
    # delivered, opened and bounced, each in one statement for the whole batch; the second
    # open of m-0 comes after the first, in a round of its own, as it would one by one.
    assert statements == [{"delivered", "opened", "bounced"}, {"opened"}]

    counts = dict(WebhookRequest.objects.values_list("id", "applied"))
    assert [counts[pk] for pk in ids[:40]] == [1] * 40
    assert counts[ids[40]] == 4  # opened twice, bounced, suppressed
    assert counts[ids[41]] == 0  # the same event as an earlier request: applied once
    assert counts[ids[42]] == 0  # names no message Herald sent
    assert set(WebhookRequest.objects.values_list("outcome", flat=True)) == {"applied"}
    assert WebhookRequest.objects.get(pk=ids[40]).actions == 3
    for reader in readers[1:]:
        reader.refresh_from_db()
        assert reader.status == "delivered"
    readers[0].refresh_from_db()
    assert (readers[0].status, readers[0].open_count) == ("opened", 2)
    assert DeliveryEvent.objects.filter(delivery=readers[1], status="delivered").count() == 1
    gone.refresh_from_db()
    assert gone.status == "bounced"
    assert Suppression.objects.get().address == "gone@example.com"

    # Posted again later (a service retrying): stored, queued, applied as nothing new.
    post(client, integration, [delivered("m-2", "d-2")])
    assert webhook_requests_drain() == 1
    assert WebhookRequest.objects.order_by("-id").first().applied == 0
    assert DeliveryEvent.objects.filter(delivery=readers[2]).count() == 1


@pytest.mark.django_db
def test_a_request_that_fails_to_apply_is_recorded_failed_and_the_others_are_applied(
    client, integration, monkeypatch
):
    first, second, third = (sent(f"{n}@example.com", f"f-{n}") for n in range(3))
    real = feedback.unsubscribed_add

    def unsubscribed_add(*, emails, reason=""):
        if "boom@example.com" in emails:
            raise RuntimeError("unsubscribed list unavailable")
        return real(emails=emails, reason=reason)

    monkeypatch.setattr(feedback, "unsubscribed_add", unsubscribed_add)
    post(client, integration, [delivered("f-0", "e-0")])
    post(client, integration, [delivered("f-1", "e-1"), {"unsubscribe": "boom@example.com"}])
    post(client, integration, [delivered("f-2", "e-2"), {"unsubscribe": "fine@example.com"}])
    assert webhook_requests_drain() == 3

    outcomes = list(WebhookRequest.objects.order_by("id").values_list("outcome", "applied"))
    assert outcomes == [("applied", 1), ("failed", 0), ("applied", 2)]
    failed = WebhookRequest.objects.get(outcome="failed")
    assert "unsubscribed list unavailable" in failed.error
    assert failed.actions == 2
    # The failing request's own status change was rolled back with it; it waits for a replay.
    assert [Delivery.objects.get(pk=d.pk).status for d in (first, second, third)] == [
        "delivered",
        "sent",
        "delivered",
    ]
    assert list(Unsubscribed.objects.values_list("email", flat=True)) == ["fine@example.com"]

    monkeypatch.setattr(feedback, "unsubscribed_add", real)
    assert webhooks.webhook_replay(failed) == 200
    failed.refresh_from_db()
    assert (failed.outcome, failed.applied, failed.replays) == ("applied", 2, 1)
    second.refresh_from_db()
    assert second.status == "delivered"


@pytest.mark.django_db(transaction=True)
def test_a_drain_that_dies_leaves_its_batch_queued_for_the_next(client, integration, monkeypatch):
    kicks: list = []
    monkeypatch.setattr(webhooks, "_drain_publish", kicks.append)
    delivery = sent("lease@example.com", "l-1")
    assert post(client, integration, [delivered("l-1", "e-1")]).status_code == 200
    assert kicks, "the committed request kicked a drain"

    # Another worker's drain has locked the row and is applying it...
    other = psycopg.connect(worker.test_database_url(), autocommit=False)
    table = WebhookRequest._meta.db_table
    other.execute(f"SELECT id FROM {table} WHERE outcome = 'queued' FOR UPDATE")  # noqa: S608
    # ... so this drain skips it without waiting, and applies nothing twice.
    assert webhook_requests_drain() == 0
    # That worker dies (its connection ends): its transaction rolls back, the row is free.
    # (With a timeout, pg_terminate_backend waits until the backend is gone and its locks
    # with it; without one it only sends the signal, and the next drain could come first.)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [other.info.backend_pid])
    other.close()
    assert webhook_requests_drain() == 1
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert WebhookRequest.objects.get().outcome == "applied"


@pytest.mark.django_db(transaction=True)
def test_single_events_share_a_debounced_drain(client, integration, monkeypatch):
    published: list = []
    monkeypatch.setattr(webhooks, "_drain_publish", published.append)
    monkeypatch.setattr(webhooks, "_kicker", webhooks._Kicker())
    monkeypatch.setattr(webhooks, "_clock", lambda: 1000.0)  # every post at the same instant
    for n in range(5):
        post(client, integration, [delivered(f"k-{n}", f"e-{n}")])
    # The first at once; the next one KICK_INTERVAL later sees the other four.
    assert published == [None, pytest.approx(webhooks.KICK_INTERVAL)]


@pytest.mark.django_db
def test_a_services_batch_of_events_is_applied_while_it_waits(client, integration):
    size = webhooks.APPLY_AT_ONCE_ACTIONS
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            channel="email",
            locator=f"b{n}@example.com",
            status="sent",
            provider_message_id=f"b-{n}",
        )
        for n in range(size)
    )
    small = post(client, integration, [delivered(f"b-{n}", f"e-{n}") for n in range(size - 1)])
    assert small.status_code == 200
    assert WebhookRequest.objects.get().outcome == "queued"
    batch = [delivered(f"b-{n}", f"e-{n}") for n in range(size)]  # the same 99 and one more
    assert post(client, integration, batch).status_code == 200
    stored = WebhookRequest.objects.order_by("-id").first()
    assert (stored.outcome, stored.actions, stored.applied) == ("applied", size, size)
    assert stored.pending is None
    assert (
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries], status="delivered").count()
        == size
    )
    # The queued request comes after: its events were applied already.
    assert webhook_requests_drain() == 1
    assert WebhookRequest.objects.order_by("id").first().applied == 0


@pytest.mark.django_db(transaction=True)
def test_the_beat_drain_applies_requests_whose_kick_was_lost(client, integration, monkeypatch):
    from django.conf import settings

    class BrokerDown:
        def apply_async(self, countdown=None):
            raise ConnectionError("broker unreachable")

    monkeypatch.setattr(webhooks, "signature", lambda name: BrokerDown())
    delivery = sent("sweep@example.com", "s-1")
    assert post(client, integration, [delivered("s-1", "e-1")]).status_code == 200
    assert WebhookRequest.objects.get().outcome == "queued"

    entry = settings.CELERY_BEAT_SCHEDULE["integrations-webhooks-drain"]
    assert entry["task"] == webhooks.DRAIN_TASK
    assert celery_app.tasks[entry["task"]]() == 1  # what beat starts
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_queued_actions_read_back_as_the_parser_made_them():
    at = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
    actions = [
        UpdateDeliveryStatus(
            status=DeliveryStatus.SOFT_BOUNCED,
            email="a@example.com",
            external_id="camp-1",
            message_id="m",
            herald_id="<abc@x>",
            event_id="e",
            detail="452 mailbox full",
            url="https://x.example/",
            at=at,
        ),
        Unsubscribe(email="b@example.com", external_id="news", all=False, reason="asked"),
        UpdateCampaign(external_id="camp-1", status=CampaignStatus.SENDING),
        UpdateCampaignStats(
            external_id="camp-1",
            stats=CampaignStats(status=CampaignStatus.SENT, sent=10, delivered=9, opened=3),
        ),
        UpdateCampaignStats(external_id="camp-2", stats=CampaignStats(sent=1)),
        SendEmail(to="c@example.com", subject="Hi ✓", html="<p>x</p>", from_name="Ö"),
    ]
    assert actions_load(actions_dump(actions)) == actions
    assert actions_load(json.loads(actions_dump(actions))) == actions
    with pytest.raises(KeyError):
        actions_load('[{"action": "DropTables"}]')


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_applies_what_a_request_kicked(client, celery_worker):
    integration = Integration.objects.create(
        kind="test-queueing", name="Queueing", channels=["email"]
    )
    deliveries = [sent(f"w{n}@example.com", f"w-{n}") for n in range(5)]
    for n in range(5):
        assert post(client, integration, [delivered(f"w-{n}", f"e-{n}")]).status_code == 200
    wait_for(lambda: not WebhookRequest.objects.filter(outcome="queued").exists(), timeout=30)
    assert set(WebhookRequest.objects.values_list("outcome", "applied")) == {("applied", 1)}
    assert (
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries], status="delivered").count() == 5
    )
    assert webhooks_drain() == 0
