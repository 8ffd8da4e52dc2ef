"""Every kind of send goes through the one delivery engine: a campaign run, a drip step, a
workflow send step and a smartsend of the eSputnik v1 API each end in the SMTP sink, and the
SQL shows one claim query and one record step serving all four."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import messages, pipeline
from campaigns.delivery import engine
from campaigns.models import Campaign, CampaignRun, CampaignStep, Delivery, DeliveryEvent
from marketing.models import Event, EventType
from marketing.workflows.triggers import workflows_start_for_event
from tests.campaigns.test_pipeline import make_campaign, make_template
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink, use_sink
from tests.workflows.conftest import chain, make_workflow

pytestmark = pytest.mark.django_db

CLAIM = "/* delivery.claim */"
RECORD = "/* delivery.record */"


@pytest.fixture
def sink(settings):
    with SMTPSink() as server:
        use_sink(settings, server)
        yield server


def blast_run() -> CampaignRun:
    ContactFactory(email="blast@example.com", tags=["blast"])
    campaign = make_campaign(audience_filter={"tags": {"$in": ["blast"]}})
    version = campaign.template.versions.get()
    run = CampaignRun.objects.create(campaign=campaign, number=1, template_version=version)
    pipeline.run_materialise(run=run)
    return run


def drip_run() -> CampaignRun:
    ContactFactory(email="drip@example.com", tags=["drip"])
    step_template = make_template("Drip step one")
    campaign: Campaign = make_campaign(
        name="Onboarding", type="drip", audience_filter={"tags": {"$in": ["drip"]}}
    )
    CampaignStep.objects.create(
        campaign=campaign, position=1, template=step_template, delay=dt.timedelta(0)
    )
    run = CampaignRun.objects.create(campaign=campaign, number=1)
    pipeline.run_materialise(run=run)
    return run


def workflow_send_request_id(on_commit) -> int:
    contact = ContactFactory(email="flow@example.com")
    template = make_template("Welcome")
    make_workflow(chain({"kind": "send", "template_id": template.pk, "channel": "email"}))
    event_type, _ = EventType.objects.get_or_create(key="signup")
    event = Event.objects.create(
        event_type=event_type, key_value=str(contact.pk), params={}, contact=contact
    )
    with on_commit(execute=True):  # the run advances once its start commits
        workflows_start_for_event(event=event)
    return Delivery.objects.get(locator="flow@example.com").send_request_id


def smartsend_request_id() -> int:
    template = make_template("Order shipped")
    send_request, _results = messages.smartsend_start(
        template_id=template.pk, recipients=[{"locator": "smart@example.com"}]
    )
    return send_request.pk


def drain(send: callable) -> None:
    for _ in range(10):
        if send() is None:
            return


def test_a_run_a_drip_step_a_workflow_send_and_a_smartsend_share_one_claim_and_one_record(
    sink, django_capture_on_commit_callbacks
):
    blast, drip = blast_run(), drip_run()
    flow = workflow_send_request_id(django_capture_on_commit_callbacks)
    smart = smartsend_request_id()
    assert Delivery.objects.filter(status="queued").count() == 4
    before = engine.stats.copy()

    with CaptureQueriesContext(connection) as captured:
        for run in (blast, drip):
            drain(lambda run=run: engine.run_send(run_id=run.pk))
        for request_id in (flow, smart):
            drain(
                lambda request_id=request_id: engine.send_request_process(
                    send_request_id=request_id
                )
            )

    # Every recipient got its message, with the ledger's Message-ID, through the sink.
    received = {m["To"]: m["Message-ID"] for m in sink.messages}
    ledger = dict(Delivery.objects.values_list("locator", "message_id"))
    assert received == ledger
    assert set(received) == {
        "blast@example.com",
        "drip@example.com",
        "flow@example.com",
        "smart@example.com",
    }
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert DeliveryEvent.objects.filter(status="sent", detail="accepted by smtp").count() == 4

    # One claim query: every statement that claims deliveries is the engine's lease claim,
    # writing the same claim (lease, attempt, Message-ID) whatever the scope, and each of the
    # four scopes was claimed by it.
    sql = [query["sql"] for query in captured.captured_queries]
    claims = [statement for statement in sql if CLAIM in statement]
    stamps = re.compile(r"claimed_at = (now|statement_timestamp|clock_timestamp)\(\)")
    assert all(CLAIM in statement for statement in sql if stamps.search(statement))
    writes = {re.sub(r"'[^']*'", "?", s.split("SET", 1)[1].split("WHERE", 1)[0]) for s in claims}
    assert len(writes) == 1
    assert all("FOR UPDATE SKIP LOCKED" in statement for statement in claims)
    for column, pk in [
        ("run_id", blast.pk),
        ("run_id", drip.pk),
        ("send_request_id", flow),
        ("send_request_id", smart),
    ]:
        assert any(f"{column} = {pk} " in claim for claim in claims), (column, pk)

    # One record step: each message's outcome was written by the engine's one statement.
    records = [statement for statement in sql if RECORD in statement]
    assert len(records) == 4
    history = f"INSERT INTO {DeliveryEvent._meta.db_table}"
    assert all(RECORD in statement for statement in sql if history in statement)
    assert engine.stats["claim"] - before["claim"] == len(claims)
    assert engine.stats["record"] - before["record"] == 4
