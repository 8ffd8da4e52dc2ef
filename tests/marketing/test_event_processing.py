"""Events are stored, then processed by a real worker: by drains (marketing.events_drain)
that each commit kicks, and by the beat sweep for the ones they missed."""

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


# --- Drains: the event row is the queue ----------------------------------------------------


@pytest.fixture
def published_drains(monkeypatch):
    """Drains published by kicks, as their countdowns (None: at once), on a hand-moved clock."""
    from marketing import events

    class Kicks(list):
        now = 100.0

    kicks = Kicks()
    monkeypatch.setattr(events, "_kicker", events._Kicker())
    monkeypatch.setattr(events, "_clock", lambda: kicks.now)
    monkeypatch.setattr(events, "_publish_drain", kicks.append)
    return kicks


def _event(key_value="1", *, contact=None, age=None, processed=False):
    event_type, _ = EventType.objects.get_or_create(key="signup")
    event = Event.objects.create(event_type=event_type, key_value=key_value, contact=contact)
    changes = {}
    if age is not None:
        changes["created_at"] = timezone.now() - age
    if processed:
        changes["processed_at"] = timezone.now()
    if changes:
        Event.objects.filter(pk=event.pk).update(**changes)
    return event


@pytest.mark.django_db
def test_a_stored_event_kicks_a_drain_once_it_commits(
    api, full_key, published_drains, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            "/api/v1/event", key=full_key, body={"eventTypeKey": "k", "keyValue": "1"}
        )
        assert response.status_code == 200
        assert published_drains == []
    for callback in callbacks:
        callback()
    assert published_drains == [None]


def test_kicks_publish_a_drain_at_once_then_at_most_one_per_interval(published_drains):
    from marketing.events import KICK_INTERVAL, _kicker

    def kick_at(offset):
        published_drains.now = 100.0 + offset
        _kicker.kick()

    kick_at(0)  # nothing due: at once
    kick_at(0.01)  # the first may have run already: the next, an interval after it
    kick_at(0.02)  # that one is still due and will see this commit
    kick_at(KICK_INTERVAL + 0.01)  # it has started: the next, an interval after it
    kick_at(10)  # quiet for long: at once again
    assert published_drains == [
        None,
        pytest.approx(KICK_INTERVAL - 0.01),
        pytest.approx(KICK_INTERVAL - 0.01),
        None,
    ]


@pytest.mark.django_db
def test_a_drain_processes_recent_events_and_starts_their_workflows(published_drains):
    from marketing.events import events_process_pending
    from marketing.workflows.models import WorkflowRun
    from tests.contacts.factories import ContactFactory
    from tests.workflows.conftest import chain, make_workflow

    workflow = make_workflow(chain({"kind": "wait", "mode": "duration", "seconds": 3600}))
    ann = ContactFactory(email="ann@example.com")
    recent = [_event(contact=ann), _event("anonymous")]
    old = _event(contact=ann, age=dt.timedelta(hours=1))  # the sweep's
    done = _event(contact=ann, processed=True)

    assert events_process_pending() == 2
    assert set(Event.objects.filter(processed_at__isnull=False).values_list("pk", flat=True)) == {
        *(e.pk for e in recent),
        done.pk,
    }
    assert list(WorkflowRun.objects.values_list("workflow_id", "event_id")) == [
        (workflow.pk, recent[0].pk)
    ]
    assert Event.objects.get(pk=old.pk).processed_at is None
    assert events_process_pending() == 0  # nothing left: a second drain is a no-op


@pytest.mark.django_db
def test_an_event_whose_processing_fails_stays_unprocessed_and_the_rest_go_on(
    published_drains, monkeypatch
):
    from marketing.events import events_process_pending
    from marketing.workflows import triggers
    from marketing.workflows.models import WorkflowRun
    from tests.contacts.factories import ContactFactory
    from tests.workflows.conftest import chain, make_workflow

    make_workflow(chain({"kind": "wait", "mode": "duration", "seconds": 3600}))
    bad, good = ContactFactory(), ContactFactory()
    failing, fine = _event(contact=bad), _event(contact=good)
    insert = triggers.runs_insert

    def insert_then_fail_for_bad(**kwargs):
        started = insert(**kwargs)
        if kwargs["contacts_params"] == [bad.pk]:
            raise RuntimeError("boom")
        return started

    monkeypatch.setattr(triggers, "runs_insert", insert_then_fail_for_bad)
    assert events_process_pending() == 2
    assert Event.objects.get(pk=failing.pk).processed_at is None
    assert Event.objects.get(pk=fine.pk).processed_at is not None
    assert list(WorkflowRun.objects.values_list("contact_id", flat=True)) == [good.pk]


@pytest.mark.django_db
def test_a_drain_hands_a_backlog_on_to_a_new_task(published_drains, monkeypatch):
    from marketing import events

    monkeypatch.setattr(events, "DRAIN_BATCH", 2)
    for n in range(5):
        _event(str(n))
    assert events.events_process_pending(batches=2) == 4
    assert published_drains == [None]
    assert events.events_process_pending(batches=2) == 1
    assert published_drains == [None]
    assert not Event.objects.filter(processed_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_drains_skip_events_another_drain_holds(published_drains):
    import psycopg
    from django.db import connection

    from marketing.events import events_process_pending

    held, free = _event("held"), _event("free")
    settings_dict = connection.settings_dict
    other = psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        host=settings_dict["HOST"],
        port=settings_dict["PORT"],
    )
    try:
        other.execute("SELECT 1 FROM marketing_event WHERE id = %s FOR UPDATE", [held.pk])
        assert events_process_pending() == 1  # no wait for the held row
        assert Event.objects.get(pk=free.pk).processed_at is not None
        assert Event.objects.get(pk=held.pk).processed_at is None
    finally:
        other.close()
