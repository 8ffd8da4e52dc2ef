"""Writes of the ground floor's own data: the organisation's settings, users' preferences
and heartbeats."""

from django.db import transaction
from django.utils import timezone

from config.core.models import Heartbeat, Organisation, UserPreference


@transaction.atomic
def organisation_update(
    *,
    name: str,
    default_sender_name: str,
    default_sender_email: str,
    time_zone: str,
    language: str | None = None,
) -> Organisation:
    organisation = Organisation.objects.select_for_update().get_or_create(pk=1)[0]
    organisation.name = name
    organisation.default_sender_name = default_sender_name
    organisation.default_sender_email = default_sender_email
    organisation.time_zone = time_zone
    if language is not None:
        organisation.language = language
    organisation.full_clean()
    organisation.save()
    return organisation


def heartbeat_record(*, name: str) -> Heartbeat:
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=name, defaults={"seen_at": timezone.now()}
    )
    return heartbeat


def user_language_set(*, user, language: str) -> UserPreference:
    """Remember the workspace language the user chose ("" = follow the browser)."""
    preference, _ = UserPreference.objects.update_or_create(
        user=user, defaults={"language": language}
    )
    return preference
