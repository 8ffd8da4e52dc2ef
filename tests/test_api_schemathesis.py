"""Schemathesis over the whole OpenAPI schema served at /api/schema/.

Every operation is called with generated requests, once with a full-rights API key and once
without credentials, through the real WSGI application and PostgreSQL. The checks: no server
error, and the response (status code, content type, body) is one the schema documents. The
eSputnik v1 paths are fuzzed twice: as the schema writes them (a trailing slash) and as the
eSputnik documentation and its clients write them (none), which the schema does not list.

Bounded for the normal suite: a few examples per operation, derandomized, no shrinking and
no health checks, each request rolled back so operations never see each other's writes. Each
operation must have been called at least once, and each run prints its figures (operations,
requests, failures) at the end of the module. Then the concrete disagreements the schema
once had, as ordinary cases.

The full run, with more examples per operation (and without credentials a fifth of them):

    HERALD_FUZZ_EXAMPLES=50 .venv/bin/python -m pytest -p no:cacheprovider -n 0 \\
        tests/test_api_schemathesis.py
"""

import os
import re
from collections import defaultdict
from contextlib import contextmanager
from copy import deepcopy

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from config.core.models import Organisation
from config.wsgi import application
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory, SegmentFactory
from tests.support.api import APIClient

pytestmark = pytest.mark.django_db

# Generated requests per operation. With the key, the schema's boundary cases come on top
# (the coverage phase: values just past each minimum, maximum and length, wrong types); the
# two runs take about two and a half minutes together on two cores.
MAX_EXAMPLES = int(os.environ.get("HERALD_FUZZ_EXAMPLES") or 5)
ANONYMOUS_EXAMPLES = max(2, MAX_EXAMPLES // 5)
# The eSputnik-style paths reach the same views as the schema's: a couple of requests each
# show that they route and answer alike.
ESPUTNIK_EXAMPLES = max(2, MAX_EXAMPLES // 5)
# The API prefixes whose clients send paths without the trailing slash (eSputnik v1, and the
# v2 event endpoint beside it).
ESPUTNIK_PREFIXES = ("/api/v1/", "/api/v2/")
# Routes under /api/ that are no operation of the schema: the schema and its documentation.
NOT_OPERATIONS = {"api-schema", "api-docs"}


def _raw_schema() -> dict:
    response = Client().get("/api/schema/", headers={"Accept": "application/json"})
    assert response.status_code == 200, response.content[:500]
    return response.json()


def _slashless(raw: dict) -> dict:
    """The eSputnik v1 operations at the paths eSputnik's clients call: no trailing slash."""
    schema = deepcopy(raw)
    schema["paths"] = {}
    for path, item in raw["paths"].items():
        if path.startswith(ESPUTNIK_PREFIXES) and path.endswith("/"):
            item = deepcopy(item)
            for operation in item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    operation["operationId"] += "_without_slash"
            schema["paths"][path.rstrip("/")] = item
    return schema


def _loaded(raw: dict, *, coverage: bool, max_examples: int):
    loaded = schemathesis.openapi.from_dict(raw)
    loaded.app = application
    loaded.location = "/api/schema/"
    loaded.config.generation.update(max_examples=max_examples, deterministic=True)
    loaded.config.phases.coverage.enabled = coverage
    # Methods an operation does not list answer 405; that is not what these runs check.
    loaded.config.phases.coverage.unexpected_methods = set()
    return loaded


RAW_SCHEMA = _raw_schema()
schema = _loaded(RAW_SCHEMA, coverage=True, max_examples=MAX_EXAMPLES)
# Without credentials every answer is 401, which a couple of requests per operation show.
anonymous_schema = _loaded(RAW_SCHEMA, coverage=False, max_examples=ANONYMOUS_EXAMPLES)
esputnik_schema = _loaded(_slashless(RAW_SCHEMA), coverage=False, max_examples=ESPUTNIK_EXAMPLES)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def bounded(max_examples: int):
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


@contextmanager
def _connection_kept():
    # Django's handler closes the database connection when a request ends, which would end
    # the test's transaction; its test client disconnects the signal around a request too.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _call(case, headers: dict):
    # A savepoint per request: every request starts from the same data, and one that broke
    # the transaction cannot fail the next.
    with _connection_kept(), transaction.atomic():
        response = case.call(headers=headers)
        transaction.set_rollback(True)
    return response


def _key_headers(key) -> dict:
    return {"Authorization": APIClient.basic(key.secret)}


class Run:
    """One run's figures: the operations called, the requests sent, the operations failed."""

    def __init__(self, name: str, operations: int):
        self.name = name
        self.operations = operations
        self.called: dict[str, int] = defaultdict(int)
        self.failed: set[str] = set()

    def checked(self, case, response) -> None:
        label = case.operation.label
        self.called[label] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception:
            self.failed.add(label)
            raise

    def figures(self) -> str:
        return (
            f"schemathesis {self.name}: {len(self.called)} of {self.operations} operations, "
            f"{sum(self.called.values())} requests, {len(self.failed)} operations failed"
        )


def _operation_count(loaded) -> int:
    return sum(1 for result in loaded.get_all_operations() if result.ok())


RUNS = {
    "full key": Run("full key", _operation_count(schema)),
    "no credentials": Run("no credentials", _operation_count(anonymous_schema)),
    "eSputnik paths": Run("eSputnik paths", _operation_count(esputnik_schema)),
}


@pytest.fixture(scope="module")
def figures(request):
    """Print each run's figures when the module ends (pytest's terminal, past the capture)."""
    yield
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    if reporter is None:  # a pytest-xdist worker: its terminal is nobody's
        return
    with plugins.get_plugin("capturemanager").global_and_fixture_disabled():
        reporter.write_line("")
        for run in RUNS.values():
            if run.called:
                reporter.write_line(run.figures())


@pytest.fixture
def run_of(request, figures):
    """The run a fuzzing test belongs to; after the test, its operation must have been
    called: an operation the generator never reached would pass without being checked."""
    calls_before = {name: sum(run.called.values()) for name, run in RUNS.items()}
    yield RUNS
    made = sum(sum(run.called.values()) - calls_before[name] for name, run in RUNS.items())
    assert made > 0, f"{request.node.name}: no request was sent"


@schema.parametrize()
@bounded(MAX_EXAMPLES)
def test_api_with_a_full_key(case, full_key, run_of):
    run_of["full key"].checked(case, _call(case, _key_headers(full_key)))


@anonymous_schema.parametrize()
@bounded(ANONYMOUS_EXAMPLES)
def test_api_without_credentials(case, db, run_of):
    run_of["no credentials"].checked(case, _call(case, {}))


@esputnik_schema.parametrize()
@bounded(ESPUTNIK_EXAMPLES)
def test_esputnik_paths_without_the_trailing_slash(case, full_key, run_of):
    run_of["eSputnik paths"].checked(case, _call(case, _key_headers(full_key)))


def _api_routes():
    """(route name, path template in the schema's words) of every route under /api/."""

    def walk(patterns, prefix: str):
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^")
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/"):
                yield pattern.name, route

    return list(walk(get_resolver().url_patterns, ""))


def test_every_api_route_is_an_operation_of_the_schema():
    """What the runs above fuzz is the schema: a route it leaves out would escape them."""
    paths = [result.ok().path for result in schema.get_all_operations() if result.ok()]
    undocumented = sorted(
        name
        for name, route in _api_routes()
        if name not in NOT_OPERATIONS and not any(_same_url(route, path) for path in paths)
    )

    assert not undocumented, f"API routes the schema does not describe: {undocumented}"


def _same_url(route: str, path: str) -> bool:
    """Whether a resolver route (a regex, or a path with converters) and a schema path
    (with {parameters}) name the same URLs, whatever the parameters and trailing slash."""
    route = re.sub(r"\(\?P<\w+>[^)]*\)|<[^>]+>", "{}", route.removesuffix("/?$").strip("/"))
    return route == re.sub(r"\{[^}]+\}", "{}", path.strip("/"))


def _conforms(full_key, method: str, path: str, **case_kwargs):
    case = schema[path][method].Case(**case_kwargs)
    response = _call(case, _key_headers(full_key))
    case.validate_response(response, checks=CHECKS)
    return response


@pytest.mark.parametrize(
    "path",
    [
        "/api/crm/marketing/campaign-types/",
        "/api/crm/marketing/campaigns/",
        "/api/crm/marketing/platforms/",
        "/api/crm/marketing/social-profiles/",
    ],
)
def test_crm_lists_are_lists_in_the_schema_too(full_key, path):
    response = _conforms(full_key, "GET", path)

    assert isinstance(response.json(), list)


def test_crm_campaign_list_with_a_campaign_conforms(full_key, api):
    created = api.post(
        "/api/crm/marketing/campaigns",
        key=full_key,
        body={"name": "Spring", "type": "blast", "channels": ["email"]},
    )
    assert created.status_code == 201, created.json()

    response = _conforms(full_key, "GET", "/api/crm/marketing/campaigns/")

    assert [campaign["name"] for campaign in response.json()] == ["Spring"]


def test_group_contacts_are_a_list_of_contacts_in_the_schema_too(full_key):
    group = SegmentFactory(name="Newsletter")
    group.contacts.add(ContactFactory(email="ann@example.com"))

    response = _conforms(
        full_key,
        "GET",
        "/api/v1/group/{group_id}/contacts/",
        path_parameters={"group_id": group.pk},
    )

    assert [c["channels"] for c in response.json()] == [
        [{"type": "email", "value": "ann@example.com"}]
    ]


def test_version_published_by_a_key_without_owner_conforms_with_null_publisher(full_key):
    template = template_create(name="Hello", subject="Hi", html="<p>Hi</p>")
    template_publish(template=template, user=None)

    response = _conforms(
        full_key, "GET", "/api/herald/templates/{id}/versions/", path_parameters={"id": template.pk}
    )

    assert response.json()[0]["publishedBy"] is None


def test_account_info_without_any_known_email_conforms(full_key):
    full_key.created_by.email = ""
    full_key.created_by.save()
    Organisation.objects.update(default_sender_email="")

    response = _conforms(full_key, "GET", "/api/v1/account/info/")

    assert response.json()["userEmail"] == ""
