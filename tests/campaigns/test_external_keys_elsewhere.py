"""External keys beyond the CRM campaigns API: set and read through Herald's own segments
and templates APIs (which also find an object by its key), the eSputnik v1 smartsend by a
template's key, and the marketer pages and admin forms that edit them."""

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from contacts.models import Segment
from templates.models import MessageTemplate
from tests.campaigns.support import email_template
from tests.campaigns.test_pages import create, form_data

pytestmark = pytest.mark.django_db
HERALD = "/api/herald"


def test_segments_api_sets_reads_and_finds_by_the_key(api, full_key):
    created = api.post(
        f"{HERALD}/segments", key=full_key, body={"name": "Prospects", "externalKey": "aud-1"}
    )
    assert created.status_code == 201, created.content
    assert created.json()["externalKey"] == "aud-1"

    by_key = api.get(f"{HERALD}/segments/aud-1", key=full_key)
    assert (by_key.status_code, by_key.json()["id"]) == (200, created.json()["id"])
    renamed = api.put(f"{HERALD}/segments/aud-1", key=full_key, body={"name": "Leads"})
    assert (renamed.status_code, renamed.json()["externalKey"]) == (200, "aud-1")
    missing = api.get(f"{HERALD}/segments/aud-404", key=full_key)
    assert missing.status_code == 404
    assert "aud-404" in missing.json()["detail"]

    taken = api.post(
        f"{HERALD}/segments", key=full_key, body={"name": "Other", "externalKey": "aud-1"}
    )
    assert taken.status_code == 400
    assert "another segment" in taken.json()["externalKey"][0]
    bad = api.post(f"{HERALD}/segments", key=full_key, body={"name": "Bad", "externalKey": "42"})
    assert bad.status_code == 400
    assert "only digits" in bad.json()["externalKey"][0]
    cleared = api.put(
        f"{HERALD}/segments/aud-1", key=full_key, body={"name": "Leads", "externalKey": None}
    )
    assert cleared.json()["externalKey"] is None
    assert Segment.objects.filter(external_key__isnull=True).count() == 1


def test_templates_api_keeps_the_providers_external_id_apart_from_the_key(api, full_key):
    created = api.post(
        f"{HERALD}/templates",
        key=full_key,
        body={"name": "Spring", "subject": "Hi", "html": "<p>Hi</p>", "externalKey": "tpl-1"},
    )
    assert created.status_code == 201, created.content
    assert (created.json()["externalKey"], created.json()["externalId"]) == ("tpl-1", None)
    assert api.get(f"{HERALD}/templates/tpl-1", key=full_key).json()["name"] == "Spring"
    published = api.post(f"{HERALD}/templates/tpl-1/publish", key=full_key)
    assert published.status_code in (200, 201), published.content
    assert api.get(f"{HERALD}/templates/tpl-404", key=full_key).status_code == 404

    taken = api.post(
        f"{HERALD}/templates", key=full_key, body={"name": "Copy", "externalKey": "tpl-1"}
    )
    assert taken.status_code == 400
    assert "Another template has the external key" in taken.json()["externalKey"][0]
    bad = api.put(
        f"{HERALD}/templates/tpl-1", key=full_key, body={"name": "Spring", "externalKey": "a b"}
    )
    assert bad.status_code == 400
    assert "externalKey" in bad.json()


def test_smartsend_takes_the_templates_key(api, full_key):
    template = email_template()
    MessageTemplate.objects.filter(pk=template.pk).update(external_key="tpl-welcome")
    body = {"recipients": [{"locator": "ann@example.com"}]}

    sent = api.post("/api/v1/message/tpl-welcome/smartsend", key=full_key, body=body)
    assert sent.status_code == 200, sent.content
    assert sent.json()["results"]["status"] == "OK"  # one recipient: one result object

    missing = api.post("/api/v1/message/tpl-nope/smartsend", key=full_key, body=body)
    assert missing.status_code == 404
    assert "no message with id or external key tpl-nope" in missing.json()["id"][0]


@pytest.fixture
def spring(db):
    from tests.campaigns.support import segment_with

    segment, contacts = segment_with(2)
    return {"segment": segment, "contacts": contacts, "template": email_template()}


def test_pages_set_and_refuse_keys(client, marketer, spring):
    client.force_login(marketer)
    campaign = create(client, spring, external_key="camp-page")
    assert campaign.external_key == "camp-page"
    clash = client.post(reverse("campaign_create"), form_data(spring, external_key="camp-page"))
    assert clash.status_code == 400
    assert "another campaign has the external key" in clash.content.decode()
    assert Campaign.objects.count() == 1

    response = client.post(
        reverse("segment_create"),
        {"name": "Page segment", "kind": "static", "description": "", "external_key": "aud-pg"},
    )
    assert response.status_code == 302, response.content.decode()[:1000]
    segment = Segment.objects.get(external_key="aud-pg")
    bad = client.post(
        reverse("segment_edit", args=[segment.pk]),
        {"name": "Page segment", "description": "", "external_key": "123"},
    )
    assert bad.status_code in (200, 400)
    assert "not be only digits" in bad.content.decode()
    assert Segment.objects.get(pk=segment.pk).external_key == "aud-pg"

    template_page = client.get(reverse("template_edit", args=[spring["template"].pk]))
    assert 'name="external_key"' in template_page.content.decode()
    saved = client.post(
        reverse("template_edit", args=[spring["template"].pk]),
        {
            "name": "Spring launch",
            "channel": "email",
            "subject": "Spring",
            "html": "<p>Hello</p>",
            "external_key": "tpl-page",
        },
    )
    assert saved.status_code in (200, 302)
    assert MessageTemplate.objects.get(pk=spring["template"].pk).external_key == "tpl-page"


def test_admin_refuses_a_campaign_key_that_names_an_api_path(admin_client):
    page = admin_client.post(
        reverse("admin:campaigns_campaign_add"),
        {
            "name": "Reserved",
            "external_key": "aggregated-metrics",
            "type": "blast",
            "steps-TOTAL_FORMS": "0",
            "steps-INITIAL_FORMS": "0",
        },
    )
    assert page.status_code == 200
    assert "reserved" in page.content.decode()
    assert not Campaign.objects.exists()
