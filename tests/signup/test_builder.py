"""The form builder pages: create, edit, the refusals shown by their fields, roles, audit."""

import pytest
from auditlog.models import LogEntry

from marketing.signup.models import SignupForm
from tests.contacts.factories import SegmentFactory

pytestmark = pytest.mark.django_db


def builder_post(**overrides):
    data = {
        "name": "Autumn sale",
        "key": "autumn",
        "language": "en",
        "accent_color": "#1d4ed8",
        "double_optin": "on",
        "enabled": "on",
        "thank_you_message": "Thanks!",
        "tags": "autumn, sale",
        "show_first_name": "on",
        "label_first_name": "Your name",
        "order_first_name": "2",
        "order_email": "1",
    }
    data.update(overrides)
    return data


def test_marketer_creates_a_form_with_fields_in_order(client, marketer, birthday):
    client.force_login(marketer)
    response = client.post(
        "/forms/new/",
        builder_post(
            **{
                f"show_field_{birthday.pk}": "on",
                f"required_field_{birthday.pk}": "on",
                f"order_field_{birthday.pk}": "3",
            }
        ),
    )
    assert response.status_code == 302
    form = SignupForm.objects.get(key="autumn")
    assert form.fields == [
        {"key": "email", "label": "", "required": True},
        {"key": "first_name", "label": "Your name", "required": False},
        {"key": f"field:{birthday.pk}", "label": "", "required": True},
    ]
    assert form.tags == ["autumn", "sale"]
    assert form.double_optin and form.enabled
    assert LogEntry.objects.get_for_object(form).filter(actor=marketer).exists()

    page = client.get(response["Location"]).content.decode()
    assert "/f/autumn/embed.js" in page
    assert "/f/autumn/frame/" in page


@pytest.mark.parametrize(
    ("overrides", "field_id", "problem"),
    [
        ({"redirect_url": "javascript:alert(1)"}, "id_redirect_url", "http:// or https://"),
        ({"redirect_url": "ftp://files.example/x"}, "id_redirect_url", "http:// or https://"),
        ({"key": "spring"}, "id_key", "already uses this key"),
        ({"key": "no spaces"}, "id_key", "letters, digits"),
        ({"name": ""}, "id_name", "required"),
        ({"consent_enabled": "on"}, "id_consent_text", "consent text"),
        ({"accent_color": "blue"}, "id_accent_color", "#1d4ed8"),
    ],
)
def test_bad_input_is_refused_by_its_field(client, marketer, signup, overrides, field_id, problem):
    client.force_login(marketer)
    response = client.post("/forms/new/", builder_post(**overrides))
    assert response.status_code == 400
    page = response.content.decode()
    assert f'id="{field_id}_error"' in page
    error = page.split(f'id="{field_id}_error">', 1)[1].split("</small>", 1)[0]
    assert problem in error
    assert not SignupForm.objects.filter(name="Autumn sale").exists()


def test_a_form_without_email_is_refused(marketer, birthday):
    from marketing.signup.services import SignupFormError, signup_form_create

    with pytest.raises(SignupFormError) as refused:
        signup_form_create(name="x", key="x", fields=[{"key": "first_name"}])
    assert refused.value.field == "fields"


def test_dynamic_segments_cannot_be_joined(marketer):
    from marketing.signup.services import SignupFormError, signup_form_create

    dynamic = SegmentFactory(name="Big spenders", kind="dynamic", filter={"tags": {"$in": ["x"]}})
    with pytest.raises(SignupFormError) as refused:
        signup_form_create(name="x", key="x", fields=[{"key": "email"}], groups=[dynamic])
    assert refused.value.field == "groups"


def test_editing_keeps_the_key_and_saves_changes(client, marketer, signup, newsletter_segment):
    client.force_login(marketer)
    response = client.post(
        f"/forms/{signup.pk}/",
        builder_post(name="Spring letter", key="spring", groups=[newsletter_segment.pk]),
    )
    assert response.status_code == 302
    signup.refresh_from_db()
    assert signup.name == "Spring letter"
    assert list(signup.groups.all()) == [newsletter_segment]


def test_viewer_reads_but_cannot_change_and_outsider_is_refused(client, viewer, outsider, signup):
    client.force_login(viewer)
    assert client.get("/forms/").status_code == 200
    assert client.get(f"/forms/{signup.pk}/stats/").status_code == 200
    assert client.get("/forms/new/").status_code == 403
    assert client.post(f"/forms/{signup.pk}/", builder_post()).status_code == 403
    assert client.post(f"/forms/{signup.pk}/delete/").status_code == 403
    client.force_login(outsider)
    assert client.get("/forms/").status_code == 403


def test_list_and_stats_show_the_counts(client, marketer, signup):
    from marketing.signup.services import signup_count

    signup_count(form=signup, views=4, submissions=1, new_contacts=1)
    client.force_login(marketer)
    listing = client.get("/forms/").content.decode()
    assert "Spring newsletter" in listing
    stats = client.get(f"/forms/{signup.pk}/stats/").content.decode()
    assert 'data-testid="total-views">4<' in stats
    assert 'data-testid="total-conversion">25.0 %<' in stats


def test_delete_removes_the_form_and_its_page(client, marketer, signup):
    client.force_login(marketer)
    assert client.post(f"/forms/{signup.pk}/delete/").status_code == 302
    assert client.get("/f/spring/").status_code == 404


def test_admin_creates_a_form_through_the_same_rules(client, admin_user, newsletter_segment):
    client.force_login(admin_user)
    assert client.get("/admin/marketing/signupform/add/").status_code == 200
    data = {
        "name": "Admin form",
        "key": "admin-form",
        "fields": '[{"key": "email"}, {"key": "phone", "required": true}]',
        "groups": [newsletter_segment.pk],
        "tags": "admin",
        "double_optin": "on",
        "language": "ru",
        "accent_color": "#000000",
        "enabled": "on",
        "redirect_url": "",
        "consent_text": "",
        "thank_you_message": "",
        "button_text": "",
    }
    refused = client.post("/admin/marketing/signupform/add/", {**data, "fields": "[]"})
    assert refused.status_code == 200
    assert "a form needs the email field" in refused.content.decode()
    response = client.post("/admin/marketing/signupform/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    form = SignupForm.objects.get(key="admin-form")
    assert form.fields[0] == {"key": "email", "label": "", "required": True}
    assert list(form.groups.all()) == [newsletter_segment]
    assert LogEntry.objects.get_for_object(form).exists()


def test_deleting_a_form_keeps_the_consent_records(client, marketer, signup, birthday):
    from marketing.signup.forms import started_token
    from marketing.signup.models import SignupSubmission

    client.post(
        "/f/spring/",
        {
            "email": "kept@example.com",
            "first_name": "Kit",
            "consent": "on",
            "started": started_token(),
        },
    )
    client.force_login(marketer)
    client.post(f"/forms/{signup.pk}/delete/")
    record = SignupSubmission.objects.get()
    assert record.form is None
    assert record.consent_text == "I agree to get the spring newsletter."
