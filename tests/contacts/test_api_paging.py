"""Each API family pages one way: the eSputnik v1 lists by `startindex`/`maxrows` with the
total in the `TotalCount` header; Herald's own lists by `limit` and the `next` they give,
with the `total` of matching rows on every page."""

import pytest

from contacts.models import Suppression
from tests.contacts.factories import ContactFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def test_esputnik_lists_page_by_position_with_the_total_in_a_header(api, full_key):
    segment = SegmentFactory(name="Paged")
    people = [ContactFactory(email=f"p{n}@example.com") for n in range(5)]
    segment.contacts.add(*people)
    for path in ("/api/v1/contacts", f"/api/v1/group/{segment.pk}/contacts"):
        page = api.get(f"{path}?startindex=2&maxrows=2", key=full_key)
        assert page.status_code == 200, page.content
        assert page["TotalCount"] == "5"
        assert [c["id"] for c in page.json()] == [people[1].pk, people[2].pk]
    groups = api.get("/api/v1/groups/?startindex=1&maxrows=1", key=full_key)
    assert int(groups["TotalCount"]) >= 1 and len(groups.json()) == 1


def test_herald_lists_say_the_total_beside_the_next_page(api, full_key):
    for n in range(3):
        Suppression.objects.create(channel="email", address=f"s{n}@example.com", reason="manual")
    first = api.get("/api/herald/suppressions?limit=2", key=full_key).json()
    assert first["total"] == 3 and len(first["results"]) == 2 and first["next"]
    rest = api.get(f"/api/herald/suppressions?limit=2&after={first['next']}", key=full_key).json()
    assert rest["total"] == 3 and len(rest["results"]) == 1 and rest["next"] is None

    for n in range(3):
        response = api.post(
            "/api/v1/event",
            key=full_key,
            body={"eventTypeKey": "paged", "keyValue": f"k{n}", "params": []},
        )
        assert response.status_code == 200, response.content
    events = api.get("/api/herald/events?limit=2", key=full_key).json()
    assert events["total"] == 3 and len(events["results"]) == 2 and events["next"]
    assert api.get(events["next"], key=full_key).json()["total"] == 3
    orders = api.get("/api/herald/orders", key=full_key).json()
    assert orders["total"] == 0 and orders["results"] == [] and orders["next"] is None
