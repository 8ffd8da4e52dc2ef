"""A small demo data set for the embedded default. Idempotent: running it twice adds nothing."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from marketing.models import Organisation
from marketing.roles import Role


@transaction.atomic
def load_demo() -> None:
    organisation = Organisation.load()
    if organisation.name == Organisation._meta.get_field("name").default:
        organisation.name = "Demo Shop"
        organisation.default_sender_name = "Demo Shop"
        organisation.default_sender_email = "news@demo-shop.example"
        organisation.save()


def ensure_admin(username: str = "admin") -> str | None:
    """Create the first admin with a generated password and return it; None if one exists."""
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    user = User.objects.create_superuser(
        username=username, email="admin@demo-shop.example", password=password
    )
    user.groups.add(Group.objects.get_or_create(name=Role.ADMIN.value)[0])
    return password
