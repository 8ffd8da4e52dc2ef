"""Each process remembers valid API keys for HERALD_API_KEY_CACHE_SECONDS: a hit costs no
query; a change made in this process applies to its next request, one made elsewhere (another
gunicorn worker: no signal reaches this process) once the entry expires."""

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.test import override_settings
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core import api_keys as services
from config.core.api_keys import api_key_authenticate, api_key_revoke, hash_key
from config.core.models import APIKey, Organisation

pytestmark = pytest.mark.django_db

INFO = "/api/v1/account/info"
EVENT = "/api/v1/event"
EVENT_BODY = {"eventTypeKey": "cacheProbe", "keyValue": "1"}


class RenameOrganisation(APIView):
    """An audited write, to see whom the audit log names when the key came from the cache."""

    def post(self, request):
        organisation = Organisation.load()
        organisation.name = request.data["name"]
        organisation.save()
        return Response({"user": request.user.username})


urlpatterns = [path("api/probe/rename", RenameOrganisation.as_view())]


@pytest.fixture(autouse=True)
def forget_keys():
    # Test transactions roll back behind the cache's back; start and end with it empty.
    services.api_key_forget()
    yield
    services.api_key_forget()


@pytest.fixture
def clock(monkeypatch):
    """The cache's clock, moved by hand: `clock.now += seconds`."""

    class Clock:
        now = 1000.0

    monkeypatch.setattr(services, "_clock", lambda: Clock.now)
    return Clock


@pytest.fixture
def five_seconds(settings):
    settings.HERALD_API_KEY_CACHE_SECONDS = 5


def test_a_remembered_key_authenticates_without_a_query(full_key, clock, django_assert_num_queries):
    assert api_key_authenticate(secret=full_key.secret).pk == full_key.pk
    with django_assert_num_queries(0):
        key = api_key_authenticate(secret=full_key.secret)
        assert (key.pk, key.rights, key.created_by.username) == (full_key.pk, "full", "alice-admin")


def test_each_request_gets_instances_of_its_own(full_key):
    first = api_key_authenticate(secret=full_key.secret)
    first.rights = "contacts"
    first.created_by.email = "changed@example.com"
    second = api_key_authenticate(secret=full_key.secret)
    assert second is not first
    assert (second.rights, second.created_by.email) == ("full", "alice-admin@example.com")


def test_unknown_and_revoked_secrets_are_never_remembered(full_key):
    assert api_key_authenticate(secret="hk_unknown") is None
    api_key_revoke(key=full_key)
    assert api_key_authenticate(secret=full_key.secret) is None
    assert not services._known_keys


def test_revoking_in_this_process_refuses_the_key_at_once(api, full_key, clock):
    assert api.get(INFO, key=full_key).status_code == 200
    api_key_revoke(key=APIKey.objects.get(pk=full_key.pk))
    response = api.get(INFO, key=full_key)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_deleting_in_this_process_refuses_the_key_at_once(api, full_key, clock):
    assert api.get(INFO, key=full_key).status_code == 200
    APIKey.objects.get(pk=full_key.pk).delete()
    assert api.get(INFO, key=full_key).status_code == 401


def test_the_owner_changed_in_this_process_is_read_again_at_once(full_key, clock):
    """A cached key carries its owner (the audit actor): a change to the user drops it."""
    assert api_key_authenticate(secret=full_key.secret).created_by.username == "alice-admin"
    owner = full_key.created_by
    owner.username = "alice-renamed"
    owner.save()
    assert api_key_authenticate(secret=full_key.secret).created_by.username == "alice-renamed"


def test_key_revoked_elsewhere_is_refused_once_the_entry_expires(
    api, full_key, clock, five_seconds
):
    assert api.get(INFO, key=full_key).status_code == 200
    APIKey.objects.filter(pk=full_key.pk).update(revoked_at=timezone.now())  # no signal
    clock.now += 4.9
    assert api.get(INFO, key=full_key).status_code == 200
    clock.now += 0.1
    assert api.get(INFO, key=full_key).status_code == 401


def test_rights_changed_in_this_process_apply_at_once(api, full_key, clock):
    assert api.post(EVENT, key=full_key, body=EVENT_BODY).status_code == 200
    key = APIKey.objects.get(pk=full_key.pk)
    key.rights = "contacts"
    key.save()
    response = api.post(EVENT, key=full_key, body=EVENT_BODY)
    assert response.status_code == 403
    assert response.json()["missingRight"] == "events"
    assert response.json()["keyRight"] == "contacts"


def test_rights_changed_elsewhere_apply_once_the_entry_expires(
    api, limited_key, clock, five_seconds
):
    assert api.post(EVENT, key=limited_key, body=EVENT_BODY).status_code == 200
    APIKey.objects.filter(pk=limited_key.pk).update(rights="contacts")  # no signal
    clock.now += 4.9
    assert api.post(EVENT, key=limited_key, body=EVENT_BODY).status_code == 200
    clock.now += 0.1
    assert api.post(EVENT, key=limited_key, body=EVENT_BODY).status_code == 403


def test_zero_seconds_turns_the_cache_off(full_key, settings, django_assert_num_queries):
    settings.HERALD_API_KEY_CACHE_SECONDS = 0
    api_key_authenticate(secret=full_key.secret)
    with django_assert_num_queries(1):
        assert api_key_authenticate(secret=full_key.secret).pk == full_key.pk
    assert not services._known_keys


def test_last_use_is_recorded_when_the_entry_is_renewed(api, full_key, clock, five_seconds):
    api.get(INFO, key=full_key)
    long_ago = timezone.now() - timedelta(minutes=5)
    APIKey.objects.filter(pk=full_key.pk).update(last_used_at=long_ago)
    api.get(INFO, key=full_key)  # remembered: no write
    assert APIKey.objects.get(pk=full_key.pk).last_used_at == long_ago
    clock.now += 5
    api.get(INFO, key=full_key)
    assert APIKey.objects.get(pk=full_key.pk).last_used_at > long_ago


def test_the_cache_stays_bounded(admin_user, monkeypatch, clock):
    monkeypatch.setattr(services, "KNOWN_KEYS_MAX", 2)
    secrets = [services.api_key_create(name=f"k{n}", rights="full")[1] for n in range(3)]
    for secret in secrets:
        assert api_key_authenticate(secret=secret) is not None
    assert len(services._known_keys) <= 2
    assert hash_key(secrets[-1]) in services._known_keys


@override_settings(ROOT_URLCONF=__name__)
def test_writes_through_a_remembered_key_are_audited_as_its_owner(api, full_key, admin_user):
    for name in ("First", "Second"):
        response = api.post("/api/probe/rename", key=full_key, body={"name": name})
        assert response.json() == {"user": "alice-admin"}
    entries = LogEntry.objects.get_for_model(Organisation).order_by("pk")
    assert [entry.actor for entry in entries][-2:] == [admin_user, admin_user]
