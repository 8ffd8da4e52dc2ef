import pytest
from django.utils import timezone

from config.core.api_keys import api_key_revoke, hash_key
from config.core.models import APIKey

pytestmark = pytest.mark.django_db

INFO = "/api/v1/account/info"


def test_account_info_with_basic_key_answers_user_email_and_organisation(api, full_key):
    response = api.get(INFO, key=full_key)

    assert response.status_code == 200
    assert response.json() == {
        "userEmail": "alice-admin@example.com",
        "organisationName": "My organisation",
    }


def test_any_basic_username_works_with_the_key_as_password(api, full_key):
    header = api.basic(full_key.secret, username="whatever-the-client-sends")
    response = api.get(INFO, headers={"Authorization": header})
    assert response.status_code == 200


def test_account_info_accepts_a_trailing_slash(api, full_key):
    assert api.get(INFO + "/", key=full_key).status_code == 200


def test_limited_key_may_read_its_account(api, limited_key):
    assert api.get(INFO, key=limited_key).status_code == 200


def test_no_credentials_is_401_json_with_basic_challenge(api):
    response = api.get(INFO)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert "detail" in response.json()


def test_unknown_key_is_401(api, full_key):
    response = api.get(INFO, key="hk_not-a-real-key")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked API key."}


def test_revoked_key_is_401(api, full_key):
    api_key_revoke(key=full_key)
    response = api.get(INFO, key=full_key)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    ["Basic", "Basic !!!notbase64", "Basic " + "bm9jb2xvbg==", "Basic a b"],
    ids=["no-credentials", "not-base64", "no-colon", "too-many-parts"],
)
def test_malformed_basic_header_is_401_json(api, header):
    response = api.get(INFO, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["detail"]


def test_key_is_stored_only_as_a_hash(full_key):
    stored = APIKey.objects.get(pk=full_key.pk)
    assert stored.key_hash == hash_key(full_key.secret)
    assert full_key.secret not in {stored.name, stored.prefix, stored.key_hash}
    assert full_key.secret.startswith(stored.prefix)


def test_using_a_key_records_its_last_use(api, full_key):
    assert full_key.last_used_at is None
    before = timezone.now()
    api.get(INFO, key=full_key)
    full_key.refresh_from_db()
    assert full_key.last_used_at >= before


def test_jwt_obtain_and_use(client, marketer):
    token = client.post(
        "/api/auth/token/",
        {"username": marketer.username, "password": "correct horse battery staple"},
        content_type="application/json",
    )
    assert token.status_code == 200
    access = token.json()["access"]

    response = client.get(INFO, headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 200
    assert response.json()["userEmail"] == marketer.email


def test_jwt_refresh_gives_a_working_access_token(client, marketer):
    pair = client.post(
        "/api/auth/token/",
        {"username": marketer.username, "password": "correct horse battery staple"},
    ).json()
    refreshed = client.post("/api/auth/token/refresh/", {"refresh": pair["refresh"]})
    assert refreshed.status_code == 200
    response = client.get(INFO, headers={"Authorization": f"Bearer {refreshed.json()['access']}"})
    assert response.status_code == 200


def test_bad_jwt_is_401(client):
    response = client.get(INFO, headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == 401
    assert response.json()["detail"]


def test_jwt_with_wrong_password_is_401(client, marketer):
    response = client.post("/api/auth/token/", {"username": marketer.username, "password": "wrong"})
    assert response.status_code == 401


def test_session_login_authenticates_the_api(client, viewer):
    client.force_login(viewer)
    response = client.get(INFO)
    assert response.status_code == 200
    assert response.json()["userEmail"] == viewer.email


def test_unknown_api_path_is_json_404(api, full_key):
    response = api.get("/api/v1/does-not-exist", key=full_key)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "does-not-exist" in response.json()["detail"]
