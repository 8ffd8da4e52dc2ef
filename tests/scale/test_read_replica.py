"""DATABASE_REPLICA_URL: reports and exports read the replica, writes never go there, and
without it everything stays on the primary (config.core.db_router).

The replica here is the test database itself under the alias "replica": what proves the
routing is which connection each query went through."""

import copy
import json
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext

from config.core.db_router import REPLICA, replica_reads
from contacts.models import Contact
from tests.contacts.factories import ContactFactory
from tests.factories import UserFactory

WRITES = ("INSERT", "UPDATE", "DELETE")
# The replica alias is added the way DATABASE_REPLICA_URL adds it, at run time here.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


@pytest.fixture
def replica(settings, django_db_setup, django_db_blocker):
    """The alias "replica" on the primary's test database, as DATABASE_REPLICA_URL adds it.

    Outside pytest-django's test case, which allows only the aliases known when it starts;
    the database is emptied afterwards, as a transactional test case does."""
    params = copy.deepcopy(connections["default"].settings_dict)
    settings.DATABASES = {**settings.DATABASES, REPLICA: params}
    connections.settings[REPLICA] = params
    with django_db_blocker.unblock():
        try:
            yield
        finally:
            connections[REPLICA].close()
            del connections[REPLICA]
            del connections.settings[REPLICA]
            call_command("flush", interactive=False, verbosity=0)


def statements(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in context.captured_queries]


def test_the_contacts_export_reads_the_replica_and_writes_nothing_there(replica, client):
    ContactFactory(email="ann@example.com")
    client.force_login(UserFactory(role="marketer"))
    with (
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
        CaptureQueriesContext(connections["default"]) as on_primary,
    ):
        response = client.get("/contacts/export.csv")
        body = b"".join(response.streaming_content).decode()
    assert "ann@example.com" in body
    assert any("contacts_contact" in sql for sql in statements(on_replica)), (
        "the streamed rows come from the replica"
    )
    assert not any('FROM "contacts_contact"' in sql for sql in statements(on_primary))
    assert not any(sql.lstrip().upper().startswith(WRITES) for sql in statements(on_replica))


def test_writes_inside_replica_reads_go_to_the_primary(replica):
    with (
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
        CaptureQueriesContext(connections["default"]) as on_primary,
        replica_reads(),
    ):
        contact = ContactFactory(email="bob@example.com")
        Contact.objects.filter(pk=contact.pk).update(first_name="Bob")
        assert Contact.objects.get(pk=contact.pk).first_name == "Bob"
    assert not any(sql.lstrip().upper().startswith(WRITES) for sql in statements(on_replica))
    assert any(sql.lstrip().upper().startswith("INSERT") for sql in statements(on_primary))
    assert any("SELECT" in sql for sql in statements(on_replica)), "the read went there"


def test_reads_stay_on_the_primary_outside_replica_reads(replica):
    ContactFactory(email="cat@example.com")
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        assert Contact.objects.filter(email="cat@example.com").exists()
    assert not on_replica.captured_queries


@pytest.mark.django_db
def test_without_a_replica_the_report_reads_are_on_the_primary(client, marketer):
    ContactFactory(email="dan@example.com")
    client.force_login(marketer)
    with CaptureQueriesContext(connections["default"]) as on_primary:
        body = b"".join(client.get("/contacts/export.csv").streaming_content).decode()
    assert "dan@example.com" in body
    assert any('FROM "contacts_contact"' in sql for sql in statements(on_primary))


def test_database_replica_url_adds_the_replica_alias_and_refuses_other_databases():
    script = (
        "import json; from django.conf import settings; "
        "print(json.dumps({a: d['NAME'] for a, d in settings.DATABASES.items()}))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    env["DATABASE_REPLICA_URL"] = "postgres://reader@replica.internal:5432/herald"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1])[REPLICA] == "herald"
    env["DATABASE_REPLICA_URL"] = "mysql://reader@replica.internal/herald"
    refused = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "DATABASE_REPLICA_URL must be a PostgreSQL URL" in refused.stderr


def test_the_campaign_report_page_reads_the_replica(replica, client):
    from tests.campaigns.test_pipeline import make_campaign

    campaign = make_campaign(name="Replica sale")
    client.force_login(UserFactory(role="viewer"))
    with (
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
        CaptureQueriesContext(connections["default"]) as on_primary,
    ):
        response = client.get(f"/campaigns/{campaign.pk}/report/")
    assert response.status_code == 200 and "Replica sale" in response.content.decode()
    assert any('FROM "campaigns_campaign"' in sql for sql in statements(on_replica))
    assert not any('FROM "campaigns_campaign"' in sql for sql in statements(on_primary))
    assert not any(sql.lstrip().upper().startswith(WRITES) for sql in statements(on_replica))
