"""A marketer designs a template in the block editor in a real Chromium: picks a starter
layout, adds a button block, saves, and sees the compiled message in the preview."""

import pytest
from playwright.sync_api import expect

from templates.models import EditorImage, EditorKind, MessageTemplate
from templates.services import template_create
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page
from tests.templates_app.test_design import png
from tests.test_browser_csp import Violations

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADD_BUTTON = """
() => {
  const editor = window.heraldDesignEditor;
  const column = editor.getWrapper().findType("mj-column")[0];
  column.append('<mj-button href="https://shop.example/new">Browse the new range</mj-button>');
  column.append(
    `<mj-text><a href="https://shop.example/r/$!data.get('ref')">Your offer</a></mj-text>`);
  // A condition around the banner section, in two Raw blocks.
  const body = editor.getWrapper().findType("mj-body")[0];
  body.append("<mj-raw>#if($contact.firstName && $contact.firstName != 'Nobody')</mj-raw>",
    {at: 0});
  body.append("<mj-raw>#end</mj-raw>", {at: 2});
}
"""


def test_marketer_builds_a_design_from_a_starter_and_sees_it_compiled(
    page, marketer, live_server, settings, tmp_path
):
    settings.HERALD_BASE_URL = live_server.url
    settings.MEDIA_ROOT = tmp_path
    template = template_create(name="Spring sale", subject="Sale", html="<p>Old</p>")
    violations = Violations(page)
    log_in(page, marketer.username, PASSWORD)
    open_page(page, f"/templates/{template.pk}/")
    page.get_by_test_id("open-design").click()

    page.get_by_test_id("starter-promotion").click()
    canvas = page.frame_locator("#gjs iframe.gjs-frame")
    expect(canvas.get_by_text("-20% this weekend")).to_be_visible()
    # A block from the editor's block panel, added through the editor's own API (dragging
    # into the canvas iframe is flaky on a loaded machine).
    blocks = page.evaluate("() => window.heraldDesignEditor.Blocks.getAll().map(b => b.id)")
    for block in ("mj-text", "mj-image", "mj-button", "mj-2-columns", "mj-divider"):
        assert block in blocks
    for block in ("mj-spacer", "mj-social-group", "herald-footer"):
        assert block in blocks
    page.evaluate(ADD_BUTTON)
    expect(canvas.get_by_text("Browse the new range")).to_be_visible()

    # An image uploaded from the asset manager lands in Herald and in the asset list.
    page.evaluate("() => window.heraldDesignEditor.AssetManager.open()")
    page.locator(".gjs-am-file-uploader input[type=file]").set_input_files(
        files=[{"name": "hero.png", "mimeType": "image/png", "buffer": png()}]
    )
    page.wait_for_function(
        "prefix => window.heraldDesignEditor.AssetManager.getAll()"
        ".some(asset => asset.get('src').startsWith(prefix))",
        arg=f"{live_server.url}/images/",
    )
    image = EditorImage.objects.get()
    assert image.uploaded_by == marketer
    page.evaluate("() => window.heraldDesignEditor.AssetManager.close()")

    page.get_by_test_id("design-save").click()
    expect(page.get_by_test_id("design-status")).to_contain_text("Saved")
    preview = page.frame_locator('[data-testid="design-preview"]')
    expect(preview.get_by_text("Browse the new range")).to_be_visible()
    # The preview renders the placeholders for the sample contact.
    expect(preview.get_by_text("Alex, the whole shop is on sale")).to_be_visible()

    template.refresh_from_db()
    assert template.editor == EditorKind.BLOCKS
    assert "<mj-button" in template.design_mjml
    assert "$!contact.firstName" in template.html
    assert 'href="https://shop.example/new"' in template.html
    assert "href=\"https://shop.example/r/$!data.get('ref')\"" in template.html
    assert "%UNSUBSCRIBE_URL%" in template.html
    assert "#if($contact.firstName && $contact.firstName != 'Nobody')" in template.html
    assert template.design_project

    # Reopened, the design comes back as it was left.
    open_page(page, f"/templates/{template.pk}/design/")
    expect(canvas.get_by_text("Browse the new range")).to_be_visible()
    assert not violations.seen, violations.seen
    assert MessageTemplate.objects.count() == 1
