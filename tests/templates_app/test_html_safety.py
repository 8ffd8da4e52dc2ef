"""The HTML a recipient receives is the sanitised HTML: sanitiser-bypass and mutation-XSS
payloads saved by a marketer are refused or reach the SMTP server without script-capable
markup, through the real save, test-send and sending path."""

import pytest

# bleach's own copy of html5lib: a browser-conformant parser, used here to read the mail the
# way a mail client's HTML engine would.
from bleach._vendor import html5lib

from campaigns.delivery.engine import send_request_process
from campaigns.messages import template_test_send
from templates.engine import compile_template
from templates.sanitize import HtmlSanitizeError, sanitize_html
from templates.services import TemplateValidationError, template_create
from tests.support.smtp import SMTPSink, use_sink

pytestmark = pytest.mark.django_db

SCRIPT_ELEMENTS = {"script", "iframe", "object", "embed", "svg", "math", "form", "base", "meta"}


@pytest.fixture
def sink(settings):
    with SMTPSink() as smtp:
        use_sink(settings, smtp)
        yield smtp


def script_capable(html: str) -> list[str]:
    """What in `html`, parsed as a browser does, could run script."""
    found = []
    document = html5lib.parse(html, namespaceHTMLElements=False)
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue  # comments
        name = element.tag.rpartition("}")[2].lower()
        if name in SCRIPT_ELEMENTS:
            found.append(f"<{name}>")
        for attribute, value in element.attrib.items():
            attribute = attribute.rpartition("}")[2].lower()
            if attribute.startswith("on"):
                found.append(f"<{name} {attribute}>")
            if attribute in ("href", "src", "action") and "script:" in value.lower():
                found.append(f"<{name} {attribute}={value}>")
    return found


def sent_html(sink, html: str, data: dict | None = None) -> str | None:
    """Save `html` as a marketer's template and test-send it; the HTML part the SMTP server
    received, or None when saving refused the template."""
    try:
        template = template_create(
            name="Payload", subject="Hi", from_email="shop@shop.example", html=html
        )
    except TemplateValidationError as exc:
        assert [error.field for error in exc.errors] == ["html"], exc.errors
        return None
    delivery = template_test_send(template=template, email="ann@example.com", data=data or {})
    before = len(sink.messages)
    send_request_process(send_request_id=delivery.send_request_id)
    assert len(sink.messages) == before + 1, "the test message was not sent"
    part = sink.messages[-1].get_body(("html",))
    return part.get_content() if part is not None else ""


def test_a_style_tag_inside_an_attribute_value_smuggles_nothing(sink):
    html = sent_html(sink, '<p title="<style>"><img src=x onerror=alert(1)></style>">hi</p>')
    assert html is not None and "hi" in html
    assert script_capable(html) == []
    assert "onerror" not in html


def test_an_unresolved_reference_cannot_break_out_of_an_attribute(sink):
    reference = """$data.get('a" onmouseover="alert(9)//')"""
    html = sent_html(sink, f'<p title="{reference}">x</p>')
    assert html is not None
    assert script_capable(html) == []
    paragraphs = list(html5lib.parse(html, namespaceHTMLElements=False).iter("p"))
    assert paragraphs[0].get("title") == reference, "written as the marketer typed it"


def test_an_unresolved_reference_is_html_escaped_only_in_the_html_rendering():
    template = compile_template("""<p title="$data.get('a" b="c')">$x.y</p>""")
    assert template.render({}, {}, escape_html=True) == (
        '<p title="$data.get(&#x27;a&quot; b=&quot;c&#x27;)">$x.y</p>'
    )
    assert template.render({}, {}) == """<p title="$data.get('a" b="c')">$x.y</p>"""
    assert compile_template("$data.get('<b>')").render({}, {}, escape_html=True) == (
        "$data.get(&#x27;&lt;b&gt;&#x27;)"
    )


def test_resolved_values_are_escaped_in_html_and_not_in_text():
    template = compile_template('<p title="$data.t">$data.t</p>')
    data = {"t": '" onclick="x()" <b>'}
    assert template.render({}, data, escape_html=True) == (
        '<p title="&quot; onclick=&quot;x()&quot; &lt;b&gt;">&quot; onclick=&quot;x()&quot; '
        "&lt;b&gt;</p>"
    )
    assert template.render({}, data) == f'<p title="{data["t"]}">{data["t"]}</p>'


BYPASSES = [
    # Namespace confusion: <style> is raw text in HTML but holds elements in SVG/MathML.
    "<svg><style><img src=x onerror=alert(1)></style></svg>",
    "<svg><style>&lt;/style&gt;&lt;img src=x onerror=alert(1)&gt;",
    '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<math><mi><style>&lt;/style&gt;&lt;img src=x onerror=alert(2)&gt;</style></mi></math>",
    "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
    # <noscript> is raw text in a browser with scripting on.
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    # Comment markers inside attribute values.
    '<p title="<!--"><img src=x onerror=alert(1)>-->">x</p>',
    '<a title="-->"><img src=x onerror=alert(1)>">x</a>',
    '<p title="--><img src=x onerror=alert(1)>"><!-- x -->y</p>',
    # Style blocks: a </style> inside a CSS string, nested style text, comments in style.
    '<style>p { font-family: "</style><img src=x onerror=alert(1)>" }</style><p>x</p>',
    "<style><style>p{}</style><img src=x onerror=alert(1)></style>",
    "<style><!--</style><img src=x onerror=alert(1)>--></style>",
    "<style>/*</style><img src=x onerror=alert(1)>*/</style>",
    # Template syntax that joins text of one context to markup of another.
    "<style> <#if(false)x#end/style><img src=x onerror=alert(1)></style>",
    '<p title="#if(false)">#end" onmouseover="alert(1)">x</p>',
    '#macro(m)" onmouseover="alert(1)#end<p title="#m()">x</p>',
    '<style>#macro(m)x" onmouseover="alert(1)#end</style><p title="#m()">x</p>',
    # Old tricks.
    '<img src="x" onerror="alert(1)"><a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a><a href=" javascript:alert(1)">y</a>',
    "<scr<script>ipt>alert(1)</script><img src=x onerror=alert(1)>",
    "<table><td><template><img src=x onerror=alert(1)></template></td></table>",
    "<title><img src=x onerror=alert(1)></title><textarea><img src=x onerror=alert(1)>",
]


@pytest.mark.parametrize("payload", BYPASSES)
def test_sanitiser_bypass_payload_reaches_no_recipient_as_script(sink, payload):
    html = sent_html(sink, payload)
    if html is not None:
        assert script_capable(html) == [], html


@pytest.mark.parametrize("payload", BYPASSES)
def test_sanitised_html_rendered_for_html_holds_no_script(payload):
    try:
        cleaned = sanitize_html(payload)
    except HtmlSanitizeError:
        return
    assert script_capable(cleaned) == [], cleaned
    assert script_capable(compile_template(cleaned).render({}, {}, escape_html=True)) == []


def test_style_blocks_are_sanitised_in_place_and_responsive_css_is_kept():
    source = (
        '<html><head><style type="text/css">td > a { color: red }\n'
        "@media only screen and (max-width: 600px) { .col { width: 100% !important } }</style>"
        '</head><body><!--[if mso]><p>Outlook</p><![endif]--><p class="col">x</p></body></html>'
    )
    cleaned = sanitize_html(source)
    assert cleaned.startswith('<style type="text/css">td > a { color: red }')
    assert "@media only screen and (max-width: 600px)" in cleaned
    assert "Outlook" not in cleaned
    assert cleaned.endswith('<p class="col">x</p>')


@pytest.mark.parametrize(
    "css, problem",
    [
        ('@import url("https://x.example/a.css");', "@import"),
        ("@IMPORT 'https://x.example/a.css';", "@import"),
        ("p { width: expression(alert(1)) }", "expression"),
        ("p { width: expr\\65 ssion(alert(1)) }", "expression"),
        ("p { background: url(javascript:alert(1)) }", "javascript:"),
        ("p { background: url('java\\73 cript:alert(1)') }", "javascript:"),
        ("p { behavior: url(x.htc) }", "behavior"),
        ("p { -moz-binding: url(x.xml#y) }", "-moz-binding"),
        ("p { color: red } <b", "<"),
    ],
)
def test_dangerous_css_in_a_style_block_is_refused(css, problem):
    with pytest.raises(HtmlSanitizeError, match=problem):
        sanitize_html(f"<style>{css}</style><p>x</p>")


def test_velocity_inside_a_style_block_still_works():
    cleaned = sanitize_html(
        "<style>p { color: $!data.get('colour') } #if($data.big) h1 { font-size: 40px } #end"
        "</style><p>x</p>"
    )
    rendered = compile_template(cleaned).render({}, {"colour": "red", "big": True})
    assert "p { color: red }" in rendered and "h1 { font-size: 40px }" in rendered
