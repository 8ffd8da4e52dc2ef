"""A real Celery worker sends a campaign to a "uk" and an "en-GB" contact through the SMTP
sink: each gets the subject of its language version, with tracked links UTM-tagged."""

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from campaigns import lifecycle
from campaigns.models import CampaignRun, RunStatus
from templates.languages import template_language_create
from templates.services import template_create, template_publish
from tests.campaigns.test_pipeline import make_campaign
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_sends_each_contact_the_subject_of_its_language():
    template = template_create(
        name="Spring newsletter",
        subject="Spring sale",
        from_email="news@shop.example",
        html='<p><a href="https://shop.example/sale">Shop</a></p>',
    )
    template_language_create(
        template=template,
        language_code="uk",
        subject="Весняний розпродаж",
        html='<p><a href="https://shop.example/uk/sale">Магазин</a></p>',
    )
    template_language_create(
        template=template, language_code="en", subject="Spring sale (English)", html="<p>Hi</p>"
    )
    template_publish(template=template)
    ContactFactory(email="olena@example.com", language_code="uk", tags=["vip"])
    ContactFactory(email="george@example.com", language_code="en-GB", tags=["vip"])
    campaign = make_campaign(
        template=template, status="draft", utm_enabled=True, utm_campaign="spring"
    )
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}):
        run = lifecycle.campaign_launch_now(campaign=campaign)
        wait_for(lambda: len(sink.received) >= 2, timeout=90)
        wait_for(
            lambda: CampaignRun.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).first(),
            timeout=30,
        )
        messages = sink.messages
    assert {m["To"]: str(m["Subject"]) for m in messages} == {
        "olena@example.com": "Весняний розпродаж",
        "george@example.com": "Spring sale (English)",
    }
    ukrainian = next(m for m in messages if m["To"] == "olena@example.com")
    body = next(p for p in ukrainian.walk() if p.get_content_type() == "text/html")
    click = next(
        html.unescape(href)
        for href in re.findall(r'href="([^"]*)"', body.get_payload(decode=True).decode())
        if "/t/c/" in href
    )
    target = parse_qs(urlsplit(click).query)["u"][0]
    assert target.startswith("https://shop.example/uk/sale?")
    assert parse_qs(urlsplit(target).query)["utm_campaign"] == ["spring"]
