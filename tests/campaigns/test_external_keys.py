"""External keys in the CRM campaigns API: the documented body's string ids
(`aud-spring-prospects`, `tpl-spring-launch`, `camp-1`) resolve wherever a numeric id is
taken, answers show the keys, and a key that names nothing is a 400 naming the field (in a
body) or a 404 (in a path)."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.analytics import stats_refresh
from campaigns.models import Campaign, CampaignRun, RunStatus
from tests.campaigns.support import CAMPAIGNS, email_template, segment_with
from tests.campaigns.test_analytics import make_delivery, make_run
from tests.campaigns.test_analytics_api import DOCUMENTED_METRICS
from tests.campaigns.test_api_campaigns import DOCUMENTED_CAMPAIGN

pytestmark = pytest.mark.django_db
BASE = "/api/crm/marketing"


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def keyed(db):
    segment, contacts = segment_with(3)
    segment.external_key = "aud-spring-prospects"
    segment.save()
    template = email_template()
    template.external_key = "tpl-spring-launch"
    template.save()
    return {"segment": segment, "template": template, "contacts": contacts}


def documented_future() -> dict:
    """The documented body verbatim, but for dates that are still to come."""
    start = timezone.now() + dt.timedelta(days=10)
    return {
        **DOCUMENTED_CAMPAIGN,
        "schedule": {
            "startAt": iso(start),
            "endAt": iso(start + dt.timedelta(days=14)),
            "timezone": "America/New_York",
        },
    }


def create(api, key, body) -> dict:
    response = api.post(CAMPAIGNS, key=key, body=body)
    assert response.status_code == 201, response.content
    return response.json()


def test_documented_body_with_its_string_ids_saves_and_answers_both_forms(api, full_key, keyed):
    campaign = create(api, full_key, {**documented_future(), "externalId": "camp-1"})

    assert campaign["externalId"] == "camp-1"
    assert campaign["audienceId"] == keyed["segment"].pk
    assert campaign["audienceExternalId"] == "aud-spring-prospects"
    assert campaign["templateId"] == keyed["template"].pk
    assert campaign["templateExternalId"] == "tpl-spring-launch"
    assert Campaign.objects.get().external_key == "camp-1"


def test_documented_body_as_published_saves_only_its_past_schedule_is_refused(api, full_key, keyed):
    """The ids of the documented body resolve: the one refusal left is its 2026-05-01 start,
    which is in the past."""
    response = api.post(CAMPAIGNS, key=full_key, body=DOCUMENTED_CAMPAIGN)

    assert response.status_code == 400
    assert response.json() == {"schedule.startAt": ["is in the past"]}


def test_a_string_id_on_create_becomes_the_external_key(api, full_key, keyed):
    campaign = create(api, full_key, {**documented_future(), "id": "camp-7"})

    assert campaign["externalId"] == "camp-7"
    assert isinstance(campaign["id"], int)
    assert api.get(f"{CAMPAIGNS}/camp-7", key=full_key).json()["id"] == campaign["id"]


def test_a_numeric_id_on_create_is_ignored(api, full_key, keyed):
    campaign = create(api, full_key, {**documented_future(), "id": 424242})

    assert campaign["externalId"] is None
    assert campaign["id"] != 424242


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("12345", "not be only digits"),
        ("camp 1", "only letters, digits"),
        ("-camp", "only letters, digits"),
        ("x" * 101, "at most 100 characters"),
        ("aggregated-metrics", "reserved"),
        (17, "must be a string"),
    ],
)
def test_a_bad_external_id_is_400_naming_it(api, full_key, keyed, key, fragment):
    response = api.post(CAMPAIGNS, key=full_key, body={**documented_future(), "externalId": key})

    assert response.status_code == 400
    assert fragment in response.json()["externalId"][0]
    assert not Campaign.objects.exists()


def test_a_taken_external_id_is_400_and_an_update_may_keep_or_change_its_own(api, full_key, keyed):
    first = create(api, full_key, {**documented_future(), "externalId": "camp-1"})
    create(api, full_key, {**documented_future(), "externalId": "camp-2"})

    taken = api.post(CAMPAIGNS, key=full_key, body={**documented_future(), "externalId": "camp-2"})
    assert taken.status_code == 400
    assert "another campaign" in taken.json()["externalId"][0]

    kept = api.put(f"{CAMPAIGNS}/camp-1", key=full_key, body={"externalId": "camp-1"})
    assert kept.status_code == 200, kept.content
    clash = api.put(f"{CAMPAIGNS}/camp-1", key=full_key, body={"externalId": "camp-2"})
    assert clash.status_code == 400
    renamed = api.put(f"{CAMPAIGNS}/{first['id']}", key=full_key, body={"externalId": "spring"})
    assert renamed.json()["externalId"] == "spring"
    assert api.get(f"{CAMPAIGNS}/camp-1", key=full_key).status_code == 404
    cleared = api.put(f"{CAMPAIGNS}/spring", key=full_key, body={"externalId": None})
    assert cleared.json()["externalId"] is None


def test_every_campaign_path_takes_the_key_and_an_unknown_key_is_404(api, full_key, keyed):
    body = {**documented_future(), "channels": ["email"], "externalId": "camp-1"}
    campaign = create(api, full_key, body)
    pk = campaign["id"]

    for ref in ("camp-1", str(pk)):
        got = api.get(f"{CAMPAIGNS}/{ref}", key=full_key)
        assert (got.status_code, got.json()["id"]) == (200, pk)
        put = api.put(f"{CAMPAIGNS}/{ref}/", key=full_key, body={"name": f"Renamed {ref}"})
        assert (put.status_code, put.json()["name"]) == (200, f"Renamed {ref}")
        analytics = api.get(f"{CAMPAIGNS}/{ref}/analytics", key=full_key)
        assert analytics.status_code == 200
        assert (analytics.json()["campaignId"], analytics.json()["externalId"]) == (pk, "camp-1")

    for path in ("", "/analytics", "/launch", "/pause", "/duplicate"):
        method = api.post if path in ("/launch", "/pause", "/duplicate") else api.get
        missing = method(f"{CAMPAIGNS}/camp-404{path}", key=full_key)
        assert missing.status_code == 404, (path, missing.content)
        assert "camp-404" in missing.json()["detail"]
    assert api.put(f"{CAMPAIGNS}/camp-404", key=full_key, body={"name": "x"}).status_code == 404
    assert api.delete(f"{CAMPAIGNS}/camp-404", key=full_key).status_code == 404

    scheduled = api.post(f"{CAMPAIGNS}/camp-1/schedule", key=full_key)
    assert (scheduled.status_code, scheduled.json()["status"]) == (200, "scheduled")
    unscheduled = api.put(f"{CAMPAIGNS}/camp-1", key=full_key, body={"status": "draft"})
    assert unscheduled.json()["status"] == "draft"
    copy = api.post(f"{CAMPAIGNS}/camp-1/duplicate", key=full_key)
    assert copy.status_code == 201
    assert copy.json()["externalId"] is None  # a key names one campaign
    launched = api.post(f"{CAMPAIGNS}/camp-1/launch", key=full_key)
    assert (launched.status_code, launched.json()["status"]) == (200, "running")
    assert CampaignRun.objects.filter(campaign_id=pk).count() == 1
    assert api.post(f"{CAMPAIGNS}/camp-1/pause", key=full_key).json()["status"] == "paused"
    assert api.post(f"{CAMPAIGNS}/camp-1/resume", key=full_key).json()["status"] == "running"
    assert api.post(f"{CAMPAIGNS}/camp-1/cancel", key=full_key).json()["status"] == "cancelled"
    deleted = api.delete(f"{CAMPAIGNS}/camp-1", key=full_key)
    assert deleted.json()["state"] == "deleted"
    assert api.get(f"{CAMPAIGNS}/camp-1", key=full_key).json()["state"] == "deleted"


def test_audience_and_template_keys_resolve_on_update_and_in_drip_steps(api, full_key, keyed):
    other = email_template("Autumn")
    other.external_key = "tpl-autumn"
    other.save()
    campaign = create(
        api, full_key, {"name": "Plain", "channels": ["email"], "externalId": "camp-1"}
    )

    updated = api.put(
        f"{CAMPAIGNS}/{campaign['id']}",
        key=full_key,
        body={"audienceId": "aud-spring-prospects", "templateId": "tpl-autumn"},
    )
    assert updated.status_code == 200, updated.content
    assert (updated.json()["audienceId"], updated.json()["templateId"]) == (
        keyed["segment"].pk,
        other.pk,
    )
    unknown = api.put(f"{CAMPAIGNS}/camp-1", key=full_key, body={"templateId": "tpl-nope"})
    assert unknown.status_code == 400
    assert unknown.json() == {"templateId": ["no template with id or external key 'tpl-nope'"]}

    drip = api.post(
        CAMPAIGNS,
        key=full_key,
        body={
            "name": "Welcome drip",
            "type": "drip",
            "channels": ["email"],
            "audienceId": "aud-spring-prospects",
            "steps": [
                {"templateId": "tpl-spring-launch", "delay": "PT0S"},
                {"templateId": "tpl-nope", "delay": "P1D"},
            ],
        },
    )
    assert drip.status_code == 400
    assert drip.json() == {"steps.1.templateId": ["no template with id or external key 'tpl-nope'"]}


def test_aggregated_metrics_takes_the_documented_string_ids(api, full_key, keyed):
    started = dt.datetime(2026, 4, 10, 9, tzinfo=dt.UTC)
    runs = []
    for number, key in enumerate(("camp-1", "camp-2", "camp-3"), start=1):
        campaign = Campaign.objects.create(name=key, channels=["email"], external_key=key)
        run = make_run(campaign, 1, status=RunStatus.COMPLETED)
        CampaignRun.objects.filter(pk=run.pk).update(started_at=started)
        for contact_number in range(number):
            make_delivery(run, contact_number + 1, status="sent", sent_at=started)
        runs.append(run)
    stats_refresh(run_ids=[run.pk for run in runs])

    response = api.post(
        f"{BASE}/campaigns/aggregated-metrics", key=full_key, body=DOCUMENTED_METRICS
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["campaignIds"] == sorted(run.campaign_id for run in runs)
    assert body["unknownCampaignIds"] == []
    assert (body["sends"], body["runs"]) == (6, 3)

    mixed = {**DOCUMENTED_METRICS, "campaignIds": [runs[0].campaign_id, "camp-2", 987654]}
    answer = api.post(f"{BASE}/campaigns/aggregated-metrics", key=full_key, body=mixed).json()
    assert answer["campaignIds"] == sorted([runs[0].campaign_id, runs[1].campaign_id])
    assert answer["unknownCampaignIds"] == [987654]
    assert answer["sends"] == 3
