import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from integrations.models import APIKey, APIRight

KEY_PREFIX = "hk_"
# Recording every request's time would turn each API read into a write; a minute is enough
# for "last used" to answer "is this key still in use?".
LAST_USED_RESOLUTION = timedelta(minutes=1)


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
    """The active key with this secret, or None. Records the last-used time (coarsely)."""
    key = (
        APIKey.objects.select_related("created_by")
        .filter(key_hash=hash_key(secret), revoked_at__isnull=True)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional so that concurrent requests write once per resolution window.
        APIKey.objects.filter(pk=key.pk).exclude(
            last_used_at__gt=now - LAST_USED_RESOLUTION
        ).update(last_used_at=now)
        key.last_used_at = now
    return key
