"""The message log pages: Delivery rows newest first, filters, keyset paging, and one
message's detail with its status history."""

import datetime
import html
import re
import uuid

import pytest
from django.utils import timezone

from campaigns.models import Delivery, DeliveryEvent, DeliveryStatus, SendKind, SendRequest
from contacts.models import ChannelType
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db


def page_of(response) -> str:
    return response.content.decode()


def rows(response) -> list[str]:
    """Locators of the listed rows, in page order."""
    body = page_of(response)
    return re.findall(
        r'data-testid="message-row">.*?<td>.*?</td>\s*<td>.*?</td>\s*<td>(?:<a[^>]*>)?([^<]+)',
        body,
        re.S,
    )


def deliver(locator: str, **fields) -> Delivery:
    fields.setdefault("channel", ChannelType.EMAIL)
    return Delivery.objects.create(locator=locator, **fields)


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def test_anonymous_and_outsider_cannot_read_the_log(client, outsider):
    delivery = deliver("a@example.com")
    assert client.get("/messages/").status_code == 302
    client.force_login(outsider)
    assert client.get("/messages/").status_code == 403
    assert client.get(f"/messages/{delivery.request_id}/").status_code == 403


def test_empty_log_says_so(as_viewer):
    response = as_viewer.get("/messages/")
    assert response.status_code == 200
    assert 'data-testid="no-messages"' in page_of(response)
    assert "No messages yet." in page_of(response)


def test_log_lists_newest_first(as_viewer):
    for n in range(3):
        deliver(f"p{n}@example.com")
    assert rows(as_viewer.get("/messages/")) == [
        "p2@example.com",
        "p1@example.com",
        "p0@example.com",
    ]
    assert "3 messages" in page_of(as_viewer.get("/messages/"))


def test_filters_by_status_channel_and_locator(as_viewer):
    deliver("fail@example.com", status=DeliveryStatus.FAILED)
    deliver("ok@example.com", status=DeliveryStatus.DELIVERED)
    deliver("+14155550100", channel=ChannelType.SMS, status=DeliveryStatus.FAILED)
    assert rows(as_viewer.get("/messages/", {"status": "failed"})) == [
        "+14155550100",
        "fail@example.com",
    ]
    assert rows(as_viewer.get("/messages/", {"status": "failed", "channel": "email"})) == [
        "fail@example.com"
    ]
    assert rows(as_viewer.get("/messages/", {"locator": "OK@EXAMPLE"})) == ["ok@example.com"]
    assert rows(as_viewer.get("/messages/", {"locator": "5550"})) == ["+14155550100"]


def test_filter_by_request_id_is_exact(as_viewer):
    target = deliver("target@example.com")
    deliver("other@example.com")
    assert rows(as_viewer.get("/messages/", {"request_id": str(target.request_id)})) == [
        "target@example.com"
    ]
    nothing = as_viewer.get("/messages/", {"request_id": str(uuid.uuid4())})
    assert rows(nothing) == [] and "No messages match." in page_of(nothing)


def test_malformed_request_id_is_an_inline_error_not_a_500(as_viewer):
    deliver("a@example.com")
    response = as_viewer.get("/messages/", {"request_id": "not-a-uuid"})
    assert response.status_code == 200
    assert 'data-testid="error-request_id"' in page_of(response)
    assert rows(response) == []


def test_filter_by_date_range_includes_the_end_day(as_viewer):
    old, mid, new = deliver("old@x.example"), deliver("mid@x.example"), deliver("new@x.example")
    now = timezone.localtime()
    for delivery, days in ((old, 10), (mid, 5), (new, 0)):
        Delivery.objects.filter(pk=delivery.pk).update(
            created_at=now - datetime.timedelta(days=days)
        )
    day = (now - datetime.timedelta(days=5)).date()
    since = (now - datetime.timedelta(days=6)).date()
    assert rows(as_viewer.get("/messages/", {"since": since, "until": day})) == ["mid@x.example"]
    assert rows(as_viewer.get("/messages/", {"since": day})) == ["new@x.example", "mid@x.example"]
    backwards = as_viewer.get("/messages/", {"since": day, "until": since})
    assert 'data-testid="error-until"' in page_of(backwards)


def test_pages_by_keyset_with_filters_kept(as_viewer, settings):
    for n in range(55):
        deliver(f"p{n}@example.com", status=DeliveryStatus.SENT)
    deliver("failed@example.com", status=DeliveryStatus.FAILED)
    first = as_viewer.get("/messages/", {"status": "sent"})
    assert len(rows(first)) == 50 and rows(first)[0] == "p54@example.com"
    link = re.search(r'href="\?([^"]+)" rel="next"', page_of(first)).group(1)
    second = as_viewer.get("/messages/?" + html.unescape(link))
    assert "status=sent" in html.unescape(link)
    assert rows(second) == [f"p{n}@example.com" for n in range(4, -1, -1)]
    previous = re.search(r'href="\?([^"]+)" rel="prev"', page_of(second)).group(1)
    assert rows(as_viewer.get("/messages/?" + html.unescape(previous))) == rows(first)


def test_detail_shows_history_error_message_id_template_and_contact(as_viewer):
    contact = ContactFactory(email="zoe@example.com")
    template = template_create(name="Welcome", subject="Hi", html="<p>Hi</p>")
    version = template_publish(template=template)
    request = SendRequest.objects.create(kind=SendKind.TEST, template_version=version)
    delivery = deliver(
        "zoe@example.com",
        contact=contact,
        send_request=request,
        template_version=version,
        status=DeliveryStatus.BOUNCED,
        message_id="<abc.123@herald.example>",
        error="550 5.1.1 mailbox unavailable",
    )
    DeliveryEvent.objects.create(delivery=delivery, status=DeliveryStatus.SENT)
    DeliveryEvent.objects.create(
        delivery=delivery, status=DeliveryStatus.BOUNCED, detail="hard bounce"
    )
    response = as_viewer.get(f"/messages/{delivery.request_id}/")
    assert response.status_code == 200
    body = html.unescape(page_of(response))
    assert 'data-testid="status">Bounced<' in body
    assert "<abc.123@herald.example>" in body
    assert "550 5.1.1 mailbox unavailable" in body
    assert body.count('data-testid="event-row"') == 2 and "hard bounce" in body
    assert f'href="/contacts/{contact.pk}/"' in body
    assert f'href="/templates/{template.pk}/versions/1/"' in body
    assert "Test send" in body
    # The list links each row to this page.
    assert f"/messages/{delivery.request_id}/" in page_of(as_viewer.get("/messages/"))


def test_detail_of_unknown_or_malformed_request_id_is_404(as_viewer):
    assert as_viewer.get(f"/messages/{uuid.uuid4()}/").status_code == 404
    assert as_viewer.get("/messages/not-a-uuid/").status_code == 404


def test_templates_list_links_to_the_message_log(as_viewer):
    assert 'href="/messages/"' in page_of(as_viewer.get("/templates/"))
