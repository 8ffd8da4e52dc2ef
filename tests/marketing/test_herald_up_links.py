"""`bin/run --bind …` and the links in emails: without HERALD_BASE_URL the web server, the
worker and beat get the address Herald was started on; a set HERALD_BASE_URL wins."""

import re
import socket

import pytest

from campaigns import lifecycle
from campaigns.models import CampaignRun, RunStatus
from marketing.management.commands.herald_up import child_environment, public_host
from templates.services import template_create, template_publish
from tests.campaigns.test_pipeline import make_campaign, vip
from tests.conftest import wait_for
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker

LINK = re.compile(r"https?://[^\s\"'<>]+")


def test_a_bind_on_another_port_moves_the_links_there():
    env, line = child_environment({"PATH": "/usr/bin"}, "127.0.0.1:8100")
    assert env["HERALD_BASE_URL"] == "http://127.0.0.1:8100"
    assert env["HERALD_BIND"] == "127.0.0.1:8100"
    assert env["PATH"] == "/usr/bin"
    assert "http://127.0.0.1:8100" in line


def test_an_ipv6_bind_is_bracketed_in_links():
    env, _ = child_environment({}, "[::1]:8100")
    assert env["HERALD_BASE_URL"] == "http://[::1]:8100"


def test_a_set_base_url_wins_over_the_bind():
    env, line = child_environment({"HERALD_BASE_URL": "https://mail.shop.example"}, "0.0.0.0:8100")
    assert env["HERALD_BASE_URL"] == "https://mail.shop.example"
    assert "ALLOWED_HOSTS" not in env
    assert "HERALD_BASE_URL" in line


def test_a_wildcard_bind_uses_the_machine_name_and_allows_it():
    env, line = child_environment({}, "0.0.0.0:8100")
    name, why = public_host("0.0.0.0")  # noqa: S104
    assert env["HERALD_BASE_URL"] == f"http://{name}:8100"
    assert name in env["ALLOWED_HOSTS"].split(",")
    assert "127.0.0.1" in env["ALLOWED_HOSTS"].split(",")
    assert why in line
    if name != "127.0.0.1":
        assert name == socket.getfqdn()


def test_a_set_allowed_hosts_is_left_alone():
    env, _ = child_environment({"ALLOWED_HOSTS": "shop.example"}, "0.0.0.0:8100")
    assert env["ALLOWED_HOSTS"] == "shop.example"


def test_a_unix_socket_bind_leaves_the_base_url_to_the_operator():
    env, line = child_environment({}, "unix:/run/herald.sock")
    assert "HERALD_BASE_URL" not in env
    assert "set HERALD_BASE_URL" in line


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_campaign_sent_by_a_worker_started_for_a_bind_links_to_that_bind(monkeypatch):
    """The worker is started with herald_up's environment for --bind 127.0.0.1:8100: every
    link of the email (click redirect, open pixel, unsubscribe, List-Unsubscribe) is there."""
    monkeypatch.delenv("HERALD_BASE_URL", raising=False)
    env, _ = child_environment({}, "127.0.0.1:8100")
    template = template_create(
        name="Spring",
        subject="Spring",
        from_email="news@shop.example",
        html='<p>Hello <a href="https://shop.example/spring">See the sale</a></p>',
    )
    template_publish(template=template)
    with SMTPSink() as sink, CeleryWorker(env={**env, "EMAIL_URL": sink.url}):
        vip(2)
        run = lifecycle.campaign_launch_now(
            campaign=make_campaign(status="draft", template=template)
        )
        wait_for(lambda: len(sink.received) >= 2, timeout=60)
        wait_for(
            lambda: CampaignRun.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).exists(),
            timeout=30,
        )
    for message in sink.messages:
        html = message.get_body(("html",)).get_content()
        links = LINK.findall(html) + LINK.findall(message["List-Unsubscribe"])
        ours = [link for link in links if not link.startswith("https://shop.example")]
        assert len(ours) >= 3, links  # click redirect, open pixel, unsubscribe at least
        assert all(link.startswith("http://127.0.0.1:8100/") for link in ours), links
        assert "https://shop.example/spring" not in html  # the link goes through the redirect
