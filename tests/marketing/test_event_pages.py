"""Marketer pages for events: an event (both times, problems, delete), an event type's
declared params, the history's flagged filter, event analytics; and the admin's."""

import datetime as dt

import pytest
from auditlog.models import LogEntry
from django.utils import timezone

from marketing.event_params import event_type_declare
from marketing.models import Event, EventType
from tests.contacts.factories import ContactFactory
from tests.marketing.test_pages import as_marketer, as_viewer, text  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def _event(key: str = "purchase", **fields) -> Event:
    event_type, _ = EventType.objects.get_or_create(key=key)
    return Event.objects.create(event_type=event_type, key_value="k-1", **fields)


def test_event_page_shows_both_times_params_and_problems(as_viewer):  # noqa: F811
    occurred = timezone.now() - dt.timedelta(days=3)
    event = _event(
        occurred_at=occurred,
        params={"sku": "A-1"},
        problems=[{"param": "amount", "problem": "required"}],
    )
    page = text(as_viewer.get(f"/automation/events/{event.pk}/"))
    assert 'data-testid="event-occurred"' in page and 'data-testid="event-arrived"' in page
    assert "A-1" in page
    assert 'data-testid="event-problem"' in page and "amount" in page
    assert "It starts no workflow." in page
    assert 'data-testid="event-delete"' not in page  # a viewer reads only
    history = text(as_viewer.get("/automation/events/"))
    assert f"/automation/events/{event.pk}/" in history
    assert 'data-testid="event-flagged-badge"' in history
    assert 'data-testid="event-analytics-link"' in history


def test_history_filters_flagged_events(as_viewer):  # noqa: F811
    flagged = _event(problems=[{"param": "sku", "problem": "required"}])
    valid = _event()
    flagged_page = text(as_viewer.get("/automation/events/?invalid=true"))
    assert f"/automation/events/{flagged.pk}/" in flagged_page
    assert f"/automation/events/{valid.pk}/" not in flagged_page
    valid_page = text(as_viewer.get("/automation/events/?invalid=false"))
    assert f"/automation/events/{valid.pk}/" in valid_page
    assert f"/automation/events/{flagged.pk}/" not in valid_page


def test_marketer_deletes_an_event_and_the_audit_log_says_so(as_marketer, marketer):  # noqa: F811
    event = _event()
    response = as_marketer.post(f"/automation/events/{event.pk}/delete/")
    assert response.status_code == 302
    assert not Event.objects.filter(pk=event.pk).exists()
    entry = LogEntry.objects.get(object_id=event.pk, action=LogEntry.Action.DELETE)
    assert entry.actor == marketer
    assert as_marketer.get(f"/automation/events/{event.pk}/").status_code == 404


def test_viewer_cannot_delete_and_get_is_refused(as_viewer, client):  # noqa: F811
    event = _event()
    assert as_viewer.post(f"/automation/events/{event.pk}/delete/").status_code == 403
    assert as_viewer.get(f"/automation/events/{event.pk}/delete/").status_code == 405
    assert Event.objects.filter(pk=event.pk).exists()


def _declaration_post(**rows) -> dict:
    data = {
        "params-TOTAL_FORMS": "3",
        "params-INITIAL_FORMS": "0",
        "params-MIN_NUM_FORMS": "0",
        "params-MAX_NUM_FORMS": "100",
        "invalid_mode": "flag",
    }
    data.update(rows)
    return data


def test_marketer_declares_params_on_the_event_type_page(as_marketer):  # noqa: F811
    event_type = EventType.objects.create(key="purchase")
    page = f"/automation/event-types/{event_type.pk}/declaration/"
    assert 'data-testid="declaration-form"' in text(as_marketer.get(page))
    response = as_marketer.post(
        page,
        _declaration_post(
            **{
                "params-0-name": "amount",
                "params-0-type": "number",
                "params-0-required": "on",
                "params-1-name": "",
                "params-1-type": "string",
                "params-2-name": "link",
                "params-2-type": "url",
            }
        ),
    )
    assert response.status_code == 302, text(response)
    event_type.refresh_from_db()
    assert event_type.params_declared == [
        {"name": "amount", "type": "number", "required": True},
        {"name": "link", "type": "url", "required": False},
    ]
    assert event_type.invalid_mode == "flag"
    assert event_type.flagged_start_workflows is False
    listing = text(as_marketer.get("/automation/event-types/"))
    assert 'data-testid="event-type-declaration"' in listing


def test_a_bad_declaration_is_a_form_error_on_its_row_and_nothing_changes(as_marketer):  # noqa: F811
    event_type = EventType.objects.create(key="purchase")
    response = as_marketer.post(
        f"/automation/event-types/{event_type.pk}/declaration/",
        _declaration_post(
            **{
                "params-0-name": "amount",
                "params-0-type": "number",
                "params-1-type": "string",
                "params-2-name": "amount",
                "params-2-type": "string",
            }
        ),
    )
    assert response.status_code == 200
    page = text(response)
    assert "is declared twice" in page
    assert 'id="id_params-2-name_error"' in page
    event_type.refresh_from_db()
    assert event_type.params_declared == []


def test_viewer_sees_the_declaration_but_cannot_change_it(as_viewer):  # noqa: F811
    event_type = EventType.objects.create(key="purchase")
    event_type_declare(
        event_type=event_type,
        params=[{"name": "sku", "type": "string", "required": True}],
        invalid_mode="refuse",
    )
    page = f"/automation/event-types/{event_type.pk}/declaration/"
    assert 'value="sku"' in text(as_viewer.get(page))
    refused = as_viewer.post(page, _declaration_post())
    assert refused.status_code == 403
    event_type.refresh_from_db()
    assert event_type.params_declared == [{"name": "sku", "type": "string", "required": True}]


def test_analytics_page_shows_counts_unique_contacts_and_top_values(as_viewer):  # noqa: F811
    ann = ContactFactory()
    today = timezone.now()
    for sku in ("A", "A", "B"):
        _event(contact=ann, occurred_at=today, params={"sku": sku})
    _event(key="cartViewed", occurred_at=today - dt.timedelta(days=40))  # outside the 30 days
    response = as_viewer.get("/automation/events/analytics/?type=purchase&param=sku")
    page = text(response)
    assert response.status_code == 200
    assert 'id="event-chart"' in page and 'id="event-chart-data"' in page
    assert 'data-testid="analytics-total">3<' in page
    assert 'data-testid="analytics-unique">1<' in page
    assert "cartViewed</a>" not in page
    assert page.count('data-testid="top-value"') == 2


def test_analytics_page_names_a_bad_filter(as_viewer):  # noqa: F811
    page = text(as_viewer.get("/automation/events/analytics/?from=soon"))
    assert 'data-testid="filter-errors"' in page and "from" in page


def test_admin_edits_a_declaration_and_deletes_an_event_with_an_audit_entry(client, admin_user):
    client.force_login(admin_user)
    event_type = EventType.objects.create(key="purchase")
    response = client.post(
        f"/admin/marketing/eventtype/{event_type.pk}/change/",
        {
            "key": "purchase",
            "name": "Purchase",
            "params_declared": '[{"name": "sku", "type": "colour"}]',
            "invalid_mode": "refuse",
        },
    )
    assert response.status_code == 200 and "params[0].type" in text(response)
    response = client.post(
        f"/admin/marketing/eventtype/{event_type.pk}/change/",
        {
            "key": "purchase",
            "name": "Purchase",
            "params_declared": '[{"name": "sku", "type": "string", "required": true}]',
            "invalid_mode": "flag",
        },
    )
    assert response.status_code == 302
    event_type.refresh_from_db()
    assert event_type.params_declared == [{"name": "sku", "type": "string", "required": True}]
    event = _event()
    response = client.post(f"/admin/marketing/event/{event.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert LogEntry.objects.filter(object_id=event.pk, action=LogEntry.Action.DELETE).exists()
    assert "purchase k-1" in text(client.get("/settings/audit-log/"))
    assert "flagged invalid" in text(client.get("/admin/marketing/event/?invalid=true"))
