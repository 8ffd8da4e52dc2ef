"""Events are stored, then processed by a real worker (marketing.tasks_events.process_event)."""

import datetime as dt

import pytest
from django.utils import timezone

from marketing.events import events_enqueue_unprocessed, events_mark_processed
from marketing.models import Event, EventType
from tests.conftest import wait_for


@pytest.mark.worker
def test_posted_event_and_order_events_are_processed_by_a_worker(api, full_key, celery_worker):
    response = api.post(
        "/api/v1/event", key=full_key, body={"eventTypeKey": "worked", "keyValue": "1"}
    )
    event_id = response.json()["id"]
    assert wait_for(
        lambda: Event.objects.filter(pk=event_id, processed_at__isnull=False).exists(), timeout=30
    )
    order = {
        "externalOrderId": "w1",
        "externalCustomerId": "c1",
        "totalCost": 1,
        "status": "INITIALIZED",
        "date": "2026-01-01T00:00:00Z",
        "currency": "EUR",
    }
    api.post(
        "/api/v1/orders", key=full_key, body={"orders": [order, {**order, "externalOrderId": "w2"}]}
    )
    assert wait_for(
        lambda: (
            Event.objects.filter(
                event_type__key="orderINITIALIZED", processed_at__isnull=False
            ).count()
            == 2
        ),
        timeout=30,
    )


@pytest.mark.django_db
def test_marking_processed_is_idempotent():
    event_type = EventType.objects.create(key="k")
    event = Event.objects.create(event_type=event_type, key_value="1")
    assert events_mark_processed(event_ids=[event.pk]) == 1
    first = Event.objects.get(pk=event.pk).processed_at
    assert events_mark_processed(event_ids=[event.pk]) == 0
    assert Event.objects.get(pk=event.pk).processed_at == first


@pytest.mark.django_db
def test_sweep_picks_only_old_unprocessed_events(django_capture_on_commit_callbacks):
    event_type = EventType.objects.create(key="k")
    old = Event.objects.create(event_type=event_type, key_value="old")
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    Event.objects.create(event_type=event_type, key_value="fresh")
    done = Event.objects.create(event_type=event_type, key_value="done")
    Event.objects.filter(pk=done.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=1), processed_at=timezone.now()
    )
    assert events_enqueue_unprocessed() == 1


def test_beat_entries_name_registered_tasks(settings):
    from config.celery import app

    app.loader.import_default_modules()
    for entry in ("marketing-events-sweep", "marketing-rfm-recompute"):
        assert settings.CELERY_BEAT_SCHEDULE[entry]["task"] in app.tasks


@pytest.mark.worker
def test_worker_recomputes_rfm_by_the_beat_task_name(api, full_key, celery_worker):
    from config.celery import app
    from marketing.models import RFMScore

    order = {
        "externalOrderId": "r1",
        "externalCustomerId": "c1",
        "totalCost": 10,
        "status": "DELIVERED",
        "date": "2026-01-01T00:00:00Z",
        "currency": "EUR",
        "email": "rfm@example.com",
    }
    api.post("/api/v1/orders", key=full_key, body={"orders": [order]})
    app.send_task("marketing.rfm_recompute")
    assert wait_for(lambda: RFMScore.objects.filter(contact__email="rfm@example.com").exists())
