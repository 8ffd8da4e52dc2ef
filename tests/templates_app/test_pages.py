"""Marketer pages for templates: list, editor with inline errors, live preview, publishing,
version history, duplicate and delete — through HTTP, as a marketer, a viewer and an outsider."""

import html
import json
import re

import pytest

from campaigns.models import Delivery, SendKind, SendRequest
from contacts.models import ChannelType
from templates.models import MessageTemplate, TemplateVersion
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

EMAIL = {
    "name": "Welcome",
    "channel": "email",
    "subject": "Hello $!contact.firstName",
    "preheader": "",
    "from_name": "Shop",
    "from_email": "news@shop.example",
    "html": "<h1>Hi $!contact.firstName</h1><p>Code: $!data.get('code')</p>",
    "text": "",
    "sms_text": "",
}


def page_of(response) -> str:
    return response.content.decode()


@pytest.fixture
def as_marketer(client, marketer):
    client.force_login(marketer)
    return client


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def welcome(db):
    return template_create(
        **{key: value for key, value in EMAIL.items() if key not in ("text", "sms_text")}
    )


def srcdoc(response) -> str:
    match = re.search(r'<iframe[^>]*srcdoc="([^"]*)"', page_of(response))
    assert match, page_of(response)
    return html.unescape(match.group(1))


# -- roles -----------------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_login(client, welcome):
    for path in ("/templates/", f"/templates/{welcome.pk}/", "/messages/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_outsider_without_role_gets_403(client, outsider, welcome):
    client.force_login(outsider)
    for path in ("/templates/", f"/templates/{welcome.pk}/", f"/templates/{welcome.pk}/versions/"):
        assert client.get(path).status_code == 403
    assert client.post("/templates/preview/", EMAIL).status_code == 403


def test_viewer_reads_but_cannot_write(as_viewer, welcome):
    assert as_viewer.get("/templates/").status_code == 200
    editor = as_viewer.get(f"/templates/{welcome.pk}/")
    assert editor.status_code == 200
    assert 'data-testid="save"' not in page_of(editor)
    assert "readonly" in page_of(editor)
    assert as_viewer.get("/templates/new/").status_code == 403
    changed = {**EMAIL, "name": "Hijacked"}
    assert as_viewer.post(f"/templates/{welcome.pk}/", changed).status_code == 403
    assert as_viewer.post(f"/templates/{welcome.pk}/publish/").status_code == 403
    assert as_viewer.post(f"/templates/{welcome.pk}/duplicate/").status_code == 403
    assert as_viewer.post(f"/templates/{welcome.pk}/delete/").status_code == 403
    welcome.refresh_from_db()
    assert welcome.name == "Welcome" and welcome.version == 0
    assert MessageTemplate.objects.count() == 1


def test_viewer_may_preview(as_viewer, welcome):
    response = as_viewer.post("/templates/preview/", EMAIL)
    assert response.status_code == 200
    assert "Hi Alex" in srcdoc(response)


# -- list ------------------------------------------------------------------------------------


def test_empty_list_explains_and_offers_to_write_the_first(as_marketer):
    response = as_marketer.get("/templates/")
    assert response.status_code == 200
    assert 'data-testid="empty-state"' in page_of(response)
    assert 'href="/templates/new/"' in page_of(response)
    assert 'href="/messages/"' in page_of(response)


def test_list_shows_name_channel_and_latest_version_and_searches(as_marketer, welcome):
    template_publish(template=welcome)
    template_create(name="Order shipped", channel=ChannelType.SMS, sms_text="Shipped!")
    body = page_of(as_marketer.get("/templates/"))
    assert body.count('data-testid="template-row"') == 2
    assert "v1" in body and "not published" in body and "SMS" in body
    found = page_of(as_marketer.get("/templates/", {"q": "ship"}))
    assert found.count('data-testid="template-row"') == 1 and "Order shipped" in found
    by_channel = page_of(as_marketer.get("/templates/", {"channel": "email"}))
    assert by_channel.count('data-testid="template-row"') == 1 and "Welcome" in by_channel
    none = page_of(as_marketer.get("/templates/", {"q": "nothing like it"}))
    assert 'data-testid="no-matches"' in none


def test_templates_navigation_entry_opens_the_list(as_marketer):
    body = page_of(as_marketer.get("/"))
    assert 'href="/templates/"' in body


# -- create and edit -------------------------------------------------------------------------


def test_marketer_creates_a_template_and_lands_in_its_editor(as_marketer):
    response = as_marketer.post("/templates/new/", EMAIL)
    template = MessageTemplate.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/templates/{template.pk}/"
    assert template.subject == EMAIL["subject"]
    assert template.text_generated and "Hi $!contact.firstName" in template.text
    editor = page_of(as_marketer.get(response["Location"]))
    assert "Never published" in editor and "Welcome" in editor


def test_syntax_error_is_shown_next_to_its_field_with_line_and_column(as_marketer):
    broken = {**EMAIL, "html": "<p>ok</p>\n<p>#if($data.x)never closed</p>"}
    response = as_marketer.post("/templates/new/", broken)
    assert response.status_code == 200
    body = page_of(response)
    error = re.search(r'data-testid="error-html">([^<]*)<', body)
    assert error, body
    assert "Line 2, column" in html.unescape(error.group(1))
    assert MessageTemplate.objects.count() == 0
    # What was typed stays in the form.
    assert "never closed" in body


def test_several_bad_fields_are_all_reported(as_marketer):
    broken = {**EMAIL, "name": "", "subject": "Hi $!{contact", "from_email": "not-an-address"}
    body = page_of(as_marketer.post("/templates/new/", broken))
    assert 'data-testid="error-name"' in body
    assert 'data-testid="error-subject"' in body
    assert 'data-testid="error-from_email"' in body


def test_edit_saves_the_draft_and_keeps_published_version(as_marketer, welcome):
    template_publish(template=welcome)
    changed = {**EMAIL, "subject": "Welcome back $!contact.firstName"}
    response = as_marketer.post(f"/templates/{welcome.pk}/", changed)
    assert response.status_code == 302
    welcome.refresh_from_db()
    assert welcome.subject == "Welcome back $!contact.firstName"
    assert welcome.versions.get().subject == EMAIL["subject"]
    editor = page_of(as_marketer.get(f"/templates/{welcome.pk}/"))
    assert "Published v1" in editor and "unpublished changes" in editor


def test_failed_edit_changes_nothing(as_marketer, welcome):
    saved_html = welcome.html
    response = as_marketer.post(f"/templates/{welcome.pk}/", {**EMAIL, "html": "#foreach($x)"})
    assert response.status_code == 200
    assert 'data-testid="error-html"' in page_of(response)
    welcome.refresh_from_db()
    assert welcome.html == saved_html


def test_sanitised_html_is_what_the_editor_shows_after_saving(as_marketer, welcome):
    as_marketer.post(
        f"/templates/{welcome.pk}/", {**EMAIL, "html": "<p onclick='x()'>Hi</p><script>1</script>"}
    )
    welcome.refresh_from_db()
    assert "script" not in welcome.html and "onclick" not in welcome.html


def test_unknown_template_is_404(as_marketer):
    assert as_marketer.get("/templates/999999/").status_code == 404


# -- preview ---------------------------------------------------------------------------------


def test_preview_renders_unsaved_content_for_the_sample_contact(as_marketer):
    response = as_marketer.post(
        "/templates/preview/", {**EMAIL, "preview_data": '{"code": "SAVE10"}'}
    )
    assert response.status_code == 200
    body = page_of(response)
    assert 'data-testid="preview-subject">Hello Alex<' in body
    rendered = srcdoc(response)
    assert "Hi Alex" in rendered and "Code: SAVE10" in rendered
    # Sandboxed: the rendered message may run no script.
    frame = re.search(r"<iframe[^>]*>", body).group(0)
    assert 'sandbox=""' in frame and "allow-scripts" not in frame
    assert MessageTemplate.objects.count() == 0


def test_preview_for_a_contact_picked_by_id_or_email(as_marketer):
    contact = ContactFactory(first_name="Zoé", email="zoe@example.com")
    by_id = as_marketer.post("/templates/preview/", {**EMAIL, "preview_contact": str(contact.pk)})
    assert "Hi Zoé" in srcdoc(by_id)
    by_email = as_marketer.post(
        "/templates/preview/", {**EMAIL, "preview_contact": "ZOE@example.com"}
    )
    assert "Hi Zoé" in srcdoc(by_email)
    assert f'href="/contacts/{contact.pk}/"' in page_of(by_email)


def test_preview_with_unknown_contact_says_so(as_marketer):
    body = page_of(
        as_marketer.post("/templates/preview/", {**EMAIL, "preview_contact": "nobody@x.example"})
    )
    assert 'data-testid="preview-errors"' in body
    assert "No contact with id or email" in html.unescape(body)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"code": ', "Invalid JSON at line 1, column"),
        ("[1, 2]", "must be a JSON object"),
        # Valid JSON, but no page can show it (UTF-8 cannot encode a lone surrogate).
        ('{"code": "\\ud800"}', "code must not contain a lone UTF-16 surrogate"),
    ],
)
def test_preview_with_bad_json_shows_the_problem_inline(as_marketer, raw, message):
    response = as_marketer.post("/templates/preview/", {**EMAIL, "preview_data": raw})
    assert response.status_code == 200
    body = html.unescape(page_of(response))
    assert 'data-testid="preview-errors"' in body
    assert "Sample data" in body and message in body
    assert "<iframe" not in body


def test_preview_with_template_error_names_field_line_and_column(as_marketer):
    broken = {**EMAIL, "subject": "ok", "html": "<p>\n  #end</p>"}
    body = html.unescape(page_of(as_marketer.post("/templates/preview/", broken)))
    assert 'data-testid="preview-errors"' in body
    assert re.search(r"HTML</strong>: Line 2, column \d+", body), body


def test_preview_ignores_a_missing_name(as_marketer):
    response = as_marketer.post("/templates/preview/", {**EMAIL, "name": ""})
    assert "Hi Alex" in srcdoc(response)


def test_preview_of_an_sms_template_shows_its_text(as_marketer):
    sms = {"channel": "sms", "sms_text": "Hi $!contact.firstName, code $!data.get('c')"}
    body = page_of(as_marketer.post("/templates/preview/", {**sms, "preview_data": '{"c": 7}'}))
    assert 'data-testid="preview-text">Hi Alex, code 7<' in body
    assert "<iframe" not in body


def test_preview_data_cannot_inject_script_into_the_page(as_marketer):
    data = json.dumps({"code": '"><script>alert(1)</script>'})
    response = as_marketer.post("/templates/preview/", {**EMAIL, "preview_data": data})
    body = page_of(response)
    assert "<script>alert(1)" not in body
    assert "<script>" not in srcdoc(response)


def test_preview_only_answers_post(as_marketer):
    assert as_marketer.get("/templates/preview/").status_code == 405


def test_editor_page_wires_the_live_preview(as_marketer, welcome):
    body = page_of(as_marketer.get(f"/templates/{welcome.pk}/"))
    assert 'hx-post="/templates/preview/"' in body
    assert 'hx-include="#template-form"' in body
    assert 'value="mobile"' in body


# -- publish and history ---------------------------------------------------------------------


def test_publish_creates_versions_and_history_lists_them(as_marketer, marketer, welcome):
    response = as_marketer.post(f"/templates/{welcome.pk}/publish/")
    assert response.status_code == 302
    as_marketer.post(f"/templates/{welcome.pk}/", {**EMAIL, "subject": "Second"})
    as_marketer.post(f"/templates/{welcome.pk}/publish/")
    versions = list(welcome.versions.order_by("number"))
    assert [v.number for v in versions] == [1, 2]
    assert versions[0].published_by == marketer
    history = page_of(as_marketer.get(f"/templates/{welcome.pk}/versions/"))
    assert history.count('data-testid="version-row"') == 2
    assert "mark-marketer" in history
    first = as_marketer.get(f"/templates/{welcome.pk}/versions/1/")
    assert first.status_code == 200
    assert 'data-testid="version-subject">Hello $!contact.firstName<' in page_of(first)
    assert "Hi Alex" in srcdoc(first)
    second = page_of(as_marketer.get(f"/templates/{welcome.pk}/versions/2/"))
    assert 'data-testid="version-subject">Second<' in second
    assert as_marketer.get(f"/templates/{welcome.pk}/versions/3/").status_code == 404


def test_publish_refused_shows_why(as_marketer):
    template = template_create(name="Empty")
    response = as_marketer.post(f"/templates/{template.pk}/publish/", follow=True)
    body = html.unescape(page_of(response))
    assert "Not published" in body and "subject" in body.lower()
    assert template.versions.count() == 0


def test_publish_needs_post(as_marketer, welcome):
    assert as_marketer.get(f"/templates/{welcome.pk}/publish/").status_code == 405


def test_version_history_empty_state(as_marketer, welcome):
    body = page_of(as_marketer.get(f"/templates/{welcome.pk}/versions/"))
    assert 'data-testid="empty-state"' in body


# -- duplicate and delete --------------------------------------------------------------------


def test_duplicate_copies_content_but_not_versions(as_marketer, welcome):
    template_publish(template=welcome)
    response = as_marketer.post(f"/templates/{welcome.pk}/duplicate/")
    copy = MessageTemplate.objects.exclude(pk=welcome.pk).get()
    assert response["Location"] == f"/templates/{copy.pk}/"
    assert copy.name == "Welcome (copy)"
    assert copy.html == welcome.html and copy.subject == welcome.subject
    assert copy.version == 0 and not copy.versions.exists()


def test_delete_asks_then_removes_template_and_versions(as_marketer, welcome):
    template_publish(template=welcome)
    confirm = as_marketer.get(f"/templates/{welcome.pk}/delete/")
    assert confirm.status_code == 200 and "1 published version" in page_of(confirm)
    response = as_marketer.post(f"/templates/{welcome.pk}/delete/")
    assert response["Location"] == "/templates/"
    assert not MessageTemplate.objects.exists() and not TemplateVersion.objects.exists()


def test_delete_is_refused_when_a_version_was_sent(as_marketer, welcome):
    version = template_publish(template=welcome)
    request = SendRequest.objects.create(kind=SendKind.TEST, template_version=version)
    Delivery.objects.create(
        send_request=request,
        channel=ChannelType.EMAIL,
        locator="a@example.com",
        template_version=version,
    )
    response = as_marketer.post(f"/templates/{welcome.pk}/delete/", follow=True)
    assert "cannot be deleted" in html.unescape(page_of(response))
    assert MessageTemplate.objects.filter(pk=welcome.pk).exists()
    assert welcome.versions.count() == 1


def test_save_and_publish_in_one_click(as_marketer, welcome):
    changed = {**EMAIL, "subject": "Fresh", "publish": "1"}
    response = as_marketer.post(f"/templates/{welcome.pk}/", changed, follow=True)
    assert "Published version 1." in page_of(response)
    assert welcome.versions.get().subject == "Fresh"


def test_create_and_publish_keeps_the_draft_when_publishing_is_refused(as_marketer):
    response = as_marketer.post(
        "/templates/new/", {**EMAIL, "subject": "", "publish": "1"}, follow=True
    )
    body = html.unescape(page_of(response))
    assert "created" in body and "Not published: Subject" in body
    template = MessageTemplate.objects.get()
    assert template.version == 0
