import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from config.core.models import APIKey, APIRight

KEY_PREFIX = "hk_"
# Recording every request's time would turn each API read into a write; a minute is enough
# for "last used" to answer "is this key still in use?".
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Keys a process remembers at most; past that, expired entries go (all, if none expired).
KNOWN_KEYS_MAX = 1000


def hash_key(secret: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *, name: str, rights: str = APIRight.FULL, created_by=None
) -> tuple[APIKey, str]:
    """Create a key; returns it with the secret, which is never stored or shown again."""
    if rights not in APIRight.values:
        raise ValueError(f"Unknown right {rights!r}; choose one of {', '.join(APIRight.values)}.")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = APIKey.objects.create(
        name=name.strip(),
        prefix=secret[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(secret),
        rights=rights,
        created_by=created_by,
    )
    return key, secret


def api_key_revoke(*, key: APIKey) -> APIKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def api_key_authenticate(*, secret: str) -> APIKey | None:
    """The active key with this secret, or None. Records the last-used time (coarsely).

    Every API request authenticates, so a key found in the database is remembered by this
    process for `HERALD_API_KEY_CACHE_SECONDS` (see `_KnownKey`); within that time the
    request costs no query. Unknown and revoked secrets are never remembered: they are
    looked up every time.
    """
    digest = hash_key(secret)
    known = _known_keys.get(digest)
    if known is not None and _clock() - known.checked_at < _cache_seconds():
        return known.instances()
    key = (
        APIKey.objects.select_related("created_by")
        .filter(key_hash=digest, revoked_at__isnull=True)
        .first()
    )
    if key is None:
        _known_keys.pop(digest, None)
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional so that concurrent requests write once per resolution window.
        APIKey.objects.filter(pk=key.pk).exclude(
            last_used_at__gt=now - LAST_USED_RESOLUTION
        ).update(last_used_at=now)
        key.last_used_at = now
    if _cache_seconds() > 0:
        _remember(digest, key)
    return key


# --- The per-process key cache -------------------------------------------------------------
#
# Why a TTL and not a version check: a version check is a query per request, which is what
# the cache exists to avoid (the lookup by the unique hash is itself one indexed query).
# What the TTL allows: a key revoked, deleted or given other rights by another process (any
# other gunicorn worker) keeps its old standing here for at most that long; in the process
# that made the change (through the ORM, e.g. the admin) the receivers below apply it to the
# next request. What it never allows: an entry is renewed only by a database read, so no key
# outlives its revocation by more than the TTL, and a secret unknown to the database is never
# accepted. Entries are found by the SHA-256 of the presented secret, the digest the database
# is searched by, so a lookup's timing depends only on that digest and tells nothing about
# stored secrets; the secret itself is never kept.


@dataclass(frozen=True, slots=True)
class _KnownKey:
    """A key as the database had it at `checked_at` (time.monotonic()), with its owner.

    Field values, not model instances: every request gets fresh instances, so nothing a
    request does to `request.auth` or `request.user` leaks into the next one.
    """

    key_values: tuple
    user_values: tuple | None
    checked_at: float

    def instances(self) -> APIKey:
        key = APIKey.from_db("default", _field_names(APIKey), self.key_values)
        user = None
        if self.user_values is not None:
            user_model = get_user_model()
            user = user_model.from_db("default", _field_names(user_model), self.user_values)
        APIKey.created_by.field.set_cached_value(key, user)
        return key


_known_keys: dict[str, _KnownKey] = {}
_known_keys_lock = threading.Lock()  # gunicorn's threaded workers share the dict


def _clock() -> float:
    return time.monotonic()


def _cache_seconds() -> float:
    return settings.HERALD_API_KEY_CACHE_SECONDS


def _field_names(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def _values(instance) -> tuple:
    return tuple(getattr(instance, name) for name in _field_names(type(instance)))


def _remember(digest: str, key: APIKey) -> None:
    user = key.created_by
    known = _KnownKey(
        key_values=_values(key),
        user_values=_values(user) if user is not None else None,
        checked_at=_clock(),
    )
    with _known_keys_lock:
        if len(_known_keys) >= KNOWN_KEYS_MAX:
            oldest = _clock() - _cache_seconds()
            for stale in [d for d, k in _known_keys.items() if k.checked_at <= oldest]:
                del _known_keys[stale]
            if len(_known_keys) >= KNOWN_KEYS_MAX:
                _known_keys.clear()
        _known_keys[digest] = known


def api_key_forget(*, key_hash: str | None = None) -> None:
    """Drop one key (by its stored hash) or every key from this process's cache.

    Connected to APIKey's post_save and post_delete (integrations.apps), so a revocation or
    a rights change made through the ORM in this process applies to its next request.
    Queryset `update()` sends no signal: such writes reach the cache after the TTL.
    """
    with _known_keys_lock:
        if key_hash is None:
            _known_keys.clear()
        else:
            _known_keys.pop(key_hash, None)
