"""HTTPS hardening and the Content-Security-Policy.

The HTTPS switches are read from the environment when settings load, so their tests start a
fresh Python (as a deployment does) instead of overriding settings in this process.
"""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.contacts.factories import ContactFactory
from tests.factories import UserFactory

BASE_DIR = Path(settings.BASE_DIR)
HTTPS_SETTINGS = [
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
]
# The on/off switches' environment variables (SECURE_HSTS_SECONDS is a number).
SWITCHES = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "HERALD_TRUST_X_FORWARDED_PROTO",
)
# Left out of the subprocesses' environment: the switches under test (a developer's shell
# must not leak into them), and what the test run itself sets but a deployment never does.
LEFT_OUT = [
    "DEBUG",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "DJANGO_SETTINGS_MODULE",
    "SECURE_HSTS_SECONDS",
    *SWITCHES,
]


def production_env(base_url: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEFT_OUT}
    env.update(
        SECRET_KEY=secrets.token_urlsafe(64),
        HERALD_BASE_URL=base_url,
        ALLOWED_HOSTS="herald.example.com",
        HERALD_REQUIRE_SECRET_KEY="1",
    )
    env.update(overrides)
    return env


def loaded_settings(base_url: str, **overrides: str) -> dict:
    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{name: getattr(settings, name, None) for name in {HTTPS_SETTINGS!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=production_env(base_url, DJANGO_SETTINGS_MODULE="config.settings", **overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_deploy_check_finds_nothing_for_an_https_deployment():
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "check",
            "--deploy",
            "--fail-level",
            "WARNING",
        ],
        cwd=BASE_DIR,
        env=production_env("https://herald.example.com"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_https_base_url_turns_every_https_switch_on():
    assert loaded_settings("https://herald.example.com") == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


def test_http_base_url_leaves_the_https_switches_off():
    assert loaded_settings("http://127.0.0.1:8000") == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }


@pytest.mark.parametrize(
    ("base_url", "on", "hsts"),
    [("https://herald.example.com", False, "0"), ("http://herald.internal", True, "600")],
    ids=["off on an https deployment", "on for an http base URL"],
)
def test_each_https_switch_overrides_its_default(base_url, on, hsts):
    switches = {name: "1" if on else "0" for name in SWITCHES}
    assert loaded_settings(base_url, SECURE_HSTS_SECONDS=hsts, **switches) == {
        "SECURE_SSL_REDIRECT": on,
        "SECURE_HSTS_SECONDS": int(hsts),
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": on,
        "SECURE_HSTS_PRELOAD": on,
        "SESSION_COOKIE_SECURE": on,
        "CSRF_COOKIE_SECURE": on,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"] if on else None,
    }


def test_a_negative_hsts_age_stops_settings_from_loading():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env=production_env(
            "https://herald.example.com",
            DJANGO_SETTINGS_MODULE="config.settings",
            SECURE_HSTS_SECONDS="-1",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stderr


def test_plain_http_is_redirected_to_https_except_the_health_probe(client, settings, db):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/login/"
    assert client.get("/healthz").status_code == 200


# --- Content-Security-Policy ----------------------------------------------------------------


def directives(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_strict_scripts(response) -> None:
    policy = directives(response)
    assert policy["script-src"] == ["'self'"], policy
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["default-src"] == ["'self'"]


@pytest.fixture
def superuser(db):
    user = UserFactory(role="admin", username="sam-super")
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    return user


@pytest.mark.django_db
def test_workspace_pages_send_a_policy_without_inline_script(client, superuser):
    contact = ContactFactory()
    client.force_login(superuser)
    for path in [
        "/",
        "/contacts/",
        f"/contacts/{contact.pk}/",
        "/segments/",
        "/campaigns/new/",
        "/templates/new/",
        "/api/docs/",
        f"/admin/contacts/contact/{contact.pk}/change/",
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert_strict_scripts(response)


@pytest.mark.django_db
def test_public_pages_send_the_policy_too(client):
    assert_strict_scripts(client.get("/login/"))
    assert_strict_scripts(client.get("/u/abc.def/"))


def test_images_are_limited_to_herald_and_data_urls_outside_message_previews(client, db):
    assert directives(client.get("/login/"))["img-src"] == ["'self'", "data:"]


@pytest.mark.django_db
def test_the_template_editor_lets_the_sandboxed_preview_load_remote_images(client, superuser):
    # The preview iframe's srcdoc inherits the page's policy, and emails link their images.
    client.force_login(superuser)
    img_src = directives(client.get("/templates/new/"))["img-src"]
    assert img_src == ["'self'", "data:", "https:", "http:"]
    # Scripts stay as strict as everywhere else.
    assert_strict_scripts(client.get("/templates/new/"))


@pytest.mark.django_db
def test_swagger_ui_is_started_by_a_script_file(client, superuser):
    client.force_login(superuser)
    page = client.get("/api/docs/").content.decode()
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all("src=" in tag for tag in scripts), scripts
    init = client.get("/api/docs/?script=")
    assert init.status_code == 200
    assert init["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in init.content.decode()


# Inline script in any form: a <script> with code, an on*="…" handler attribute, or an
# htmx feature that compiles strings into functions (trigger filters, hx-on, hx-vars, js:).
INLINE_SCRIPT = [
    (re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I), "<script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "on* handler"),
    (re.compile(r"hx-trigger=\"[^\"]*[a-z]\[", re.I), "hx-trigger filter"),
    (re.compile(r"\bhx-on\b|hx-on:|\bhx-vars\b|javascript:|[\"']js:", re.I), "eval in htmx"),
]
APPS = ["config", "marketing", "contacts", "templates", "campaigns", "integrations"]


def test_no_herald_template_carries_inline_script():
    found = []
    for app in APPS:
        for path in sorted((BASE_DIR / app).glob("templates/**/*.html")):
            text = path.read_text()
            for pattern, kind in INLINE_SCRIPT:
                for match in pattern.finditer(text):
                    line = text.count("\n", 0, match.start()) + 1
                    found.append(f"{path.relative_to(BASE_DIR)}:{line}: {kind}")
    assert found == []
