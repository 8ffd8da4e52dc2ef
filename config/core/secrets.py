"""Secrets at rest: the credentials of connected providers, sealed with Fernet (AES-128-CBC
and HMAC-SHA256, from `cryptography`) before they reach the database.

The key is HERALD_SECRETS_KEY (a Fernet key: 32 url-safe base64 bytes) or, without it, one
derived from SECRET_KEY, so a development install needs nothing set. A secret whose value is
`env:NAME` is not stored at all: it is read from the environment variable NAME when used, for
deployments that keep credentials out of the database.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from config.core.errors import HeraldError
from config.env import env_reference

ENV_PREFIX = "env:"


class SecretsUnreadable(HeraldError):
    """Stored secrets cannot be opened with this key (HERALD_SECRETS_KEY changed)."""

    status = 500


def _fernet() -> Fernet:
    key = getattr(settings, "HERALD_SECRETS_KEY", "") or ""
    if not key:
        digest = hashlib.sha256(f"herald-secrets:{settings.SECRET_KEY}".encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key.encode() if isinstance(key, str) else key)


def secrets_seal(values: dict[str, str]) -> str:
    """The sealed form of a dict of secrets ('' for none)."""
    if not values:
        return ""
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def secrets_open(sealed: str) -> dict[str, str]:
    """The dict sealed by `secrets_seal`, with `env:NAME` values read from the environment."""
    if not sealed:
        return {}
    try:
        values = json.loads(_fernet().decrypt(sealed.encode()))
    except InvalidToken as exc:
        raise SecretsUnreadable(
            "the stored provider credentials cannot be decrypted with this "
            "HERALD_SECRETS_KEY; enter them again"
        ) from exc
    return {name: secret_resolve(value) for name, value in values.items()}


def secrets_stored(sealed: str) -> dict[str, str]:
    """The sealed values as stored (`env:NAME` references kept), for editing."""
    if not sealed:
        return {}
    try:
        return json.loads(_fernet().decrypt(sealed.encode()))
    except InvalidToken:
        return {}


def secret_resolve(value: str) -> str:
    return env_reference(value, ENV_PREFIX)
