"""Stored XSS, from a table of (what is stored, the pages that show it): each row stores the
payload (tests/hostile/xss.py) in one user-written text, and every page listed must show it
escaped, with no live tag, handler or javascript: link. A row whose text is refused where it
is stored (a key that must be a slug, say) says so; it is not a page's to escape then."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from campaigns.models import Campaign
from config.core.api_keys import api_key_create
from config.core.models import Organisation
from contacts.custom_fields import custom_field_create
from contacts.models import Contact, ImportJob
from contacts.segments import segment_create
from integrations.models import WebhookRequest
from marketing.events import event_type_create
from marketing.models import Event, Order
from marketing.workflows.services import workflow_create
from templates.services import template_create
from tests.campaigns.test_pipeline import make_campaign
from tests.hostile.xss import JS_URL, PAYLOAD, SHORT_SCRIPT, SHORT_TAG, live_markup
from tests.integrations.test_esp_webhooks import make_integration

pytestmark = pytest.mark.django_db


def _contact(api, key) -> list[str]:
    field = custom_field_create(name="Note", key="NOTE")
    body = {
        "firstName": SHORT_TAG,
        "lastName": SHORT_SCRIPT,
        "channels": [{"type": "email", "value": "xss@example.com"}],
        "address": {"town": PAYLOAD[:100], "address": PAYLOAD},
        "fields": [{"id": field.pk, "value": PAYLOAD}],
    }
    answer = api.post("/api/v1/contact", key=key, body=body)
    assert answer.status_code == 200, answer.content
    contact = Contact.objects.get()
    contact.tags = [PAYLOAD[:50]]
    contact.save(update_fields=["tags"])
    return ["/contacts/", f"/contacts/{contact.pk}/", f"/contacts/{contact.pk}/edit/"]


def _custom_field(api, key) -> list[str]:
    field = custom_field_create(name=PAYLOAD[:100], key="XSS", group_name=PAYLOAD[:100])
    return ["/contacts/fields/", f"/contacts/fields/{field.pk}/edit/", "/contacts/new/"]


def _segment(api, key) -> list[str]:
    segment = segment_create(name=PAYLOAD[:200], description=PAYLOAD)
    return ["/segments/", f"/segments/{segment.pk}/", f"/segments/{segment.pk}/edit/"]


def _template(api, key) -> list[str]:
    # `${` opens a Velocity reference: the subject is refused with it, so it is left out.
    text = PAYLOAD.replace("${7*7}", "")
    template = template_create(
        name=PAYLOAD[:200], subject=text, from_name=text[:100], html="<p>Hi</p>"
    )
    return ["/templates/", f"/templates/{template.pk}/", f"/templates/{template.pk}/versions/"]


def _campaign(api, key) -> list[str]:
    campaign = make_campaign(name=PAYLOAD[:200])
    assert Campaign.objects.filter(pk=campaign.pk).exists()
    return ["/campaigns/", f"/campaigns/{campaign.pk}/", f"/campaigns/{campaign.pk}/edit/"]


def _workflow(api, key) -> list[str]:
    workflow = workflow_create(name=PAYLOAD[:200])
    return ["/automation/", f"/automation/workflows/{workflow.pk}/"]


def _event(api, key) -> list[str]:
    event_type_create(key="xss_event", name=PAYLOAD[:200])
    body = {
        "eventTypeKey": "xss_event",
        "keyValue": "xss@example.com",
        "params": [
            {"name": "email", "value": "xss@example.com"},
            {"name": "note", "value": PAYLOAD},
            {"name": "link", "value": JS_URL},
        ],
    }
    assert api.post("/api/v1/event", key=key, body=body).status_code == 200
    from marketing.events import events_process_pending

    events_process_pending()
    pages = ["/automation/events/", "/automation/event-types/"]
    pages += [f"/automation/events/{pk}/" for pk in Event.objects.values_list("pk", flat=True)]
    return pages


def _order(api, key) -> list[str]:
    order = {
        "externalOrderId": "xss-1",
        "externalCustomerId": "xss-customer",
        "totalCost": 10,
        "status": "INITIALIZED",
        "date": "2026-12-01T09:30:00+02:00",
        "email": "xss@example.com",
        "firstName": PAYLOAD[:100],
        "currency": "USD",
        "deliveryMethod": PAYLOAD[:100],
        "deliveryAddress": PAYLOAD,
        "items": [
            {
                "externalItemId": "i1",
                "name": PAYLOAD[:200],
                "category": PAYLOAD[:100],
                "quantity": 1,
                "cost": 10,
                "url": JS_URL,
                "imageUrl": JS_URL,
                "description": PAYLOAD,
            }
        ],
    }
    answer = api.post("/api/v1/orders", key=key, body={"orders": [order]})
    assert answer.status_code == 200, answer.content
    return ["/orders/"] + [f"/orders/{pk}/" for pk in Order.objects.values_list("pk", flat=True)]


def _import_file(api, key, client) -> list[str]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(PAYLOAD[:80] + ".csv", b"Email\nann@example.com\n", "text/csv")
    answer = client.post("/contacts/import/", {"file": upload, "dedupe_on": "email"})
    assert answer.status_code == 302, answer.content.decode()[-2000:]
    job = ImportJob.objects.get()
    return [
        "/contacts/import/",
        f"/contacts/import/{job.session_id}/columns/",
    ]


def _webhook_request(api, key) -> list[str]:
    integration = make_integration("sendgrid")
    request = WebhookRequest.objects.create(
        integration=integration,
        method="POST",
        path=f"/webhooks/{integration.webhook_key}/",
        query={"q": [PAYLOAD]},
        headers={"user-agent": PAYLOAD, "x-note": PAYLOAD},
        body=json.dumps([{"event": PAYLOAD}]).encode(),
        error=PAYLOAD,
    )
    return [
        "/admin/integrations/webhookrequest/",
        f"/admin/integrations/webhookrequest/{request.pk}/change/",
        f"/integrations/{integration.pk}/",
    ]


def _api_key(api, key) -> list[str]:
    api_key_create(name=PAYLOAD[:100])
    return ["/settings/api-keys/", "/admin/core/apikey/"]


def _organisation(api, key) -> list[str]:
    Organisation.objects.update_or_create(pk=1, defaults={"name": PAYLOAD[:200]})
    return ["/", "/settings/", "/contacts/"]


STORED: dict[str, Callable] = {
    "contact name, address, custom field value and tag": _contact,
    "custom field and group names": _custom_field,
    "segment name and description": _segment,
    "template name, subject and sender name": _template,
    "campaign name": _campaign,
    "workflow name": _workflow,
    "event type name and event params": _event,
    "order fields and item URLs": _order,
    "import file name": _import_file,
    "webhook request shown in admin": _webhook_request,
    "API key name": _api_key,
    "organisation name": _organisation,
}


@pytest.mark.parametrize("stored", list(STORED))
def test_a_stored_payload_is_shown_escaped_on_every_page_that_shows_it(
    client, api, full_key, stored
):
    from django.contrib.auth import get_user_model

    superuser = get_user_model().objects.get(username="alice-admin")
    superuser.is_superuser = superuser.is_staff = True
    superuser.save(update_fields=["is_superuser", "is_staff"])
    client.force_login(superuser)
    store = STORED[stored]
    pages = store(api, full_key, client) if stored == "import file name" else store(api, full_key)
    shown = 0
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, (page, response.status_code)
        html = response.content.decode()
        assert live_markup(html) == [], page
        shown += "&lt;script&gt;window.__xss" in html or "&lt;img src=x" in html
        print(f"{stored:52} {page:58} escaped")
    assert shown, f"no page listed for {stored} shows the payload at all"


def test_an_order_items_link_is_a_link_only_when_it_is_an_http_url(
    client, api, full_key, admin_user
):
    client.force_login(admin_user)
    _order(api, full_key)
    order = Order.objects.get()
    item = order.items.get()
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert 'href="javascript:' not in page
    item.url = "https://shop.example/item/1"
    item.save(update_fields=["url"])
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert 'href="https://shop.example/item/1"' in page
