"""Paging values and ids out of range: a 400 naming the parameter and its range, or a 404,
never a server error; and the OpenAPI schema states the same bounds."""

import base64
import re

import pytest

from tests.contacts.factories import SegmentFactory

pytestmark = pytest.mark.django_db

HUGE = "3948095280303730138911667650560"  # past a PostgreSQL bigint
BIGINT_MAX = 2**63 - 1


@pytest.fixture
def group(db):
    return SegmentFactory(name="Newsletter")


@pytest.mark.parametrize("list_path", ["/api/v1/groups", "/api/v1/contacts", "group-contacts"])
@pytest.mark.parametrize(
    ("query", "name", "allowed"),
    [
        (f"startindex={HUGE}", "startindex", "from 1 to 2147483647"),
        ("startindex=0", "startindex", "from 1 to 2147483647"),
        ("maxrows=501", "maxrows", "from 1 to 500"),
        ("maxrows=0", "maxrows", "from 1 to 500"),
        ("maxrows=²", "maxrows", "from 1 to 500"),
    ],
)
def test_esputnik_paging_out_of_range_is_400_naming_the_parameter_and_range(
    api, full_key, group, list_path, query, name, allowed
):
    if list_path == "group-contacts":
        list_path = f"/api/v1/group/{group.pk}/contacts"
    response = api.get(f"{list_path}?{query}", key=full_key)

    assert response.status_code == 400
    assert list(response.json()) == [name]
    assert allowed in response.json()[name][0]


def test_esputnik_paging_at_its_bounds_is_served(api, full_key, group):
    response = api.get("/api/v1/groups?startindex=2147483647&maxrows=500", key=full_key)

    assert response.status_code == 200
    assert response.json() == []
    assert response["TotalCount"] == "1"


@pytest.mark.parametrize(
    ("query", "name"),
    [(f"offset={HUGE}", "offset"), ("offset=-1", "offset"), ("limit=0", "limit")],
)
def test_campaign_list_paging_out_of_range_is_400(api, full_key, query, name):
    response = api.get(f"/api/crm/marketing/campaigns?{query}", key=full_key)

    assert response.status_code == 400
    assert name in response.json()
    assert "whole number from" in response.json()[name][0]


def test_campaign_list_limit_past_its_maximum_is_400_not_capped(api, full_key):
    response = api.get("/api/crm/marketing/campaigns?limit=1001", key=full_key)

    assert response.status_code == 400
    assert response.json() == {"limit": ["must be a whole number from 1 to 1000, got '1001'"]}


@pytest.mark.parametrize("listing", ["events", "orders"])
@pytest.mark.parametrize("query", ["limit=501", "limit=0", f"limit={HUGE}"])
def test_herald_history_limit_out_of_range_is_400(api, full_key, listing, query):
    response = api.get(f"/api/herald/{listing}?{query}", key=full_key)

    assert response.status_code == 400
    assert response.json() == {
        "limit": [f"must be a whole number from 1 to 500, got '{query.split('=')[1]}'"]
    }


@pytest.mark.parametrize("listing", ["events", "orders"])
@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        # Well-formed, but its position is no date-time: "p=x"
        base64.b64encode(b"p=x").decode(),
    ],
)
def test_herald_history_cursor_it_did_not_give_is_400_naming_it(api, full_key, listing, cursor):
    response = api.get(f"/api/herald/{listing}?cursor={cursor}", key=full_key)

    assert response.status_code == 400
    assert list(response.json()) == ["cursor"]


@pytest.mark.parametrize(
    "query", ["contact=²", f"contact={HUGE}", "contact=-1"], ids=["unicode", "huge", "negative"]
)
def test_history_contact_filter_that_is_no_id_is_400(api, full_key, query):
    response = api.get(f"/api/herald/events?{query}", key=full_key)

    assert response.status_code == 400
    assert list(response.json()) == ["contact"]


@pytest.mark.parametrize("days", ["²", "0", "367", HUGE])
def test_dashboard_days_out_of_range_is_400(api, full_key, days):
    response = api.get(f"/api/crm/marketing/dashboard?days={days}", key=full_key)

    assert response.status_code == 400
    assert response.json()["days"][0].startswith("must be a whole number from 1 to 366")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/contact/{id}"),
        ("PUT", "/api/v1/contact/{id}"),
        ("DELETE", "/api/v1/contact/{id}"),
        ("GET", "/api/v1/group/{id}/contacts"),
        ("POST", "/api/v1/group/{id}/contacts/attach"),
        ("POST", "/api/v1/message/{id}/smartsend"),
        ("GET", "/api/crm/marketing/campaigns/{id}"),
        ("GET", "/api/crm/marketing/campaigns/{id}/analytics"),
        ("POST", "/api/crm/marketing/campaigns/{id}/launch"),
        ("GET", "/api/herald/segments/{id}"),
        ("GET", "/api/herald/custom-fields/{id}"),
        ("GET", "/api/herald/templates/{id}"),
        ("GET", "/api/herald/events/{id}"),
        ("GET", "/api/herald/orders/{id}"),
        ("GET", "/api/herald/event-types/{id}"),
    ],
)
@pytest.mark.parametrize("ident", [HUGE, str(BIGINT_MAX + 1), "0"])
def test_id_out_of_range_is_a_json_404(api, full_key, method, path, ident):
    body = {"recipients": [{"locator": "a@example.com"}]} if method in ("POST", "PUT") else None
    response = api.call(method, path.format(id=ident), key=full_key, body=body)

    assert response.status_code == 404
    assert isinstance(response.json(), dict) and response.json()


def test_schema_states_the_paging_and_id_bounds(client):
    schema = client.get("/api/schema/?format=json").json()
    paths = schema["paths"]

    def parameter(path, method, name):
        found = [p for p in paths[path][method]["parameters"] if p["name"] == name]
        return found[0]["schema"]

    for path in ("/api/v1/groups/", "/api/v1/contacts/", "/api/v1/group/{group_id}/contacts/"):
        assert parameter(path, "get", "startindex") == {
            "type": "integer",
            "minimum": 1,
            "maximum": 2**31 - 1,
            "default": 1,
        }
        assert parameter(path, "get", "maxrows")["maximum"] == 500
    campaigns = "/api/crm/marketing/campaigns/"
    assert parameter(campaigns, "get", "limit")["maximum"] == 1000
    assert parameter(campaigns, "get", "offset")["minimum"] == 0
    assert parameter("/api/herald/events/", "get", "limit")["maximum"] == 500
    for path, name in (
        ("/api/v1/contact/{contact_id}/", "contact_id"),
        ("/api/v1/group/{group_id}/contacts/", "group_id"),
    ):
        assert parameter(path, "get", name) == {
            "type": "integer",
            "minimum": 1,
            "maximum": BIGINT_MAX,
        }
    # Campaigns and segments are named by their id or their external key (`camp-1`).
    for path, name in (
        ("/api/crm/marketing/campaigns/{campaign_id}/", "campaign_id"),
        ("/api/herald/segments/{id}/", "id"),
    ):
        id_schema = parameter(path, "get", name)
        assert id_schema["type"] == "string"
        assert re.fullmatch(id_schema["pattern"], "42")
        assert re.fullmatch(id_schema["pattern"], "camp-1")
        assert not re.fullmatch(id_schema["pattern"], "-x")
        assert not re.fullmatch(id_schema["pattern"], "a" * 101)


def test_too_many_form_fields_is_a_json_400(api, full_key):
    body = "&".join(f"contacts={n}" for n in range(1200))
    response = api.client.post(
        "/api/v1/contacts",
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": api.basic(full_key.secret)},
    )

    assert response.status_code == 400
    assert "number of GET/POST parameters exceeded" in response.json()["detail"]
