"""What the sender puts into each email: rewritten HTML and the List-Unsubscribe headers."""

import html
import re
from urllib.parse import unquote

import pytest
from django.test import Client

from campaigns import tracking
from contacts.models import Contact, Unsubscribed
from marketing.workflows.models import WorkflowRun
from tests.tracking.conftest import BASE, local
from tests.workflows.conftest import chain, make_workflow

pytestmark = pytest.mark.django_db

HREF = re.compile(r"""(?<![\w-])href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)


def hrefs(prepared: str) -> list[str]:
    """The message's own links (without the hidden trap link added first to every email)."""
    return [
        href
        for href in (
            html.unescape(next(g for g in m.groups() if g is not None))
            for m in HREF.finditer(prepared)
        )
        if "/t/h/" not in href
    ]


def test_http_and_https_links_become_click_links_that_redirect_to_the_original(client, delivery):
    source = (
        "<html><body>"
        '<a href="https://shop.example.org/sale?a=1&amp;b=2">sale</a>'
        "<a class='x' href='http://example.org/page'>page</a>"
        "<A HREF=https://example.org/bare>bare</A>"
        '<a title="a > b" href="https://example.org/after-quoted-gt">gt</a>'
        "</body></html>"
    )

    prepared = tracking.prepare_html(source, delivery)

    links = [link for link in hrefs(prepared) if "/t/c/" in link]
    assert len(links) == 4
    targets = []
    for link in links:
        assert link.startswith(f"{BASE}/t/c/")
        response = client.get(local(link))
        assert response.status_code == 302
        targets.append(response["Location"])
    assert targets == [
        "https://shop.example.org/sale?a=1&b=2",  # the HTML entity is not part of the URL
        "http://example.org/page",
        "https://example.org/bare",
        "https://example.org/after-quoted-gt",
    ]
    assert ">sale</a>" in prepared and 'title="a > b"' in prepared


def test_mailto_tel_anchors_relative_and_unsubscribe_links_are_left_alone(delivery):
    source = (
        "<body>"
        '<a href="mailto:help@example.org">mail</a>'
        '<a href="tel:+380501234567">call</a>'
        '<a href="#top">top</a>'
        '<a href="/relative">rel</a>'
        '<a name="anchor">no href</a>'
        '<a data-href="https://example.org/data" href="#x">data</a>'
        '<a href="%UNSUBSCRIBE_URL%">Unsubscribe</a>'
        "</body>"
    )

    prepared = tracking.prepare_html(source, delivery)

    assert hrefs(prepared) == [
        "mailto:help@example.org",
        "tel:+380501234567",
        "#top",
        "/relative",
        "#x",
        tracking.unsubscribe_url(delivery.pk),
    ]
    assert 'data-href="https://example.org/data"' in prepared


def test_placeholder_becomes_the_unsubscribe_url_and_no_footer_is_added(delivery):
    source = (
        '<body><p>Copy: %UNSUBSCRIBE_URL%</p><a href="%UNSUBSCRIBE_URL%">Leave</a>'
        '<a href="%25UNSUBSCRIBE_URL%25">encoded by an editor</a></body>'
    )

    prepared = tracking.prepare_html(source, delivery)

    url = tracking.unsubscribe_url(delivery.pk)
    assert "%UNSUBSCRIBE_URL%" not in prepared and "UNSUBSCRIBE_URL" not in prepared
    assert prepared.count(url) == 3
    assert "Don't want these emails" not in prepared


def test_without_an_unsubscribe_link_a_footer_with_one_is_added_before_body_end(delivery):
    prepared = tracking.prepare_html("<html><body><p>Hello</p></BODY></html>", delivery)

    footer_at = prepared.index(tracking.unsubscribe_url(delivery.pk))
    assert prepared.index("<p>Hello</p>") < footer_at < prepared.index("</BODY>")
    assert prepared.endswith("</BODY></html>")


def test_the_footer_link_unsubscribes_through_the_page(delivery):
    prepared = tracking.prepare_html("<p>Hello</p>", delivery)
    (link,) = [link for link in hrefs(prepared) if "/u/" in link]
    client = Client(enforce_csrf_checks=True)

    assert client.get(local(link)).status_code == 200
    assert client.post(local(link), {"action": "unsubscribe"}).status_code == 200
    assert Unsubscribed.objects.filter(email=delivery.locator).exists()


def test_open_pixel_goes_before_the_last_body_end_or_at_the_end(client, delivery):
    with_body = tracking.prepare_html("<body>x</body><!-- </body> in a comment -->", delivery)
    fragment = tracking.prepare_html("<p>x</p>", delivery)

    pixel = html.escape(tracking.open_url(delivery.pk), quote=True)
    assert with_body.index(pixel) < with_body.rindex("</body>")
    assert with_body.count("<img") == 1
    assert fragment.rstrip().endswith(">") and fragment.index(pixel) > fragment.index("<p>x</p>")
    assert re.search(r'<img src="[^"]+" width="1" height="1" alt=""', fragment)
    src = re.search(r'<img src="([^"]+)"', fragment).group(1)
    assert client.get(local(html.unescape(src)))["Content-Type"] == "image/gif"


def test_preparing_twice_does_not_wrap_links_twice(delivery):
    once = tracking.prepare_html('<body><a href="https://example.org/">x</a></body>', delivery)
    twice = tracking.prepare_html(once, delivery)

    assert [h for h in hrefs(twice) if "/t/c/" in h] == [h for h in hrefs(once) if "/t/c/" in h]
    assert twice.count("Don't want these emails") == 1


def test_click_links_are_compact(delivery):
    link = tracking.click_url(delivery.pk, "https://example.org/")
    token = re.search(r"/t/c/([^?]+)", link).group(1)

    assert len(token) <= 30
    assert unquote(link.split("?u=")[1]) == "https://example.org/"


# --- List-Unsubscribe headers -----------------------------------------------------------------


def test_headers_carry_the_https_url_and_mailto_per_rfc_2369_and_8058(delivery):
    headers = tracking.list_unsubscribe_headers(delivery)

    assert set(headers) == {"List-Unsubscribe", "List-Unsubscribe-Post"}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = re.fullmatch(
        r"<(https://herald\.example\.com/u/[0-9a-z.]+)>, "
        r"<mailto:unsubscribe\+([0-9a-z.]+)@herald\.example\.com\?subject=unsubscribe>",
        headers["List-Unsubscribe"],
    )
    assert match, headers["List-Unsubscribe"]
    assert match.group(1) == tracking.unsubscribe_url(delivery.pk)
    assert match.group(1).endswith(match.group(2))


def test_mailto_domain_comes_from_its_setting_when_set(settings, delivery):
    settings.HERALD_UNSUBSCRIBE_MAILTO_DOMAIN = "bounces.example.net"

    header = tracking.list_unsubscribe_headers(delivery)["List-Unsubscribe"]

    assert re.search(r"<mailto:unsubscribe\+[0-9a-z.]+@bounces\.example\.net\?", header)


def test_mailto_to_an_ip_base_url_uses_an_address_literal(settings, delivery):
    settings.HERALD_BASE_URL = "http://127.0.0.1:8000"

    header = tracking.list_unsubscribe_headers(delivery)["List-Unsubscribe"]

    assert "@[127.0.0.1]?subject=unsubscribe>" in header


def test_mailto_address_leads_back_to_the_delivery_even_case_folded(delivery):
    header = tracking.list_unsubscribe_headers(delivery)["List-Unsubscribe"]
    address = re.search(r"mailto:([^?]+)", header).group(1)

    assert tracking.unsubscribe_address_check(address) == delivery.pk
    assert tracking.unsubscribe_address_check(address.upper()) == delivery.pk
    assert tracking.unsubscribe_address_check(f"<{address}>") == delivery.pk
    assert tracking.unsubscribe_address_check(address.replace("unsubscribe+", "help+")) is None
    assert tracking.unsubscribe_address_check("unsubscribe+1.aaaaaaaaaaaaaaaa@x.org") is None
    assert tracking.unsubscribe_address_check("nobody@example.org") is None


# --- plain text -------------------------------------------------------------------------------


def test_plain_text_gets_an_unsubscribe_line_unless_it_has_the_placeholder(delivery):
    url = tracking.unsubscribe_url(delivery.pk)

    appended = tracking.prepare_text("Hello Ann,\nour sale starts today.\n", delivery)
    placed = tracking.prepare_text("Hello\nLeave the list: %UNSUBSCRIBE_URL%\n", delivery)

    assert appended == f"Hello Ann,\nour sale starts today.\n\n--\nUnsubscribe: {url}\n"
    assert placed == f"Hello\nLeave the list: {url}\n"
    assert tracking.prepare_text(appended, delivery) == appended


def test_an_unsaved_delivery_is_refused_rather_than_given_broken_links():
    from campaigns.models import Delivery

    with pytest.raises(ValueError, match="saved delivery"):
        tracking.prepare_html("<p>x</p>", Delivery(locator="ann@example.com", channel="email"))


def test_a_workflow_button_placeholder_becomes_the_recipients_link_that_starts_it(
    client, make_delivery, django_capture_on_commit_callbacks
):
    workflow = make_workflow(chain({"kind": "exit"}), trigger_kind="button")
    ann = Contact.objects.create(email="ann@example.com")
    key = workflow.button_key
    source = f'<html><body><a href="%WORKFLOW_URL:{key}%">Join</a></body></html>'

    prepared = tracking.prepare_html(source, make_delivery(contact=ann))
    text = tracking.prepare_text(f"Join: %WORKFLOW_URL:{key}%", make_delivery(contact=ann))

    [click] = [link for link in hrefs(prepared) if "/t/c/" in link]
    target = client.get(local(click))["Location"]  # tracked like any link, then the button
    assert target.startswith(f"{BASE}/w/{key}/?c=") and f"Join: {target}" in text
    assert client.get(local(target)).status_code == 200  # asks first: scanners only GET
    assert not WorkflowRun.objects.exists()
    token = target.split("?c=", 1)[1]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/w/{key}/", {"c": token}).status_code == 200
    assert WorkflowRun.objects.get().contact == ann
    # An address that is no contact has nobody to start the workflow for: left as written.
    bare = tracking.prepare_text(f"%WORKFLOW_URL:{key}%", make_delivery())
    assert f"%WORKFLOW_URL:{key}%" in bare
