"""Send rules through the APIs: `sendTime` / `sendWindow` in the CRM campaigns API's body, and
Herald's own GET/PUT /api/herald/settings/frequency-caps; every bad input a 400 naming the
field."""

import pytest

from campaigns.models import Campaign, FrequencyCap
from tests.campaigns.support import CAMPAIGNS, email_template, segment_with

pytestmark = pytest.mark.django_db

CAPS = "/api/herald/settings/frequency-caps"


@pytest.fixture
def spring(db):
    segment, _contacts = segment_with(2)
    return {"segment": segment, "template": email_template()}


def body(spring, **overrides) -> dict:
    data = {
        "name": "Spring",
        "type": "blast",
        "channels": ["email"],
        "audienceId": spring["segment"].pk,
        "templateId": spring["template"].pk,
    }
    data.update(overrides)
    return data


# --- the campaign body ---------------------------------------------------------------------


def test_campaign_saves_and_shows_its_local_send_time_and_window(api, full_key, spring):
    window = {"from": "09:00", "to": "20:00", "days": [5, 1, 2, 3, 4]}
    response = api.post(
        CAMPAIGNS,
        key=full_key,
        body=body(spring, sendTime={"localTime": "10:30"}, sendWindow=window),
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["sendTime"] == {"localTime": "10:30"}
    assert data["sendWindow"] == {"from": "09:00", "to": "20:00", "days": [1, 2, 3, 4, 5]}
    campaign = Campaign.objects.get(pk=data["id"])
    assert campaign.send_local_time.strftime("%H:%M") == "10:30"

    # A PUT of what GET gave is no edit; null clears both.
    again = api.put(f"{CAMPAIGNS}/{campaign.pk}", key=full_key, body=data)
    assert again.status_code == 200, again.json()
    cleared = api.put(
        f"{CAMPAIGNS}/{campaign.pk}", key=full_key, body={"sendTime": None, "sendWindow": None}
    )
    assert cleared.status_code == 200
    assert (cleared.json()["sendTime"], cleared.json()["sendWindow"]) == (None, None)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"sendTime": {"localTime": "25:00"}}, "sendTime.localTime"),
        ({"sendTime": {"localTime": "9am"}}, "sendTime.localTime"),
        ({"sendTime": "10:00"}, "sendTime"),
        ({"sendWindow": {"from": "09:00", "to": "09:00"}}, "sendWindow.to"),
        ({"sendWindow": {"from": "09:00", "to": "20:00", "days": []}}, "sendWindow.days"),
        ({"sendWindow": {"from": "09:00", "to": "20:00", "days": [0, 8]}}, "sendWindow.days"),
        ({"sendWindow": {"from": "9", "to": "20:00"}}, "sendWindow.from"),
        ({"sendWindow": {"from": "09:00"}}, "sendWindow.to"),
        ({"sendWindow": ["09:00", "20:00"]}, "sendWindow"),
    ],
)
def test_bad_send_time_or_window_is_400_naming_the_field(api, full_key, spring, extra, field):
    response = api.post(CAMPAIGNS, key=full_key, body=body(spring, **extra))
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Campaign.objects.exists()


def test_local_send_time_on_a_drip_campaign_is_400(api, full_key, spring):
    steps = [{"templateId": spring["template"].pk, "delay": "P1D"}]
    response = api.post(
        CAMPAIGNS,
        key=full_key,
        body=body(spring, type="drip", steps=steps, sendTime={"localTime": "10:00"}),
    )
    assert response.status_code == 400
    assert "blast and recurring" in response.json()["sendTime"][0]


# --- frequency caps ------------------------------------------------------------------------


def test_frequency_caps_are_replaced_and_read_back(api, full_key):
    assert api.get(CAPS, key=full_key).json() == []
    caps = [
        {"channel": "email", "limit": 3, "periodDays": 7},
        {"channel": "sms", "limit": 1, "periodDays": 1},
    ]
    response = api.put(CAPS, key=full_key, body=caps)
    assert response.status_code == 200, response.json()
    assert response.json() == caps
    assert api.get(CAPS, key=full_key).json() == caps

    # A channel left out has no cap any more.
    api.put(CAPS, key=full_key, body=[{"channel": "sms", "limit": 2, "periodDays": 3}])
    assert list(FrequencyCap.objects.values_list("channel", "limit", "period_days")) == [
        ("sms", 2, 3)
    ]


@pytest.mark.parametrize(
    ("caps", "field"),
    [
        ([{"channel": "email", "limit": 0, "periodDays": 7}], "0.limit"),
        ([{"channel": "email", "limit": -2, "periodDays": 7}], "0.limit"),
        ([{"channel": "email", "limit": "3", "periodDays": 7}], "0.limit"),
        ([{"channel": "email", "limit": 3, "periodDays": 0}], "0.periodDays"),
        ([{"channel": "pigeon", "limit": 3, "periodDays": 7}], "0.channel"),
        (
            [
                {"channel": "email", "limit": 3, "periodDays": 7},
                {"channel": "email", "limit": 1, "periodDays": 1},
            ],
            "1.channel",
        ),
        ({"channel": "email", "limit": 3, "periodDays": 7}, "caps"),
        (["email"], "0"),
    ],
)
def test_bad_frequency_caps_are_400_naming_the_field_and_change_nothing(api, full_key, caps, field):
    FrequencyCap.objects.create(channel="email", limit=5, period_days=7)
    response = api.put(CAPS, key=full_key, body=caps)
    assert response.status_code == 400
    assert response.json()["field"] == field, response.json()
    assert list(FrequencyCap.objects.values_list("limit", flat=True)) == [5]


def test_frequency_caps_need_the_manage_right(api, limited_key):
    assert api.get(CAPS, key=limited_key).status_code == 403
    assert api.put(CAPS, key=limited_key, body=[]).status_code == 403
    assert api.get(CAPS).status_code in (401, 403)


def test_a_duplicated_campaign_keeps_its_send_time_and_window(api, full_key, spring):
    window = {"from": "22:00", "to": "06:00", "days": [6, 7]}
    created = api.post(
        CAMPAIGNS,
        key=full_key,
        body=body(spring, sendTime={"localTime": "07:15"}, sendWindow=window),
    ).json()
    response = api.post(f"{CAMPAIGNS}/{created['id']}/duplicate", key=full_key)
    assert response.status_code in (200, 201), response.json()
    copy = response.json()
    assert copy["id"] != created["id"]
    assert (copy["sendTime"], copy["sendWindow"]) == ({"localTime": "07:15"}, window)
