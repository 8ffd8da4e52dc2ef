"""Campaign marketer pages: roles, list/filters/empty state, create/edit through the lifecycle
services, lifecycle buttons, live reach and recurrence helpers, progress partial, report and
the dashboard tiles."""

import json
import re

import pytest
from django.urls import reverse

from campaigns.analytics import stats_refresh
from campaigns.models import Campaign, CampaignRun, Delivery, DeliveryStatus
from tests.campaigns.support import email_template, segment_with
from tests.campaigns.test_analytics import add_event, make_delivery

pytestmark = pytest.mark.django_db

# What the launch confirmation page posts (below the typed-name threshold).
CONFIRM = {"confirm": "yes"}


@pytest.fixture
def spring(db):
    segment, contacts = segment_with(3)
    return {"segment": segment, "contacts": contacts, "template": email_template()}


def form_data(spring, **overrides) -> dict:
    data = {
        "name": "Spring launch",
        "type": "blast",
        "channels": ["email"],
        "segment": str(spring["segment"].pk),
        "audience_filter": "",
        "template": str(spring["template"].pk),
        "start_at": "",
        "end_at": "",
        "timezone": "Europe/Berlin",
        "cron": "",
        "steps": "",
        "milestone": "",
    }
    data.update(overrides)
    return data


def create(client, spring, **overrides) -> Campaign:
    response = client.post(reverse("campaign_create"), form_data(spring, **overrides))
    assert response.status_code == 302, response.content.decode()[:2000]
    return Campaign.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))


# --- Roles ---------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client):
    response = client.get("/campaigns/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_outsider_gets_403_everywhere(client, outsider, spring):
    client.force_login(outsider)
    assert client.get("/campaigns/").status_code == 403
    assert client.post(reverse("campaign_create"), form_data(spring)).status_code == 403
    assert not Campaign.objects.exists()


def test_viewer_reads_but_cannot_write(client, viewer, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring)
    client.force_login(viewer)
    listing = client.get("/campaigns/")
    assert listing.status_code == 200
    assert "Spring launch" in listing.content.decode()
    assert "New campaign" not in listing.content.decode()
    detail = client.get(reverse("campaign_detail", args=[campaign.pk]))
    assert detail.status_code == 200
    assert 'data-testid="action-launch"' not in detail.content.decode()
    assert client.get(reverse("campaign_report", args=[campaign.pk])).status_code == 200
    assert client.get(reverse("campaign_create")).status_code == 403
    assert client.get(reverse("campaign_edit", args=[campaign.pk])).status_code == 403
    launch = client.post(reverse("campaign_action", args=[campaign.pk, "launch"]), CONFIRM)
    assert launch.status_code == 403
    assert Campaign.objects.get().status == "draft"


# --- List ----------------------------------------------------------------------------------


def test_empty_list_says_so_and_offers_to_create(client, marketer):
    client.force_login(marketer)
    page = client.get("/campaigns/").content.decode()
    assert "No campaigns yet — create one" in page
    assert reverse("campaign_create") in page


def test_list_filters_by_status(client, marketer, spring):
    client.force_login(marketer)
    create(client, spring, name="Draft one")
    launched = create(client, spring, name="Sent one")
    client.post(reverse("campaign_action", args=[launched.pk, "launch"]), CONFIRM)
    client.get("/campaigns/")  # shows (and so clears) the flash messages naming both
    running = client.get("/campaigns/?status=running").content.decode()
    assert "Sent one" in running and "Draft one" not in running
    drafts = client.get("/campaigns/?status=draft").content.decode()
    assert "Draft one" in drafts and "Sent one" not in drafts
    assert "No completed campaigns" in client.get("/campaigns/?status=completed").content.decode()


# --- Create / edit -------------------------------------------------------------------------


def test_create_saves_a_draft_through_the_lifecycle(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring, start_at="2099-05-01T09:00", cron="")
    assert campaign.status == "draft"
    assert campaign.segment == spring["segment"]
    assert campaign.timezone == "Europe/Berlin"
    # Wall-clock 09:00 in Berlin (summer time) is 07:00 UTC.
    assert campaign.start_at.isoformat() == "2099-05-01T07:00:00+00:00"
    assert campaign.created_by == marketer
    listing = client.get("/campaigns/").content.decode()
    assert "2099-05-01 09:00" in listing and "Europe/Berlin" in listing


def test_create_with_an_inline_filter(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(
        client, spring, segment="", audience_filter=json.dumps({"tags": {"$in": ["vip"]}})
    )
    assert campaign.segment is None
    assert campaign.audience_filter == {"tags": {"$in": ["vip"]}}


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"name": ""}, "This field is required"),
        ({"cron": "61 9 * * 1", "type": "recurring"}, "invalid cron"),
        ({"start_at": "2001-01-01T09:00"}, "is in the past"),
        ({"audience_filter": "{not json", "segment": ""}, "Not valid JSON"),
        ({"audience_filter": '{"nosuchfield": 1}', "segment": ""}, "nosuchfield"),
        ({"channels": ["sms"]}, "is a email template"),
        ({"type": "drip"}, "drip campaign needs"),
    ],
)
def test_bad_input_rerenders_the_form_with_the_lifecycle_message(
    client, marketer, spring, overrides, fragment
):
    client.force_login(marketer)
    response = client.post(reverse("campaign_create"), form_data(spring, **overrides))
    assert response.status_code == 400
    assert fragment in response.content.decode()
    assert not Campaign.objects.exists()


def test_edit_prefills_and_saves_through_the_lifecycle(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring, start_at="2099-05-01T09:00")
    page = client.get(reverse("campaign_edit", args=[campaign.pk])).content.decode()
    assert 'value="Spring launch"' in page
    assert 'value="2099-05-01T09:00"' in page
    response = client.post(
        reverse("campaign_edit", args=[campaign.pk]),
        form_data(spring, name="Spring launch v2", start_at="2099-05-01T09:00"),
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Spring launch v2"
    assert campaign.start_at.isoformat() == "2099-05-01T07:00:00+00:00"


def test_editing_a_running_campaign_is_refused_with_a_message(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring)
    client.post(reverse("campaign_action", args=[campaign.pk, "launch"]), CONFIRM)
    response = client.post(
        reverse("campaign_edit", args=[campaign.pk]), form_data(spring, name="Changed")
    )
    assert response.status_code == 400
    assert "cannot be edited" in response.content.decode()
    assert Campaign.objects.get().name == "Spring launch"


# --- Buttons -------------------------------------------------------------------------------


def test_launch_pause_resume_cancel_buttons_drive_the_lifecycle(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring)
    detail = reverse("campaign_detail", args=[campaign.pk])
    assert 'data-testid="action-launch"' in client.get(detail).content.decode()

    client.post(reverse("campaign_action", args=[campaign.pk, "launch"]), CONFIRM)
    campaign.refresh_from_db()
    assert campaign.status == "running"
    run = CampaignRun.objects.get(campaign=campaign)
    assert Delivery.objects.filter(run=run).count() == 3
    page = client.get(detail).content.decode()
    assert 'data-testid="action-pause"' in page and 'data-testid="progress"' in page

    client.post(reverse("campaign_action", args=[campaign.pk, "pause"]))
    assert Campaign.objects.get().status == "paused"
    client.post(reverse("campaign_action", args=[campaign.pk, "resume"]))
    assert Campaign.objects.get().status == "running"
    client.post(reverse("campaign_action", args=[campaign.pk, "cancel"]))
    assert Campaign.objects.get().status == "cancelled"
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SKIPPED}


def test_an_illegal_button_press_shows_the_lifecycle_refusal(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring)
    response = client.post(reverse("campaign_action", args=[campaign.pk, "resume"]), follow=True)
    assert "Not done: only a paused campaign can be resumed" in response.content.decode()
    assert Campaign.objects.get().status == "draft"


def test_schedule_button_without_a_future_start_explains(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring, cron="")
    response = client.post(
        reverse("campaign_action", args=[campaign.pk, "schedule"]), CONFIRM, follow=True
    )
    assert "future schedule.startAt" in response.content.decode()


def test_duplicate_opens_the_copy_for_editing(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring)
    response = client.post(reverse("campaign_action", args=[campaign.pk, "duplicate"]))
    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response["Location"] == reverse("campaign_edit", args=[copy.pk])
    assert copy.name == "Spring launch (copy)" and copy.status == "draft"


# --- Helpers called by htmx ----------------------------------------------------------------


def test_reach_of_a_segment_and_of_an_inline_filter(client, viewer, spring):
    client.force_login(viewer)
    url = reverse("campaign_audience_reach")
    by_segment = client.post(url, {"segment": spring["segment"].pk}).content.decode()
    assert 'data-testid="reach">3<' in by_segment
    by_filter = client.post(url, {"audience_filter": '{"email": {"$contains": "person"}}'})
    assert 'data-testid="reach">' in by_filter.content.decode()
    bad = client.post(url, {"audience_filter": '{"nosuchfield": 1}'}).content.decode()
    assert "nosuchfield" in bad and 'data-testid="reach-error"' in bad
    assert "Not valid JSON" in client.post(url, {"audience_filter": "{"}).content.decode()


def test_recurrence_helper_says_the_next_runs_in_plain_words(client, viewer):
    client.force_login(viewer)
    url = reverse("campaign_recurrence")
    page = client.get(url, {"cron": "0 9 * * 1", "timezone": "Europe/Berlin"}).content.decode()
    assert "At 09:00 AM, only on Monday" in page
    # Each next run carries its weekday, then the date and time in the page's one style.
    runs = re.findall(r"<li>([^<]*)</li>", page.split('data-testid="recurrence-next"')[1])
    assert len(runs) >= 5
    assert all(re.fullmatch(r"Monday, \d{4}-\d{2}-\d{2} 09:00", run) for run in runs), runs
    ukrainian = client.get(
        url, {"cron": "0 9 * * 1", "timezone": "Europe/Berlin"}, HTTP_ACCEPT_LANGUAGE="uk"
    ).content.decode()
    runs = re.findall(r"<li>([^<]*)</li>", ukrainian.split('data-testid="recurrence-next"')[1])
    assert len(runs) >= 5
    assert all(re.fullmatch(r"Понеділок, \d{2}\.\d{2}\.\d{4} 09:00", run) for run in runs), runs
    assert "Not a valid schedule" in client.get(url, {"cron": "0 25 * * *"}).content.decode()


# --- Progress, report, dashboard -----------------------------------------------------------


def test_progress_partial_reads_the_rollup(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring)
    client.post(reverse("campaign_action", args=[campaign.pk, "launch"]), CONFIRM)
    run = CampaignRun.objects.get()
    first = Delivery.objects.filter(run=run).order_by("pk").first()
    Delivery.objects.filter(pk=first.pk).update(status="sent", sent_at=run.started_at)
    url = reverse("campaign_progress", args=[campaign.pk])
    assert 'data-testid="progress-done">0<' in client.get(url).content.decode()
    stats_refresh(run_ids=[run.pk])
    page = client.get(url).content.decode()
    assert 'data-testid="progress-done">1<' in page and "(33%)" in page
    client.post(reverse("campaign_action", args=[campaign.pk, "cancel"]))
    idle = client.get(url)
    assert 'data-testid="progress-idle"' in idle.content.decode()
    assert idle.status_code == 286  # htmx stops polling
    assert idle["HX-Trigger"] == "campaignSettled"


def test_report_shows_totals_chart_data_and_links(client, viewer, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring)
    client.post(reverse("campaign_action", args=[campaign.pk, "launch"]), CONFIRM)
    run = CampaignRun.objects.get()
    clicked = make_delivery(run, 99, status="clicked", sent_at=run.started_at, click_count=1)
    add_event(clicked, "clicked", run.started_at, url="https://shop.example/spring")
    stats_refresh(run_ids=[run.pk])
    client.force_login(viewer)
    page = client.get(reverse("campaign_report", args=[campaign.pk])).content.decode()
    assert 'data-testid="total-recipients">4<' in page
    assert 'id="timeline-chart"' in page and 'id="timeline-data"' in page
    assert "https://shop.example/spring" in page
    assert "vendor/chart.js/chart.umd.js" in page


def test_report_of_a_campaign_never_sent_is_honest(client, viewer, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring)
    client.force_login(viewer)
    page = client.get(reverse("campaign_report", args=[campaign.pk])).content.decode()
    assert "No opens or clicks yet." in page and "No runs yet." in page


def test_dashboard_has_campaign_tiles(client, marketer, spring):
    client.force_login(marketer)
    empty = client.get("/").content.decode()
    assert 'data-testid="campaign-tiles"' in empty and "No campaign is sending." in empty
    campaign = create(client, spring)
    client.post(reverse("campaign_action", args=[campaign.pk, "launch"]), CONFIRM)
    run = CampaignRun.objects.get()
    Delivery.objects.filter(run=run).update(status="sent", sent_at=run.started_at)
    Delivery.objects.filter(run=run, pk=Delivery.objects.filter(run=run).first().pk).update(
        status="opened", opened_at=run.started_at, open_count=1
    )
    stats_refresh(run_ids=[run.pk])
    page = client.get("/").content.decode()
    assert 'data-testid="tile-sends">3<' in page
    assert 'data-testid="tile-open-rate">33%<' in page
    assert 'data-testid="running-campaigns"' in page and "Spring launch" in page


def test_drip_steps_round_trip_through_the_form(client, marketer, spring):
    client.force_login(marketer)
    template = spring["template"].pk
    steps = [{"templateId": template, "delay": "P0D"}, {"templateId": template, "delay": "P1DT6H"}]
    campaign = create(client, spring, type="drip", steps=json.dumps(steps))
    assert [str(step.delay) for step in campaign.steps.order_by("position")] == [
        "0:00:00",
        "1 day, 6:00:00",
    ]
    page = client.get(reverse("campaign_edit", args=[campaign.pk])).content.decode()
    assert "P1DT6H" in page and "P0D" in page
    response = client.post(
        reverse("campaign_edit", args=[campaign.pk]),
        form_data(spring, type="drip", steps=json.dumps(steps[:1])),
    )
    assert response.status_code == 302
    assert campaign.steps.count() == 1


def test_an_unconnected_channel_of_a_campaign_stays_marked_and_launch_names_it(
    client, marketer, spring
):
    client.force_login(marketer)
    assert "Facebook" not in client.get(reverse("campaign_create")).content.decode()
    # Saved through the API, where any channel may be named.
    campaign = create(client, spring)
    Campaign.objects.filter(pk=campaign.pk).update(channels=["email", "facebook"])
    form = client.get(reverse("campaign_edit", args=[campaign.pk])).content.decode()
    assert "Facebook (not connected)" in form
    confirm = client.get(reverse("campaign_action", args=[campaign.pk, "launch"]))
    assert "channel facebook is not connected" in confirm.content.decode()
    response = client.post(
        reverse("campaign_action", args=[campaign.pk, "launch"]), CONFIRM, follow=True
    )
    assert "channel facebook is not connected" in response.content.decode()
    assert Campaign.objects.get().status == "draft"


def test_report_links_only_web_addresses(client, viewer, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring)
    client.post(reverse("campaign_action", args=[campaign.pk, "launch"]), CONFIRM)
    run = CampaignRun.objects.get()
    clicked = make_delivery(run, 99, status="clicked", sent_at=run.started_at, click_count=2)
    add_event(clicked, "clicked", run.started_at, url="javascript:alert(1)")
    add_event(clicked, "clicked", run.started_at, url="https://shop.example/ok")
    client.force_login(viewer)
    page = client.get(reverse("campaign_report", args=[campaign.pk])).content.decode()
    assert 'href="javascript:' not in page and "javascript:alert(1)" in page
    assert 'href="https://shop.example/ok"' in page


def test_delete_is_soft_hides_the_campaign_and_keeps_its_report(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring)
    client.post(reverse("campaign_action", args=[campaign.pk, "launch"]), CONFIRM)
    response = client.post(reverse("campaign_action", args=[campaign.pk, "delete"]))
    assert response["Location"] == reverse("campaigns_home")
    campaign.refresh_from_db()
    assert campaign.deleted_at is not None and campaign.status == "cancelled"
    listing = client.get("/campaigns/").content.decode()
    assert "deleted; its reports stay" in listing
    assert 'data-testid="campaign-row"' not in listing
    assert client.get(reverse("campaign_report", args=[campaign.pk])).status_code == 200
    detail = client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert "its history stays" in detail and 'data-testid="action-' not in detail
