"""Text PostgreSQL cannot store (a lone UTF-16 surrogate, like NUL in tests/test_api_nul.py)
and JSON nested too deeply: a 400 naming the field or the limit on every endpoint, the row
alone in a bulk import, a form error on a page; never a server error, nothing half-stored."""

import json

import pytest

from config.core.parsers import (
    MAX_JSON_DEPTH,
    NUL_PROBLEM,
    SURROGATE_PROBLEM,
    json_depth_over,
    json_text_load,
)
from contacts.bulk.jobs import import_job_run
from contacts.models import Contact, ImportJob, ImportStatus, Segment, SegmentKind
from marketing.models import Event, Order
from tests.contacts.factories import SegmentFactory

pytestmark = pytest.mark.django_db

LONE = "\ud800"
DEPTH_MESSAGE = f"nested deeper than {MAX_JSON_DEPTH} levels"


def email(address: str) -> dict:
    return {"type": "email", "value": address}


ORDER = {
    "externalOrderId": "o-1",
    "externalCustomerId": "c-1",
    "status": "INITIALIZED",
    "totalCost": 10,
    "currency": "USD",
    "date": "2026-01-02T10:00:00Z",
    "email": "buyer@example.com",
}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/contact", {"channels": [email("a@example.com")], "firstName": LONE}, "firstName"),
        (
            "/api/v1/contact",
            {"channels": [email("a@example.com")], "address": {"town": "K" + LONE}},
            "address.town",
        ),
        ("/api/v1/event", {"eventTypeKey": "t", "keyValue": "a" + LONE}, "keyValue"),
        (
            "/api/v1/event",
            {"eventTypeKey": "t", "keyValue": "a", "params": [{"name": "x", "value": LONE}]},
            "params.0.value",
        ),
        (
            "/api/v2/event",
            {"eventTypeKey": "t", "keyValue": "a", "params": {LONE: 1}},
            "params.\ufffd",
        ),
        ("/api/v2/event", {"eventTypeKey": "\udfff", "keyValue": "a"}, "eventTypeKey"),
        ("/api/v1/orders", {"orders": [{**ORDER, "firstName": LONE}]}, "orders.0.firstName"),
        ("/api/v1/orders", {"orders": [{**ORDER, "email": "b\udc00@example.com"}]}, None),
    ],
)
def test_lone_surrogate_is_400_naming_the_field(api, full_key, path, body, field):
    response = api.post(path, key=full_key, body=body)

    assert response.status_code == 400, response.content
    problem = response.json()
    if field is None:  # the key itself, or a field the path names: one field, this problem
        assert list(problem.values()) == [[SURROGATE_PROBLEM]], problem
    else:
        assert problem == {field: [SURROGATE_PROBLEM]}
    assert not Contact.objects.exists()
    assert not Event.objects.exists()
    assert not Order.objects.exists()


def test_a_valid_surrogate_pair_is_an_ordinary_character(api, full_key):
    body = {"channels": [email("smile@example.com")], "firstName": "Olena \U0001f600"}
    raw = json.dumps(body)  # ensure_ascii: the emoji travels as \ud83d\ude00
    assert "\\ud83d\\ude00" in raw

    response = api.client.post(
        "/api/v1/contact",
        raw,
        content_type="application/json",
        headers={"Authorization": api.basic(full_key.secret)},
    )

    assert response.status_code == 200, response.content
    assert Contact.objects.get().first_name == "Olena \U0001f600"


def test_form_body_with_a_lone_surrogate_escape_is_400_naming_the_field(api, full_key):
    """A lone surrogate percent-encoded in a form body is broken UTF-8: refused naming the
    field (config.core.parsers.form_utf8_refuse), not stored with U+FFFD in its place."""
    response = api.client.post(
        "/api/v1/event",
        "eventTypeKey=t&keyValue=a%ED%A0%80b",
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 400, response.content
    assert response.json() == {"keyValue": ["is not valid UTF-8 text"]}
    assert not Event.objects.exists()


def test_bulk_import_fails_the_unstorable_rows_alone(api, full_key):
    body = {
        "contacts": [
            {"channels": [email("kept@example.com")], "firstName": "Kept"},
            {"channels": [email("surrogate@example.com")], "firstName": "S" + LONE},
            {"channels": [email("nul@example.com")], "lastName": "N\u0000"},
            {"channels": [email("second@example.com")], "address": {"town": "Lviv"}},
            {"channels": [{"type": "email", "value": "low\udc80@example.com"}]},
            {"channels": [email("key@example.com")], "\udbff": 1},
        ],
        "dedupeOn": "email",
    }

    response = api.post("/api/v1/contacts", key=full_key, body=body)

    assert response.status_code == 200, response.content
    failed = {row["index"]: row for row in response.json()["failedContacts"]}
    assert sorted(failed) == [1, 2, 4, 5]
    assert failed[1]["reason"] == f"firstName: {SURROGATE_PROBLEM}"
    assert failed[1]["contact"]["firstName"] == "S\ufffd"
    assert failed[2]["reason"] == f"lastName: {NUL_PROBLEM}"
    assert failed[4]["reason"] == f"channels.0.value: {SURROGATE_PROBLEM}"
    assert failed[5]["reason"] == f"\ufffd: {SURROGATE_PROBLEM}"
    assert failed[5]["contact"]["\ufffd"] == 1

    job = ImportJob.objects.get(session_id=response.json()["asyncSessionId"])
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FINISHED, job.description
    assert (job.created_count, job.failed_count) == (2, 4)
    assert sorted(Contact.objects.values_list("email", flat=True)) == [
        "kept@example.com",
        "second@example.com",
    ]
    status = api.get(f"/api/v1/importstatus/{job.session_id}", key=full_key).json()
    assert sorted(row["index"] for row in status["failedContacts"]) == [1, 2, 4, 5]


def test_bulk_import_with_unstorable_text_outside_the_contacts_is_400(api, full_key):
    body = {"contacts": [{"channels": [email("a@example.com")]}], "groupNames": ["G" + LONE]}

    response = api.post("/api/v1/contacts", key=full_key, body=body)

    assert response.status_code == 400, response.content
    assert response.json() == {"groupNames.0": [SURROGATE_PROBLEM]}
    assert not ImportJob.objects.exists()


# -- depth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/event", "/api/v2/event", "/api/v1/contact", "/api/v1/contacts"]
)
def test_json_nested_ten_thousand_deep_is_400_stating_the_limit(api, full_key, path):
    raw = "[" * 10_000 + "]" * 10_000

    response = api.client.post(
        path,
        raw,
        content_type="application/json",
        headers={"Authorization": api.basic(full_key.secret)},
    )

    assert response.status_code == 400, response.content
    assert DEPTH_MESSAGE in json.dumps(response.json())


def test_json_just_past_the_limit_is_refused_and_at_the_limit_is_parsed(api, full_key):
    def event(depth: int) -> str:
        value = "[" * (depth - 3) + '"x"' + "]" * (depth - 3)
        # {…} → params: [ → {name, value: …}: three levels before the value's own.
        params = f'[{{"name": "n", "value": {value}}}]'
        return f'{{"eventTypeKey": "t", "keyValue": "a", "params": {params}}}'

    headers = {"Authorization": api.basic(full_key.secret)}
    over = api.client.post(
        "/api/v1/event", event(MAX_JSON_DEPTH + 1), content_type="application/json", headers=headers
    )
    assert over.status_code == 400, over.content
    assert DEPTH_MESSAGE in json.dumps(over.json())

    at = api.client.post(
        "/api/v1/event", event(MAX_JSON_DEPTH), content_type="application/json", headers=headers
    )
    # Parsed: what the event API then says of a list value is its own business, not a 500.
    assert at.status_code in (200, 400), at.content
    assert DEPTH_MESSAGE not in json.dumps(at.json())


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("[]", 1),
        ('{"a": [{"b": []}]}', 4),
        ('["[[[[[[[[", "]]]]]]]]]]]]"]', 1),  # brackets in strings do not count
        ('["\\"[[[[", [["\\\\"]]]', 3),  # nor after escaped quotes and backslashes
        ('{"k\\"]]]]": [[[]]]}', 4),
    ],
)
def test_depth_is_counted_outside_strings(text, depth):
    raw = text.encode()
    assert json_depth_over(raw, limit=depth - 1)
    assert not json_depth_over(raw, limit=depth)


# -- pages -----------------------------------------------------------------------------------


def test_json_typed_into_a_page_with_a_lone_surrogate_is_a_json_error():
    with pytest.raises(json.JSONDecodeError) as caught:
        json_text_load('{"town": "Ky\\udc00iv"}')
    assert "town" in caught.value.msg and "surrogate" in caught.value.msg
    assert caught.value.colno == 13  # points at the escape
    assert json_text_load('{"town": "\\ud83d\\ude00"}') == {"town": "\U0001f600"}
    with pytest.raises(json.JSONDecodeError, match="nested deeper"):
        json_text_load("[" * 500 + "]" * 500)


def test_segment_filter_with_a_lone_surrogate_is_a_form_error(client, marketer):
    client.force_login(marketer)
    segment = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"town": "Kyiv"})

    response = client.post(
        f"/segments/{segment.pk}/filter/",
        {"mode": "json", "filter_json": '{"town": "\\ud800"}', "combinator": "and"},
    )

    assert response.status_code == 400
    assert "surrogate" in response.content.decode()
    assert Segment.objects.get(pk=segment.pk).filter == {"town": "Kyiv"}
