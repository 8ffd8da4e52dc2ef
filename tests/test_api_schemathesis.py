"""Schemathesis over the whole OpenAPI schema served at /api/schema/.

Every operation is called with generated requests, once with a full-rights API key and once
without credentials, through the real WSGI application and PostgreSQL. The checks: no server
error, and the response (status code, content type, body) is one the schema documents.

Bounded for the normal suite: a few examples per operation, derandomized, no shrinking and
no health checks, each request rolled back so operations never see each other's writes. Then
the concrete disagreements the schema once had, as ordinary cases.
"""

from contextlib import contextmanager

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
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
MAX_EXAMPLES = 5
ANONYMOUS_EXAMPLES = 2


def _schema(*, coverage: bool, max_examples: int):
    loaded = schemathesis.openapi.from_wsgi("/api/schema/", application)
    loaded.config.generation.update(max_examples=max_examples, deterministic=True)
    loaded.config.phases.coverage.enabled = coverage
    # Methods an operation does not list answer 405; that is not what these runs check.
    loaded.config.phases.coverage.unexpected_methods = set()
    return loaded


schema = _schema(coverage=True, max_examples=MAX_EXAMPLES)
# Without credentials every answer is 401, which a couple of requests per operation show.
anonymous_schema = _schema(coverage=False, max_examples=ANONYMOUS_EXAMPLES)

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


@schema.parametrize()
@bounded(MAX_EXAMPLES)
def test_api_with_a_full_key(case, full_key):
    case.validate_response(_call(case, _key_headers(full_key)), checks=CHECKS)


@anonymous_schema.parametrize()
@bounded(ANONYMOUS_EXAMPLES)
def test_api_without_credentials(case, db):
    case.validate_response(_call(case, {}), checks=CHECKS)


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
