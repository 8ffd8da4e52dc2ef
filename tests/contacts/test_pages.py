"""Marketer pages for contacts, custom fields, segments and the unsubscribed list."""

import html
import json
import re

import pytest

from contacts.models import (
    Contact,
    ContactSource,
    CustomField,
    CustomFieldType,
    Segment,
    SegmentKind,
    SegmentMembership,
    Unsubscribed,
)
from marketing.services import event_emit
from tests.contacts.factories import ContactFactory, CustomFieldFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def page_of(response) -> str:
    return response.content.decode()


@pytest.fixture
def as_marketer(client, marketer):
    client.force_login(marketer)
    return client


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def loyalty(db):
    return CustomField.objects.create(
        name="Loyalty level",
        key="LOYALTY",
        type=CustomFieldType.CHOICE,
        allowed_values=["bronze", "gold"],
    )


@pytest.fixture
def points(db):
    return CustomField.objects.create(name="Points", key="POINTS", type=CustomFieldType.NUMBER)


# -- roles -----------------------------------------------------------------------------------

READ_PAGES = [
    "/contacts/",
    "/contacts/{contact}/",
    "/contacts/fields/",
    "/contacts/unsubscribed/",
    "/segments/",
    "/segments/{static}/",
    "/segments/{dynamic}/",
    "/segments/{dynamic}/reach/",
]
WRITE_GETS = [
    "/contacts/new/",
    "/contacts/{contact}/edit/",
    "/contacts/fields/new/",
    "/contacts/fields/{field}/edit/",
    "/segments/new/",
    "/segments/{static}/edit/",
]
WRITE_POSTS = [
    "/contacts/new/",
    "/contacts/{contact}/edit/",
    "/contacts/{contact}/delete/",
    "/contacts/{contact}/restore/",
    "/contacts/fields/new/",
    "/contacts/fields/{field}/edit/",
    "/contacts/fields/{field}/delete/",
    "/contacts/unsubscribed/add/",
    "/contacts/unsubscribed/remove/",
    "/segments/new/",
    "/segments/{static}/edit/",
    "/segments/{static}/delete/",
    "/segments/{static}/members/add/",
    "/segments/{static}/members/remove/",
    "/segments/{dynamic}/filter/",
]


@pytest.fixture
def objects(db):
    return {
        "contact": ContactFactory().pk,
        "field": CustomFieldFactory().pk,
        "static": SegmentFactory().pk,
        "dynamic": SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"town": "Kyiv"}).pk,
    }


@pytest.mark.parametrize("path", READ_PAGES)
def test_viewer_reads_every_page(as_viewer, objects, path):
    assert as_viewer.get(path.format(**objects)).status_code == 200


@pytest.mark.parametrize("path", WRITE_GETS)
def test_viewer_cannot_open_forms(as_viewer, objects, path):
    assert as_viewer.get(path.format(**objects)).status_code == 403


@pytest.mark.parametrize("path", WRITE_POSTS)
def test_viewer_cannot_write(as_viewer, objects, path):
    assert as_viewer.post(path.format(**objects), {"name": "x"}).status_code == 403


@pytest.mark.parametrize("path", READ_PAGES + WRITE_GETS)
def test_marketer_opens_every_page(as_marketer, objects, path):
    assert as_marketer.get(path.format(**objects)).status_code == 200


@pytest.mark.parametrize("path", ["/contacts/", "/segments/", "/contacts/fields/"])
def test_anonymous_is_sent_to_login_and_outsider_is_refused(client, outsider, path):
    assert client.get(path)["Location"].startswith("/login/")
    client.force_login(outsider)
    assert client.get(path).status_code == 403


def test_viewer_sees_no_write_buttons(as_viewer, objects):
    assert "New contact" not in page_of(as_viewer.get("/contacts/"))
    assert "Edit" not in page_of(as_viewer.get(f"/contacts/{objects['contact']}/"))
    assert "Save filter" not in page_of(as_viewer.get(f"/segments/{objects['dynamic']}/"))


# -- contacts list ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/contacts/", "/segments/", "/contacts/fields/"])
def test_empty_pages_say_so_honestly(as_viewer, path):
    assert 'data-testid="empty-state"' in page_of(as_viewer.get(path))


def test_list_shows_columns_and_links_to_import_and_export(as_marketer):
    ContactFactory(
        first_name="Olena",
        last_name="Shevchenko",
        email="olena@example.com",
        phone="+380942583691",
        confirmed=False,
        source=ContactSource.IMPORT,
    )
    page = page_of(as_marketer.get("/contacts/"))
    for text in ["Olena Shevchenko", "olena@example.com", "+380942583691"]:
        assert text in page
    assert 'href="/contacts/import/"' in page
    assert 'href="/contacts/export.csv"' in page
    assert "1 contact" in page


@pytest.mark.parametrize(
    "query, expected",
    [
        ("olena@", {"olena"}),
        ("OLENA@EXAMPLE.COM", {"olena"}),
        ("Shev", {"olena"}),
        ("olena shev", {"olena"}),
        ("+38094", {"olena"}),
        ("380942583691", {"olena"}),
        ("CRM-7", {"petro"}),
        ("nobody", set()),
    ],
)
def test_search_by_name_email_phone_and_external_id(as_viewer, query, expected):
    people = {
        "olena": ContactFactory(
            first_name="Olena",
            last_name="Shevchenko",
            email="olena@example.com",
            phone="+380942583691",
        ),
        "petro": ContactFactory(
            first_name="Petro", email="petro@example.com", external_customer_id="CRM-7"
        ),
    }
    page = page_of(as_viewer.get("/contacts/", {"q": query}))
    shown = {name for name, contact in people.items() if contact.email in page}
    assert shown == expected


def test_filters_by_confirmed_unsubscribed_deleted_and_segment(as_viewer):
    from django.utils import timezone

    kept = ContactFactory(email="kept@example.com")
    unconfirmed = ContactFactory(email="waiting@example.com", confirmed=False)
    gone = ContactFactory(email="gone@example.com", deleted_at=timezone.now())
    unsub = ContactFactory(email="unsub@example.com")
    Unsubscribed.objects.create(email="unsub@example.com")
    static = SegmentFactory()
    SegmentMembership.objects.create(segment=static, contact=kept)
    dynamic = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"email": "waiting@example.com"})

    def emails(**params):
        page = page_of(as_viewer.get("/contacts/", params))
        return {c.email for c in (kept, unconfirmed, gone, unsub) if c.email in page}

    assert emails() == {"kept@example.com", "waiting@example.com", "unsub@example.com"}
    assert emails(confirmed="no") == {"waiting@example.com"}
    assert emails(unsubscribed="yes") == {"unsub@example.com"}
    assert "unsub@example.com" not in emails(unsubscribed="no")
    assert emails(deleted="only") == {"gone@example.com"}
    assert len(emails(deleted="all")) == 4
    assert emails(segment=static.pk) == {"kept@example.com"}
    assert emails(segment=dynamic.pk) == {"waiting@example.com"}
    assert 'data-testid="no-matches"' in page_of(as_viewer.get("/contacts/", {"q": "zzz"}))


# -- contact detail --------------------------------------------------------------------------


def test_detail_shows_everything_about_a_contact(as_viewer, loyalty):
    static = SegmentFactory(name="Newsletter")
    SegmentFactory(name="Kyiv people", kind=SegmentKind.DYNAMIC, filter={"town": "Kyiv"})
    SegmentFactory(name="Lviv people", kind=SegmentKind.DYNAMIC, filter={"town": "Lviv"})
    contact = ContactFactory(
        first_name="Olena",
        email="olena@example.com",
        phone="+380942583691",
        extra_channels=[{"type": "telegram", "value": "@olena"}],
        town="Kyiv",
        postcode="01001",
        tags=["vip", "early"],
        fields={str(loyalty.pk): "gold"},
        source=ContactSource.SUBSCRIBE_FORM,
        confirmed=False,
    )
    SegmentMembership.objects.create(segment=static, contact=contact)
    Unsubscribed.objects.create(email="olena@example.com")
    event_emit(type_key="orderPaid", key_value="A-1", params={"total": 5}, contact_id=contact.pk)

    page = page_of(as_viewer.get(f"/contacts/{contact.pk}/"))
    # The latest activity is loaded into the page from the timeline.
    assert f'hx-get="/contacts/{contact.pk}/activity/?embed=1"' in page
    page += page_of(as_viewer.get(f"/contacts/{contact.pk}/activity/", {"embed": "1"}))
    for text in [
        "olena@example.com",
        "+380942583691",
        "@olena",
        "01001",
        "vip",
        "Loyalty level",
        "gold",
        "Newsletter",
        "Kyiv people",
        "Subscribe form",
        "waiting for double opt-in",
        "orderPaid",
        "total=5",
        'data-testid="unsubscribed-badge"',
    ]:
        assert text in page, text
    assert "Lviv people" not in page


def test_detail_of_a_contact_with_an_order_with_items_and_an_items_parameter(
    as_viewer, api, full_key
):
    """A JSON parameter named like a dict method ("items", "keys") is shown as a parameter:
    Django's template lookup would find the key before the method."""
    order = {
        "externalOrderId": "A-7",
        "externalCustomerId": "C-7",
        "currency": "USD",
        "status": "INITIALIZED",
        "totalCost": 10,
        "date": "2026-01-02T10:00:00Z",
        "email": "buyer@example.com",
        "items": [{"externalItemId": "i1", "name": "Kettle", "quantity": 1, "cost": 10}],
    }
    response = api.post("/api/v1/orders", key=full_key, body={"orders": [order]})
    assert response.status_code == 200, response.content
    assert response.json()["failedOrders"] == [], response.content
    contact = Contact.objects.get(email="buyer@example.com")
    event_emit(
        type_key="cartChanged",
        params={"items": "kettle", "keys": "k1", "values": 3},
        contact_id=contact.pk,
    )

    response = as_viewer.get(f"/contacts/{contact.pk}/activity/", {"embed": "1"})

    assert response.status_code == 200
    page = page_of(response)
    for text in ["cartChanged", "items=kettle", "keys=k1", "values=3"]:
        assert text in page, text


def test_unknown_contact_is_404(as_viewer):
    assert as_viewer.get("/contacts/999999/").status_code == 404


# -- create / edit ---------------------------------------------------------------------------


def contact_post(**overrides) -> dict:
    body = {
        "email": "new@example.com",
        "phone": "",
        "first_name": "Nadia",
        "last_name": "Koval",
        "region": "",
        "town": "Lviv",
        "address": "",
        "postcode": "",
        "language_code": "uk",
        "time_zone": "Europe/Kyiv",
        "external_customer_id": "",
        "tags": "vip, early ,",
    }
    body.update(overrides)
    return body


def test_marketer_creates_a_contact_with_custom_fields_and_segments(as_marketer, loyalty, points):
    static = SegmentFactory(name="Newsletter")
    body = contact_post(
        phone="380942583691", **{f"cf_{loyalty.pk}": "gold", f"cf_{points.pk}": "12"}
    )
    body["segments"] = [static.pk]
    response = as_marketer.post("/contacts/new/", body)
    contact = Contact.objects.get(email="new@example.com")
    assert response.status_code == 302
    assert response["Location"] == f"/contacts/{contact.pk}/"
    assert contact.phone == "+380942583691"
    assert contact.source == ContactSource.MANUAL
    assert contact.tags == ["vip", "early"]
    assert contact.fields == {str(loyalty.pk): "gold", str(points.pk): 12}
    assert contact.time_zone == "Europe/Kyiv"
    assert list(contact.segments.all()) == [static]


def test_create_with_an_existing_email_updates_instead_of_duplicating(as_marketer):
    existing = ContactFactory(email="new@example.com", first_name="Old")
    kept, added = SegmentFactory(name="Kept"), SegmentFactory(name="Added")
    SegmentMembership.objects.create(segment=kept, contact=existing)
    body = {**contact_post(), "segments": [added.pk]}
    response = as_marketer.post("/contacts/new/", body, follow=True)
    assert Contact.objects.count() == 1
    existing.refresh_from_db()
    assert existing.first_name == "Nadia"
    assert "updated instead of creating a duplicate" in page_of(response)
    assert set(existing.segments.all()) == {kept, added}


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"email": "not-an-email"}, "email", "not a valid email address"),
        ({"phone": "12"}, "phone", "not a valid phone number"),
        ({"time_zone": "Mars/Base"}, "time_zone", "not an IANA time zone"),
        ({"language_code": "english!"}, "language_code", "not a language code"),
        ({"email": "", "phone": ""}, "email", "needs an email or sms channel"),
        ({"first_name": "x" * 41}, "first_name", "at most 40 characters"),
    ],
)
def test_form_shows_validation_errors_on_the_field(as_marketer, overrides, field, message):
    response = as_marketer.post("/contacts/new/", contact_post(**overrides))
    assert response.status_code == 200
    assert message in page_of(response)
    assert response.context["form"].errors.get(field), response.context["form"].errors
    assert not Contact.objects.exists()


def test_custom_field_errors_land_on_their_input(as_marketer, loyalty, points):
    required = CustomField.objects.create(name="Member no", key="MEMBER", required=True)
    response = as_marketer.post("/contacts/new/", contact_post(**{f"cf_{points.pk}": "lots"}))
    errors = response.context["form"].errors
    assert f"cf_{points.pk}" in errors
    assert f"cf_{required.pk}" in errors
    response = as_marketer.post(
        "/contacts/new/",
        contact_post(**{f"cf_{loyalty.pk}": "platinum", f"cf_{required.pk}": "7"}),
    )
    assert f"cf_{loyalty.pk}" in response.context["form"].errors
    assert not Contact.objects.exists()


def test_taken_external_id_is_a_form_error(as_marketer):
    ContactFactory(email="other@example.com", external_customer_id="CRM-1")
    mine = ContactFactory(email="mine@example.com")
    response = as_marketer.post(
        f"/contacts/{mine.pk}/edit/",
        contact_post(email="mine@example.com", external_customer_id="CRM-1"),
    )
    assert "already belongs to contact" in str(
        response.context["form"].errors["external_customer_id"]
    )


def test_marketer_edits_a_contact_and_its_static_segments(as_marketer, loyalty):
    old, new = SegmentFactory(name="Old list"), SegmentFactory(name="New list")
    contact = ContactFactory(email="edit@example.com", fields={str(loyalty.pk): "gold"})
    SegmentMembership.objects.create(segment=old, contact=contact)
    form_page = page_of(as_marketer.get(f"/contacts/{contact.pk}/edit/"))
    assert 'value="edit@example.com"' in form_page
    assert '<option value="gold" selected>' in form_page

    body = contact_post(email="edit@example.com", first_name="Changed")
    body[f"cf_{loyalty.pk}"] = ""
    body["segments"] = [new.pk]
    response = as_marketer.post(f"/contacts/{contact.pk}/edit/", body)
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.first_name == "Changed"
    assert contact.fields == {}
    assert list(contact.segments.all()) == [new]


def test_blanking_a_channel_removes_it(as_marketer):
    contact = ContactFactory(email="keep@example.com", phone="+380942583691")
    response = as_marketer.post(
        f"/contacts/{contact.pk}/edit/", contact_post(email="keep@example.com", phone="")
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.email, contact.phone) == ("keep@example.com", "")


def test_blanking_every_way_to_reach_a_contact_is_refused_and_changes_nothing(as_marketer):
    contact = ContactFactory(
        email="last@example.com", phone="", first_name="Kept", external_customer_id=None
    )
    response = as_marketer.post(
        f"/contacts/{contact.pk}/edit/", contact_post(email="", first_name="Changed")
    )
    assert response.status_code == 200
    assert "needs an email, a phone" in str(response.context["form"].errors["email"])
    contact.refresh_from_db()
    assert (contact.email, contact.first_name) == ("last@example.com", "Kept")


def test_readonly_custom_field_is_shown_but_not_written(as_marketer):
    readonly = CustomField.objects.create(name="Score", key="SCORE", readonly=True)
    contact = ContactFactory(email="ro@example.com", fields={str(readonly.pk): "90"})
    body = contact_post(email="ro@example.com", **{f"cf_{readonly.pk}": "1"})
    assert as_marketer.post(f"/contacts/{contact.pk}/edit/", body).status_code == 302
    contact.refresh_from_db()
    assert contact.fields == {str(readonly.pk): "90"}


def test_delete_restore_and_erase(as_marketer):
    contact = ContactFactory(email="bye@example.com", first_name="Bye")
    response = as_marketer.post(f"/contacts/{contact.pk}/delete/", follow=True)
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    assert 'data-testid="restore"' in page_of(response)
    as_marketer.post(f"/contacts/{contact.pk}/restore/")
    contact.refresh_from_db()
    assert contact.deleted_at is None
    as_marketer.post(f"/contacts/{contact.pk}/delete/", {"erase": "1"})
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    assert (contact.email, contact.first_name) == ("", "")


def test_delete_needs_post(as_marketer):
    contact = ContactFactory()
    assert as_marketer.get(f"/contacts/{contact.pk}/delete/").status_code == 405


# -- custom fields ---------------------------------------------------------------------------


def test_custom_field_create_edit_delete(as_marketer):
    response = as_marketer.post(
        "/contacts/fields/new/",
        {
            "name": "Loyalty level",
            "key": "LOYALTY",
            "group_name": "Personal",
            "group_key": "PERSONAL",
            "type": "combobox",
            "allowed_values": "bronze\ngold\ngold\n",
            "required": "on",
        },
    )
    assert response.status_code == 302
    field = CustomField.objects.get()
    assert (field.allowed_values, field.required, field.readonly) == (
        ["bronze", "gold"],
        True,
        False,
    )
    page = page_of(as_marketer.get("/contacts/fields/"))
    assert "Loyalty level" in page and "PERSONAL.LOYALTY" in page

    edit = as_marketer.get(f"/contacts/fields/{field.pk}/edit/")
    assert "bronze\ngold" in page_of(edit)
    as_marketer.post(
        f"/contacts/fields/{field.pk}/edit/",
        {
            "name": "Tier",
            "key": "LOYALTY",
            "group_name": "Personal",
            "group_key": "PERSONAL",
            "type": "combobox",
            "allowed_values": "bronze\nsilver\ngold",
        },
    )
    field.refresh_from_db()
    assert (field.name, field.allowed_values, field.required) == (
        "Tier",
        ["bronze", "silver", "gold"],
        False,
    )
    as_marketer.post(f"/contacts/fields/{field.pk}/delete/")
    assert not CustomField.objects.exists()


def test_custom_field_form_errors(as_marketer, points):
    base = {"name": "Tier", "group_name": "Personal", "group_key": "PERSONAL", "type": "text"}
    response = as_marketer.post("/contacts/fields/new/", {**base, "key": "bad key!"})
    assert "key" in response.context["form"].errors
    response = as_marketer.post("/contacts/fields/new/", {**base, "key": "T", "type": "combobox"})
    assert "allowed_values" in response.context["form"].errors
    response = as_marketer.post(
        "/contacts/fields/new/", {**base, "key": "T", "allowed_values": "a\nb"}
    )
    assert "only a combobox field" in str(response.context["form"].errors["allowed_values"])
    response = as_marketer.post("/contacts/fields/new/", {**base, "key": "POINTS"})
    assert response.status_code == 200
    assert CustomField.objects.count() == 1


def test_changing_the_type_of_a_field_with_values_is_refused(as_marketer, points):
    ContactFactory(fields={str(points.pk): 5})
    response = as_marketer.post(
        f"/contacts/fields/{points.pk}/edit/",
        {
            "name": "Points",
            "key": "POINTS",
            "group_name": "Personal",
            "group_key": "PERSONAL",
            "type": "text",
        },
    )
    assert "clear them first" in str(response.context["form"].errors["type"])
    points.refresh_from_db()
    assert points.type == CustomFieldType.NUMBER


def test_deleting_a_field_a_segment_uses_is_refused_with_a_message(as_marketer, points):
    SegmentFactory(
        name="Big spenders", kind=SegmentKind.DYNAMIC, filter={f"fields.{points.pk}": {"$gte": 100}}
    )
    response = as_marketer.post(f"/contacts/fields/{points.pk}/delete/", follow=True)
    assert "Big spenders" in page_of(response)
    assert CustomField.objects.filter(pk=points.pk).exists()


# -- unsubscribed ----------------------------------------------------------------------------


def test_unsubscribed_add_reports_each_bad_line(as_marketer):
    Unsubscribed.objects.create(email="old@example.com")
    response = as_marketer.post(
        "/contacts/unsubscribed/add/",
        {
            "emails": "A@Example.com\nnot an address\n\nold@example.com\nb@example",
            "reason": "asked",
        },
    )
    assert response.status_code == 400
    page = page_of(response)
    assert "Line 2" in page and "not an address" in page
    assert "b@example" in page
    assert set(Unsubscribed.objects.values_list("email", flat=True)) == {
        "old@example.com",
        "a@example.com",
    }
    assert Unsubscribed.objects.get(email="a@example.com").reason == "asked"


def test_unsubscribed_list_search_and_remove(as_marketer):
    for email in ["ann@example.com", "bob@example.com"]:
        Unsubscribed.objects.create(email=email)
    ContactFactory(email="ann@example.com")
    page = page_of(as_marketer.get("/contacts/unsubscribed/", {"q": "ANN"}))
    assert "ann@example.com" in page and "bob@example.com" not in page
    response = as_marketer.post("/contacts/unsubscribed/remove/", {"email": ["ann@example.com"]})
    assert response.status_code == 302
    assert list(Unsubscribed.objects.values_list("email", flat=True)) == ["bob@example.com"]


def test_unsubscribed_add_with_nothing_is_a_form_error(as_marketer):
    response = as_marketer.post("/contacts/unsubscribed/add/", {"emails": "  \n"})
    assert response.status_code == 400
    assert "This field is required." in page_of(response) or "at least one" in page_of(response)


# -- segments --------------------------------------------------------------------------------


def test_create_static_segment_and_manage_members(as_marketer):
    response = as_marketer.post(
        "/segments/new/", {"name": "Newsletter", "kind": "static", "description": ""}
    )
    segment = Segment.objects.get(name="Newsletter")
    assert response["Location"] == f"/segments/{segment.pk}/"
    ann = ContactFactory(email="ann@example.com")
    bob = ContactFactory(email="bob@example.com")
    response = as_marketer.post(
        f"/segments/{segment.pk}/members/add/",
        {"contacts": f"ANN@example.com, {bob.pk}\nghost@example.com\n999999\n???"},
    )
    assert response.status_code == 400
    page = page_of(response)
    assert "2 added" in page
    for problem in ["ghost@example.com", "999999", "???"]:
        assert problem in page
    assert set(segment.contacts.all()) == {ann, bob}

    page = page_of(as_marketer.get(f"/segments/{segment.pk}/"))
    assert page.count('data-testid="member-row"') == 2
    as_marketer.post(f"/segments/{segment.pk}/members/remove/", {"contact": [ann.pk]})
    assert set(segment.contacts.all()) == {bob}
    as_marketer.post(f"/segments/{segment.pk}/members/remove/", {"all": "1"})
    assert not segment.contacts.exists()


def test_segment_list_shows_kind_and_lazy_reach(as_viewer):
    static = SegmentFactory(name="List")
    SegmentMembership.objects.create(segment=static, contact=ContactFactory())
    dynamic = SegmentFactory(name="Kyiv", kind=SegmentKind.DYNAMIC, filter={"town": "Kyiv"})
    ContactFactory(town="Kyiv")
    ContactFactory(town="Kyiv")
    page = page_of(as_viewer.get("/segments/"))
    assert "Static" in page and "Dynamic" in page
    assert f'hx-get="/segments/{dynamic.pk}/reach/"' in page
    assert ">2<" in page_of(as_viewer.get(f"/segments/{dynamic.pk}/reach/"))
    assert ">1<" in page_of(as_viewer.get(f"/segments/{static.pk}/reach/"))


def test_duplicate_segment_name_is_a_form_error(as_marketer):
    SegmentFactory(name="Taken")
    response = as_marketer.post("/segments/new/", {"name": "Taken", "kind": "static"})
    assert response.status_code == 200
    assert "name" in response.context["form"].errors


def test_rename_and_delete_segment(as_marketer):
    segment = SegmentFactory(name="Old")
    as_marketer.post(f"/segments/{segment.pk}/edit/", {"name": "New", "description": "d"})
    segment.refresh_from_db()
    assert (segment.name, segment.description) == ("New", "d")
    as_marketer.post(f"/segments/{segment.pk}/delete/")
    assert not Segment.objects.filter(pk=segment.pk).exists()


def test_segment_used_by_another_filter_is_not_deleted(as_marketer):
    used = SegmentFactory(name="Base")
    SegmentFactory(name="Uses base", kind=SegmentKind.DYNAMIC, filter={"segment": used.pk})
    response = as_marketer.post(f"/segments/{used.pk}/delete/", follow=True)
    assert "Uses base" in page_of(response)
    assert Segment.objects.filter(pk=used.pk).exists()


def rows(*conditions, combinator="and", segment=None) -> dict:
    body = {
        "combinator": combinator,
        "mode": "rows",
        "field": [c[0] for c in conditions],
        "op": [c[1] for c in conditions],
        "value": [c[2] for c in conditions],
        "filter_json": "",
    }
    if segment is not None:
        body["segment"] = segment
    return body


def reach_of(response) -> int:
    match = re.search(r'data-testid="reach">([\d,]+)<', page_of(response))
    assert match, page_of(response)
    return int(match.group(1).replace(",", ""))


@pytest.fixture
def people(db, points):
    ContactFactory(town="Kyiv", tags=["vip"], fields={str(points.pk): 150})
    ContactFactory(town="Kyiv", tags=[], fields={str(points.pk): 20})
    ContactFactory(town="Lviv", tags=["vip"], confirmed=False)
    return points


def test_live_reach_follows_the_rows(as_viewer, people):
    points = people
    url = "/segments/reach/"
    assert reach_of(as_viewer.post(url, rows())) == 3
    assert reach_of(as_viewer.post(url, rows(("town", "$eq", "Kyiv")))) == 2
    kyiv_vip = rows(("town", "$eq", "Kyiv"), ("tags", "$contains", "vip"))
    assert reach_of(as_viewer.post(url, kyiv_vip)) == 1
    assert reach_of(as_viewer.post(url, {**kyiv_vip, "combinator": "or"})) == 3
    assert reach_of(as_viewer.post(url, rows((f"fields.{points.pk}", "$gte", "100")))) == 1
    assert reach_of(as_viewer.post(url, rows(("confirmed", "$eq", "false")))) == 1
    assert reach_of(as_viewer.post(url, rows(("tags", "$empty", "")))) == 1
    assert reach_of(as_viewer.post(url, rows(("town", "$in", "Lviv, Odesa")))) == 1


def test_live_reach_leaves_out_rows_still_being_typed(as_viewer, people):
    response = as_viewer.post(
        "/segments/reach/", rows(("town", "$eq", "Kyiv"), ("email", "$eq", ""))
    )
    assert reach_of(response) == 2
    assert "1 condition without a value left out" in page_of(response)


def test_live_reach_names_the_path_of_a_filter_error(as_viewer, people):
    points = people
    response = as_viewer.post(
        "/segments/reach/", rows(("town", "$eq", "Kyiv"), (f"fields.{points.pk}", "$gt", "lots"))
    )
    assert f"$and.1.fields.{points.pk}.$gt: expected a number" in page_of(response)
    response = as_viewer.post(
        "/segments/reach/", {"mode": "json", "filter_json": '{"town": {"$near": 1}}'}
    )
    assert "town.$near" in page_of(response)
    response = as_viewer.post("/segments/reach/", {"mode": "json", "filter_json": "{oops"})
    assert "not valid JSON" in page_of(response)


def test_live_reach_sends_the_json_of_the_rows_back(as_viewer, people):
    response = as_viewer.post("/segments/reach/", rows(("town", "$eq", "Kyiv")))
    page = page_of(response)
    assert 'hx-swap-oob="true"' in page
    text = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S).group(1)
    assert json.loads(html.unescape(text)) == {"town": {"$eq": "Kyiv"}}


def test_filter_row_endpoint_gives_operators_and_inputs_for_the_field(as_viewer, loyalty):
    page = page_of(as_viewer.get("/segments/filter-row/", {"field": f"fields.{loyalty.pk}"}))
    assert '<option value="gold">gold</option>' in page
    page = page_of(as_viewer.get("/segments/filter-row/", {"field": "createdAt"}))
    assert 'type="date"' in page
    page = page_of(as_viewer.get("/segments/filter-row/", {"field": "town", "op": "$exists"}))
    assert 'type="hidden" name="value"' in page
    response = as_viewer.get("/segments/filter-row/")
    assert response["HX-Trigger-After-Settle"] == "filterChanged"


def test_marketer_saves_a_dynamic_filter_from_rows(as_marketer, people):
    segment = SegmentFactory(name="Kyiv VIP", kind=SegmentKind.DYNAMIC, filter={})
    body = rows(("town", "$eq", "Kyiv"), ("tags", "$in", "vip, gold"), segment=segment.pk)
    response = as_marketer.post(f"/segments/{segment.pk}/filter/", body)
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.filter == {
        "$and": [{"town": {"$eq": "Kyiv"}}, {"tags": {"$in": ["vip", "gold"]}}]
    }
    page = page_of(as_marketer.get(f"/segments/{segment.pk}/"))
    assert page.count('data-testid="filter-row"') == 2
    assert 'value="vip, gold"' in page
    assert reach_of(as_marketer.get(f"/segments/{segment.pk}/")) == 1


def test_saving_a_row_without_value_or_with_a_bad_value_is_refused(as_marketer, people):
    points = people
    segment = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"town": "Kyiv"})
    response = as_marketer.post(f"/segments/{segment.pk}/filter/", rows(("email", "$eq", "")))
    assert response.status_code == 400
    assert "needs a value" in page_of(response)
    response = as_marketer.post(
        f"/segments/{segment.pk}/filter/", rows((f"fields.{points.pk}", "$lt", "x"))
    )
    assert response.status_code == 400
    page = page_of(response)
    assert f"fields.{points.pk}.$lt: expected a number" in page
    assert 'data-testid="row-error"' in page
    segment.refresh_from_db()
    assert segment.filter == {"town": "Kyiv"}


def test_power_user_saves_raw_json_and_complex_filters_open_as_json(as_marketer, people):
    segment = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={})
    complex_filter = {"$or": [{"town": "Lviv"}, {"$and": [{"town": "Kyiv"}, {"tags": "vip"}]}]}
    response = as_marketer.post(
        f"/segments/{segment.pk}/filter/",
        {"mode": "json", "filter_json": json.dumps(complex_filter), "combinator": "and"},
    )
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.filter == complex_filter
    page = page_of(as_marketer.get(f"/segments/{segment.pk}/"))
    assert 'value="json" id="mode-json" checked' in page
    assert 'data-testid="filter-row"' not in page
    assert reach_of(as_marketer.get(f"/segments/{segment.pk}/")) == 2


def test_a_filter_naming_its_own_segment_is_refused(as_marketer, people):
    other = SegmentFactory(name="Other", kind=SegmentKind.DYNAMIC, filter={"town": "Kyiv"})
    segment = SegmentFactory(name="Me", kind=SegmentKind.DYNAMIC, filter={"segment": other.pk})
    Segment.objects.filter(pk=other.pk).update(filter={"segment": segment.pk})
    response = as_marketer.post(
        f"/segments/{segment.pk}/filter/",
        {"mode": "json", "filter_json": json.dumps({"segment": other.pk})},
    )
    assert response.status_code == 400
    assert "filter" in page_of(response)


def test_static_segment_pages_refuse_filters_and_dynamic_ones_refuse_members(as_marketer):
    static = SegmentFactory()
    dynamic = SegmentFactory(kind=SegmentKind.DYNAMIC)
    assert as_marketer.post(f"/segments/{static.pk}/filter/", rows()).status_code == 404
    assert (
        as_marketer.post(f"/segments/{dynamic.pk}/members/add/", {"contacts": "1"}).status_code
        == 404
    )


def test_create_dynamic_segment_opens_the_builder(as_marketer):
    response = as_marketer.post("/segments/new/", {"name": "Auto", "kind": "dynamic"}, follow=True)
    page = page_of(response)
    assert 'id="filter-builder"' in page
    assert Segment.objects.get(name="Auto").filter == {}


@pytest.mark.parametrize(
    "saved, rows_shown",
    [
        ({"tags": "vip", "town": "Kyiv"}, 2),
        ({"datatype": "contact", "where": {"tags": {"$in": ["prospect", "vip"]}}}, 1),
        ({"$or": [{"town": "Kyiv"}, {"channels": "sms"}]}, 2),
        ({"confirmed": True}, 1),
        ({"town": {"$gte": "K", "$lt": "M"}}, 0),
        ({"$not": {"town": "Kyiv"}}, 0),
    ],
)
def test_saved_filters_open_as_rows_when_rows_can_show_them(as_viewer, saved, rows_shown):
    segment = SegmentFactory(kind=SegmentKind.DYNAMIC, filter=saved)
    page = page_of(as_viewer.get(f"/segments/{segment.pk}/"))
    assert page.count('data-testid="filter-row"') == rows_shown
    assert ('data-testid="json-mode-note"' in page) == (rows_shown == 0)


def test_a_filter_it_cannot_read_is_reported_not_silently_dropped(as_viewer):
    ContactFactory()
    page = page_of(as_viewer.get("/contacts/", {"segment": "999999", "confirmed": "maybe"}))
    assert 'data-testid="filter-errors"' in page
    assert "segment" in page and "confirmed" in page


def test_contact_page_unsubscribes_and_resubscribes_its_address(as_marketer):
    contact = ContactFactory(email="toggle@example.com")
    page = page_of(as_marketer.get(f"/contacts/{contact.pk}/"))
    assert "Unsubscribe this address" in page
    response = as_marketer.post(
        "/contacts/unsubscribed/add/",
        {"emails": contact.email, "reason": "marketer", "next": f"/contacts/{contact.pk}/"},
    )
    assert response["Location"] == f"/contacts/{contact.pk}/"
    assert Unsubscribed.objects.filter(email="toggle@example.com").exists()
    assert "Allow bulk email again" in page_of(as_marketer.get(f"/contacts/{contact.pk}/"))
    response = as_marketer.post(
        "/contacts/unsubscribed/remove/",
        {"email": contact.email, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/contacts/unsubscribed/"
    assert not Unsubscribed.objects.exists()


def test_a_broken_saved_filter_shows_its_path_escaped(as_viewer):
    segment = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"<b>town": "Kyiv"})
    page = page_of(as_viewer.get(f"/segments/{segment.pk}/reach/"))
    assert "filter error at &lt;b&gt;town" in page
    page = page_of(as_viewer.get(f"/segments/{segment.pk}/"))
    assert "&lt;b&gt;town: unknown field" in page
    assert "<b>town" not in page


def test_pasted_members_beyond_the_attach_limit_go_in_batches(as_marketer, monkeypatch):
    monkeypatch.setattr("contacts.segments.MEMBERSHIP_MAX_IDS", 2)
    segment = SegmentFactory()
    contacts = ContactFactory.create_batch(5)
    twin = ContactFactory(email=contacts[0].email, external_customer_id="TWIN")
    lines = "\n".join([contacts[0].email] + [str(c.pk) for c in contacts[1:]])
    response = as_marketer.post(f"/segments/{segment.pk}/members/add/", {"contacts": lines})
    assert response.status_code == 302
    assert set(segment.contacts.all()) == {*contacts, twin}
