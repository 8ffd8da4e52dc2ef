"""The suppression list for marketers: the page (list, search, filters, lifted ones on
request, Lift, Add address with form errors, viewers read only), the contact page's notice,
the Django admin (list, filters, search, the Lift action) and Herald's own API
(/api/herald/suppressions)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import Suppression
from contacts.suppression import suppression_lift
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

PAGE = "/contacts/suppressions/"


def page_of(response) -> str:
    return response.content.decode()


def rows(html: str) -> list[str]:
    """The addresses of the table's rows, in order."""
    return re.findall(r'data-testid="suppression-row"[^>]*>\s*<td>([^<]+)</td>', html)


@pytest.fixture
def listed(db):
    """Three in force (newest first: manual SMS, complaint, hard bounce) and one lifted."""
    now = timezone.now()
    made = {}
    for name, address, channel, reason, detail, source, days in [
        ("old", "old@example.com", "email", "hard_bounce", "550 moved", "bounce mailbox", 9),
        ("gone", "gone@example.com", "email", "hard_bounce", "550 5.1.1 no such user", "SES", 3),
        ("angry", "angry@example.com", "email", "complaint", "abuse report", "SendGrid", 2),
        ("phone", "+4915112345678", "sms", "manual", "asked to stop", "added by hand", 1),
    ]:
        made[name] = Suppression.objects.create(
            address=address, channel=channel, reason=reason, detail=detail, source=source
        )
        Suppression.objects.filter(pk=made[name].pk).update(created_at=now - timedelta(days=days))
    suppression_lift(suppression=made["old"])
    return made


@pytest.fixture
def as_marketer(client, marketer):
    client.force_login(marketer)
    return client


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


# --- the page -------------------------------------------------------------------------------


def test_the_list_shows_each_address_with_channel_reason_detail_source_and_date(
    as_marketer, listed
):
    html = page_of(as_marketer.get(PAGE))
    assert rows(html) == ["+4915112345678", "angry@example.com", "gone@example.com"]
    row = html[html.index("gone@example.com") :]
    row = row[: row.index("</tr>")]
    for text in ("Email", "Hard bounce", "550 5.1.1 no such user", "SES"):
        assert text in row
    assert (timezone.now() - timedelta(days=3)).strftime("%Y-%m-%d") in row
    assert 'data-testid="lift"' in row
    assert "3 addresses" in html
    # Reached from the contacts section's navigation, beside the unsubscribed list.
    assert f'href="{PAGE}" aria-current="page">Suppressed</a>' in html
    unsubscribed = page_of(as_marketer.get("/contacts/unsubscribed/"))
    assert f'href="{PAGE}">Suppressed</a>' in unsubscribed


def test_search_by_address_and_filters_by_reason_and_channel(as_marketer, listed):
    assert rows(page_of(as_marketer.get(PAGE, {"q": "GONE@"}))) == ["gone@example.com"]
    assert rows(page_of(as_marketer.get(PAGE, {"reason": "complaint"}))) == ["angry@example.com"]
    assert rows(page_of(as_marketer.get(PAGE, {"channel": "sms"}))) == ["+4915112345678"]
    assert rows(page_of(as_marketer.get(PAGE, {"q": "+49151"}))) == ["+4915112345678"]
    none = page_of(as_marketer.get(PAGE, {"q": "nobody@"}))
    assert rows(none) == [] and 'data-testid="no-matches"' in none


def test_lifted_ones_show_only_on_request_with_who_lifted_them(as_marketer, listed, marketer):
    assert "old@example.com" not in rows(page_of(as_marketer.get(PAGE)))
    suppression_lift(suppression=listed["gone"], user=marketer)
    html = page_of(as_marketer.get(PAGE, {"lifted": "on"}))
    assert rows(html) == [
        "+4915112345678",
        "angry@example.com",
        "gone@example.com",
        "old@example.com",
    ]
    gone = html[html.index(f'id="suppression-{listed["gone"].pk}"') :]
    gone = gone[: gone.index("</tr>")]
    assert "lifted" in gone and "by mark-marketer" in gone and 'data-testid="lift"' not in gone


def test_lift_asks_for_confirmation_and_lifts_for_the_record(as_marketer, listed, marketer):
    html = page_of(as_marketer.get(PAGE))
    assert 'data-confirm="Lift the suppression of gone@example.com?' in html
    response = as_marketer.post(f"{PAGE}{listed['gone'].pk}/lift/", {"next": f"{PAGE}?q=go"})
    assert response.status_code == 302 and response["Location"] == f"{PAGE}?q=go"
    gone = Suppression.objects.get(pk=listed["gone"].pk)
    assert gone.lifted_at is not None and gone.lifted_by == marketer
    assert "gone@example.com" not in rows(page_of(as_marketer.get(PAGE)))
    # Lifting again changes nothing; an unknown id is a 404.
    as_marketer.post(f"{PAGE}{listed['gone'].pk}/lift/")
    assert Suppression.objects.get(pk=listed["gone"].pk).lifted_at == gone.lifted_at
    assert as_marketer.post(f"{PAGE}987654/lift/").status_code == 404
    assert as_marketer.get(f"{PAGE}{listed['angry'].pk}/lift/").status_code == 405


def test_add_address_suppresses_it_by_hand(as_marketer, marketer):
    response = as_marketer.post(
        f"{PAGE}add/",
        {"channel": "email", "address": " Someone@Example.COM ", "detail": "asked by phone"},
    )
    assert response.status_code == 302
    added = Suppression.objects.get()
    assert (added.address, added.reason, added.detail) == (
        "someone@example.com",
        "manual",
        "asked by phone",
    )
    assert added.source == "added by mark-marketer"
    html = page_of(as_marketer.get(PAGE))
    assert "someone@example.com is suppressed" in html
    # Again: already suppressed, nothing doubled.
    as_marketer.post(f"{PAGE}add/", {"channel": "email", "address": "someone@example.com"})
    assert Suppression.objects.count() == 1


@pytest.mark.parametrize(
    ("channel", "address", "problem"),
    [
        ("email", "not-an-address", "is not a valid email address"),
        ("sms", "12", "phone"),
        ("email", "", "This field is required."),
        ("fax", "a@example.com", "Select a valid choice."),
    ],
)
def test_add_with_a_bad_address_is_a_form_error_and_stores_nothing(
    as_marketer, channel, address, problem
):
    response = as_marketer.post(f"{PAGE}add/", {"channel": channel, "address": address})
    assert response.status_code == 400
    html = page_of(response)
    errors = re.findall(r'<small class="error" role="alert">([^<]*)</small>', html)
    assert any(problem.lower() in error.lower() for error in errors), errors
    assert "<details open" in html
    assert not Suppression.objects.exists()


def test_a_viewer_reads_the_list_but_cannot_lift_or_add(as_viewer, listed):
    html = page_of(as_viewer.get(PAGE))
    assert rows(html) == ["+4915112345678", "angry@example.com", "gone@example.com"]
    assert 'data-testid="lift"' not in html and "suppression-add-form" not in html
    assert as_viewer.post(f"{PAGE}{listed['gone'].pk}/lift/").status_code == 403
    assert (
        as_viewer.post(f"{PAGE}add/", {"channel": "email", "address": "x@example.com"}).status_code
        == 403
    )
    assert Suppression.objects.get(pk=listed["gone"].pk).lifted_at is None
    assert not Suppression.objects.filter(address="x@example.com").exists()


def test_anonymous_and_outsiders_are_kept_out(client, outsider, listed):
    assert client.get(PAGE).status_code == 302
    client.force_login(outsider)
    assert client.get(PAGE).status_code == 403


def test_the_contact_page_says_why_an_address_is_suppressed_and_links_to_the_list(
    as_viewer, listed
):
    contact = ContactFactory(email="gone@example.com", phone="+4915112345678")
    html = page_of(as_viewer.get(f"/contacts/{contact.pk}/"))
    banners = re.findall(r'data-testid="suppressed-banner">(.*?)</p>', html, re.S)
    assert len(banners) == 2
    email = next(b for b in banners if "gone@example.com" in b)
    assert "hard bounce: 550 5.1.1 no such user; SES" in email
    assert f'href="{PAGE}?q=gone%40example.com&amp;channel=email"' in email
    assert 'data-testid="suppressed-badge"' in html
    assert 'data-testid="suppressed-phone-badge"' in html
    clean = ContactFactory(email="fine@example.com")
    assert "suppressed-banner" not in page_of(as_viewer.get(f"/contacts/{clean.pk}/"))


# --- admin ----------------------------------------------------------------------------------


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?q=gone",
        "?state=in_force",
        "?state=lifted",
        "?reason__exact=complaint&channel__exact=email",
    ],
)
def test_admin_list_filters_and_search_open(as_admin, listed, query):
    response = as_admin.get(f"/admin/contacts/suppression/{query}")
    assert response.status_code == 200


def test_admin_search_and_state_filter_find_the_right_rows(as_admin, listed):
    found = page_of(as_admin.get("/admin/contacts/suppression/?q=gone"))
    assert "gone@example.com" in found and "angry@example.com" not in found
    lifted = page_of(as_admin.get("/admin/contacts/suppression/?state=lifted"))
    assert "old@example.com" in lifted and "gone@example.com" not in lifted


def test_admin_lift_action_lifts_the_selected_and_keeps_the_rows(as_admin, listed, admin_user):
    ids = [listed["gone"].pk, listed["angry"].pk]
    response = as_admin.post(
        "/admin/contacts/suppression/",
        {"action": "lift_through_service", "_selected_action": [str(i) for i in ids]},
        follow=True,
    )
    assert "2 suppression(s) lifted" in page_of(response)
    assert set(Suppression.objects.filter(pk__in=ids).values_list("lifted_by", flat=True)) == {
        admin_user.pk
    }
    assert Suppression.objects.count() == 4
    assert Suppression.objects.get(pk=listed["phone"].pk).lifted_at is None


def test_admin_adds_through_the_service_and_refuses_a_bad_address(as_admin, admin_user):
    bad = as_admin.post(
        "/admin/contacts/suppression/add/", {"channel": "email", "address": "nope", "detail": ""}
    )
    assert bad.status_code == 200 and "is not a valid email address" in page_of(bad)
    assert not Suppression.objects.exists()
    as_admin.post(
        "/admin/contacts/suppression/add/",
        {"channel": "email", "address": "Hand@Example.com", "detail": "legal request"},
    )
    added = Suppression.objects.get()
    assert (added.address, added.reason, added.source) == (
        "hand@example.com",
        "manual",
        "added by alice-admin",
    )


def test_admin_has_no_delete_and_no_edit(as_admin, listed):
    actions = page_of(as_admin.get("/admin/contacts/suppression/"))
    assert "delete_selected" not in actions
    detail = as_admin.post(
        f"/admin/contacts/suppression/{listed['gone'].pk}/change/",
        {"channel": "email", "address": "other@example.com"},
    )
    assert Suppression.objects.get(pk=listed["gone"].pk).address == "gone@example.com"
    assert detail.status_code in (200, 403)


# --- Herald's own API -----------------------------------------------------------------------

API = "/api/herald/suppressions"


def test_api_lists_newest_first_with_filters_and_keyset_pages(api, full_key, listed):
    body = api.get(API, key=full_key).json()
    assert [s["address"] for s in body["results"]] == [
        "+4915112345678",
        "angry@example.com",
        "gone@example.com",
    ]
    assert body["next"] is None
    first = body["results"][2]
    assert first["reason"] == "hard_bounce" and first["detail"] == "550 5.1.1 no such user"
    assert first["source"] == "SES" and first["liftedAt"] is None
    page = api.get(f"{API}?limit=2", key=full_key).json()
    assert len(page["results"]) == 2 and page["next"] == page["results"][1]["id"]
    rest = api.get(f"{API}?limit=2&after={page['next']}", key=full_key).json()
    assert [s["address"] for s in rest["results"]] == ["gone@example.com"]
    assert rest["next"] is None
    only = api.get(f"{API}?address=ANGRY&reason=complaint", key=full_key).json()["results"]
    assert [s["address"] for s in only] == ["angry@example.com"]
    lifted = api.get(f"{API}?lifted=true&address=old", key=full_key).json()["results"]
    assert lifted[0]["liftedAt"] is not None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("reason=bounced", "reason"),
        ("channel=fax", "channel"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("after=-1", "after"),
        ("lifted=maybe", "lifted"),
    ],
)
def test_api_bad_list_parameters_are_400_naming_them(api, full_key, query, field):
    response = api.get(f"{API}?{query}", key=full_key)
    assert response.status_code == 400
    assert field in response.json()


def test_api_adds_by_hand_and_names_the_bad_field(api, full_key):
    created = api.post(API, key=full_key, body={"address": "Api@Example.com", "detail": "CRM"})
    assert created.status_code == 201
    body = created.json()
    assert body["added"] is True
    assert body["suppression"]["address"] == "api@example.com"
    assert body["suppression"]["reason"] == "manual"
    again = api.post(API, key=full_key, body={"address": "api@example.com"})
    assert again.status_code == 200 and again.json()["added"] is False
    for bad, field in [
        ({"address": "nope"}, "address"),
        ({}, "address"),
        ({"address": "a@example.com", "channel": "fax"}, "channel"),
        ({"address": "12345", "channel": "telegram"}, "channel"),
        ({"address": "+1", "channel": "sms"}, "address"),
        ({"address": ["a@example.com"]}, "address"),
    ]:
        response = api.post(API, key=full_key, body=bad)
        assert response.status_code == 400, (bad, response.content)
        assert field in response.json(), (bad, response.json())
    assert Suppression.objects.count() == 1


def test_api_lift_and_unknown_id(api, full_key, listed):
    response = api.post(f"{API}/{listed['gone'].pk}/lift", key=full_key)
    assert response.status_code == 200
    assert response.json()["lifted"] is True
    assert response.json()["suppression"]["liftedBy"] == "alice-admin"
    assert api.post(f"{API}/{listed['gone'].pk}/lift", key=full_key).json()["lifted"] is False
    assert api.post(f"{API}/987654/lift", key=full_key).status_code == 404


def test_api_needs_a_full_key_and_viewers_only_read(api, limited_key, client, viewer, listed):
    assert api.get(API, key=limited_key).status_code == 403
    client.force_login(viewer)
    assert client.get(API).status_code == 200
    assert client.post(f"{API}/{listed['gone'].pk}/lift").status_code == 403
    assert Suppression.objects.get(pk=listed["gone"].pk).lifted_at is None
