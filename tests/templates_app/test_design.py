"""Block designs: starter layouts, server-side MJML compilation through the template save,
Velocity placeholders inside blocks, refused designs, images, the API, the page and admin."""

import io
import re
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from config.core.errors import FieldError
from templates.design import (
    MAX_IMAGE_BYTES,
    STARTER_LAYOUTS,
    DesignCompileError,
    editor_image_create,
    starter_layout_mjml,
    template_design_save,
)
from templates.errors import TemplateValidationError
from templates.models import EditorImage, EditorKind, MessageTemplate
from templates.services import template_create, template_duplicate, template_render

pytestmark = pytest.mark.django_db

BASE_URL = "https://herald.example"


def mjml(body: str) -> str:
    return f"<mjml><mj-body>{body}</mj-body></mjml>"


def section(content: str) -> str:
    return f"<mj-section><mj-column>{content}</mj-column></mj-section>"


PLACEHOLDERS = mjml(
    section("<mj-text>Hello $!contact.firstName</mj-text>")
    + "<mj-raw>#if($contact.firstName &amp;&amp; $data.get('vip'))</mj-raw>"
    + section("<mj-text>Members only</mj-text>")
    + "<mj-raw>#end</mj-raw>"
    + section(
        "<mj-button href=\"https://shop.example/c/$!data.get('code')\">Claim</mj-button>"
        '<mj-text><a href="%UNSUBSCRIBE_URL%">Unsubscribe</a></mj-text>'
    )
)


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


IMAGES = {
    "image/png": png(),
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32,
    "image/gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    "image/webp": b"RIFF\x1a\x00\x00\x00WEBPVP8L" + b"\x00" * 14,
}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.HERALD_BASE_URL = BASE_URL


@pytest.fixture
def email(db):
    return template_create(name="Spring", subject="Spring", html="<p>Written by hand</p>")


# --- compiling and saving ---------------------------------------------------------------------


@pytest.mark.parametrize("key", [layout.key for layout in STARTER_LAYOUTS])
def test_each_starter_layout_compiles_into_the_template(email, key):
    source = starter_layout_mjml(key=key)
    assert "%STATIC_URL%" not in source

    template_design_save(template=email, mjml=source, project={"pages": []})

    email.refresh_from_db()
    assert email.editor == EditorKind.BLOCKS
    assert email.design_mjml == source
    assert "%UNSUBSCRIBE_URL%" in email.html
    assert "$!contact.firstName" in email.html
    assert "<mj-" not in email.html
    assert "@media" in email.html  # responsive columns survive sanitising
    assert email.text_generated and "Unsubscribe" in email.text
    if "<mj-image" in source:
        assert f'src="{BASE_URL}/static/templates/image-placeholder.png"' in email.html
    rendered = template_render(template=email, contact={"firstName": "Ann"}, data={})
    assert "Ann" in rendered.html


def test_placeholders_survive_in_text_in_links_and_around_a_block(email):
    template_design_save(template=email, mjml=PLACEHOLDERS)
    email.refresh_from_db()
    assert "Hello $!contact.firstName" in email.html
    assert "href=\"https://shop.example/c/$!data.get('code')\"" in email.html

    vip = template_render(
        template=email, contact={"firstName": "Ann"}, data={"vip": True, "code": "S10"}
    )
    assert "Hello Ann" in vip.html
    assert "Members only" in vip.html
    assert 'href="https://shop.example/c/S10"' in vip.html
    others = template_render(template=email, contact={"firstName": "Bob"}, data={"code": "S10"})
    assert "Members only" not in others.html
    assert "Claim" in others.html


def test_comparisons_the_editor_wrote_as_entities_work_in_conditions(email):
    source = mjml(
        section(
            "<mj-text>#if($data.get('n') &lt; 5 &amp;&amp; $data.get('n') &gt; 1)few#end"
            "#if($contact.firstName == &#39;Ann&#39;)Ann#end; 1 &lt; 2 &amp; 3</mj-text>"
        )
    )
    template_design_save(template=email, mjml=source)
    rendered = template_render(template=email, contact={"firstName": "Ann"}, data={"n": 3})
    assert "fewAnn; 1 &lt; 2 &amp; 3" in rendered.html
    rendered = template_render(template=email, contact={"firstName": "Bo"}, data={"n": 9})
    assert "few" not in rendered.html and "Ann" not in rendered.html


def test_a_design_that_fails_to_compile_keeps_the_last_good_one(email):
    good = mjml(section("<mj-text>Version one</mj-text>"))
    template_design_save(template=email, mjml=good, project={"v": 1})
    email.refresh_from_db()
    saved_html = email.html

    with pytest.raises(DesignCompileError) as failure:
        template_design_save(template=email, mjml="<mjml><mj-body><mj-section>", project={"v": 2})
    assert failure.value.field == "mjml"
    assert "cannot be compiled" in failure.value.message
    assert "end of stream" in failure.value.message  # mrml's own words

    email.refresh_from_db()
    assert email.html == saved_html and "Version one" in email.html
    assert email.design_mjml == good and email.design_project == {"v": 1}


def test_compiled_html_refused_by_the_template_rules_changes_nothing(email):
    broken_velocity = mjml(section("<mj-text>#if($contact.firstName)never closed</mj-text>"))
    with pytest.raises(TemplateValidationError) as failure:
        template_design_save(template=email, mjml=broken_velocity)
    assert [error.field for error in failure.value.errors] == ["mjml"]
    assert "compiled HTML" in failure.value.errors[0].message
    email.refresh_from_db()
    assert email.html == "<p>Written by hand</p>"
    assert email.editor == EditorKind.HTML and email.design_mjml == ""


@pytest.mark.parametrize(
    "source, problem",
    [
        ("", "empty"),
        ("<p>not mjml</p>", "starts with <mjml>"),
        ("<mjml><mj-body><mj-section></mj-body></mjml>", "cannot be compiled"),
    ],
)
def test_bad_documents_are_named(email, source, problem):
    with pytest.raises(DesignCompileError, match=problem):
        template_design_save(template=email, mjml=source)


def test_an_include_is_refused_rather_than_read_from_the_server(email, tmp_path):
    secret = tmp_path / "secret.mjml"
    secret.write_text("<mj-text>server file</mj-text>")
    source = mjml(section(f'<mj-include path="{secret}" />'))
    with pytest.raises(DesignCompileError, match="unable to load included template"):
        template_design_save(template=email, mjml=source)
    email.refresh_from_db()
    assert "server file" not in email.html


def test_a_copy_of_a_designed_template_keeps_its_design(email):
    source = mjml(section("<mj-text>Designed</mj-text>"))
    template_design_save(template=email, mjml=source, project={"pages": [1]})
    copy = template_duplicate(template=email)
    copy.refresh_from_db()
    assert copy.editor == EditorKind.BLOCKS
    assert copy.design_mjml == source and copy.design_project == {"pages": [1]}
    assert copy.html == email.html


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", sorted(IMAGES))
def test_image_types_are_recognised_by_their_bytes(content_type, marketer):
    upload = SimpleUploadedFile("picture.bin", IMAGES[content_type], "application/octet-stream")
    image = editor_image_create(upload=upload, user=marketer)
    assert image.content_type == content_type
    assert image.uploaded_by == marketer
    assert image.file.name.endswith(image.extension)


def test_unknown_image_type_is_refused():
    svg = SimpleUploadedFile("logo.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/png")
    with pytest.raises(FieldError, match="Not a PNG, JPEG, GIF or WebP"):
        editor_image_create(upload=svg)
    assert not EditorImage.objects.exists()


# --- the API ----------------------------------------------------------------------------------


def test_api_saves_a_design_and_reads_it_back(api, full_key, email):
    path = f"/api/herald/templates/{email.pk}/design"
    body = {"mjml": PLACEHOLDERS, "project": {"pages": [{"id": "p1"}]}}
    response = api.post(path, key=full_key, body=body)
    assert response.status_code == 200, response.json()
    saved = response.json()
    assert saved["editor"] == "blocks"
    assert "Hello $!contact.firstName" in saved["html"]
    assert saved["project"] == {"pages": [{"id": "p1"}]}

    read = api.get(path, key=full_key).json()
    assert read["mjml"] == PLACEHOLDERS and read["html"] == saved["html"]
    template = api.get(f"/api/herald/templates/{email.pk}", key=full_key).json()
    assert template["editor"] == "blocks" and template["html"] == saved["html"]
    assert api.get(path + "/", key=full_key).status_code == 200


def test_api_design_of_a_fresh_template_is_empty(api, full_key, email):
    read = api.get(f"/api/herald/templates/{email.pk}/design", key=full_key).json()
    assert read["editor"] == "html" and read["mjml"] == "" and read["project"] == {}


@pytest.mark.parametrize(
    "body, field, problem",
    [
        ({}, "mjml", "required"),
        ({"mjml": ""}, "mjml", "blank"),
        ({"mjml": "<mjml><mj-body><mj-section>"}, "mjml", "end of stream"),
        ({"mjml": "<mjml><mj-body></mj-body></mjml>", "project": [1]}, "project", "JSON object"),
        (
            {"mjml": mjml(section("<mj-text>#foreach($x in $y)open</mj-text>"))},
            "mjml",
            "compiled HTML",
        ),
    ],
)
def test_api_bad_designs_are_400_naming_the_field(api, full_key, email, body, field, problem):
    response = api.post(f"/api/herald/templates/{email.pk}/design", key=full_key, body=body)
    assert response.status_code == 400
    assert problem in " ".join(response.json()[field])
    email.refresh_from_db()
    assert email.html == "<p>Written by hand</p>"


def test_api_refuses_a_design_for_an_sms_template(api, full_key):
    sms = template_create(name="Code", channel="sms", sms_text="Code $!data.get('c')")
    response = api.post(
        f"/api/herald/templates/{sms.pk}/design",
        key=full_key,
        body={"mjml": mjml(section("<mj-text>x</mj-text>"))},
    )
    assert response.status_code == 400
    assert "channel" in response.json()


def test_api_design_needs_a_key_with_the_manage_right(api, limited_key, email):
    path = f"/api/herald/templates/{email.pk}/design"
    assert api.get(path).status_code == 401
    assert api.get(path, key=limited_key).status_code == 403
    assert api.get("/api/herald/templates/999999/design", key=limited_key).status_code == 403


def test_api_design_of_a_missing_template_is_404(api, full_key):
    assert api.get("/api/herald/templates/999999/design", key=full_key).status_code == 404


def upload(api, key, name: str, content: bytes, content_type: str = "application/octet-stream"):
    file = SimpleUploadedFile(name, content, content_type)
    return api.client.post(
        "/api/herald/images",
        {"file": file},
        headers={"Authorization": api.basic(key.secret)},
    )


def test_api_uploaded_image_is_served_publicly_at_its_absolute_url(api, full_key, client):
    response = upload(api, full_key, "hero.png", png(), "image/png")
    assert response.status_code == 201, response.json()
    answer = response.json()
    assert answer["contentType"] == "image/png" and answer["name"] == "hero.png"
    assert answer["url"].startswith(f"{BASE_URL}/images/") and answer["url"].endswith(".png")

    client.logout()
    served = client.get(answer["url"].removeprefix(BASE_URL))
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert b"".join(served.streaming_content) == png()
    wrong_extension = answer["url"].removeprefix(BASE_URL).replace(".png", ".gif")
    assert client.get(wrong_extension).status_code == 404


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("notes.png", b"just some text", "Not a PNG, JPEG, GIF or WebP"),
        ("empty.png", b"", "empty"),
        ("huge.png", png() + b"\x00" * MAX_IMAGE_BYTES, "at most 5,242,880"),
    ],
)
def test_api_bad_images_are_400_naming_the_file(api, full_key, name, content, problem):
    response = upload(api, full_key, name, content)
    assert response.status_code == 400
    assert problem in " ".join(response.json()["file"])
    assert not EditorImage.objects.exists()


def test_api_image_upload_without_a_file_is_400(api, full_key):
    response = api.client.post(
        "/api/herald/images", {}, headers={"Authorization": api.basic(full_key.secret)}
    )
    assert response.status_code == 400
    assert "file" in response.json()


def test_api_image_upload_needs_the_manage_right(api, limited_key):
    assert upload(api, limited_key, "a.png", png()).status_code == 403


def test_session_upload_without_csrf_token_is_refused(marketer):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(marketer)
    response = browser.post("/api/herald/images", {"file": io.BytesIO(png())})
    assert response.status_code == 403


# --- pages and admin --------------------------------------------------------------------------


def test_template_page_links_to_its_block_design(client, marketer, email):
    client.force_login(marketer)
    page = client.get(f"/templates/{email.pk}/").content.decode()
    assert f'href="/templates/{email.pk}/design/"' in page


def test_design_page_offers_starter_layouts_then_opens_one(client, marketer, email):
    client.force_login(marketer)
    picking = client.get(f"/templates/{email.pk}/design/").content.decode()
    for layout in STARTER_LAYOUTS:
        assert f'href="?starter={layout.key}"' in picking
    opened = client.get(f"/templates/{email.pk}/design/?starter=announcement")
    assert opened.status_code == 200
    assert "An announcement" in opened.content.decode()
    assert client.get(f"/templates/{email.pk}/design/?starter=nope").status_code == 404


def test_starting_over_shows_the_starters_and_keeps_the_saved_design(client, marketer, email):
    template_design_save(template=email, mjml=mjml(section("<mj-text>Saved one</mj-text>")))
    client.force_login(marketer)
    assert "Saved one" in client.get(f"/templates/{email.pk}/design/").content.decode()
    picking = client.get(f"/templates/{email.pk}/design/?pick=1").content.decode()
    assert 'data-testid="starter-newsletter"' in picking
    assert 'data-testid="back-to-design"' in picking


def test_viewer_sees_a_design_but_cannot_save_or_start_one(client, viewer, email):
    template_design_save(template=email, mjml=mjml(section("<mj-text>Saved one</mj-text>")))
    client.force_login(viewer)
    page = client.get(f"/templates/{email.pk}/design/").content.decode()
    assert "Saved one" in page and 'data-testid="design-save"' not in page
    # The preview is rendered into the page, for a viewer too (the preview API is a write).
    assert re.search(r'data-testid="design-preview" srcdoc="[^"]*Saved one', page)
    assert client.get(f"/templates/{email.pk}/design/?starter=promotion").status_code == 403


def test_admin_lists_images_and_the_editor_of_templates(client, admin_user, email):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    template_design_save(template=email, mjml=mjml(section("<mj-text>x</mj-text>")))
    editor_image_create(upload=SimpleUploadedFile("logo.gif", IMAGES["image/gif"]))
    templates = client.get("/admin/templates/messagetemplate/").content.decode()
    assert "Block editor" in templates
    images = client.get("/admin/templates/editorimage/").content.decode()
    assert "logo.gif" in images
    image = EditorImage.objects.get()
    detail = client.get(f"/admin/templates/editorimage/{image.pk}/change/").content.decode()
    assert f"{BASE_URL}/images/{image.key}.gif" in detail


def test_admin_upload_goes_through_the_image_rules(client, admin_user):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    refused = client.post(
        "/admin/templates/editorimage/add/",
        {"file": SimpleUploadedFile("x.png", b"text, not an image")},
    )
    assert "Not a PNG, JPEG, GIF or WebP" in refused.content.decode()
    client.post("/admin/templates/editorimage/add/", {"file": SimpleUploadedFile("ok.png", png())})
    assert EditorImage.objects.get().content_type == "image/png"
    assert MessageTemplate.objects.count() == 0
