"""Admin for templates: errors with line and column, sanitising, publishing."""

import pytest

from templates.models import MessageTemplate, TemplateVersion
from templates.services import template_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")


def _form(**overrides):
    values = {
        "name": "Welcome",
        "channel": "email",
        "subject": "Hi $!contact.firstName",
        "preheader": "",
        "from_name": "",
        "from_email": "",
        "html": "<p>Hello</p><script>x()</script>",
        "text": "",
        "sms_text": "",
        "provider": "",
        "external_id": "",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "languages-TOTAL_FORMS": "0",
        "languages-INITIAL_FORMS": "0",
    }
    values.update(overrides)
    return values


def test_admin_add_saves_through_the_service(client, superuser):
    client.force_login(superuser)
    response = client.post("/admin/templates/messagetemplate/add/", _form())
    assert response.status_code == 302
    template = MessageTemplate.objects.get()
    assert template.html == "<p>Hello</p>"
    assert template.text.strip() == "Hello" and template.text_generated


def test_admin_shows_syntax_errors_with_line_and_column(client, superuser):
    client.force_login(superuser)
    response = client.post(
        "/admin/templates/messagetemplate/add/", _form(html="<p>a</p>\n#foreach($i in $x)")
    )
    assert response.status_code == 200
    assert "Line 2, column 19: expected #end in foreach directive" in response.content.decode()
    assert not MessageTemplate.objects.exists()


def test_admin_publish_action_creates_a_version(client, superuser):
    template = template_create(name="T", subject="S", html="<p>x</p>")
    client.force_login(superuser)
    response = client.post(
        "/admin/templates/messagetemplate/",
        {"action": "publish", "_selected_action": [template.pk]},
        follow=True,
    )
    assert "Published T v1." in response.content.decode()
    assert TemplateVersion.objects.get().number == 1
    assert (
        client.get(
            f"/admin/templates/templateversion/{TemplateVersion.objects.get().pk}/change/"
        ).status_code
        == 200
    )


def test_admin_language_inline_saves_through_the_service_and_refuses_a_duplicate(client, superuser):
    template = template_create(name="T", subject="S", html="<p>x</p>")
    client.force_login(superuser)
    url = f"/admin/templates/messagetemplate/{template.pk}/change/"
    language = {
        "languages-TOTAL_FORMS": "1",
        "languages-0-language_code": "UK",
        "languages-0-subject": "Привіт",
        "languages-0-html": "<p>Привіт</p><script>x()</script>",
    }
    response = client.post(url, _form(name="T", subject="S", html="<p>x</p>", **language))
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = template.languages.get()
    assert (saved.language_code, saved.html) == ("uk", "<p>Привіт</p>")
    assert saved.text_generated
    duplicate = {
        "languages-TOTAL_FORMS": "2",
        "languages-INITIAL_FORMS": "1",
        "languages-0-id": str(saved.pk),
        "languages-0-template": str(template.pk),
        "languages-0-language_code": "uk",
        "languages-0-subject": "Привіт",
        "languages-0-html": "<p>Привіт</p>",
        "languages-1-language_code": "Uk",
        "languages-1-subject": "Again",
    }
    response = client.post(url, _form(name="T", subject="S", html="<p>x</p>", **duplicate))
    assert response.status_code == 200
    assert template.languages.count() == 1
