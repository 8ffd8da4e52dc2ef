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
# Every route is pointed at an object that exists (route_objects), so a 404 would mean a view
# turned the body away for want of its object: not expected. A 405 answers a route whose view
# turns the method away.
REFUSED = {400, 405, 413, 415}


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


def json_refusal(response) -> dict | None:
    """The JSON object a refusal carries, or None if `response` is no such refusal."""
    if response.status_code not in REFUSED:
        return None
    if not response["Content-Type"].startswith("application/json"):
        return None
    body = response.json()
    return body if isinstance(body, dict) and body else None


@pytest.fixture
def route_objects(db) -> dict[str, str]:
    """One object of each resource a write route's path names, keyed by that resource as the
    path spells it (see routes.Route.at): the id each route is sent to."""
    from campaigns.models import Campaign
    from campaigns.promo.models import PromoPool
    from contacts.models import CustomField, Segment, Suppression
    from marketing.models import EventType
    from marketing.signup.models import SignupForm
    from marketing.workflows.services import workflow_create
    from templates.models import TemplateLanguage
    from templates.services import template_create, template_publish
    from tests.contacts.factories import ContactFactory

    template = template_create(
        name="Sale",
        subject="Sale",
        from_name="Shop",
        from_email="news@shop.example",
        html="<p>Sale</p>",
    )
    template_publish(template=template)
    TemplateLanguage.objects.create(template=template, language_code="en", subject="Sale")
    segment = Segment.objects.create(name="Readers")
    event_type = EventType.objects.create(key="signup")
    campaign = Campaign.objects.create(
        name="Spring", channels=["email"], template=template, segment=segment
    )
    return {
        "contact": ContactFactory(email="ann@example.com").pk,
        "group": segment.pk,
        "segments": segment.pk,
        "message": template.pk,
        "templates": template.pk,
        "languages": "en",
        "suppressions": Suppression.objects.create(
            channel="email", address="gone@example.com", reason="manual"
        ).pk,
        "custom-fields": CustomField.objects.create(name="City", key="city").pk,
        "event-types": event_type.pk,
        "workflows": workflow_create(
            name="Welcome", trigger_kind="event", event_type=event_type
        ).pk,
        "forms": SignupForm.objects.create(name="News", key="news").pk,
        "campaigns": campaign.pk,
        "promo-pools": PromoPool.objects.create(name="Spring", key="SPRING").pk,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("what", list(HOSTILE_BODIES))
def test_every_api_write_refuses_a_hostile_body_with_json_and_stores_nothing(
    api, full_key, route_objects, what
):
    body, content_type = HOSTILE_BODIES[what]
    before = row_counts()
    outcomes: dict[int, list[str]] = {}
    messages: dict[str, str] = {}
    wrong: list[str] = []
    api.client.raise_request_exception = False  # a server error is one more wrong answer
    for route in (route.at(route_objects) for route in ROUTES):
        response = answer(api, full_key, route, body, content_type)
        refusal = json_refusal(response)
        if refusal is None:
            wrong.append(f"{route}: HTTP {response.status_code} {response.content[:200]!r}")
            continue
        outcomes.setdefault(response.status_code, []).append(str(route))
        messages.setdefault(json.dumps(refusal)[:120], str(route))
    assert not wrong, f"{what}:\n" + "\n".join(wrong)
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


@pytest.mark.django_db
def test_an_action_that_takes_no_body_refuses_a_malformed_one_and_does_not_act(
    api, full_key, route_objects
):
    """Lift, publish, launch, duplicate… read no body; one that is not JSON is still a 400,
    not ignored while the action runs."""
    campaign = route_objects["campaigns"]
    before = row_counts()
    response = api.client.post(
        f"/api/crm/marketing/campaigns/{campaign}/duplicate",
        data=b'{"name": "copy"',
        content_type="application/json",
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 400, response.content
    assert "JSON parse error" in response.json()["detail"]
    assert row_counts() == before
    response = api.client.post(
        f"/api/crm/marketing/campaigns/{campaign}/duplicate",
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 201, response.content


def multipart(parts: list[tuple[bytes, bytes]], file_part: bytes = b"") -> bytes:
    """A multipart/form-data body with boundary XB: (name, value) fields, then, if given, a
    file part of raw bytes (an upload's content need not be text)."""
    body = b"".join(
        b'--XB\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (name, value)
        for name, value in parts
    )
    if file_part:
        body += (
            b'--XB\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n%s\r\n" % file_part
        )
    return body + b"--XB--\r\n"


@pytest.mark.django_db
def test_a_multipart_field_with_bytes_that_are_not_utf8_is_400_naming_it_and_stores_nothing(
    api, full_key
):
    for parts, field in [
        ([(b"name", b"caf\xe9"), (b"groupName", b"Personal")], "name"),
        ([(b"name", b"Caf\xc3\xa9"), (b"groupName", b"\xff\xfe")], "groupName"),
    ]:
        response = api.client.post(
            "/api/herald/custom-fields",
            data=multipart(parts, file_part=b"\xff\x00 binary is fine in a file"),
            content_type="multipart/form-data; boundary=XB",
            headers={"Authorization": api.basic(full_key.secret)},
        )
        assert response.status_code == 400, response.content
        assert response.json() == {field: ["is not valid UTF-8 text"]}
    assert row_counts()["contacts.CustomField"] == 0

    response = api.client.post(
        "/api/herald/custom-fields",
        data=multipart([(b"name", b"Caf\xc3\xa9"), (b"key", b"cafe")]),
        content_type="multipart/form-data; boundary=XB",
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "Café"
