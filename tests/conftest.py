import os
import time

import pytest
from django.conf import settings

# Playwright's sync API runs an event loop in the test thread; Django's ORM would refuse to
# work beside it without this (the tests are single-threaded, so it is safe).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from config.core.models import Integration
from config.core.secrets import secrets_seal
from contacts.models import ChannelType
from tests.factories import UserFactory
from tests.support import flush
from tests.support.fake_telegram import FakeTelegram
from tests.support.worker import CeleryWorker

flush.install()

# Django's recommendation for tests: a password hasher that costs nothing. The default one
# (PBKDF2, a million rounds) spent about a second of CPU per user created and per log-in on
# a busy two-core machine; no test is about the hash itself.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_user(db):
    return UserFactory(role="admin", username="alice-admin")


@pytest.fixture
def marketer(db):
    return UserFactory(role="marketer", username="mark-marketer")


@pytest.fixture
def viewer(db):
    return UserFactory(role="viewer", username="vera-viewer")


@pytest.fixture
def outsider(db):
    """Logged-in account with no role at all."""
    return UserFactory(role=None, username="olga-outsider")


@pytest.fixture
def full_key(admin_user):
    from config.core.api_keys import api_key_create

    key, secret = api_key_create(name="full", rights="full", created_by=admin_user)
    key.secret = secret
    return key


@pytest.fixture
def limited_key(admin_user):
    """A key with the 'events' right only."""
    from config.core.api_keys import api_key_create

    key, secret = api_key_create(name="events only", rights="events", created_by=admin_user)
    key.secret = secret
    return key


@pytest.fixture
def api(client):
    """Django test client with helpers for API calls authenticated by a key."""
    from tests.support.api import APIClient

    return APIClient(client)


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker process on the configured broker, using the test database."""
    with CeleryWorker() as worker:
        yield worker


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def telegram_bot(db):
    """A fake Telegram Bot API connected as the organisation's Telegram integration."""
    with FakeTelegram() as fake:
        Integration.objects.create(
            kind="telegram",
            name="Shop bot",
            channels=[ChannelType.TELEGRAM],
            settings={"api_url": fake.url},
            secrets_sealed=secrets_seal({"bot_token": fake.token}),
        )
        yield fake
