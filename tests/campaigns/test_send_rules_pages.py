"""The frequency caps settings page: admins only, both numbers or neither, a 400 with the
error on the form, and a save that replaces the caps."""

import pytest

from campaigns.models import FrequencyCap

pytestmark = pytest.mark.django_db

URL = "/settings/frequency-caps/"


def test_only_admins_see_the_frequency_caps_page(client, marketer):
    client.force_login(marketer)
    assert client.get(URL).status_code == 403


def test_caps_page_shows_saves_and_clears_caps(client, admin_user):
    FrequencyCap.objects.create(channel="sms", limit=1, period_days=1)
    client.force_login(admin_user)
    page = client.get(URL).content.decode()
    assert 'name="sms_limit"' in page and 'value="1"' in page

    response = client.post(URL, {"email_limit": "3", "email_period": "7"})
    assert response.status_code == 302
    assert list(FrequencyCap.objects.values_list("channel", "limit", "period_days")) == [
        ("email", 3, 7)
    ]


@pytest.mark.parametrize(
    "form",
    [
        {"email_limit": "3"},
        {"email_limit": "0", "email_period": "7"},
        {"email_limit": "-1", "email_period": "7"},
        {"email_limit": "3", "email_period": "0"},
    ],
)
def test_bad_caps_are_a_form_error_with_400_and_change_nothing(client, admin_user, form):
    FrequencyCap.objects.create(channel="email", limit=5, period_days=7)
    client.force_login(admin_user)
    response = client.post(URL, form)
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert list(FrequencyCap.objects.values_list("limit", flat=True)) == [5]
