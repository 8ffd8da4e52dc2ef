"""The language versions page of a template: add (a duplicate is a form error), edit,
remove, preview per language; the editor links to it; roles."""

import pytest
from django.urls import reverse

from templates.languages import template_language_create
from templates.services import template_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def spring(db):
    template = template_create(
        name="Spring", subject="Spring sale, $!contact.firstName", html="<p>Hello</p>"
    )
    template_language_create(
        template=template, language_code="uk", subject="Розпродаж", html="<p>Привіт</p>"
    )
    return template


def test_editor_links_to_the_languages_page(client, marketer, spring):
    client.force_login(marketer)
    page = client.get(reverse("template_edit", args=[spring.pk])).content.decode()
    assert reverse("template_languages", args=[spring.pk]) in page
    assert "Languages (1)" in page


def test_add_a_language_and_preview_it(client, marketer, spring):
    client.force_login(marketer)
    url = reverse("template_languages", args=[spring.pk])
    response = client.post(
        url,
        {"language_code": "DE", "subject": "Frühling, $!contact.firstName", "html": "<p>Hallo</p>"},
    )
    assert response.status_code == 302 and response["Location"].endswith("?preview=de")
    page = client.get(response["Location"]).content.decode()
    assert "Frühling, Alex" in page
    main = client.get(url).content.decode()
    assert "Spring sale, Alex" in main


def test_a_duplicate_language_is_a_form_error(client, marketer, spring):
    client.force_login(marketer)
    response = client.post(
        reverse("template_languages", args=[spring.pk]),
        {"language_code": "UK", "subject": "x", "html": "<p>x</p>"},
    )
    assert response.status_code == 400
    assert "already has a “uk” version" in response.content.decode()
    assert spring.languages.count() == 1


def test_edit_and_remove_a_language(client, marketer, spring):
    client.force_login(marketer)
    edit = reverse("template_language_edit", args=[spring.pk, "uk"])
    assert "Розпродаж" in client.get(edit).content.decode()
    response = client.post(edit, {"language_code": "uk", "subject": "Нове", "html": "<p>x</p>"})
    assert response.status_code == 302
    assert spring.languages.get().subject == "Нове"
    response = client.post(reverse("template_language_delete", args=[spring.pk, "uk"]))
    assert response.status_code == 302 and not spring.languages.exists()


def test_a_viewer_sees_languages_but_cannot_change_them(client, viewer, spring):
    client.force_login(viewer)
    url = reverse("template_languages", args=[spring.pk])
    page = client.get(url)
    assert page.status_code == 200 and "Add a language version" not in page.content.decode()
    assert client.post(url, {"language_code": "de"}).status_code == 403
    assert (
        client.post(reverse("template_language_delete", args=[spring.pk, "uk"])).status_code == 403
    )
    assert spring.languages.count() == 1


def test_the_editor_preview_pane_renders_a_picked_language(client, viewer, spring):
    client.force_login(viewer)
    fields = {"channel": "email", "subject": "Draft subject", "html": "<p>Draft</p>"}
    main = client.post(reverse("template_preview"), fields).content.decode()
    assert "Draft subject" in main
    picked = client.post(
        reverse("template_preview"),
        {**fields, "preview_template": spring.pk, "preview_language": "UK"},
    ).content.decode()
    assert "Розпродаж" in picked and "Draft subject" not in picked


def test_duplicating_a_template_copies_its_language_versions(client, marketer, spring):
    client.force_login(marketer)
    response = client.post(reverse("template_duplicate", args=[spring.pk]))
    assert response.status_code == 302
    copy = spring.__class__.objects.exclude(pk=spring.pk).get()
    assert list(copy.languages.values_list("language_code", "subject")) == [("uk", "Розпродаж")]
