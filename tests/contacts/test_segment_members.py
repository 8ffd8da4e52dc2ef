"""Dynamic segments' stored members: marked by writes, evaluated by the drain, with
segmentEntered / segmentLeft events (contacts.segment_members)."""

import threading

import pytest
from django.db import connection, connections

from contacts import segment_members
from contacts.bulk.jobs import import_job_run
from contacts.models import (
    Contact,
    DynamicMember,
    ImportJob,
    SegmentChange,
    SegmentKind,
    SegmentRecheck,
)
from contacts.segment_members import (
    segment_members_drain,
    segment_members_fill,
    segments_refresh,
)
from contacts.segments import segment_create, segment_update
from contacts.services import contact_delete, contact_update
from marketing.events import event_ingest, events_process_pending
from marketing.models import Event
from marketing.orders import orders_upsert
from tests.contacts.factories import ContactFactory


@pytest.fixture(autouse=True)
def published(monkeypatch):
    """Tasks the module would publish (fills, further drains), kept instead of sent."""
    sent: list = []
    monkeypatch.setattr(segment_members, "_publish", lambda task, **kw: sent.append(task))
    return sent


def dynamic(name: str, filter: dict):
    segment = segment_create(name=name, kind=SegmentKind.DYNAMIC, filter=filter)
    segment_members_fill(segment_id=segment.pk)
    segment.refresh_from_db()
    return segment


def segment_events(type_key: str | None = None):
    events = Event.objects.filter(event_type__key__in=["segmentEntered", "segmentLeft"])
    if type_key:
        events = events.filter(event_type__key=type_key)
    return list(events.order_by("id").values_list("event_type__key", "contact_id", "params"))


def members(segment) -> set[int]:
    return set(DynamicMember.objects.filter(segment=segment).values_list("contact_id", flat=True))


@pytest.mark.django_db
def test_a_contact_update_enters_and_then_leaves_a_segment_with_one_event_each():
    vip = dynamic("VIP", {"tags": "vip"})
    ann = ContactFactory(email="ann@example.com")
    segment_members_drain()
    assert segment_events() == []

    contact_update(contact=ann, data={"tags": ["vip"]})
    assert SegmentRecheck.objects.filter(contact=ann).exists()
    assert segment_members_drain() == 1
    assert members(vip) == {ann.pk}
    assert segment_events() == [
        ("segmentEntered", ann.pk, {"segmentId": vip.pk, "segmentName": "VIP"})
    ]
    assert not SegmentRecheck.objects.exists()

    segment_members_drain()  # nothing marked: nothing emitted again
    contact_update(contact=ann, data={"tags": []})
    segment_members_drain()
    assert members(vip) == set()
    assert [key for key, _, _ in segment_events()] == ["segmentEntered", "segmentLeft"]
    assert list(SegmentChange.objects.order_by("id").values_list("entered", flat=True)) == [
        True,
        False,
    ]


@pytest.mark.django_db
def test_a_new_segment_is_filled_without_events_then_followed_incrementally():
    ann = ContactFactory(tags=["vip"])
    bob = ContactFactory(tags=["vip"])
    ContactFactory(tags=[])
    vip = segment_create(name="VIP", kind=SegmentKind.DYNAMIC, filter={"tags": "vip"})
    assert vip.members_filled_at is None
    assert segment_members_fill(segment_id=vip.pk) == 2
    assert segment_members_fill(segment_id=vip.pk) is None  # once
    assert members(vip) == {ann.pk, bob.pk}
    assert segment_events() == []

    # A new filter starts afresh, again without events.
    segment_update(segment=vip, filter={"tags": "gold"})
    vip.refresh_from_db()
    assert vip.members_filled_at is None and members(vip) == {ann.pk, bob.pk}
    segment_members_drain()  # fills what waits for its first fill
    vip.refresh_from_db()
    assert vip.members_filled_at is not None and members(vip) == set()
    assert segment_events() == []


@pytest.mark.django_db
def test_a_deleted_contact_leaves_its_segments():
    vip = dynamic("VIP", {"tags": "vip"})
    ann = ContactFactory(tags=["vip"])
    segment_members_drain()
    assert members(vip) == set()  # created by a factory: not marked, not a member yet
    contact_update(contact=ann, data={"firstName": "Ann"})
    segment_members_drain()
    assert members(vip) == {ann.pk}

    contact_delete(contact=ann, erase=False)
    segment_members_drain()
    assert members(vip) == set()
    assert segment_events("segmentLeft") == [
        ("segmentLeft", ann.pk, {"segmentId": vip.pk, "segmentName": "VIP"})
    ]


@pytest.mark.django_db
def test_bulk_upsert_of_a_thousand_contacts_marks_and_evaluates_them_in_batches(
    api, full_key, monkeypatch
):
    vip = dynamic("VIP", {"tags": {"$in": ["vip"]}})
    others = dynamic("Not VIP", {"tags": {"$nin": ["vip"]}})
    body = {
        "contacts": [
            {
                "channels": [{"type": "email", "value": f"bulk{i}@example.com"}],
                "tags": ["vip"] if i % 4 == 0 else [],
            }
            for i in range(1000)
        ],
        "dedupeOn": "email",
    }
    response = api.post("/api/v1/contacts", key=full_key, body=body)
    assert response.status_code == 200, response.content
    session = response.json()["asyncSessionId"]
    with CountingQueries() as queries:
        import_job_run(job_id=ImportJob.objects.get(session_id=session).pk)
    marking = [sql for sql in queries.statements if "segmentrecheck" in sql]
    assert 1 <= len(marking) <= 2, "one marking statement per import batch"
    assert SegmentRecheck.objects.count() == 1000

    evaluations: list[int] = []
    evaluate = segment_members._evaluate
    monkeypatch.setattr(
        segment_members,
        "_evaluate",
        lambda compiled, ids: evaluations.append(len(ids)) or evaluate(compiled, ids),
    )
    assert segment_members_drain() == 1000
    # One statement per batch of contacts, whatever the number of segments.
    assert evaluations == [segment_members.DRAIN_BATCH] * 2
    assert len(members(vip)) == 250 and len(members(others)) == 750
    assert len(segment_events("segmentEntered")) == 1000


class CountingQueries:
    def __enter__(self):
        from django.test.utils import CaptureQueriesContext

        self._capture = CaptureQueriesContext(connection)
        self._capture.__enter__()
        return self

    def __exit__(self, *exc):
        self._capture.__exit__(*exc)
        self.statements = [q["sql"] for q in self._capture.captured_queries]


@pytest.mark.django_db
def test_an_order_changes_an_order_based_filter():
    buyers = dynamic("Buyers", {"orders.count": {"$gte": 2}})
    ann = ContactFactory(external_customer_id="c-1", email="ann@example.com")

    def order(number: str, status: str = "DELIVERED") -> dict:
        return {
            "externalOrderId": number,
            "externalCustomerId": "c-1",
            "status": status,
            "totalCost": "10",
            "currency": "EUR",
            "date": "2026-11-01T10:00:00Z",
        }

    orders_upsert(orders=[order("o-1")])
    segment_members_drain()
    assert members(buyers) == set()
    orders_upsert(orders=[order("o-2")])
    segment_members_drain()
    assert members(buyers) == {ann.pk}
    orders_upsert(orders=[order("o-2", "CANCELLED")])
    segment_members_drain()
    assert members(buyers) == set()
    assert [key for key, _, _ in segment_events()] == ["segmentEntered", "segmentLeft"]


@pytest.mark.django_db
def test_an_event_changes_an_event_based_filter():
    abandoned = dynamic("Abandoned carts", {"events": "cartAbandoned"})
    ann = ContactFactory(email="ann@example.com")
    event_ingest(
        type_key="cartAbandoned",
        key_value="ann@example.com",
        params={},
        lookup=_lookup("ann@example.com"),
    )
    events_process_pending()  # the event drain marks the event's contact
    segment_members_drain()
    assert members(abandoned) == {ann.pk}
    entered = segment_events("segmentEntered")
    assert entered == [
        ("segmentEntered", ann.pk, {"segmentId": abandoned.pk, "segmentName": "Abandoned carts"})
    ]
    # The segment event itself marks nobody (a filter on it would loop).
    events_process_pending()
    assert not SegmentRecheck.objects.exists()


def _lookup(key: str):
    from marketing.events import contact_lookup_for

    return contact_lookup_for(key_value=key, params={})


@pytest.mark.django_db
def test_the_refresh_emits_the_differences_the_writes_did_not_show():
    from contacts.unsubscribed import unsubscribed_add

    reachable = dynamic("Reachable", {"unsubscribed": False})
    ann = ContactFactory(email="ann@example.com")
    segments_refresh()
    assert members(reachable) == {ann.pk}
    # A change no contact write shows: a contact's address put on the list behind the
    # services' back (as a recomputation of RFM scores would change an RFM filter).
    from contacts.models import Unsubscribed

    Unsubscribed.objects.create(email="ann@example.com")
    assert segments_refresh() == 1
    assert members(reachable) == set()
    assert [key for key, _, _ in segment_events()] == ["segmentEntered", "segmentLeft"]
    Unsubscribed.objects.all().delete()
    unsubscribed_add(emails=["bob@example.com"])  # the service marks the carriers
    assert not SegmentRecheck.objects.exists()  # nobody carries bob's address


@pytest.mark.django_db
def test_a_crash_mid_drain_writes_nothing_and_the_retry_emits_once(monkeypatch):
    vip = dynamic("VIP", {"tags": "vip"})
    ann = ContactFactory()
    contact_update(contact=ann, data={"tags": ["vip"]})

    def crash(changes, names):
        raise RuntimeError("worker died")

    with monkeypatch.context() as patched:
        patched.setattr(segment_members, "_emit", crash)
        with pytest.raises(RuntimeError):
            segment_members_drain()
    assert SegmentRecheck.objects.filter(contact=ann).count() == 1
    assert members(vip) == set() and not SegmentChange.objects.exists()

    segment_members_drain()
    segment_members_drain()
    assert members(vip) == {ann.pk}
    assert len(segment_events("segmentEntered")) == 1
    assert not SegmentRecheck.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_drains_side_by_side_emit_each_change_once():
    vip = dynamic("VIP", {"tags": "vip"})
    contacts = [ContactFactory() for _ in range(20)]
    for contact in contacts:
        # Each contact marked three times: its rows land in both drains' batches.
        Contact.objects.filter(pk=contact.pk).update(tags=["vip"])
        segment_members.contacts_mark_changed(contact_ids=[contact.pk] * 3)
    start = threading.Barrier(2)
    errors: list = []

    def drain():
        try:
            start.wait()
            while segment_members_drain(batches=1, batch_size=7):
                pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert members(vip) == {c.pk for c in contacts}
    entered = segment_events("segmentEntered")
    assert sorted(contact_id for _, contact_id, _ in entered) == sorted(c.pk for c in contacts)
    assert not SegmentRecheck.objects.exists()


@pytest.mark.django_db
def test_the_changes_api_lists_recent_entries_and_leaves_with_contact_ids(api, full_key):
    vip = dynamic("VIP", {"tags": "vip"})
    ann, bob = ContactFactory(), ContactFactory()
    before = "2000-01-01T00:00:00Z"
    contact_update(contact=ann, data={"tags": ["vip"]})
    contact_update(contact=bob, data={"tags": ["vip"]})
    segment_members_drain()
    contact_update(contact=ann, data={"tags": []})
    segment_members_drain()

    response = api.get(f"/api/herald/segments/{vip.pk}/changes?since={before}", key=full_key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["entered"], body["left"], body["next"]) == (2, 1, None)
    assert [(c["contactId"], c["change"]) for c in body["changes"]] == [
        (ann.pk, "entered"),
        (bob.pk, "entered"),
        (ann.pk, "left"),
    ]

    first = api.get(f"/api/herald/segments/{vip.pk}/changes?since={before}&limit=2", key=full_key)
    assert [c["change"] for c in first.json()["changes"]] == ["entered", "entered"]
    after = first.json()["next"]
    rest = api.get(
        f"/api/herald/segments/{vip.pk}/changes?since={before}&limit=2&after={after}",
        key=full_key,
    )
    assert [(c["contactId"], c["change"]) for c in rest.json()["changes"]] == [(ann.pk, "left")]
    assert rest.json()["next"] is None

    later = api.get(f"/api/herald/segments/{vip.pk}/changes?since=2999-01-01", key=full_key)
    assert later.json()["changes"] == [] and later.json()["entered"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "since"),
        ("since=yesterday", "since"),
        ("since=2026-01-01&limit=0", "limit"),
        ("since=2026-01-01&limit=5000", "limit"),
        ("since=2026-01-01&after=x", "after"),
    ],
)
def test_bad_changes_queries_are_400_naming_the_field(api, full_key, query, field):
    vip = dynamic("VIP", {"tags": "vip"})
    response = api.get(f"/api/herald/segments/{vip.pk}/changes?{query}", key=full_key)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.django_db
def test_changes_of_a_static_segment_are_400_and_an_unknown_one_404(api, full_key):
    from tests.contacts.factories import SegmentFactory

    static = SegmentFactory()
    response = api.get(f"/api/herald/segments/{static.pk}/changes?since=2026-01-01", key=full_key)
    assert response.status_code == 400 and "segment" in response.json()
    missing = api.get("/api/herald/segments/999999/changes?since=2026-01-01", key=full_key)
    assert missing.status_code == 404


@pytest.mark.django_db
def test_a_workflow_starts_on_segment_entered_for_its_segment_only(
    django_capture_on_commit_callbacks,
):
    from marketing.workflows.models import WorkflowRun
    from tests.workflows.conftest import chain, make_workflow

    vip = dynamic("VIP", {"tags": "vip"})
    gold = dynamic("Gold", {"tags": "gold"})
    workflow = make_workflow(
        chain({"kind": "wait", "mode": "duration", "seconds": 3600}),
        event_key="segmentEntered",
        trigger_conditions=[{"param": "segmentId", "op": "eq", "value": str(vip.pk)}],
    )
    ann, bob = ContactFactory(), ContactFactory()
    contact_update(contact=ann, data={"tags": ["vip"]})
    contact_update(contact=bob, data={"tags": ["gold"]})
    segment_members_drain()
    with django_capture_on_commit_callbacks(execute=True):
        events_process_pending()
    runs = WorkflowRun.objects.filter(workflow=workflow)
    assert list(runs.values_list("contact_id", flat=True)) == [ann.pk]
    assert runs.get().params == {"segmentId": vip.pk, "segmentName": "VIP"}
    assert members(gold) == {bob.pk}


@pytest.mark.django_db
def test_the_segment_page_shows_members_and_recent_changes(client, viewer):
    vip = dynamic("VIP", {"tags": "vip"})
    ann = ContactFactory(first_name="Ann", last_name="Lee")
    client.force_login(viewer)
    page = client.get(f"/segments/{vip.pk}/")
    assert page.status_code == 200
    assert page.context["members_count"] == 0

    contact_update(contact=ann, data={"tags": ["vip"]})
    segment_members_drain()
    contact_update(contact=ann, data={"tags": []})
    segment_members_drain()
    contact_update(contact=ann, data={"tags": ["vip"]})
    segment_members_drain()
    page = client.get(f"/segments/{vip.pk}/")
    html = page.content.decode()
    assert page.context["members_count"] == 1
    assert page.context["changes_day"] == {"entered": 2, "left": 1}
    assert 'data-testid="members-count">1<' in html
    assert "Ann Lee" in html

    segment_update(segment=vip, filter={"tags": "gold"})
    pending = client.get(f"/segments/{vip.pk}/").content.decode()
    assert 'data-testid="members-pending"' in pending


@pytest.mark.django_db
def test_a_segment_naming_another_follows_its_filter_change_through_a_refresh(
    published, django_capture_on_commit_callbacks
):
    vip = dynamic("VIP", {"tags": "vip"})
    kyiv_vip = dynamic("VIP in Kyiv", {"segment": vip.pk, "town": "Kyiv"})
    ann = ContactFactory(tags=["gold"], town="Kyiv")
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        segment_update(segment=vip, filter={"tags": "gold"})
    assert published == [segment_members.FILL_TASK, segment_members.REFRESH_TASK]
    segment_members_drain()  # fills VIP afresh, without events
    assert segments_refresh() == 1
    assert members(kyiv_vip) == {ann.pk}
    assert segment_events() == [
        ("segmentEntered", ann.pk, {"segmentId": kyiv_vip.pk, "segmentName": "VIP in Kyiv"})
    ]
