"""Rights of keys and roles: on probe endpoints built like every API view, then the matrix of
every right against Herald's real endpoints (what the README's API section promises)."""

import uuid

import pytest
from django.test import override_settings
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.api_keys import api_key_create
from config.core.models import RIGHT_SCOPES, APIRight, Scope

pytestmark = pytest.mark.django_db


class ContactsProbe(APIView):
    required_scope = Scope.CONTACTS

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True}, status=201)


class ManageProbe(APIView):
    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("api/probe/contacts", ContactsProbe.as_view()),
    path("api/probe/manage", ManageProbe.as_view()),
]

use_probe_urls = override_settings(ROOT_URLCONF=__name__)


@use_probe_urls
def test_key_without_the_right_is_403_naming_the_missing_right(api, limited_key):
    response = api.get("/api/probe/contacts", key=limited_key)

    assert response.status_code == 403
    body = response.json()
    assert body["missingRight"] == "contacts_all"
    assert body["keyRight"] == "events"
    assert body["grantedBy"] == ["full", "events_contacts"]
    assert "contacts_all" in body["detail"]
    assert "full, events_contacts" in body["detail"]


@use_probe_urls
@pytest.mark.parametrize("right", APIRight.values)
def test_each_right_grants_exactly_its_scopes(api, admin_user, right):
    _, secret = api_key_create(name=right, rights=right, created_by=admin_user)
    contacts = api.get("/api/probe/contacts", key=secret).status_code
    manage = api.get("/api/probe/manage", key=secret).status_code

    assert contacts == (200 if Scope.CONTACTS in RIGHT_SCOPES[right] else 403)
    assert manage == (200 if right == APIRight.FULL else 403)


@use_probe_urls
def test_viewer_may_read_but_not_write(client, viewer):
    client.force_login(viewer)
    assert client.get("/api/probe/contacts").status_code == 200
    response = client.post("/api/probe/contacts", {}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["missingRight"] == "write"


@use_probe_urls
def test_marketer_may_write(client, marketer):
    client.force_login(marketer)
    assert (
        client.post("/api/probe/contacts", {}, content_type="application/json").status_code == 201
    )


@use_probe_urls
def test_user_without_a_role_is_refused(client, outsider):
    client.force_login(outsider)
    assert client.get("/api/probe/contacts").status_code == 403


def test_unknown_right_is_refused_by_the_service(admin_user):
    with pytest.raises(ValueError, match="Unknown right"):
        api_key_create(name="x", rights="superpowers", created_by=admin_user)


MISSING_ID = 987654321
# Every endpoint a limited right could open, and a sample of those only the full right opens.
# Requests carry no body: an endpoint the key may use answers anything but 403 (400, 404…).
ENDPOINTS = [
    ("account", "GET", "/api/v1/account/info"),
    ("events", "POST", "/api/v1/event"),
    ("events", "POST", "/api/v2/event"),
    ("contacts_add_update", "POST", "/api/v1/contact/subscribe"),
    ("contacts_add_update", "POST", "/api/v1/contacts"),
    ("contacts_add_update", "GET", f"/api/v1/importstatus/{uuid.UUID(int=1)}"),
    ("contacts_add_update", "POST", "/api/v1/contact"),
    ("contacts_add_update", "PUT", f"/api/v1/contact/{MISSING_ID}"),
    ("contacts_add_update", "POST", "/api/v1/contacts/upload"),
    ("contacts_all", "GET", "/api/v1/contacts"),
    ("contacts_all", "GET", f"/api/v1/contact/{MISSING_ID}"),
    ("contacts_all", "DELETE", f"/api/v1/contact/{MISSING_ID}?erase=true"),
    ("contacts_all", "DELETE", "/api/v1/contact?externalCustomerId=x-1&erase=true"),
    ("contacts_all", "GET", "/api/v1/groups"),
    ("contacts_all", "GET", f"/api/v1/group/{MISSING_ID}/contacts"),
    ("contacts_all", "POST", f"/api/v1/group/{MISSING_ID}/contacts/attach"),
    ("contacts_all", "POST", f"/api/v1/group/{MISSING_ID}/contacts/detach"),
    ("contacts_all", "GET", "/api/v1/addressbooks"),
    ("contacts_all", "POST", "/api/v1/emails/unsubscribed/add"),
    ("contacts_all", "POST", "/api/v1/emails/unsubscribed/delete"),
    ("messages", "POST", f"/api/v1/message/{MISSING_ID}/smartsend"),
    ("messages", "POST", "/api/v1/message/email"),
    ("messages", "POST", "/api/v1/message/sms"),
    ("messages", "GET", "/api/v1/message/status?ids=x"),
    ("manage", "POST", "/api/v1/orders"),
    ("manage", "DELETE", "/api/v1/orders"),
    ("manage", "GET", "/api/herald/segments"),
    ("manage", "GET", "/api/herald/custom-fields"),
    ("manage", "GET", "/api/herald/templates"),
    ("manage", "GET", "/api/herald/events"),
    ("manage", "GET", "/api/herald/orders"),
    ("manage", "GET", "/api/herald/rfm"),
    ("manage", "GET", "/api/herald/forms"),
    ("manage", "POST", "/api/herald/forms"),
    ("manage", "GET", f"/api/herald/forms/{MISSING_ID}/stats"),
    ("manage", "DELETE", f"/api/herald/forms/{MISSING_ID}"),
    ("manage", "GET", "/api/crm/marketing/campaigns"),
    ("manage", "POST", "/api/crm/marketing/campaigns/aggregated-metrics"),
    ("manage", "GET", "/api/crm/marketing/dashboard"),
]
# What each right opens, as the README lists it.
RIGHTS = {
    "full": {"account", "events", "contacts_add_update", "contacts_all", "messages", "manage"},
    "events": {"account", "events"},
    "events_contacts": {"account", "events", "contacts_add_update", "contacts_all"},
    "contacts": {"account", "contacts_add_update"},
    "messages": {"account", "messages"},
}


def test_the_rights_table_is_the_one_the_code_applies():
    assert {right: set(scopes) for right, scopes in RIGHT_SCOPES.items()} == RIGHTS


@pytest.mark.parametrize("right", APIRight.values)
def test_each_right_opens_exactly_its_endpoints(api, admin_user, right):
    _, secret = api_key_create(name=right, rights=right, created_by=admin_user)
    wrong = []
    for scope, method, url in ENDPOINTS:
        status = api.call(method, url, key=secret).status_code
        if (status != 403) != (scope in RIGHTS[right]):
            wrong.append(f"{method} {url}: {status}")

    assert wrong == []


def test_contacts_right_adds_and_updates_but_cannot_read_back_or_erase(api, admin_user):
    """The "contacts add/update" right suits a subscribe form or a shop's sync: it writes
    contacts and follows its imports, and nothing that reveals or removes the base."""
    _, secret = api_key_create(name="form", rights="contacts", created_by=admin_user)
    body = {"channels": [{"type": "email", "value": "form@example.com"}], "firstName": "Ann"}

    created = api.post("/api/v1/contact", key=secret, body=body)
    contact_id = created.json()["id"]
    updated = api.put(f"/api/v1/contact/{contact_id}", key=secret, body={"firstName": "Anna"})
    read = api.get(f"/api/v1/contact/{contact_id}", key=secret)
    searched = api.get("/api/v1/contacts?email=form@example.com", key=secret)
    erased = api.delete(f"/api/v1/contact/{contact_id}?erase=true", key=secret)

    assert created.status_code == 200
    assert updated.status_code == 200
    assert (read.status_code, read.json()["missingRight"]) == (403, "contacts_all")
    assert searched.status_code == 403
    assert erased.status_code == 403
    assert erased.json()["grantedBy"] == ["full", "events_contacts"]
