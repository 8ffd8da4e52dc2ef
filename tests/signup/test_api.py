"""/api/herald/forms: the forms and their statistics for integrators."""

import pytest

from marketing.signup.models import SignupForm
from marketing.signup.services import signup_count

pytestmark = pytest.mark.django_db

BODY = {
    "name": "Footer form",
    "key": "footer",
    "fields": [{"key": "email", "label": "Email"}, {"key": "phone", "required": True}],
    "groups": [],
    "tags": ["footer"],
    "redirectUrl": "https://shop.example/thanks",
    "language": "uk",
}


def test_create_read_replace_delete(api, full_key, newsletter_segment):
    created = api.post(
        "/api/herald/forms", key=full_key, body={**BODY, "groups": ["Newsletter readers"]}
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["key"] == "footer"
    assert body["fields"] == [
        {"key": "email", "label": "Email", "required": True},
        {"key": "phone", "label": "", "required": True},
    ]
    assert body["groups"] == ["Newsletter readers"]
    assert body["doubleOptIn"] is True
    assert body["url"].endswith("/f/footer/")

    listed = api.get("/api/herald/forms", key=full_key).json()
    assert [row["key"] for row in listed["results"]] == ["footer"]
    assert "next" in listed

    form_id = body["id"]
    replaced = api.put(
        f"/api/herald/forms/{form_id}",
        key=full_key,
        body={**BODY, "name": "Footer", "enabled": False},
    )
    assert replaced.status_code == 200, replaced.json()
    assert replaced.json()["enabled"] is False
    assert api.get(f"/api/herald/forms/{form_id}", key=full_key).json()["name"] == "Footer"
    assert api.delete(f"/api/herald/forms/{form_id}", key=full_key).status_code == 204
    assert not SignupForm.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"redirectUrl": "javascript:alert(1)"}, "redirectUrl"),
        ({"fields": [{"key": "first_name"}]}, "fields"),
        ({"fields": [{"key": "email"}, {"key": "field:999999"}]}, "fields[1].key"),
        ({"key": "spring"}, "key"),
        ({"groups": ["No such segment"]}, "groups"),
        ({"accentColor": "red"}, "accentColor"),
        ({"language": "de"}, "language"),
    ],
)
def test_bad_input_is_400_naming_the_field(api, full_key, signup, change, field):
    response = api.post("/api/herald/forms", key=full_key, body={**BODY, **change})
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_stats(api, full_key, signup):
    signup_count(form=signup, views=10, submissions=2, new_contacts=1, updated_contacts=1)
    signup_count(form=signup, spam=3)
    response = api.get(f"/api/herald/forms/{signup.pk}/stats", key=full_key)
    assert response.status_code == 200
    body = response.json()
    assert body["totals"]["views"] == 10
    assert body["totals"]["spam"] == 3
    assert body["totals"]["conversionRate"] == 20.0
    assert len(body["days"]) == 30
    assert body["days"][-1]["submissions"] == 2


def test_rights_owner_limited_key_and_no_key(api, full_key, limited_key, signup):
    assert api.get("/api/herald/forms", key=full_key).status_code == 200
    assert api.get("/api/herald/forms", key=limited_key).status_code == 403
    assert api.get("/api/herald/forms").status_code in (401, 403)
    assert api.get("/api/herald/forms/999999", key=full_key).status_code == 404
