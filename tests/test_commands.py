import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from config.core.models import APIKey

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_only_the_key(api):
    out = io.StringIO()
    call_command("create_api_key", "ops script", "--rights", "messages", stdout=out)
    secret = out.getvalue().strip()

    assert "\n" not in secret and secret.startswith("hk_")
    key = APIKey.objects.get(name="ops script")
    assert key.rights == "messages"
    assert api.get("/api/v1/account/info", key=secret).status_code == 200


def test_create_api_key_refuses_an_unknown_right():
    with pytest.raises(CommandError):
        call_command("create_api_key", "x", "--rights", "root")


def test_load_demo_is_idempotent_and_prints_a_generated_password():
    first, second = io.StringIO(), io.StringIO()
    call_command("load_demo", stdout=first)
    call_command("load_demo", stdout=second)
    assert "admin / " in first.getvalue()
    assert "admin / " not in second.getvalue()
    password = first.getvalue().split("admin / ")[1].split()[0]
    assert len(password) >= 12


def test_demo_data_is_loaded_once_through_the_services():
    from campaigns.models import Campaign
    from contacts.filters.compiler import segment_reach
    from contacts.models import Contact, Segment
    from templates.models import MessageTemplate

    call_command("load_demo", stdout=io.StringIO())
    call_command("load_demo", stdout=io.StringIO())

    assert Contact.objects.count() == 40
    vip = Segment.objects.get(name="VIP customers")
    assert 0 < segment_reach(vip) < 40
    assert MessageTemplate.objects.get(name="Welcome").version == 1
    assert Campaign.objects.get(name="VIP welcome").status == "draft"
