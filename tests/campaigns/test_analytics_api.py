"""The CRM campaigns API's analytics: GET campaigns/:id/analytics,
POST campaigns/aggregated-metrics, GET dashboard — through HTTP with an API key, JWT-less session
users and bad bodies."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.analytics import stats_refresh
from campaigns.models import Campaign, CampaignRun, RunStatus
from tests.campaigns.test_analytics import add_event, make_campaign, make_delivery, make_run

pytestmark = pytest.mark.django_db

BASE = "/api/crm/marketing"
# The documented example body, verbatim.
DOCUMENTED_METRICS = {
    "campaignIds": ["camp-1", "camp-2", "camp-3"],
    "range": {"start": "2026-04-01", "end": "2026-04-30"},
}


def started(run: CampaignRun, when: datetime) -> CampaignRun:
    CampaignRun.objects.filter(pk=run.pk).update(started_at=when)
    return run


@pytest.fixture
def april():
    """Campaign A: one run on 10 April (2 sent, 1 opened twice, 1 click), one on 2 May."""
    campaign = make_campaign("April newsletter")
    run = started(
        make_run(campaign, 1, status=RunStatus.COMPLETED), datetime(2026, 4, 10, tzinfo=UTC)
    )
    t = datetime(2026, 4, 10, 9, tzinfo=UTC)
    make_delivery(run, 1, status="sent", sent_at=t)
    clicked = make_delivery(
        run, 2, status="clicked", sent_at=t, opened_at=t, clicked_at=t, open_count=2, click_count=1
    )
    add_event(clicked, "opened", t)
    add_event(clicked, "opened", t + timedelta(hours=1))
    add_event(clicked, "clicked", t + timedelta(hours=1), url="https://example.com/a")
    may = started(
        make_run(campaign, 2, status=RunStatus.COMPLETED), datetime(2026, 5, 2, tzinfo=UTC)
    )
    make_delivery(may, 1, status="sent", sent_at=t)
    other = make_campaign("SMS flash")
    sms_run = started(
        make_run(other, 1, status=RunStatus.COMPLETED), datetime(2026, 4, 20, tzinfo=UTC)
    )
    make_delivery(sms_run, 1, channel="sms", status="bounced", sent_at=t, failed_at=t)
    stats_refresh(run_ids=[run.pk, may.pk, sms_run.pk])
    return {"campaign": campaign, "other": other}


def test_campaign_analytics_has_the_documented_fields_and_breakdowns(api, full_key, april):
    response = api.get(f"{BASE}/campaigns/{april['campaign'].pk}/analytics", key=full_key)
    assert response.status_code == 200, response.content
    body = response.json()
    for field in ("sends", "opens", "clicks", "replies", "bounces", "conversions", "revenue"):
        assert field in body
    assert (body["sends"], body["opens"], body["uniqueOpens"], body["clicks"]) == (3, 2, 1, 1)
    assert (body["replies"], body["conversions"], body["revenue"]) == (0, 0, 0.0)
    assert body["channels"]["email"]["sends"] == 3
    assert [run["sends"] for run in body["runs"]] == [2, 1]
    assert body["timeline"] == [
        {"hour": "2026-04-10T09:00:00+00:00", "opens": 1, "clicks": 0},
        {"hour": "2026-04-10T10:00:00+00:00", "opens": 1, "clicks": 1},
    ]
    assert body["links"] == [{"url": "https://example.com/a", "clicks": 1, "uniqueClicks": 1}]


def test_campaign_analytics_with_trailing_slash_and_unknown_id(api, full_key, april):
    ok = api.get(f"{BASE}/campaigns/{april['campaign'].pk}/analytics/", key=full_key)
    assert ok.status_code == 200
    missing = api.get(f"{BASE}/campaigns/987654/analytics", key=full_key)
    assert missing.status_code == 404
    assert "987654" in missing.json()["detail"]


def test_aggregated_metrics_with_keys_that_name_no_campaign_is_400_naming_each(
    api, full_key, april
):
    response = api.post(
        f"{BASE}/campaigns/aggregated-metrics", key=full_key, body=DOCUMENTED_METRICS
    )
    assert response.status_code == 400, response.content
    assert response.json() == {
        f"campaignIds[{index}]": [f"no campaign with id or external key 'camp-{index + 1}'"]
        for index in range(3)
    }


def test_aggregated_metrics_counts_runs_started_in_the_range(api, full_key, april):
    ids = [april["campaign"].pk, str(april["other"].pk), 555555]
    body = {"campaignIds": ids, "range": {"start": "2026-04-01", "end": "2026-04-30"}}
    response = api.post(f"{BASE}/campaigns/aggregated-metrics/", key=full_key, body=body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["campaignIds"] == sorted([april["campaign"].pk, april["other"].pk])
    assert data["unknownCampaignIds"] == [555555]
    # The May run of the newsletter is outside the range.
    assert (data["sends"], data["bounces"], data["uniqueClicks"], data["runs"]) == (3, 1, 1, 2)
    assert data["channels"]["sms"]["bounces"] == 1
    per_campaign = {row["campaignId"]: row["sends"] for row in data["campaigns"]}
    assert per_campaign == {april["campaign"].pk: 2, april["other"].pk: 1}
    may_only = {"campaignIds": ids, "range": {"start": "2026-05-01", "end": "2026-05-31"}}
    assert (
        api.post(f"{BASE}/campaigns/aggregated-metrics", key=full_key, body=may_only).json()[
            "sends"
        ]
        == 1
    )


def test_aggregated_metrics_form_encoded(api, full_key, april, client):
    response = client.post(
        f"{BASE}/campaigns/aggregated-metrics",
        {
            "campaignIds": [str(april["campaign"].pk)],
            "range[start]": "2026-04-01",
            "range[end]": "2026-04-30",
        },
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 200, response.content
    assert response.json()["sends"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"range": {"start": "2026-04-01", "end": "2026-04-30"}}, "campaignIds"),
        ({"campaignIds": "nope", "range": {"start": "2026-04-01", "end": "2026-04-30"}}, None),
        ({"campaignIds": [], "range": {"start": "2026-04-01", "end": "2026-04-30"}}, "campaignIds"),
        (
            {"campaignIds": [1, None], "range": {"start": "2026-04-01", "end": "2026-04-30"}},
            "campaignIds[1]",
        ),
        (
            {"campaignIds": [1], "range": {"start": "2026-04-31", "end": "2026-05-01"}},
            "range.start",
        ),
        ({"campaignIds": [1], "range": {"start": "2026-04-01"}}, "range.end"),
        ({"campaignIds": [1], "range": {"start": "2026-05-01", "end": "2026-04-01"}}, "range.end"),
        ({"campaignIds": [1], "range": "April"}, "range"),
        ({"campaignIds": [1], "range": {"start": 20260401, "end": "2026-04-30"}}, "range.start"),
    ],
)
def test_aggregated_metrics_bad_input_is_400_naming_the_field(api, full_key, body, field):
    response = api.post(f"{BASE}/campaigns/aggregated-metrics", key=full_key, body=body)
    assert response.status_code == 400, response.content
    if field:
        assert field in response.json()


def test_aggregated_metrics_malformed_json_is_400(api, full_key, client):
    response = client.post(
        f"{BASE}/campaigns/aggregated-metrics",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 400


def test_dashboard_tiles_cover_the_last_30_days(api, full_key, april):
    campaign = make_campaign("This month")
    run = make_run(campaign, 1)
    make_delivery(
        run, 1, status="opened", sent_at=timezone.now(), opened_at=timezone.now(), open_count=1
    )
    make_delivery(run, 2, status="unsubscribed", sent_at=timezone.now())
    make_delivery(run, 3)
    stats_refresh(run_ids=[run.pk])
    response = api.get(f"{BASE}/dashboard", key=full_key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["sends"], body["uniqueOpens"], body["unsubscribes"]) == (2, 1, 1)
    assert body["openRate"] == 0.5
    assert body["running"] == [
        {
            "campaignId": campaign.pk,
            "name": "This month",
            "runId": run.pk,
            "runStatus": "running",
            "total": 3,
            "done": 2,
            "percent": 67,
        }
    ]
    assert api.get(f"{BASE}/dashboard?days=0", key=full_key).status_code == 400


def test_rights_limited_key_is_403_and_viewer_may_read(api, limited_key, viewer, client, april):
    # The documented ids are the campaigns' external keys.
    Campaign.objects.filter(pk=april["campaign"].pk).update(external_key="camp-1")
    Campaign.objects.filter(pk=april["other"].pk).update(external_key="camp-2")
    make_campaign("Third", external_key="camp-3")
    path = f"{BASE}/campaigns/{april['campaign'].pk}/analytics"
    assert api.get(path, key=limited_key).status_code == 403
    assert (
        api.post(
            f"{BASE}/campaigns/aggregated-metrics", key=limited_key, body=DOCUMENTED_METRICS
        ).status_code
        == 403
    )
    assert client.get(path).status_code in (401, 403)
    client.force_login(viewer)
    assert client.get(path).status_code == 200
    assert client.get(f"{BASE}/dashboard").status_code == 200
    response = client.post(
        f"{BASE}/campaigns/aggregated-metrics",
        data=DOCUMENTED_METRICS,
        content_type="application/json",
    )
    assert response.status_code == 200


def test_outsider_is_403(client, outsider, april):
    client.force_login(outsider)
    assert client.get(f"{BASE}/dashboard").status_code == 403
    response = client.post(
        f"{BASE}/campaigns/aggregated-metrics",
        data=DOCUMENTED_METRICS,
        content_type="application/json",
    )
    assert response.status_code == 403


def test_jwt_viewer_reads_analytics_as_the_documented_client_does(client, viewer, april):
    from tests.factories import PASSWORD

    token = client.post(
        "/api/auth/token/",
        {"username": viewer.username, "password": PASSWORD},
        content_type="application/json",
    ).json()["access"]
    headers = {"Authorization": f"Bearer {token}", "orgid": "1"}
    analytics = client.get(f"{BASE}/campaigns/{april['campaign'].pk}/analytics", headers=headers)
    assert analytics.status_code == 200 and analytics.json()["sends"] == 3
    body = {"campaignIds": [str(april["campaign"].pk)], "range": DOCUMENTED_METRICS["range"]}
    metrics = client.post(
        f"{BASE}/campaigns/aggregated-metrics",
        data=body,
        content_type="application/json",
        headers=headers,
    )
    assert metrics.status_code == 200 and metrics.json()["sends"] == 2
