"""social-profiles, the social channels of `platforms` and the launch check answer from the
integrations registry: empty and unconnected until a provider that publishes to a platform
(the social publishing webhook, tested against a local HTTP endpoint) lists an account there."""

import json

import pytest

from campaigns.models import Campaign
from config.core.errors import FieldError
from integrations.services import integration_disable, integration_save, integration_test
from tests.campaigns.support import CAMPAIGNS, email_template, segment_with
from tests.support.fake_http_gateway import LocalHTTPServer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_publisher(settings):
    """The publisher these tests connect is a local server; Herald refuses inside addresses
    unless told otherwise."""
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True


BASE = "/api/crm/marketing"
ACCOUNTS = "facebook | 1029384756 | Herald Shop\nfacebook | 5647 | Herald Outlet\n"


class PublishingEndpoint(LocalHTTPServer):
    """The organisation's publishing endpoint: 200 with the right bearer token, else 401."""

    def __init__(self, token: str = "pub-token") -> None:  # noqa: S107 (a test token)
        super().__init__()
        self.token = token

    def handle(self, method, path, headers, body):
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "bad token"}, None
        return 200, {"ok": True}, None


def connect(url: str, *, accounts: str = ACCOUNTS, key="k", name="Publisher"):
    return integration_save(
        kind="social_webhook",
        name=name,
        channels=["facebook", "linkedin"],
        values={"url": url, "api_key": key, "accounts": accounts},
    )


def platform(api, key, name):
    return next(p for p in api.get(f"{BASE}/platforms", key=key).json() if p["id"] == name)


def test_nothing_connected_answers_empty_lists_and_unconnected_platforms(api, full_key):
    assert api.get(f"{BASE}/social-profiles/facebook", key=full_key).json() == []
    assert api.get(f"{BASE}/social-profiles", key=full_key).json() == []
    assert platform(api, full_key, "facebook")["connected"] is False
    assert api.get(f"{BASE}/social-profiles/myspace", key=full_key).status_code == 404


def test_a_connected_publisher_lists_its_accounts_per_platform(api, full_key):
    with PublishingEndpoint() as endpoint:
        connect(endpoint.url("/publish"))

    facebook = api.get(f"{BASE}/social-profiles/facebook", key=full_key)
    assert facebook.status_code == 200
    assert facebook.json() == [
        {"id": "1029384756", "platform": "facebook", "name": "Herald Shop"},
        {"id": "5647", "platform": "facebook", "name": "Herald Outlet"},
    ]
    assert len(api.get(f"{BASE}/social-profiles/", key=full_key).json()) == 2
    # Instagram is not among the integration's channels; LinkedIn is, without an account.
    assert api.get(f"{BASE}/social-profiles/instagram", key=full_key).json() == []
    assert platform(api, full_key, "facebook")["connected"] is True
    linkedin = platform(api, full_key, "linkedin")
    assert linkedin["connected"] is False
    assert "lists no linkedin account" in linkedin["detail"]
    assert platform(api, full_key, "instagram")["connected"] is False


def test_disabling_the_integration_empties_the_list_again(api, full_key):
    with PublishingEndpoint() as endpoint:
        integration = connect(endpoint.url("/publish"))
    integration_disable(integration=integration)

    assert api.get(f"{BASE}/social-profiles/facebook", key=full_key).json() == []
    assert platform(api, full_key, "facebook")["connected"] is False


def test_the_connection_test_posts_the_accounts_to_the_endpoint():
    with PublishingEndpoint() as endpoint:
        integration = connect(endpoint.url("/publish"), key="pub-token")
        ok, message = integration_test(integration=integration)
        wrong = connect(endpoint.url("/publish"), key="wrong", name="Wrong key")
        refused, refusal = integration_test(integration=wrong)

    assert (ok, message) == (True, "the endpoint answered 200")
    method, path, headers, body = endpoint.requests[0]
    assert (method, path, headers["authorization"]) == ("POST", "/publish", "Bearer pub-token")
    assert json.loads(body) == {
        "test": True,
        "accounts": [
            {"platform": "facebook", "id": "1029384756", "name": "Herald Shop"},
            {"platform": "facebook", "id": "5647", "name": "Herald Outlet"},
        ],
    }
    assert refused is False
    assert "401" in refusal


@pytest.mark.parametrize(
    ("accounts", "fragment"),
    [
        ("facebook | 1 | Shop\nfacebook 2 Outlet", "line 2: write 'platform | account id | name'"),
        ("myspace | 1 | Shop", "line 1: unknown platform 'myspace'"),
        ("facebook | 1 | Shop\nfacebook | 1 | Again", "line 2: facebook 1 is listed twice"),
    ],
)
def test_a_bad_account_line_is_refused_naming_the_line(accounts, fragment):
    with pytest.raises(FieldError) as refused:
        connect("http://127.0.0.1:9/publish", accounts=accounts)

    assert refused.value.field == "accounts"
    assert fragment in refused.value.message


def test_launch_on_a_social_channel_waits_for_a_connected_account(api, full_key):
    segment, _ = segment_with(2)
    body = {
        "name": "Social spring",
        "channels": ["email", "facebook"],
        "audienceId": segment.pk,
        "templateId": email_template().pk,
    }
    campaign = api.post(CAMPAIGNS, key=full_key, body=body).json()

    refused = api.post(f"{CAMPAIGNS}/{campaign['id']}/launch", key=full_key)
    assert refused.status_code == 409
    assert refused.json()["channel"] == "facebook"

    with PublishingEndpoint() as endpoint:
        connect(endpoint.url("/publish"))
    launched = api.post(f"{CAMPAIGNS}/{campaign['id']}/launch", key=full_key)
    assert launched.status_code == 200, launched.content
    assert Campaign.objects.get(pk=campaign["id"]).status == "running"
