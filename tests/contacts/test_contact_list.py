"""The contact list: sorting, numbered pages, counts, and the bulk actions."""

import re

import pytest
from auditlog.models import LogEntry

from contacts.models import Contact, SegmentKind, SegmentMembership, Unsubscribed
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def page_of(response) -> str:
    return response.content.decode()


def row_emails(response) -> list[str]:
    return re.findall(r"<td class=\"wrap\">([^<]+@example\.com)</td>", page_of(response))


@pytest.fixture
def as_marketer(client, marketer):
    client.force_login(marketer)
    return client


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


# -- sorting and paging ----------------------------------------------------------------------


def test_sorting_by_a_column_both_ways_marks_the_header(as_viewer):
    for last, email in [("Bondar", "b@example.com"), ("Antonenko", "z@example.com")]:
        ContactFactory(last_name=last, email=email)
    ContactFactory(last_name="Chorna", email="a@example.com")
    ascending = as_viewer.get("/contacts/", {"sort": "email"})
    assert row_emails(ascending) == ["a@example.com", "b@example.com", "z@example.com"]
    assert re.search(r'aria-sort="ascending"><a href="\?sort=-email"', page_of(ascending))
    descending = as_viewer.get("/contacts/", {"sort": "-email"})
    assert row_emails(descending) == ["z@example.com", "b@example.com", "a@example.com"]
    assert 'aria-sort="descending"' in page_of(descending)
    by_name = as_viewer.get("/contacts/", {"sort": "name"})
    assert row_emails(by_name) == ["z@example.com", "b@example.com", "a@example.com"]
    # An unknown sort falls back to newest first.
    assert row_emails(as_viewer.get("/contacts/", {"sort": "password"}))[0] == "a@example.com"


def test_numbered_pages_cover_every_contact_once_and_keep_sort_and_filter(as_viewer):
    Contact.objects.bulk_create(
        [Contact(email=f"p{i:03}@example.com", tags=["vip"]) for i in range(60)]
        + [Contact(email=f"other{i}@example.com") for i in range(5)]
    )
    params = {"q": "p", "sort": "email", "size": "25"}
    first = as_viewer.get("/contacts/", params)
    html = page_of(first)
    assert "60 contacts" in html
    assert 'data-testid="page-last" href' not in html  # attributes: href comes first
    assert re.search(
        r'href="\?q=p&amp;sort=email&amp;size=25&amp;page=3" data-testid="page-last"', html
    )
    seen = []
    for number in (1, 2, 3):
        seen += row_emails(as_viewer.get("/contacts/", {**params, "page": number}))
    assert seen == [f"p{i:03}@example.com" for i in range(60)]
    # Past the last page shows the last page.
    assert row_emails(as_viewer.get("/contacts/", {**params, "page": 99})) == seen[50:]
    # An unsupported page size falls back to 50.
    assert len(row_emails(as_viewer.get("/contacts/", {**params, "size": "7"}))) == 50


def test_a_count_past_the_exact_limit_is_an_estimate_marked_about(as_viewer, monkeypatch):
    monkeypatch.setattr("contacts.paging.EXACT_COUNT_MAX", 5)
    Contact.objects.bulk_create([Contact(email=f"c{i}@example.com") for i in range(8)])
    html = page_of(as_viewer.get("/contacts/"))
    assert re.search(r"about [\d,]+ contacts", html)
    assert 'data-testid="page-last"' not in html
    assert "1 contact" in page_of(as_viewer.get("/contacts/", {"q": "c7@"}))


def test_tags_show_in_the_list(as_viewer):
    ContactFactory(tags=["vip", "kyiv", "b2b", "newsletter", "summer", "winter"])
    html = page_of(as_viewer.get("/contacts/"))
    assert '<span class="tag">vip</span>' in html
    assert "+2 more" in html


def test_list_in_ukrainian(as_viewer):
    ContactFactory()
    html = page_of(as_viewer.get("/contacts/", HTTP_ACCEPT_LANGUAGE="uk"))
    assert "<h1>Контакти</h1>" in html


# -- bulk actions ----------------------------------------------------------------------------


def bulk(client, **data):
    return client.post("/contacts/bulk/", data, follow=True)


def test_tag_add_to_ticked_contacts_reports_and_audits(as_marketer, marketer):
    chosen = ContactFactory.create_batch(3, tags=["old"])
    already = ContactFactory(tags=["vip"])
    other = ContactFactory()
    response = bulk(
        as_marketer, action="tag_add", tag="vip", ids=[c.pk for c in chosen] + [already.pk]
    )
    assert "Tag “vip” added to 3 contacts." in page_of(response)
    assert Contact.objects.filter(tags__contains=["vip"]).count() == 4
    assert Contact.objects.get(pk=other.pk).tags == []
    assert Contact.objects.get(pk=chosen[0].pk).tags == ["old", "vip"]
    entries = LogEntry.objects.get_for_object(chosen[0])
    assert entries.filter(actor=marketer, changes__tags__1="{old,vip}").exists()
    assert not LogEntry.objects.get_for_object(already).filter(actor=marketer).exists()


def test_tag_remove(as_marketer):
    tagged = ContactFactory.create_batch(2, tags=["vip", "kyiv"])
    response = bulk(as_marketer, action="tag_remove", tag="vip", ids=[c.pk for c in tagged])
    assert "Tag “vip” removed from 2 contacts." in page_of(response)
    assert all(c.tags == ["kyiv"] for c in Contact.objects.all())


def test_tag_is_required_for_tag_actions(as_marketer):
    contact = ContactFactory()
    response = bulk(as_marketer, action="tag_add", tag=" ", ids=[contact.pk])
    assert "Enter the tag." in page_of(response)


def test_add_to_static_segment_and_refuse_a_dynamic_one(as_marketer):
    static = SegmentFactory(name="Newsletter")
    dynamic = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"town": "Kyiv"})
    contacts = ContactFactory.create_batch(4)
    gone = ContactFactory()
    gone.deleted_at = gone.created_at
    gone.save()
    response = bulk(
        as_marketer,
        action="segment_add",
        segment=static.pk,
        ids=[c.pk for c in contacts] + [gone.pk],
    )
    assert "4 contacts added to the segment “Newsletter”." in page_of(response)
    assert SegmentMembership.objects.filter(segment=static).count() == 4
    refused = bulk(as_marketer, action="segment_add", segment=dynamic.pk, ids=[contacts[0].pk])
    assert SegmentMembership.objects.filter(segment=dynamic).count() == 0
    assert "Select a valid choice" in page_of(refused)


def test_delete_asks_first_with_the_count_then_soft_deletes(as_marketer, marketer):
    contacts = ContactFactory.create_batch(37)
    ids = [c.pk for c in contacts]
    ask = as_marketer.post("/contacts/bulk/", {"action": "delete", "ids": ids})
    assert ask.status_code == 200
    assert "Delete 37 contacts?" in page_of(ask)
    assert Contact.objects.alive().count() == 37
    done = bulk(as_marketer, action="delete", ids=ids, confirmed="1")
    assert "37 contacts deleted." in page_of(done)
    assert Contact.objects.alive().count() == 0
    assert Contact.objects.filter(deleted_at__isnull=False).count() == 37  # restorable
    assert LogEntry.objects.filter(actor=marketer, changes__has_key="deleted_at").count() == 37


def test_unsubscribe_puts_emails_on_the_list_once(as_marketer):
    contacts = ContactFactory.create_batch(3)
    Unsubscribed.objects.create(email=contacts[0].email)
    phone_only = ContactFactory(email="", phone="+380501234567")
    ask = as_marketer.post(
        "/contacts/bulk/", {"action": "unsubscribe", "ids": [c.pk for c in contacts]}
    )
    assert "Unsubscribe 3 contacts from email?" in page_of(ask)
    done = bulk(
        as_marketer,
        action="unsubscribe",
        ids=[c.pk for c in contacts] + [phone_only.pk],
        confirmed="1",
    )
    assert "2 email addresses added to the unsubscribed list." in page_of(done)
    assert set(Unsubscribed.objects.values_list("email", flat=True)) == {c.email for c in contacts}


def test_all_matching_applies_to_the_filter_not_only_the_page(as_marketer):
    Contact.objects.bulk_create([Contact(email=f"m{i}@example.com") for i in range(60)])
    Contact.objects.bulk_create([Contact(email=f"x{i}@example.com") for i in range(3)])
    ask = as_marketer.post(
        "/contacts/bulk/", {"action": "tag_add", "tag": "spring", "scope": "all", "filter": "q=m"}
    )
    assert "Add tag “spring” to 60 contacts?" in page_of(ask)
    done = bulk(
        as_marketer,
        action="tag_add",
        tag="spring",
        scope="all",
        filter="q=m",
        list_query="q=m&sort=email&page=2",
        confirmed="1",
    )
    assert "Tag “spring” added to 60 contacts." in page_of(done)
    assert done.redirect_chain[-1][0] == "/contacts/?q=m&sort=email&page=2"
    assert Contact.objects.filter(tags__contains=["spring"]).count() == 60


def test_all_matching_above_the_inline_limit_runs_in_the_worker(
    as_marketer, monkeypatch, celery_worker
):
    monkeypatch.setattr("contacts.views.contacts.INLINE_MAX", 3)
    Contact.objects.bulk_create([Contact(email=f"w{i}@example.com") for i in range(5)])
    done = bulk(as_marketer, action="tag_add", tag="late", scope="all", filter="", confirmed="1")
    assert "5 contacts are being updated in the background" in page_of(done)
    wait_for(lambda: Contact.objects.filter(tags__contains=["late"]).count() == 5)


def test_a_viewer_cannot_run_bulk_actions(as_viewer):
    contact = ContactFactory()
    response = as_viewer.post(
        "/contacts/bulk/", {"action": "delete", "ids": [contact.pk], "confirmed": "1"}
    )
    assert response.status_code == 403
    assert Contact.objects.alive().count() == 1
    assert 'data-testid="bulk-bar"' not in page_of(as_viewer.get("/contacts/"))
