"""The CRM campaigns API: CRUD with its documented body, bad input naming the field, lifecycle
actions and their 409s, discovery, health, and authentication (API key and JWT)."""

import datetime as dt

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from campaigns.models import Campaign, CampaignRun, Delivery, DeliveryStatus
from config.core.models import Heartbeat
from tests.campaigns.support import CAMPAIGNS, email_template, segment_with, sms_template
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

DOCUMENTED_CAMPAIGN = {
    "name": "Spring 2026 Launch",
    "type": "multi-channel",
    "channels": ["email", "facebook", "linkedin"],
    "audienceId": "aud-spring-prospects",
    "templateId": "tpl-spring-launch",
    "schedule": {
        "startAt": "2026-05-01T09:00:00Z",
        "endAt": "2026-05-15T23:59:59Z",
        "timezone": "America/New_York",
    },
    "status": "draft",
}


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def future(**delta) -> str:
    return iso(timezone.now() + dt.timedelta(**delta))


@pytest.fixture
def spring(db):
    segment, contacts = segment_with(3)
    return {"segment": segment, "contacts": contacts, "template": email_template()}


def body(spring, **overrides) -> dict:
    data = {
        "name": "Spring 2026 Launch",
        "type": "blast",
        "channels": ["email"],
        "audienceId": spring["segment"].pk,
        "templateId": spring["template"].pk,
    }
    data.update(overrides)
    return data


# --- The documented example ------------------------------------------------------------------


def test_documented_body_verbatim_without_that_audience_key_is_400_naming_audience_id(
    api, full_key
):
    response = api.post(CAMPAIGNS, key=full_key, body=DOCUMENTED_CAMPAIGN)

    assert response.status_code == 400
    assert response.json() == {
        "audienceId": ["no audience (segment) with id or external key 'aud-spring-prospects'"]
    }


def test_documented_body_with_a_real_audience_is_400_naming_template_id(api, full_key, spring):
    response = api.post(
        CAMPAIGNS,
        key=full_key,
        body={**DOCUMENTED_CAMPAIGN, "audienceId": str(spring["segment"].pk)},
    )

    assert response.status_code == 400
    assert response.json() == {
        "templateId": ["no template with id or external key 'tpl-spring-launch'"]
    }


def test_documented_body_with_real_ids_is_400_because_its_start_is_in_the_past(
    api, full_key, spring
):
    documented = {
        **DOCUMENTED_CAMPAIGN,
        "audienceId": spring["segment"].pk,
        "templateId": spring["template"].pk,
    }

    response = api.post(CAMPAIGNS, key=full_key, body=documented)

    assert response.status_code == 400
    assert response.json() == {"schedule.startAt": ["is in the past"]}


def test_documented_body_with_real_ids_and_future_dates_saves_a_draft_not_launchable_on_facebook(
    api, full_key, spring
):
    documented = {
        **DOCUMENTED_CAMPAIGN,
        "audienceId": str(spring["segment"].pk),
        "templateId": str(spring["template"].pk),
        "schedule": {
            "startAt": future(days=10),
            "endAt": future(days=24),
            "timezone": "America/New_York",
        },
    }

    created = api.post(CAMPAIGNS, key=full_key, body=documented)

    assert created.status_code == 201, created.json()
    campaign = created.json()
    assert campaign["status"] == "draft"
    assert campaign["type"] == "blast"  # "multi-channel" is the one-shot blast
    assert campaign["channels"] == ["email", "facebook", "linkedin"]
    assert campaign["audienceId"] == spring["segment"].pk
    assert campaign["schedule"]["timezone"] == "America/New_York"
    assert campaign["schedule"]["startAt"] == documented["schedule"]["startAt"]
    assert campaign["reach"] is None
    assert campaign["nextRuns"][0]["at"] == documented["schedule"]["startAt"]

    launch = api.post(f"{CAMPAIGNS}/{campaign['id']}/launch", key=full_key)

    assert launch.status_code == 409
    assert launch.json()["channel"] == "facebook"
    assert "facebook is not connected" in launch.json()["detail"]
    assert not CampaignRun.objects.exists()


def test_posting_running_with_an_unconnected_channel_saves_in_draft_with_the_reason(
    api, full_key, spring
):
    response = api.post(
        CAMPAIGNS,
        key=full_key,
        body=body(spring, channels=["email", "linkedin"], status="running"),
    )

    assert response.status_code == 201
    assert response.json()["status"] == "draft"
    assert "linkedin is not connected" in response.json()["statusReason"]
    assert not CampaignRun.objects.exists()


def test_posting_scheduled_with_an_unconnected_channel_saves_in_draft_without_an_entry(
    api, full_key, spring
):
    response = api.post(
        CAMPAIGNS,
        key=full_key,
        body=body(
            spring,
            channels=["email", "instagram"],
            schedule={"startAt": future(days=1)},
            status="scheduled",
        ),
    )

    assert response.status_code == 201
    assert response.json()["status"] == "draft"
    assert "instagram is not connected" in response.json()["statusReason"]
    assert not PeriodicTask.objects.exists()


def test_posting_scheduled_without_a_start_is_400_naming_start_at(api, full_key, spring):
    response = api.post(CAMPAIGNS, key=full_key, body=body(spring, status="scheduled"))

    assert response.status_code == 400
    assert response.json() == {"schedule.startAt": ["scheduling needs a future schedule.startAt"]}
    assert not Campaign.objects.exists()


def test_working_variant_running_without_schedule_launches_now(api, full_key, spring):
    response = api.post(CAMPAIGNS, key=full_key, body=body(spring, status="running"))

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "running"
    assert response.json()["reach"] == 3
    run = CampaignRun.objects.get()
    assert run.number == 1
    assert run.template_version == spring["template"].versions.get()
    assert Delivery.objects.filter(run=run, status=DeliveryStatus.QUEUED).count() == 3


def test_running_with_a_future_start_is_scheduled_with_a_one_off_beat_entry(api, full_key, spring):
    start = future(hours=2)
    response = api.post(
        CAMPAIGNS,
        key=full_key,
        body=body(spring, status="running", schedule={"startAt": start, "timezone": "UTC"}),
    )

    assert response.status_code == 201
    assert response.json()["status"] == "scheduled"
    task = PeriodicTask.objects.get()
    assert task.task == "campaigns.launch_scheduled"
    assert task.one_off and task.clocked is not None
    assert iso(task.clocked.clocked_time) == start
    assert task.args == f"[{response.json()['id']}]"
    assert not CampaignRun.objects.exists()


def test_inline_dynamic_audience_from_the_documented(api, full_key, spring):
    audience = {
        "type": "dynamic",
        "filter": {"datatype": "contact", "where": {"tags": {"$in": ["prospect", "vip"]}}},
    }
    data = body(spring, audience=audience)
    del data["audienceId"]

    response = api.post(CAMPAIGNS, key=full_key, body=data)

    assert response.status_code == 201
    assert response.json()["audience"] == audience
    assert response.json()["audienceId"] is None


def test_recurring_cron_answers_the_next_three_runs_in_words(api, full_key, spring):
    response = api.post(
        CAMPAIGNS,
        key=full_key,
        body=body(
            spring,
            type="recurring",
            recurring={"cron": "0 9 * * 1"},
            schedule={"timezone": "America/New_York"},
            status="running",
        ),
    )

    assert response.status_code == 201, response.json()
    campaign = response.json()
    assert campaign["status"] == "running"
    assert campaign["recurring"] == {
        "cron": "0 9 * * 1",
        "description": "At 09:00 AM, only on Monday",
    }
    assert len(campaign["nextRuns"]) == 3
    for run in campaign["nextRuns"]:
        assert run["inWords"].startswith("Monday ")
        assert "09:00" in run["inWords"]
    task = PeriodicTask.objects.get()
    assert task.task == "campaigns.launch_recurring_tick"
    assert str(task.crontab.timezone) == "America/New_York"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "9", "1")
    # A recurring launch arms the schedule; each tick makes a run.
    assert not CampaignRun.objects.exists()


# --- Bad input names the field -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"recurring": {"cron": "61 9 * * 1"}}, "recurring.cron", "invalid cron"),
        ({"recurring": {"cron": "0 9 * *"}}, "recurring.cron", "5 fields"),
        ({"recurring": {"cron": "0 9 31 2 *"}}, "recurring.cron", "never occurs"),
        ({"schedule": {"timezone": "Mars/Olympus"}}, "schedule.timezone", "IANA"),
        ({"schedule": {"startAt": "2020-01-01T09:00:00Z"}}, "schedule.startAt", "in the past"),
        ({"schedule": {"startAt": "next tuesday"}}, "schedule.startAt", "ISO 8601"),
        ({"type": "carrier-pigeon"}, "type", "unknown type"),
        ({"channels": ["email", "fax"]}, "channels.1", "unknown channel 'fax'"),
        ({"channels": []}, "channels", "non-empty"),
        ({"audienceId": 999999}, "audienceId", "no audience (segment) with id or external key"),
        ({"templateId": 999999}, "templateId", "no template with id or external key 999999"),
        ({"name": "  "}, "name", "required"),
        ({"status": "completed"}, "status", "must be one of"),
    ],
)
def test_bad_input_is_400_naming_the_field(api, full_key, spring, overrides, field, fragment):
    response = api.post(CAMPAIGNS, key=full_key, body=body(spring, **overrides))

    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field]
    assert fragment in errors[field][0]
    assert not Campaign.objects.exists()


def test_end_before_start_is_400_naming_end_at(api, full_key, spring):
    schedule = {"startAt": future(days=2), "endAt": future(days=1), "timezone": "UTC"}

    response = api.post(CAMPAIGNS, key=full_key, body=body(spring, schedule=schedule))

    assert response.status_code == 400
    assert response.json() == {"schedule.endAt": ["must be after startAt"]}


def test_template_whose_channel_does_not_match_is_400(api, full_key, spring):
    template = sms_template()

    response = api.post(CAMPAIGNS, key=full_key, body=body(spring, templateId=template.pk))

    assert response.status_code == 400
    assert (
        "is a sms template but the campaign's channels are email"
        in (response.json()["templateId"][0])
    )


def test_bad_filter_path_is_400_naming_audience_filter_path(api, full_key, spring):
    data = body(spring, audience={"type": "dynamic", "filter": {"tags": {"$near": ["x"]}}})
    del data["audienceId"]

    response = api.post(CAMPAIGNS, key=full_key, body=data)

    assert response.status_code == 400
    (field,) = response.json()
    assert field.startswith("audience.filter.tags")


def test_non_object_body_is_400(api, full_key):
    response = api.post(CAMPAIGNS, key=full_key, body=["not", "an", "object"])
    assert response.status_code == 400
    assert "body" in response.json()


# --- Lifecycle actions ----------------------------------------------------------------------


def _create(api, key, spring, **overrides) -> dict:
    response = api.post(CAMPAIGNS, key=key, body=body(spring, **overrides))
    assert response.status_code == 201, response.json()
    return response.json()


ILLEGAL = [
    ("draft", "pause", "paused", ["cancelled", "running", "scheduled"]),
    ("scheduled", "pause", "paused", ["cancelled", "draft", "failed", "running"]),
    ("running", "launch", "running", ["cancelled", "completed", "failed", "paused"]),
    ("running", "resume", "running", ["cancelled", "completed", "failed", "paused"]),
    ("running", "schedule", "scheduled", ["cancelled", "completed", "failed", "paused"]),
    ("paused", "pause", "paused", ["cancelled", "completed", "running"]),
    ("completed", "launch", "running", []),
    ("completed", "cancel", "cancelled", []),
    ("cancelled", "resume", "running", []),
    ("failed", "launch", "running", []),
]


@pytest.mark.parametrize(
    ("current", "action", "wanted", "allowed"),
    ILLEGAL,
)
def test_illegal_transition_is_409_listing_the_allowed_moves(
    api, full_key, spring, current, action, wanted, allowed
):
    campaign = _create(api, full_key, spring, schedule={"startAt": future(days=1)})
    Campaign.objects.filter(pk=campaign["id"]).update(status=current)

    response = api.post(f"{CAMPAIGNS}/{campaign['id']}/{action}", key=full_key)

    assert response.status_code == 409
    answer = response.json()
    assert answer["status"] == current
    assert answer["wanted"] == wanted
    assert answer["allowed"] == allowed
    assert Campaign.objects.get(pk=campaign["id"]).status == current


def test_resume_of_a_draft_is_409(api, full_key, spring):
    campaign = _create(api, full_key, spring)

    response = api.post(f"{CAMPAIGNS}/{campaign['id']}/resume", key=full_key)

    # draft → running exists (that is launch), but resume only continues a paused campaign.
    assert response.status_code == 409
    assert response.json()["status"] == "draft"
    assert "only a paused campaign can be resumed" in response.json()["detail"]
    assert Campaign.objects.get(pk=campaign["id"]).status == "draft"


def test_double_launch_creates_one_run(api, full_key, spring):
    campaign = _create(api, full_key, spring)

    first = api.post(f"{CAMPAIGNS}/{campaign['id']}/launch", key=full_key)
    second = api.post(f"{CAMPAIGNS}/{campaign['id']}/launch/", key=full_key)

    assert first.status_code == 200
    assert first.json()["status"] == "running"
    assert first.json()["reach"] == 3
    assert second.status_code == 409
    assert second.json()["allowed"] == ["cancelled", "completed", "failed", "paused"]
    assert CampaignRun.objects.count() == 1
    assert Delivery.objects.count() == 3


def test_launch_publishes_a_never_published_template_and_says_so(api, full_key, spring):
    draft = email_template("Unpublished", publish=False)
    campaign = _create(api, full_key, spring, templateId=draft.pk)

    response = api.post(f"{CAMPAIGNS}/{campaign['id']}/launch", key=full_key)

    assert response.status_code == 200
    version = draft.versions.get()
    assert CampaignRun.objects.get().template_version == version
    assert f"template {draft.pk} v1" in response.json()["statusReason"]


def test_launch_with_a_template_that_cannot_be_published_is_409_and_changes_nothing(
    api, full_key, spring
):
    from templates.services import template_create

    empty = template_create(name="Empty", subject="Hi")
    campaign = _create(api, full_key, spring, templateId=empty.pk)

    response = api.post(f"{CAMPAIGNS}/{campaign['id']}/launch", key=full_key)

    assert response.status_code == 409
    assert response.json()["field"] == "templateId"
    assert "cannot be published" in response.json()["detail"]
    assert Campaign.objects.get(pk=campaign["id"]).status == "draft"
    assert not CampaignRun.objects.exists()


def test_launch_without_a_template_is_409_naming_template_id(api, full_key, spring):
    data = body(spring)
    del data["templateId"]
    campaign = api.post(CAMPAIGNS, key=full_key, body=data).json()

    response = api.post(f"{CAMPAIGNS}/{campaign['id']}/launch", key=full_key)

    assert response.status_code == 409
    assert response.json()["field"] == "templateId"


def test_pause_resume_cancel_move_the_run_and_cancel_skips_unsent(api, full_key, spring):
    campaign = _create(api, full_key, spring, status="running")
    url = f"{CAMPAIGNS}/{campaign['id']}"
    run = CampaignRun.objects.get()

    paused = api.post(f"{url}/pause", key=full_key)
    assert paused.json()["status"] == "paused"
    run.refresh_from_db()
    assert run.status == "paused"

    resumed = api.post(f"{url}/resume", key=full_key)
    assert resumed.json()["status"] == "running"
    run.refresh_from_db()
    assert run.status == "running"

    cancelled = api.post(f"{url}/cancel", key=full_key)
    assert cancelled.json()["status"] == "cancelled"
    run.refresh_from_db()
    assert run.status == "cancelled" and run.finished_at is not None
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SKIPPED}


def test_schedule_action_needs_a_future_start(api, full_key, spring):
    campaign = _create(api, full_key, spring)

    response = api.post(f"{CAMPAIGNS}/{campaign['id']}/schedule", key=full_key)

    assert response.status_code == 409
    assert response.json()["field"] == "schedule.startAt"


def test_schedule_then_unschedule_to_draft_removes_the_beat_entry(api, full_key, spring):
    campaign = _create(api, full_key, spring, schedule={"startAt": future(days=1)})
    url = f"{CAMPAIGNS}/{campaign['id']}"

    scheduled = api.post(f"{url}/schedule", key=full_key)
    assert scheduled.json()["status"] == "scheduled"
    assert PeriodicTask.objects.count() == 1

    back = api.put(url, key=full_key, body={"status": "draft"})
    assert back.status_code == 200
    assert back.json()["status"] == "draft"
    assert not PeriodicTask.objects.exists()


def test_put_reschedules_replacing_the_beat_entry(api, full_key, spring):
    campaign = _create(
        api, full_key, spring, schedule={"startAt": future(days=1)}, status="scheduled"
    )
    later = future(days=3)

    response = api.put(
        f"{CAMPAIGNS}/{campaign['id']}/",
        key=full_key,
        body={"schedule": {"startAt": later, "timezone": "Europe/Berlin"}},
    )

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "scheduled"
    task = PeriodicTask.objects.get()
    assert iso(task.clocked.clocked_time) == later


def test_put_on_a_running_campaign_is_409(api, full_key, spring):
    campaign = _create(api, full_key, spring, status="running")

    response = api.put(f"{CAMPAIGNS}/{campaign['id']}", key=full_key, body={"name": "Renamed"})

    assert response.status_code == 409
    assert "cannot be edited" in response.json()["detail"]


def test_put_back_of_the_get_body_with_only_status_changed_pauses_a_running_campaign(
    api, full_key, spring
):
    campaign = _create(api, full_key, spring, status="running")
    url = f"{CAMPAIGNS}/{campaign['id']}"
    echoed = {**api.get(url, key=full_key).json(), "status": "paused"}

    response = api.put(url, key=full_key, body=echoed)

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "paused"
    assert CampaignRun.objects.get().status == "paused"


def test_delete_is_soft_cancels_and_removes_the_beat_entry(api, full_key, spring):
    campaign = _create(
        api, full_key, spring, schedule={"startAt": future(days=1)}, status="scheduled"
    )
    url = f"{CAMPAIGNS}/{campaign['id']}"
    assert PeriodicTask.objects.count() == 1

    deleted = api.delete(url, key=full_key)

    assert deleted.status_code == 200
    assert deleted.json()["state"] == "deleted"
    assert deleted.json()["status"] == "cancelled"
    assert not PeriodicTask.objects.exists()
    assert Campaign.objects.filter(pk=campaign["id"]).exists()
    assert api.get(CAMPAIGNS, key=full_key).json() == []
    assert api.get(url, key=full_key).json()["state"] == "deleted"
    assert api.put(url, key=full_key, body={"name": "x"}).status_code == 404


def test_duplicate_makes_a_draft_copy(api, full_key, spring):
    campaign = _create(api, full_key, spring, status="running")

    response = api.post(f"{CAMPAIGNS}/{campaign['id']}/duplicate", key=full_key)

    assert response.status_code == 201
    copy = response.json()
    assert copy["id"] != campaign["id"]
    assert copy["status"] == "draft"
    assert copy["name"] == "Spring 2026 Launch (copy)"
    assert copy["templateId"] == campaign["templateId"]
    assert copy["reach"] is None


def test_list_filters_by_status_and_shows_reach(api, full_key, spring):
    _create(api, full_key, spring, name="Draft one")
    _create(api, full_key, spring, name="Live one", status="running")

    running = api.get(f"{CAMPAIGNS}?status=running", key=full_key).json()

    assert [c["name"] for c in running] == ["Live one"]
    assert running[0]["reach"] == 3
    assert len(api.get(CAMPAIGNS + "/", key=full_key).json()) == 2


def test_unknown_campaign_is_404_json(api, full_key):
    response = api.get(f"{CAMPAIGNS}/424242", key=full_key)
    assert response.status_code == 404
    assert "424242" in response.json()["detail"]


def test_form_encoded_create(api, full_key, spring):
    response = api.client.post(
        CAMPAIGNS,
        data={
            "name": "Form campaign",
            "type": "blast",
            "channels": "email",
            "audienceId": str(spring["segment"].pk),
            "templateId": str(spring["template"].pk),
        },
        headers={"Authorization": api.basic(full_key.secret)},
    )

    assert response.status_code == 201, response.json()
    assert response.json()["channels"] == ["email"]


def test_drip_campaign_with_steps(api, full_key, spring):
    second = email_template("Second step")
    data = body(
        spring,
        type="drip",
        steps=[
            {"templateId": spring["template"].pk, "delay": "PT0S"},
            {"templateId": second.pk, "delay": "P2D"},
        ],
    )

    response = api.post(CAMPAIGNS, key=full_key, body=data)

    assert response.status_code == 201, response.json()
    assert response.json()["steps"] == [
        {"templateId": spring["template"].pk, "delay": "PT0S"},
        {"templateId": second.pk, "delay": "P2D"},
    ]


def test_drip_step_with_a_bad_delay_is_400_naming_the_step(api, full_key, spring):
    data = body(spring, type="drip", steps=[{"templateId": spring["template"].pk, "delay": "soon"}])

    response = api.post(CAMPAIGNS, key=full_key, body=data)

    assert response.status_code == 400
    assert list(response.json()) == ["steps.0.delay"]


# --- Discovery and health ----------------------------------------------------------------------


def test_platforms_lists_email_connected_and_social_not(api, full_key):
    platforms = {p["id"]: p for p in api.get("/api/crm/marketing/platforms", key=full_key).json()}

    assert platforms["email"]["connected"] is True
    assert platforms["email"]["name"] == "Email"
    assert platforms["sms"]["connected"] is True
    assert platforms["facebook"]["connected"] is False
    assert platforms["whatsapp"]["connected"] is False


def test_platforms_connected_only(api, full_key):
    platforms = api.get("/api/crm/marketing/platforms?connected=true", key=full_key).json()

    assert [p["id"] for p in platforms] == ["email", "sms"]


def test_list_with_an_unknown_status_filter_is_400(api, full_key):
    response = api.get(f"{CAMPAIGNS}?status=sleeping", key=full_key)

    assert response.status_code == 400
    assert "status" in response.json()


def test_campaign_types_have_descriptions(api, full_key):
    types = api.get("/api/crm/marketing/campaign-types/", key=full_key).json()

    assert [t["id"] for t in types] == ["blast", "drip", "recurring", "milestone"]
    assert all(t["description"] for t in types)
    assert types[0]["aliases"] == ["multi-channel", "multichannel"]


def test_social_profiles_are_empty_for_known_platforms_and_404_for_unknown(api, full_key):
    assert api.get("/api/crm/marketing/social-profiles", key=full_key).json() == []
    assert api.get("/api/crm/marketing/social-profiles/facebook", key=full_key).json() == []
    unknown = api.get("/api/crm/marketing/social-profiles/myspace/", key=full_key)
    assert unknown.status_code == 404
    assert "myspace" in unknown.json()["detail"]


def test_health_reports_heartbeat_queue_depth_and_last_send(api, full_key, spring):
    _create(api, full_key, spring, status="running")
    Heartbeat.objects.create(name="worker", seen_at=timezone.now())
    sent = Delivery.objects.first()
    Delivery.objects.filter(pk=sent.pk).update(status=DeliveryStatus.SENT, sent_at=timezone.now())

    health = api.get("/api/crm/marketing/health", key=full_key).json()

    assert health["status"] == "ok"
    assert health["scheduler"]["alive"] is True
    assert health["queueDepth"] == 2
    assert health["campaigns"] == {"scheduled": 0, "running": 1}
    assert set(health["lastSendAt"]) == {"email"}


def test_health_without_a_recent_heartbeat_is_degraded(api, full_key):
    Heartbeat.objects.create(name="worker", seen_at=timezone.now() - dt.timedelta(hours=1))

    health = api.get("/api/crm/marketing/health", key=full_key).json()

    assert health["status"] == "degraded"
    assert health["scheduler"]["alive"] is False


# --- Authentication and rights ---------------------------------------------------------------


def _jwt(client, user) -> str:
    response = client.post(
        "/api/auth/token/",
        data={"username": user.username, "password": PASSWORD},
        content_type="application/json",
    )
    return response.json()["access"]


def test_jwt_marketer_creates_and_reads(client, marketer, spring):
    token = _jwt(client, marketer)
    headers = {"Authorization": f"Bearer {token}"}

    created = client.post(
        CAMPAIGNS, data=body(spring), content_type="application/json", headers=headers
    )
    listed = client.get(CAMPAIGNS, headers=headers)

    assert created.status_code == 201
    assert [c["id"] for c in listed.json()] == [created.json()["id"]]


def test_jwt_viewer_may_read_but_not_create(client, viewer, spring):
    headers = {"Authorization": f"Bearer {_jwt(client, viewer)}"}

    assert client.get(CAMPAIGNS, headers=headers).status_code == 200
    response = client.post(
        CAMPAIGNS, data=body(spring), content_type="application/json", headers=headers
    )
    assert response.status_code == 403


def test_no_credentials_is_401(api):
    assert api.get(CAMPAIGNS).status_code == 401


def test_events_only_key_is_403_naming_the_right(api, limited_key):
    response = api.get(CAMPAIGNS, key=limited_key)
    assert response.status_code == 403
    assert response.json()["missingRight"] == "manage"
