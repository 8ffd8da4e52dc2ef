"""Opens, clicks and unsubscribes through HTTP, as mailbox providers and recipients send them."""

import re
from urllib.parse import quote

import pytest
from django.test import Client

from campaigns import tracking
from campaigns.models import DeliveryEvent
from contacts.filters.compiler import filter_contacts
from contacts.models import Unsubscribed
from tests.contacts.factories import ContactFactory
from tests.tracking.conftest import local

pytestmark = pytest.mark.django_db


def open_path(delivery):
    return local(tracking.open_url(delivery.pk))


def click_path(delivery, url):
    return local(tracking.click_url(delivery.pk, url))


def unsubscribe_path(delivery):
    return local(tracking.unsubscribe_url(delivery.pk))


def one_click(client, path):
    # Exactly what RFC 8058 mailbox providers send: no cookies, no CSRF token.
    return client.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )


# --- open pixel -----------------------------------------------------------------------------


def test_pixel_is_an_uncacheable_transparent_gif_and_counts_the_open(client, delivery):
    response = client.get(open_path(delivery))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a") and response.content.endswith(b";")
    assert response.content[6:10] == b"\x01\x00\x01\x00"  # 1 x 1
    assert "no-store" in response["Cache-Control"] and "no-cache" in response["Cache-Control"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.open_count) == ("opened", 1)
    assert delivery.opened_at is not None
    assert list(delivery.events.values_list("status", flat=True)) == ["opened"]


def test_second_open_adds_to_the_total_but_keeps_the_first_opened_at(client, delivery):
    client.get(open_path(delivery))
    delivery.refresh_from_db()
    first_opened_at = delivery.opened_at

    client.get(open_path(delivery))

    delivery.refresh_from_db()
    assert delivery.open_count == 2
    assert delivery.opened_at == first_opened_at
    assert delivery.events.filter(status="opened").count() == 2


def test_head_and_prefetch_requests_on_the_pixel_are_not_counted(client, delivery):
    assert client.head(open_path(delivery)).status_code == 200
    assert client.get(open_path(delivery), headers={"Sec-Purpose": "prefetch"}).status_code == 200

    delivery.refresh_from_db()
    assert (delivery.open_count, delivery.opened_at, delivery.status) == (0, None, "sent")


def test_open_after_a_click_does_not_move_the_status_back(client, make_delivery):
    delivery = make_delivery(status="clicked")

    client.get(open_path(delivery))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.open_count) == ("clicked", 1)


def test_pixel_of_a_deleted_delivery_still_answers_with_the_gif(client, delivery):
    path = open_path(delivery)
    delivery.delete()

    response = client.get(path)

    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert not DeliveryEvent.objects.exists()


# --- click redirect -------------------------------------------------------------------------


def test_click_redirects_to_the_signed_url_and_records_it(client, delivery):
    url = "https://shop.example.org/sale?utm_source=herald&x=1#top"

    response = client.get(click_path(delivery, url))

    assert response.status_code == 302
    assert response["Location"] == url
    delivery.refresh_from_db()
    assert (delivery.status, delivery.click_count, delivery.open_count) == ("clicked", 1, 0)
    # A click proves the message was opened even when its images were blocked.
    assert delivery.clicked_at is not None and delivery.opened_at is not None
    assert list(delivery.events.values_list("status", "url")) == [("clicked", url)]


def test_two_clicks_count_twice_and_keep_the_first_clicked_at(client, delivery):
    path = click_path(delivery, "https://example.org/")
    client.get(path)
    delivery.refresh_from_db()
    first = delivery.clicked_at

    client.get(path)

    delivery.refresh_from_db()
    assert (delivery.click_count, delivery.clicked_at) == (2, first)


def test_head_on_a_click_link_redirects_without_counting(client, delivery):
    response = client.head(click_path(delivery, "https://example.org/"))

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.click_count == 0


def test_click_with_a_replaced_url_is_400_and_never_redirects(client, delivery):
    token = tracking.token_make(
        purpose="click", delivery_id=delivery.pk, extra="https://example.org/"
    )

    response = client.get(f"/t/c/{token}?u={quote('https://evil.example.net/', safe='')}")

    assert response.status_code == 400
    assert "Location" not in response
    delivery.refresh_from_db()
    assert delivery.click_count == 0


@pytest.mark.parametrize(
    "query",
    [
        "",  # no target at all
        "?u=",
        "?u=https%3A%2F%2Fevil.example.net%2F",
        "?u=https%3A%2F%2Fexample.org%2F&u=https%3A%2F%2Fevil.example.net%2F",
    ],
)
def test_click_with_a_foreign_or_missing_url_is_400(client, delivery, query):
    token = tracking.token_make(
        purpose="click", delivery_id=delivery.pk, extra="https://example.org/"
    )
    response = client.get(f"/t/c/{token}{query}")

    assert response.status_code == 400
    assert "Location" not in response


def test_click_with_a_tampered_signature_is_400(client, delivery):
    path = click_path(delivery, "https://example.org/")
    token = re.search(r"/t/c/([^?]+)", path).group(1)
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")

    response = client.get(path.replace(token, forged))

    assert response.status_code == 400


def test_click_token_of_one_delivery_does_not_work_for_another(client, make_delivery):
    first, second = make_delivery(), make_delivery(locator="bob@example.com")
    path = click_path(first, "https://example.org/")
    token = re.search(r"/t/c/([^?]+)", path).group(1)
    other = tracking._base36(second.pk) + token[token.index(".") :]

    assert client.get(path.replace(token, other)).status_code == 400


def test_click_to_a_non_http_url_is_400_even_when_signed(client, delivery):
    # prepare_html never signs such URLs; this guards against a future caller that would.
    response = client.get(click_path(delivery, "javascript:alert(1)"))

    assert response.status_code == 400


# --- one-click unsubscribe (RFC 8058) ---------------------------------------------------------


def test_one_click_post_without_cookies_or_csrf_suppresses_the_address(delivery):
    client = Client(enforce_csrf_checks=True)

    response = one_click(client, unsubscribe_path(delivery))

    assert response.status_code == 200
    assert Unsubscribed.objects.filter(email="ann@example.com").exists()
    delivery.refresh_from_db()
    assert delivery.status == "unsubscribed"
    assert list(delivery.events.values_list("status", flat=True)) == ["unsubscribed"]


def test_one_click_as_multipart_form_data_also_unsubscribes(delivery):
    client = Client(enforce_csrf_checks=True)

    response = client.post(unsubscribe_path(delivery), {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert Unsubscribed.objects.filter(email="ann@example.com").exists()


def test_one_click_suppresses_every_contact_with_that_address_for_email_only(delivery):
    reader = ContactFactory(email="ann@example.com", phone="+380501234567")
    twin = ContactFactory(email="ann@example.com")
    other = ContactFactory(email="someone@example.com")
    delivery.contact = reader
    delivery.save(update_fields=["contact"])

    one_click(Client(enforce_csrf_checks=True), unsubscribe_path(delivery))

    unsubscribed = set(filter_contacts({"unsubscribed": True}).values_list("pk", flat=True))
    assert unsubscribed == {reader.pk, twin.pk}
    assert other.pk not in unsubscribed
    reader.refresh_from_db()
    assert reader.phone == "+380501234567"  # the SMS channel is untouched


def test_the_header_url_is_the_one_click_target(delivery):
    header = tracking.list_unsubscribe_headers(delivery)["List-Unsubscribe"]
    https_url = re.match(r"<(https://[^>]+)>", header).group(1)

    response = one_click(Client(enforce_csrf_checks=True), local(https_url))

    assert response.status_code == 200
    assert Unsubscribed.objects.filter(email=delivery.locator).exists()


def test_unsubscribing_twice_keeps_one_entry_and_one_history_row(delivery):
    client = Client(enforce_csrf_checks=True)
    path = unsubscribe_path(delivery)

    assert one_click(client, path).status_code == 200
    assert one_click(client, path).status_code == 200
    assert client.post(path, {"action": "unsubscribe"}).status_code == 200

    assert Unsubscribed.objects.filter(email="ann@example.com").count() == 1
    assert delivery.events.filter(status="unsubscribed").count() == 1


def test_unsubscribe_of_an_already_listed_address_still_marks_the_delivery(delivery):
    Unsubscribed.objects.create(email="ann@example.com", reason="api")

    one_click(Client(enforce_csrf_checks=True), unsubscribe_path(delivery))

    delivery.refresh_from_db()
    assert delivery.status == "unsubscribed"
    assert Unsubscribed.objects.get(email="ann@example.com").reason == "api"


# --- the unsubscribe page ---------------------------------------------------------------------


def test_get_shows_a_confirmation_with_the_masked_address_and_unsubscribes_nobody(client, delivery):
    response = client.get(unsubscribe_path(delivery))

    assert response.status_code == 200
    page = response.content.decode()
    assert "a***@example.com" in page
    assert "ann@example.com" not in page
    assert 'name="action" value="unsubscribe"' in page
    assert response["Referrer-Policy"] == "no-referrer"
    assert not Unsubscribed.objects.exists()
    delivery.refresh_from_db()
    assert delivery.status == "sent"


def test_page_button_unsubscribes_then_resubscribe_undoes_it(delivery):
    client = Client(enforce_csrf_checks=True)  # a recipient without any session
    path = unsubscribe_path(delivery)

    response = client.post(path, {"action": "unsubscribe"})

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    assert Unsubscribed.objects.filter(email="ann@example.com").exists()

    response = client.post(path, {"action": "resubscribe"})

    assert response.status_code == 200
    assert "subscribed again" in response.content.decode()
    assert not Unsubscribed.objects.filter(email="ann@example.com").exists()


def test_page_of_an_unsubscribed_address_offers_to_resubscribe(client, delivery):
    Unsubscribed.objects.create(email="ann@example.com")

    page = client.get(unsubscribe_path(delivery)).content.decode()

    assert "You are unsubscribed" in page
    assert 'value="resubscribe"' in page


def test_unsubscribe_link_with_trailing_slash_and_upper_case_token_works(client, delivery):
    path = unsubscribe_path(delivery)
    token = path.rsplit("/", 1)[1]

    assert client.get(f"/u/{token.upper()}/").status_code == 200
    assert one_click(Client(enforce_csrf_checks=True), f"/u/{token.upper()}/").status_code == 200
    assert Unsubscribed.objects.filter(email="ann@example.com").exists()


# --- garbage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/u/garbage", 404),
        ("get", "/u/1.aaaaaaaaaaaaaaaa", 404),
        ("post", "/u/1.aaaaaaaaaaaaaaaa", 404),
        ("get", "/u/zzzzzzzzzzzzz.aaaaaaaaaaaaaaaa", 404),  # beyond bigint
        ("get", "/u/0.aaaaaaaaaaaaaaaa", 404),
        ("get", "/u/1.", 404),
        ("get", "/u/%00%ff", 404),
        ("get", "/t/o/garbage.gif", 404),
        ("get", "/t/o/1.aaaaaaaaaaaaaaaa.gif", 404),
        ("get", "/t/o/1.aaaaaaaaaaaaaaaa", 404),
        ("get", "/t/c/1.aaaaaaaaaaaaaaaa?u=https%3A%2F%2Fexample.org%2F", 400),
        ("get", "/t/c/nope?u=https%3A%2F%2Fexample.org%2F", 404),
        ("get", "/t/c/1.aaaaaaaaaaaaaaaa?u=%ff%fe", 400),
    ],
)
def test_garbled_tokens_are_404_or_400_never_500(client, db, method, path, status):
    response = getattr(client, method)(path)

    assert response.status_code == status
    assert "Location" not in response


def test_a_token_is_good_for_its_own_purpose_only(client, delivery):
    open_token = open_path(delivery).split("/")[-1].removesuffix(".gif")
    unsubscribe_token = unsubscribe_path(delivery).split("/")[-1]

    assert client.post(f"/u/{open_token}", {"List-Unsubscribe": "One-Click"}).status_code == 404
    assert client.get(f"/t/o/{unsubscribe_token}.gif").status_code == 404
    assert not Unsubscribed.objects.exists()


def test_unsubscribe_token_of_a_deleted_or_sms_delivery_is_404(client, make_delivery):
    gone = make_delivery()
    gone_path = unsubscribe_path(gone)
    gone.delete()
    sms = make_delivery(locator="+380501234567", channel="sms")

    assert client.get(gone_path).status_code == 404
    assert one_click(client, unsubscribe_path(sms)).status_code == 404
    assert not Unsubscribed.objects.exists()


def test_tokens_signed_with_a_retired_secret_key_still_work(client, settings, delivery):
    path = unsubscribe_path(delivery)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key-" + "x" * 40

    assert client.get(path).status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/a b?q=1+2&r=%2F&s=a%20b",
        "https://例え.jp/ünï?q=é",
        "https://example.org/" + "x" * 1500,
    ],
)
def test_click_survives_spaces_plus_signs_encoded_parts_and_non_ascii(client, delivery, url):
    response = client.get(click_path(delivery, url))

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.events.get().url == url
