"""A block-built template is sent like any other: through the API, a real Celery worker and a
real SMTP server, with tracked links, the unsubscribe link and the List-Unsubscribe headers."""

import re

import pytest

from campaigns.models import Delivery
from templates.design import starter_layout_mjml, template_design_save
from templates.services import template_create, template_publish
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker

pytestmark = pytest.mark.worker


@pytest.fixture
def sink_and_worker(transactional_db):
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}) as worker:
        yield sink, worker


def test_block_built_message_carries_tracking_and_unsubscribe(
    api, full_key, sink_and_worker, settings
):
    sink, worker = sink_and_worker
    template = template_create(
        name="Sale", subject="Sale for $!contact.firstName", from_email="shop@shop.example"
    )
    template_design_save(template=template, mjml=starter_layout_mjml(key="promotion"))
    template_publish(template=template)
    ContactFactory(email="ann@example.com", first_name="Ann")

    response = api.post(
        f"/api/v1/message/{template.pk}/smartsend",
        key=full_key,
        body={"recipients": [{"locator": "ann@example.com"}]},
    )
    assert response.status_code == 200, response.json()
    wait_for(lambda: Delivery.objects.filter(status="sent").count() == 1, timeout=60)

    [received] = sink.received
    message = received.message
    assert message["Subject"] == "Sale for Ann", worker.output()
    html = message.get_body(("html",)).get_content()
    base = settings.HERALD_BASE_URL
    assert "Ann, the whole shop is on sale" in html
    # The starter's footer link became this recipient's unsubscribe page; no second footer.
    unsubscribe = re.findall(rf'href="({re.escape(base)}/u/[^"]+)"', html)
    assert len(unsubscribe) == 1
    assert "%UNSUBSCRIBE_URL%" not in html
    # Every http(s) link of the design goes through a signed click URL.
    links = re.findall(r'<a [^>]*href="([^"]+)"', html)
    assert links and all(link.startswith((f"{base}/t/", f"{base}/u/")) for link in links)
    assert "shop.example/sale" not in " ".join(links)
    assert f"{base}/t/o/" in html  # the open pixel
    assert message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()
    assert f"{base}/u/" in text
