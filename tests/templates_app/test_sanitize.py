"""Email HTML sanitising keeps Velocity intact; text from HTML; CSS inlining."""

import pytest

from templates.engine import TemplateSyntaxError, compile_template
from templates.sanitize import HtmlSanitizeError, html_to_text, inline_css, sanitize_html


def test_script_iframe_form_and_event_handlers_are_removed_with_their_content():
    source = (
        '<p onclick="steal()">Hi</p><script>alert(1)</script><iframe src="https://x"></iframe>'
        '<form action="https://x"><input name="q"></form><img src="https://x/a.png" onerror="z()">'
    )
    cleaned = sanitize_html(source)
    assert cleaned == '<p>Hi</p><img src="https://x/a.png">'


def test_links_keep_http_https_mailto_only():
    source = (
        '<a href="https://a.example/x">1</a><a href="http://b.example">2</a>'
        '<a href="mailto:me@example.com">3</a><a href="javascript:alert(1)">4</a>'
        '<a href="data:text/html,x">5</a>'
    )
    assert sanitize_html(source) == (
        '<a href="https://a.example/x">1</a><a href="http://b.example">2</a>'
        '<a href="mailto:me@example.com">3</a><a>4</a><a>5</a>'
    )


def test_inline_styles_keep_email_properties_and_drop_the_rest():
    source = (
        '<td style="color: red; padding: 4px; position: absolute; '
        'background-image: url(javascript:alert(1)); width: expression(alert(1))">x</td>'
    )
    cleaned = sanitize_html(f"<table><tr>{source}</tr></table>")
    assert 'style="color: red; padding: 4px"' in cleaned
    assert "position" not in cleaned and "javascript" not in cleaned and "expression" not in cleaned


def test_tables_and_images_survive():
    source = (
        '<table width="600" cellpadding="0" cellspacing="0" border="0"><tr>'
        '<td align="center" bgcolor="#ffffff"><img src="https://x/logo.png" alt="Logo" '
        'width="120"></td></tr></table>'
    )
    assert sanitize_html(source) == source.replace("<tr>", "<tbody><tr>").replace(
        "</table>", "</tbody></table>"
    )


def test_velocity_in_text_conditions_and_loops_survives():
    source = (
        "<p>Hello $!contact.firstName, #if($data.get('n') > 5 && $data.get('n') < 10)"
        "mid#elseif($data.n >= 10)big#else small#end</p>"
        "<table>#foreach($item in $data.get('items'))<tr><td>$item.get('name')</td></tr>#end"
        "</table>"
    )
    cleaned = sanitize_html(source)
    assert "#if($data.get('n') > 5 && $data.get('n') < 10)" in cleaned
    assert "#foreach($item in $data.get('items'))" in cleaned
    # The loop stays inside the table (html5lib would move bare text out of a <table>).
    assert cleaned.index("#foreach") > cleaned.index("<table>")
    assert cleaned.index("#end") < cleaned.index("</table>")
    rendered = compile_template(cleaned).render(
        {"firstName": "Ann"}, {"n": 7, "items": [{"name": "Tea"}, {"name": "Cake"}]}
    )
    assert "Hello Ann, mid" in rendered
    assert rendered.count("<tr><td>") == 2 and "Tea" in rendered and "Cake" in rendered


def test_velocity_in_href_and_style_attributes_survives():
    source = (
        "<a href=\"$!data.get('link')\" style=\"color: $!data.get('colour')\">Shop</a>"
        '<a href="https://x.example/u?e=$contact.email&amp;c=#if($data.vip)1#else 0#end">u</a>'
    )
    cleaned = sanitize_html(source)
    assert "href=\"$!data.get('link')\"" in cleaned
    assert "color: $!data.get('colour')" in cleaned
    assert 'href="https://x.example/u?e=$contact.email&amp;c=#if($data.vip)1#else 0#end"' in cleaned


def test_style_block_kept_for_inlining_and_checked():
    source = "<style>td > a { color: red } @media (max-width: 600px) { .m { width: 100% } }</style>"
    assert sanitize_html(source + "<p>x</p>") == source + "<p>x</p>"
    with pytest.raises(HtmlSanitizeError, match="@import"):
        sanitize_html('<style>@import url("https://x/a.css");</style>')
    with pytest.raises(HtmlSanitizeError, match="expression"):
        sanitize_html("<style>p { width: expression(alert(1)) }</style>")


def test_html_comments_are_removed():
    assert sanitize_html("<p>a<!-- secret note -->b</p>") == "<p>ab</p>"


def test_directive_in_an_attribute_name_position_is_an_error_with_its_location():
    with pytest.raises(HtmlSanitizeError) as caught:
        sanitize_html('<p>\n<td #if($x)class="a"#end>x</td>')
    assert (caught.value.line, caught.value.column) == (2, 5)


def test_markup_inside_a_template_expression_is_refused():
    with pytest.raises(HtmlSanitizeError, match="HTML tags are not allowed"):
        sanitize_html("#set($x = \"<b onclick='steal()'>hi</b>\")$x")
    # A whole script element goes, string literal or not.
    assert sanitize_html('#set($x = "<script>alert(1)</script>")$x') == '#set($x = "")$x'


def test_invalid_template_is_reported_before_sanitising():
    with pytest.raises(TemplateSyntaxError):
        sanitize_html("<p>#if($x)</p>")


def test_text_from_html_keeps_velocity_and_links():
    html = (
        "<h1>Hi $!contact.firstName</h1><p>#if($data.vip)VIP#end deal: "
        "<a href=\"$!data.get('link')\">shop now</a></p>"
        "<table>#foreach($i in $data.items)<tr><td>$i.name</td></tr>#end</table>"
    )
    text = html_to_text(html)
    assert "Hi $!contact.firstName" in text
    assert "#if($data.vip)VIP#end deal:" in text
    assert "[shop now]($!data.get('link'))" in text
    rendered = compile_template(text).render(
        {"firstName": "Ann"}, {"vip": True, "link": "https://s", "items": [{"name": "Tea"}]}
    )
    assert "Hi Ann" in rendered and "VIP deal" in rendered and "Tea" in rendered
    assert "[shop now](https://s)" in rendered


def test_inline_css_moves_rules_into_style_attributes_without_fetching():
    html = (
        '<link rel="stylesheet" href="http://127.0.0.1:9/never.css">'
        "<style>p { color: red } @media (max-width: 600px) { p { color: blue } }</style><p>x</p>"
    )
    inlined = inline_css(html)
    assert '<p style="color: red;">x</p>' in inlined
    assert "@media" in inlined


def test_text_from_html_has_no_markdown_escapes_and_keeps_velocity_escapes():
    text = html_to_text("<p>1. Step one</p><p>- dash</p><p>Price \\$5, tag \\#if</p>")
    assert text == "1. Step one\n\n- dash\n\nPrice \\$5, tag \\#if\n"
    assert compile_template(text).render({}, {}) == "1. Step one\n\n- dash\n\nPrice $5, tag #if\n"


def test_sanitising_twice_changes_nothing_more():
    source = (
        '<table><tr>#foreach($i in $x)<td style="color: red; position: fixed" onclick="x">'
        '$i</td>#end</tr></table><a href="https://x?a=1&b=2">l</a> &nbsp; &copy; café'
    )
    once = sanitize_html(source)
    assert sanitize_html(once) == once
    assert '<a href="https://x?a=1&amp;b=2">l</a> &nbsp; &copy; café' in once
