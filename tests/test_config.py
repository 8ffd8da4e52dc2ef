import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list
from config.mail import email_settings_from_url


def test_env_bool_refuses_garbage(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG")


def test_env_int_refuses_garbage(monkeypatch):
    monkeypatch.setenv("COUNT", "ten")
    with pytest.raises(ImproperlyConfigured, match="COUNT"):
        env_int("COUNT", 1)


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    assert env_list("HOSTS") == ["a.example", "b.example"]


def test_smtp_email_url():
    conf = email_settings_from_url("smtp://user%40x:p%40ss@mail.example:587?tls=1")
    assert conf["EMAIL_HOST"] == "mail.example"
    assert conf["EMAIL_PORT"] == 587
    assert conf["EMAIL_HOST_USER"] == "user@x"
    assert conf["EMAIL_HOST_PASSWORD"] == "p@ss"
    assert conf["EMAIL_USE_TLS"] is True


def test_unknown_email_url_scheme_is_refused():
    with pytest.raises(ImproperlyConfigured, match="gopher"):
        email_settings_from_url("gopher://x")
