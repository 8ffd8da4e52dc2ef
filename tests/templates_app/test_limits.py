"""Sanitising is bounded: HTML over the size, depth, attribute or node bounds is a 400 naming
`html` (a form error in the editor's preview), refused before html5lib spends minutes on
it; real, large but shallow emails are still accepted. How fast each refusal is: the
`bounds` benchmark (`bin/bench bounds`)."""

import html

import pytest

from templates.models import MessageTemplate
from templates.sanitize import MAX_HTML_CHARS, MAX_HTML_DEPTH, MAX_HTML_NODES

pytestmark = pytest.mark.django_db

# A dense but ordinary piece of email layout: 17 elements and attributes in 250 characters.
ROW = (
    '<table width="600" cellpadding="0" cellspacing="0"><tr><td style="color: #333; '
    'padding: 4px"><p>Hello $!contact.firstName, <a href="https://shop.example/a?b=1">see '
    'this</a> and some more text about it.</p><img src="https://shop.example/i.png" alt="x" '
    'width="100"></td></tr></table>\n'
)


def create(api, key, source):
    body = {"name": "Big", "channel": "email", "subject": "Hi", "html": source}
    return api.post("/api/herald/templates/", key=key, body=body)


@pytest.mark.parametrize(
    "source, problem",
    [
        ("<div>" * 100_000, f"nests deeper than {MAX_HTML_DEPTH} elements"),
        ("<table><tr><td>" * 30_000, f"nests deeper than {MAX_HTML_DEPTH} elements"),
        ("<p " + " ".join(f"a{i}=1" for i in range(20_000)) + ">x</p>", "more than 100 attributes"),
        ("<p>" + "&amp;" * (MAX_HTML_NODES + 1) + "</p>", f"more than {MAX_HTML_NODES:,} elements"),
        ("<p>" + "x" * MAX_HTML_CHARS + "</p>", f"longer than {MAX_HTML_CHARS:,} characters"),
    ],
    ids=["nested divs", "nested tables", "attributes", "references", "size"],
)
def test_html_over_a_bound_is_a_400_naming_html(api, full_key, source, problem):
    response = create(api, full_key, source)
    assert response.status_code == 400, response.content[:300]
    errors = response.json()
    assert list(errors) == ["html"]
    assert problem in errors["html"][0]
    assert not MessageTemplate.objects.exists()


def test_a_viewers_preview_of_deeply_nested_html_is_a_form_error(client, viewer):
    client.force_login(viewer)
    response = client.post(
        "/templates/preview/", {"channel": "email", "subject": "Hi", "html": "<div>" * 100_000}
    )
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert 'data-testid="preview-errors"' in page
    assert f"nests deeper than {MAX_HTML_DEPTH} elements" in page


def test_a_real_large_shallow_email_is_accepted(api, full_key):
    source = "<div>" + ROW * (480_000 // len(ROW)) + "</div>"
    response = create(api, full_key, source)
    assert response.status_code == 201, response.content[:300]
    assert response.json()["html"].count("<table") == source.count("<table")
