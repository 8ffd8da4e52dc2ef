"""Rights of keys and roles, checked on a real endpoint built like every API view."""

import pytest
from django.test import override_settings
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.models import RIGHT_SCOPES, APIRight, Scope
from integrations.services import api_key_create

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
    assert body["missingRight"] == "contacts"
    assert body["keyRight"] == "events"
    assert "contacts" in body["detail"]


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
