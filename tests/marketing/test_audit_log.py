"""The audit log page: changes in words (verbose names, choice labels), filters by person,
kind of object and dates, numbered pages, admins only."""

import datetime as dt

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from campaigns import lifecycle
from contacts.models import Contact
from tests.contacts.factories import ContactFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/settings/audit-log/"


@pytest.fixture
def history(admin_user, marketer):
    """A campaign scheduled by the marketer, a contact whose email the admin changed."""
    with set_actor(marketer):
        campaign = lifecycle.campaign_create(
            data={"name": "Spring sale", "type": "blast", "channels": ["email"], "status": "draft"}
        )
        campaign.status = "scheduled"
        campaign.save(update_fields=["status"])
    with set_actor(admin_user):
        contact = ContactFactory(email="a@example.com", first_name="Ann", last_name="Lee")
        contact.email = "b@example.com"
        contact.save(update_fields=["email"])
    return {"campaign": campaign, "contact": contact}


def entries(response) -> list[str]:
    return [" ".join(line.subject.split()) for line in response.context["lines"]]


def test_changes_read_as_sentences_with_labels(client, admin_user, history):
    client.force_login(admin_user)
    response = client.get(URL)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Campaign “Spring sale”" in text
    assert "Status changed from Draft to Scheduled" in text
    assert "Contact “" in text
    assert "changed from a@example.com to b@example.com" in text
    assert "mark-marketer" in text and "alice-admin" in text
    assert '{"status"' not in text  # no raw JSON


def test_filter_by_person(client, admin_user, marketer, history):
    client.force_login(admin_user)
    response = client.get(URL, {"actor": marketer.pk})
    lines = response.context["lines"]
    assert lines and all(line.entry.actor_id == marketer.pk for line in lines)
    subjects = [line.subject for line in lines]
    assert "Campaign “Spring sale”" in subjects
    assert not any(subject.startswith("Contact") for subject in subjects)


def test_filter_by_object_type(client, admin_user, history):
    client.force_login(admin_user)
    contact_type = ContentType.objects.get_for_model(Contact)
    response = client.get(URL, {"object_type": contact_type.pk})
    lines = response.context["lines"]
    assert lines and all(line.entry.content_type_id == contact_type.pk for line in lines)
    assert f'value="{contact_type.pk}" selected' in response.content.decode()


def test_filter_by_dates_is_inclusive_and_a_reversed_range_is_an_error(client, admin_user, history):
    client.force_login(admin_user)
    old = LogEntry.objects.filter(object_repr="Spring sale").first()
    LogEntry.objects.filter(pk=old.pk).update(timestamp=timezone.now() - dt.timedelta(days=10))
    today = timezone.localdate()
    response = client.get(URL, {"since": today.isoformat(), "until": today.isoformat()})
    assert old.pk not in [line.entry.pk for line in response.context["lines"]]
    earlier = (today - dt.timedelta(days=10)).isoformat()
    response = client.get(URL, {"since": earlier, "until": earlier})
    assert [line.entry.pk for line in response.context["lines"]] == [old.pk]

    response = client.get(URL, {"since": today.isoformat(), "until": earlier})
    assert response.status_code == 400
    assert "The end date is before the start date." in response.content.decode()


def test_pages_are_numbered_and_keep_the_filters(client, admin_user):
    with set_actor(admin_user):
        for n in range(120):
            ContactFactory(email=f"p{n}@example.com")
    client.force_login(admin_user)
    response = client.get(URL, {"actor": admin_user.pk, "page": 2})
    text = response.content.decode()
    assert response.context["page"].number == 2
    assert len(response.context["lines"]) == 50
    assert f"actor={admin_user.pk}&amp;page=3" in text
    assert 'aria-current="page">2<' in text


def test_only_admins_see_it(client, marketer):
    client.force_login(marketer)
    assert client.get(URL).status_code in (302, 403)


def test_empty_log_says_so(client):
    client.force_login(UserFactory(role="admin", username="solo"))
    LogEntry.objects.all().delete()
    assert "Nothing recorded yet." in client.get(URL).content.decode()


def test_the_page_speaks_ukrainian(client, admin_user, history):
    client.force_login(admin_user)
    response = client.get(URL, HTTP_ACCEPT_LANGUAGE="uk")
    assert "<h1>Журнал змін</h1>" in response.content.decode()
