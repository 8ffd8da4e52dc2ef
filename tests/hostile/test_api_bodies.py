"""Hostile bodies on every API write (POST, PUT and PATCH routes found by walking the URL
resolver): JSON nested 10,000 deep, invalid UTF-8 in JSON and in form bodies, and a body past
the documented size. Each is a 4xx with a JSON object saying what is wrong, never a server
error, and nothing is stored."""

import json

import pytest
from django.apps import apps
from django.conf import settings

from tests.hostile.routes import api_write_routes

ROUTES = api_write_routes()
DEEP_JSON = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
DEEP_LIST = b"[" * 10_000 + b"]" * 10_000
INVALID_UTF8_JSON = b'{"name": "caf\xe9", "keyValue": "\xff\xfe"}'
INVALID_UTF8_FORM = b"name=caf%E9&keyValue=%FF%FE&firstName=\xff"

# Past Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB, the API's body limit) as valid JSON.
OVERSIZED = json.dumps({"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}).encode()

HOSTILE_BODIES = {
    "json past DATA_UPLOAD_MAX_MEMORY_SIZE": (OVERSIZED, "application/json"),
    "json nested 10,000 objects deep": (DEEP_JSON, "application/json"),
    "json nested 10,000 lists deep": (DEEP_LIST, "application/json"),
    "json with invalid utf-8": (INVALID_UTF8_JSON, "application/json"),
    "form with invalid utf-8": (INVALID_UTF8_FORM, "application/x-www-form-urlencoded"),
}
# A 404 answers a route whose object (id 1) does not exist before the body is read: still no
# server error, and nothing to store; a 405 a route whose view turns the method away.
REFUSED = {400, 404, 405, 413, 415}


def row_counts() -> dict[str, int]:
    """Rows in every Herald table: a refused request must leave each as it was."""
    herald = ("config", "core", "contacts", "templates", "campaigns", "marketing", "integrations")
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model.__module__.split(".")[0] in herald
    }


def answer(api, key, route, body: bytes, content_type: str):
    return getattr(api.client, route.method)(
        route.path,
        data=body,
        content_type=content_type,
        headers={"Authorization": api.basic(key.secret)},
    )


def assert_json_refusal(response, route, what: str) -> dict:
    assert response.status_code in REFUSED, (
        f"{route} with {what}: HTTP {response.status_code} {response.content[:300]!r}"
    )
    assert response["Content-Type"].startswith("application/json"), (route, what)
    body = response.json()
    assert isinstance(body, dict) and body, (route, what, body)
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("what", list(HOSTILE_BODIES))
def test_every_api_write_refuses_a_hostile_body_with_json_and_stores_nothing(api, full_key, what):
    body, content_type = HOSTILE_BODIES[what]
    before = row_counts()
    outcomes: dict[int, list[str]] = {}
    messages: dict[str, str] = {}
    for route in ROUTES:
        response = answer(api, full_key, route, body, content_type)
        refusal = assert_json_refusal(response, route, what)
        outcomes.setdefault(response.status_code, []).append(str(route))
        messages.setdefault(json.dumps(refusal)[:120], str(route))
    assert row_counts() == before
    print(f"\n{what}: {len(ROUTES)} routes tried")
    for status, routes in sorted(outcomes.items()):
        print(f"  HTTP {status}: {len(routes)}")
    for message, route in messages.items():
        print(f"  e.g. {route}: {message}")


@pytest.mark.django_db
def test_a_form_body_with_bytes_that_are_not_utf8_is_400_naming_the_field_and_stores_nothing(
    api, full_key
):
    for body, field in [
        (b"name=caf%E9&groupName=Personal", "name"),
        (b"groupName=Personal&name=caf\xe9", "name"),
        (b"na%FFme=x", "na\ufffdme"),
    ]:
        response = api.client.post(
            "/api/herald/custom-fields",
            data=body,
            content_type="application/x-www-form-urlencoded",
            headers={"Authorization": api.basic(full_key.secret)},
        )
        assert response.status_code == 400, response.content
        assert response.json() == {field: ["is not valid UTF-8 text"]}
    assert row_counts()["contacts.CustomField"] == 0
