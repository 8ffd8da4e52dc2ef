"""The OpenAPI schema describes every operation for real.

Generated with no warning or error from drf-spectacular; every body an operation reads has its
properties, every success has its schema, the eSputnik v1 and CRM campaigns operations carry
examples (the specification documents' own bodies where they give one), and each example
validates against the schema it illustrates. Whether Herald's answers match the schema is
tests/test_api_schemathesis.py's part.
"""

import io
import json

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from jsonschema import Draft202012Validator

WRITES = ("post", "put", "patch")
METHODS = ("get", "post", "put", "patch", "delete")
# Actions that take no body: the path says everything (each says so in its description).
BODYLESS = {
    ("post", "/api/crm/marketing/campaigns/{campaign_id}/cancel/"),
    ("post", "/api/crm/marketing/campaigns/{campaign_id}/duplicate/"),
    ("post", "/api/crm/marketing/campaigns/{campaign_id}/launch/"),
    ("post", "/api/crm/marketing/campaigns/{campaign_id}/pause/"),
    ("post", "/api/crm/marketing/campaigns/{campaign_id}/purge/"),
    ("post", "/api/crm/marketing/campaigns/{campaign_id}/resume/"),
    ("post", "/api/crm/marketing/campaigns/{campaign_id}/schedule/"),
    ("post", "/api/herald/suppressions/{suppression_id}/lift/"),
    ("post", "/api/herald/templates/{id}/publish/"),
}
# The eSputnik-compatible API and the CRM campaigns API: integrators port clients written
# against their documents, so every operation shows an example.
EXAMPLED_PREFIXES = ("/api/v1/", "/api/v2/", "/api/crm/marketing/")
# Keywords of OpenAPI 3.0 schema objects that JSON Schema does not have.
OPENAPI_ONLY = {"nullable", "readOnly", "writeOnly", "example", "discriminator", "xml"}


@pytest.fixture(scope="module")
def schema() -> dict:
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated, renderer_context={}))


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if "allOf" in node and len(node["allOf"]) == 1:
        return _resolve(schema, node["allOf"][0])
    return node


def _described(schema: dict, node: dict) -> bool:
    """An object with properties, an array of described items, a file, or a oneOf of those."""
    node = _resolve(schema, node)
    if node.get("type") == "array":
        return _described(schema, node.get("items", {}))
    if node.get("format") == "binary":
        return True
    if "oneOf" in node or "anyOf" in node:
        return all(_described(schema, part) for part in node.get("oneOf", node.get("anyOf")))
    return node.get("type", "object") == "object" and bool(node.get("properties"))


def _json_schema(node):
    """An OpenAPI 3.0 schema as JSON Schema (2020-12): `nullable` becomes a null type."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in OPENAPI_ONLY:
            continue
        if key == "properties":
            out[key] = {name: _json_schema(prop) for name, prop in value.items()}
        else:
            out[key] = _json_schema(value)
    if node.get("nullable"):
        if "type" in out and "enum" not in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _examples(operation: dict):
    """(where, media schema, example) of every example of an operation."""
    body = operation.get("requestBody", {}).get("content", {})
    for media_type, content in body.items():
        for name, example in content.get("examples", {}).items():
            yield f"request {media_type} {name!r}", content["schema"], example
    for status, response in operation["responses"].items():
        for media_type, content in response.get("content", {}).items():
            for name, example in content.get("examples", {}).items():
                yield f"{status} {media_type} {name!r}", content["schema"], example


def _example_value(schema: dict, operation: dict, name: str, *, status: str | None = None):
    if status is None:
        content = operation["requestBody"]["content"]["application/json"]
    else:
        content = operation["responses"][status]["content"]["application/json"]
    return content["examples"][name]["value"]


def test_schema_generation_emits_no_warning_or_error(tmp_path):
    GENERATOR_STATS.reset()
    errors = io.StringIO()

    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yaml"),
        stderr=errors,
    )

    assert not GENERATOR_STATS
    assert "Warning" not in errors.getvalue() and "Error" not in errors.getvalue()


def test_every_write_reads_a_body_with_its_properties(schema):
    vague = []
    bodyless = set()
    for method, path, operation in _operations(schema):
        if method not in WRITES:
            continue
        body = operation.get("requestBody")
        if body is None:
            bodyless.add((method, path))
            continue
        for media_type, content in body["content"].items():
            if not _described(schema, content.get("schema", {})):
                vague.append(f"{method.upper()} {path} {media_type}")

    assert vague == []
    assert bodyless == BODYLESS


def test_bodyless_actions_say_so(schema):
    for method, path in BODYLESS:
        operation = schema["paths"][path][method]
        assert "no body" in operation.get("description", "").lower(), (method, path)


def test_every_operation_answers_a_success_with_its_schema(schema):
    vague = []
    for method, path, operation in _operations(schema):
        successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        if not successes:
            vague.append(f"{method.upper()} {path}: no 2xx")
        for status, response in successes.items():
            if status == "204":
                continue
            contents = response.get("content", {})
            if not contents:
                vague.append(f"{method.upper()} {path} {status}: no content")
            for media_type, content in contents.items():
                if not _described(schema, content.get("schema", {})):
                    vague.append(f"{method.upper()} {path} {status} {media_type}")

    assert vague == []


def test_esputnik_and_crm_operations_carry_examples(schema):
    bare = [
        f"{method.upper()} {path}"
        for method, path, operation in _operations(schema)
        if path.startswith(EXAMPLED_PREFIXES) and not any(_examples(operation))
    ]

    assert bare == []


def test_every_example_validates_against_its_schema(schema):
    components = _json_schema(schema["components"])
    invalid = []
    count = 0
    for method, path, operation in _operations(schema):
        for where, media_schema, example in _examples(operation):
            count += 1
            validator = Draft202012Validator(
                {**_json_schema(media_schema), "components": components},
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
            for error in validator.iter_errors(example["value"]):
                location = "/".join(str(part) for part in error.absolute_path)
                invalid.append(f"{method.upper()} {path} {where} at {location}: {error.message}")

    assert count > 50
    assert invalid == []


def test_the_documents_bodies_are_on_their_operations(schema):
    paths = schema["paths"]

    subscribe = _example_value(
        schema, paths["/api/v1/contact/subscribe/"]["post"], "SubscribeContact"
    )
    assert subscribe["formType"] == "abc" and subscribe["groups"] == ["Subscribers"]
    bulk = _example_value(schema, paths["/api/v1/contacts/"]["post"], "AddUpdateContacts")
    assert bulk["eventKeyForNewContacts"] == "newContact"
    orders = _example_value(schema, paths["/api/v1/orders/"]["post"], "AddOrders")
    assert orders["orders"][0]["items"][0]["name"] == "Super Device"
    event = _example_value(schema, paths["/api/v1/event/"]["post"], "GenerateEvent")
    assert event["params"][0] == {"name": "discount", "value": "5%"}
    unsubscribe = paths["/api/v1/emails/unsubscribed/add/"]["post"]
    assert _example_value(schema, unsubscribe, "AddEmailsToUnsubscribedList") == {
        "emails": ["test1@mail.com", "test2@mail.com"]
    }
    campaign = _example_value(schema, paths["/api/crm/marketing/campaigns/"]["post"], "ACampaign")
    assert campaign["schedule"]["timezone"] == "America/New_York"
    metrics = _example_value(
        schema,
        paths["/api/crm/marketing/campaigns/aggregated-metrics/"]["post"],
        "AggregatedMetrics",
    )
    assert metrics == {
        "campaignIds": ["camp-1", "camp-2", "camp-3"],
        "range": {"start": "2026-04-01", "end": "2026-04-30"},
    }


def test_every_error_answer_has_one_of_the_shared_error_shapes(schema):
    shapes = {
        f"#/components/schemas/{name}" for name in ("Error", "ValidationErrors", "RightMissing")
    }
    other = []
    for method, path, operation in _operations(schema):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                media = response.get("content", {}).get("application/json", {})
                if media.get("schema", {}).get("$ref") not in shapes:
                    other.append(f"{method.upper()} {path} {status}")

    assert other == []


# --- paging: one convention per API family -------------------------------------------------

# Herald's own lists that are whole collections, answered in full: each is bounded by what it
# lists (a catalogue a marketer keeps, a template's languages), so a page would only add a
# round trip.
HERALD_WHOLE_LISTS = {
    "/api/herald/custom-fields/": "the custom field catalogue",
    "/api/herald/event-types/": "the event type catalogue",
    "/api/herald/promo-pools/": "the promo code pools",
    "/api/herald/segments/": "the segments",
    "/api/herald/settings/frequency-caps/": "one cap per channel",
    "/api/herald/templates/": "the templates",
    "/api/herald/templates/{id}/languages/": "one entry per language",
    "/api/herald/templates/{id}/versions/": "the published versions of one template",
    "/api/herald/campaigns/{campaign_id}/promo-codes/": "the codes one campaign handed out",
    "/api/herald/promo-pools/{id}/codes/": "the codes of one pool",
}
# Herald's lists paged by a position in time whose total would cost a count of a union of
# tables per page (the timeline) or of an append-only log (a segment's entries and leaves):
# they say `next` only.
HERALD_NEXT_ONLY = {
    "/api/herald/contacts/{contact_id}/activity/": "a timeline merged from many tables",
    "/api/herald/segments/{id}/changes/": "a log read since a moment; its totals are "
    "`entered` and `left`",
}
# The CRM campaigns API's discovery lists are small catalogues; its campaigns page by
# `limit` and `offset`.
CRM_WHOLE_LISTS = {
    "/api/crm/marketing/campaign-types/",
    "/api/crm/marketing/platforms/",
    "/api/crm/marketing/social-profiles/",
    "/api/crm/marketing/social-profiles/{platform}/",
}


def _list_operations(schema: dict):
    """GET operations answering a list: a bare array, or a page object holding one."""
    for method, path, operation in _operations(schema):
        if method != "get":
            continue
        content = operation["responses"].get("200", {}).get("content", {})
        body = _resolve(schema, content.get("application/json", {}).get("schema", {}))
        properties = body.get("properties", {})
        # A page holds its rows in `results`, or in another list beside `next` (the timeline's
        # `items`, a segment's `changes`); an order's `items` alone are its lines.
        pages = [
            prop for name, prop in properties.items() if name == "results" or "next" in properties
        ]
        listed = body.get("type") == "array" or any(
            _resolve(schema, prop).get("type") == "array" for prop in pages
        )
        if listed:
            query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            yield path, operation, body, query


def test_every_list_endpoint_declares_its_familys_paging(schema):
    wrong = []
    seen = set()
    for path, operation, body, query in _list_operations(schema):
        seen.add(path)
        if path.startswith("/api/v1/"):
            headers = operation["responses"]["200"].get("headers", {})
            if path == "/api/v1/message/status/":
                continue  # the statuses of the requestIds asked for, not a list to page
            if not {"startindex", "maxrows"} <= query or "TotalCount" not in headers:
                wrong.append(f"{path}: startindex, maxrows and the TotalCount header")
        elif path.startswith("/api/herald/"):
            if path in HERALD_WHOLE_LISTS:
                continue
            said = set(body.get("properties", {}))
            wants = {"next"} if path in HERALD_NEXT_ONLY else {"next", "total"}
            if "limit" not in query or not wants <= said:
                wrong.append(f"{path}: limit in, {sorted(wants)} out (has {sorted(said)})")
        elif path.startswith("/api/crm/marketing/"):
            if path not in CRM_WHOLE_LISTS and not {"limit", "offset"} <= query:
                wrong.append(f"{path}: limit and offset")
        else:
            wrong.append(f"{path}: in no API family")
    assert wrong == []
    # The exceptions name lists that exist, so none outlives its endpoint.
    assert set(HERALD_WHOLE_LISTS) | set(HERALD_NEXT_ONLY) | CRM_WHOLE_LISTS <= seen
