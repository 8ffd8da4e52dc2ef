"""The campaign form: only connected channels, a searchable and checked time-zone picker with
the organisation's zone first, and the repetition kept for recurring campaigns only."""

import pytest
from django.urls import reverse

from campaigns.forms import time_zones
from campaigns.models import Campaign
from config.core.models import Integration, Organisation
from tests.campaigns.test_pages import create, form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def spring(db):
    from tests.campaigns.support import email_template, segment_with

    segment, contacts = segment_with(2)
    return {"segment": segment, "contacts": contacts, "template": email_template()}


def test_only_connected_channels_are_offered_with_a_link_to_connect_more(client, marketer):
    client.force_login(marketer)
    page = client.get(reverse("campaign_create")).content.decode()
    assert 'value="email"' in page and 'value="sms"' in page
    # Nothing connects Telegram here, so it is not offered...
    assert 'value="telegram"' not in page
    assert "Connect another channel" in page
    assert reverse("integrations_home") in page


def test_a_channel_becomes_offered_once_an_integration_connects_it(client, marketer):
    Integration.objects.create(name="Shop bot", kind="telegram", channels=["telegram"])
    client.force_login(marketer)
    assert 'value="telegram"' in client.get(reverse("campaign_create")).content.decode()


def test_an_unconnected_channel_is_refused_by_the_form(client, marketer, spring):
    client.force_login(marketer)
    response = client.post(reverse("campaign_create"), form_data(spring, channels=["telegram"]))
    assert response.status_code == 400
    assert not Campaign.objects.exists()


def test_time_zones_start_with_the_organisation_then_common_ones_without_junk():
    zones = time_zones("Asia/Tbilisi")
    assert zones[:3] == ["Asia/Tbilisi", "Europe/Kyiv", "Europe/Warsaw"]
    assert "UTC" in zones[:20] and "America/New_York" in zones[:20]
    assert "Africa/Abidjan" in zones
    for junk in ("Factory", "localtime", "posixrules", "Etc/GMT+3"):
        assert junk not in zones
    assert not any(zone.startswith(("right/", "posix/")) for zone in zones)
    assert len(zones) == len(set(zones))


def test_the_picker_is_a_searchable_list_led_by_the_organisation_zone(client, marketer):
    organisation = Organisation.load()
    organisation.time_zone = "America/Chicago"
    organisation.save()
    client.force_login(marketer)
    page = client.get(reverse("campaign_create")).content.decode()
    assert 'list="time-zones"' in page
    datalist = page.split('<datalist id="time-zones"', 1)[1].split("</datalist>", 1)[0]
    assert datalist.index('"America/Chicago"') < datalist.index('"Europe/Kyiv"')
    assert 'value="America/Chicago"' in page.split('name="timezone"', 1)[1][:200]


def test_an_unknown_time_zone_is_refused_on_the_field(client, marketer, spring):
    client.force_login(marketer)
    response = client.post(reverse("campaign_create"), form_data(spring, timezone="Mars/Olympus"))
    assert response.status_code == 400
    assert "Pick a time zone from the list" in response.content.decode()
    assert not Campaign.objects.exists()


def test_the_repetition_is_ignored_for_a_blast(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring, type="blast", cron="0 9 * * 1")
    assert campaign.type == "blast" and campaign.cron == ""


def test_a_recurring_campaign_needs_its_repetition(client, marketer, spring):
    client.force_login(marketer)
    response = client.post(reverse("campaign_create"), form_data(spring, type="recurring"))
    assert response.status_code == 400
    assert "A recurring campaign needs a repetition" in response.content.decode()
    campaign = create(client, spring, type="recurring", cron="0 9 * * 1")
    assert campaign.cron == "0 9 * * 1"


def test_the_repetition_box_is_hidden_unless_recurring(client, marketer, spring):
    client.force_login(marketer)
    page = client.get(reverse("campaign_create")).content.decode()
    assert 'data-testid="cron-box"' in page
    box = page.split('id="cron-box"', 1)[1].split(">", 1)[0]
    assert " hidden" in box


def test_help_texts_speak_the_marketer_language(client, marketer):
    client.force_login(marketer)
    page = client.get(reverse("campaign_create")).content.decode()
    assert "eSputnik-compatible" in page
    assert "the CRM campaigns API" not in page and "seed" not in page


def test_the_form_in_russian(client, marketer):
    client.force_login(marketer)
    page = client.get(reverse("campaign_create"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Новая кампания" in page
