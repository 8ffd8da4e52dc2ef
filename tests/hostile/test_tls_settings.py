"""Behind a TLS-terminating proxy (SECURE_PROXY_SSL_HEADER: X-Forwarded-Proto), as an https
deployment's settings turn it on (tests/test_security.py checks the settings themselves):
a request the proxy forwarded over https is answered with HSTS and gets only secure session
and CSRF cookies; one that came over plain http is sent to https first."""

import pytest

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
HTTPS_ON = {
    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    "SECURE_SSL_REDIRECT": True,
    "SECURE_HSTS_SECONDS": 31_536_000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
}


@pytest.fixture
def https_deployment(settings):
    for name, value in HTTPS_ON.items():
        setattr(settings, name, value)


def test_a_log_in_forwarded_over_https_gets_hsts_and_only_secure_cookies(client, https_deployment):
    UserFactory(role="marketer", username="mia")
    page = client.get("/login/", headers={"X-Forwarded-Proto": "https"})
    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    logged_in = client.post(
        "/login/",
        {"username": "mia", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert logged_in.status_code == 302, logged_in.content
    cookies = {name: morsel for name, morsel in logged_in.cookies.items()}
    print(f"\ncookies set on log-in: {sorted(cookies)}")
    assert "sessionid" in cookies
    for name, morsel in cookies.items():
        assert morsel["secure"], f"{name} is sent without the Secure flag"
        if name == "sessionid":
            assert morsel["httponly"], "the session cookie is readable by scripts"


def test_plain_http_through_the_proxy_is_redirected_to_https_without_hsts(client, https_deployment):
    answer = client.get("/login/", headers={"X-Forwarded-Proto": "http"})
    assert answer.status_code == 301
    assert answer["Location"] == "https://testserver/login/"
    # HSTS only means something over https; browsers ignore it on http.
    assert "Strict-Transport-Security" not in answer
