"""Email HTML: sanitising on save, plain text from HTML, CSS inlining at render time.

The HTML saved is a Velocity template, so sanitising must not touch the template's own
syntax: bleach would escape the `<` of `#if($a < 5)`, and html5lib moves any text found
directly inside `<table>` (a `#foreach` over rows) in front of the table. Every Velocity
construct is therefore swapped for a placeholder first (an HTML comment between elements,
an alphanumeric token inside a tag), the HTML is cleaned, and the constructs are put back.
A construct the cleaning removed (e.g. `#if` where an attribute name would go) is an error
naming its line and column, never a silently broken template.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import airspeed
import bleach
import css_inline
import html2text
import tinycss2
from bleach.css_sanitizer import CSSSanitizer

from templates.engine import TemplateSyntaxError, compile_template

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup",
        "dd", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
        "img", "li", "ol", "p", "pre", "s", "small", "span", "strike", "strong", "sub", "sup",
        "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
_COMMON_ATTRIBUTES = ["style", "class", "id", "dir", "lang", "title", "align", "valign"]
ALLOWED_ATTRIBUTES = {
    "*": _COMMON_ATTRIBUTES,
    "a": [*_COMMON_ATTRIBUTES, "href", "target", "name", "rel"],
    "img": [*_COMMON_ATTRIBUTES, "src", "alt", "width", "height", "border"],
    "table": [
        *_COMMON_ATTRIBUTES,
        "width",
        "height",
        "border",
        "cellpadding",
        "cellspacing",
        "bgcolor",
        "role",
    ],
    "td": [*_COMMON_ATTRIBUTES, "width", "height", "bgcolor", "colspan", "rowspan", "nowrap"],
    "th": [
        *_COMMON_ATTRIBUTES,
        "width",
        "height",
        "bgcolor",
        "colspan",
        "rowspan",
        "nowrap",
        "scope",
    ],
    "tr": [*_COMMON_ATTRIBUTES, "bgcolor", "height"],
    "col": [*_COMMON_ATTRIBUTES, "width", "span"],
    "colgroup": [*_COMMON_ATTRIBUTES, "width", "span"],
    "font": [*_COMMON_ATTRIBUTES, "color", "face", "size"],
    "div": [*_COMMON_ATTRIBUTES, "width"],
    "hr": [*_COMMON_ATTRIBUTES, "width", "size", "color"],
}
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})
# What email clients honour; layout properties that clients strip anyway (position, float
# tricks) are left out.
ALLOWED_CSS_PROPERTIES = frozenset(
    {
        "background", "background-color", "background-image", "background-position",
        "background-repeat", "background-size", "border", "border-bottom", "border-bottom-color",
        "border-bottom-left-radius", "border-bottom-right-radius", "border-bottom-style",
        "border-bottom-width", "border-collapse", "border-color", "border-left",
        "border-left-color", "border-left-style", "border-left-width", "border-radius",
        "border-right", "border-right-color", "border-right-style", "border-right-width",
        "border-spacing", "border-style", "border-top", "border-top-color",
        "border-top-left-radius", "border-top-right-radius", "border-top-style",
        "border-top-width", "border-width", "box-sizing", "color", "direction", "display",
        "font", "font-family", "font-size", "font-style", "font-variant", "font-weight",
        "height", "letter-spacing", "line-height", "list-style", "list-style-type", "margin",
        "margin-bottom", "margin-left", "margin-right", "margin-top", "max-height",
        "max-width", "min-height", "min-width", "mso-hide", "mso-line-height-rule",
        "mso-table-lspace", "mso-table-rspace", "opacity", "overflow", "padding",
        "padding-bottom", "padding-left", "padding-right", "padding-top", "table-layout",
        "text-align", "text-decoration", "text-indent", "text-transform", "vertical-align",
        "visibility", "white-space", "width", "word-break", "word-spacing", "word-wrap",
    }
)  # fmt: skip
_DANGEROUS_CSS = re.compile(
    r"expression\s*\(|javascript:|vbscript:|-moz-binding|behavior\s*:|@import", re.I
)
# Elements whose *content* must go too: bleach's strip=True keeps the text of a removed
# element, which for <script> would leave its code visible in the email.
_REMOVE_WITH_CONTENT = re.compile(
    r"<(script|iframe|object|embed|noscript|template|title|frameset|applet|svg|math|textarea|select|form|button)\b.*?</\1\s*>",
    re.I | re.S,
)
_STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.I | re.S)
_TAG_START = re.compile(r"<[a-zA-Z/!?]")
_MARKUP = re.compile(r"<[a-zA-Z/!?]")


class HtmlSanitizeError(ValueError):
    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


class _EmailCSSSanitizer(CSSSanitizer):
    """bleach's sanitizer checks property names only; values can still carry old-client
    script (`expression(...)`, `url(javascript:...)`)."""

    def sanitize_css(self, style: str) -> str:
        cleaned = super().sanitize_css(style)
        declarations = tinycss2.parse_declaration_list(
            cleaned, skip_whitespace=True, skip_comments=True
        )
        kept = [
            f"{d.name}: {tinycss2.serialize(d.value).strip()}{' !important' if d.important else ''}"
            for d in declarations
            if d.type == "declaration" and _safe_css_value(d.value)
        ]
        return "; ".join(kept)


def _safe_css_value(tokens: list[Any]) -> bool:
    if _DANGEROUS_CSS.search(tinycss2.serialize(tokens)):
        return False
    for token in tokens:
        if token.type in ("bad-url", "error"):
            return False
        if token.type == "function" and not _safe_css_value(token.arguments):
            return False
    return True


def _cleaner() -> bleach.Cleaner:
    return bleach.Cleaner(
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        protocols=ALLOWED_PROTOCOLS,
        strip=True,
        strip_comments=False,  # our placeholders are comments; other comments are removed below
        css_sanitizer=_EmailCSSSanitizer(allowed_css_properties=ALLOWED_CSS_PROPERTIES),
    )


def _position(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


def velocity_spans(source: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_comment) of every piece of Velocity syntax in `source`: references,
    #set, macro calls, comments and the heads/#else/#end of block directives. The text
    between them (the HTML) is not included. Raises TemplateSyntaxError for a bad template."""
    compiled = compile_template(source)
    spans: list[tuple[int, int, bool]] = []

    def walk(block: Any) -> None:
        for child in block.children:
            kind = type(child)
            if kind in (airspeed.Text, airspeed.FallthroughHashText):
                continue
            if kind is airspeed.IfDirective:
                blocks = [child.block, *(e.block for e in child.elseifs)]
                if isinstance(child.else_block, airspeed.ElseBlock):
                    blocks.append(child.else_block.block)
            elif kind in (airspeed.ForeachDirective, airspeed.MacroDefinition):
                blocks = [child.block]
            else:
                blocks = []
            position = child.start
            for inner in blocks:
                if inner.start > position:
                    spans.append((position, inner.start, False))
                walk(inner)
                position = inner.end
            if child.end > position:
                spans.append((position, child.end, kind is airspeed.Comment))

    walk(compiled.block)
    return spans


def _protect(source: str, *, comments: bool) -> tuple[str, dict[str, tuple[str, int]]]:
    """Replace Velocity spans by unique placeholders. With `comments`, a span outside any
    tag becomes an HTML comment (which html5lib leaves where it is, even inside <table>)."""
    nonce = secrets.token_hex(4)
    while nonce in source:
        nonce = secrets.token_hex(4)
    parts: list[str] = []
    placeholders: dict[str, tuple[str, int]] = {}
    in_tag = False
    position = 0
    for index, (start, end, is_comment) in enumerate(velocity_spans(source)):
        text = source[position:start]
        parts.append(text)
        last_open = max((m.start() for m in _TAG_START.finditer(text)), default=-1)
        last_close = text.rfind(">")
        if last_open > last_close:
            in_tag = True
        elif last_close > -1:
            in_tag = False
        span = source[start:end]
        if not is_comment and _MARKUP.search(span):
            line, column = _position(source, start)
            raise HtmlSanitizeError(
                "HTML tags are not allowed inside template expressions", line, column
            )
        token = f"hv{nonce}t{index}x"
        placeholders[token] = (span, start)
        parts.append(f"<!--{token}-->" if comments and not in_tag else token)
        position = end
    parts.append(source[position:])
    return "".join(parts), placeholders


def _restore(
    text: str, placeholders: dict[str, tuple[str, int]], source: str, *, strict: bool
) -> str:
    seen: dict[str, int] = {}

    def put_back(match: re.Match[str]) -> str:
        token = match.group(1) or match.group(2)
        seen[token] = seen.get(token, 0) + 1
        return placeholders[token][0]

    if placeholders:
        # One pass over the text: a 100 KB template can hold thousands of placeholders.
        any_token = next(iter(placeholders))
        prefix = re.escape(any_token[: any_token.rindex("t") + 1])
        text = re.sub(rf"<!--({prefix}\d+x)-->|({prefix}\d+x)", put_back, text)
    if strict:
        for token, (span, start) in placeholders.items():
            if seen.get(token) != 1:
                line, column = _position(source, start)
                raise HtmlSanitizeError(
                    f"'{span.strip()[:40]}' cannot stay where it is: HTML sanitising removed it "
                    "(template syntax may not replace an attribute name or sit inside a removed "
                    "element)",
                    line,
                    column,
                )
    return text


def _check_stylesheet(css: str, source: str, offset: int) -> None:
    match = _DANGEROUS_CSS.search(css)
    if match:
        line, column = _position(source, offset + match.start())
        raise HtmlSanitizeError(f"<style> may not contain '{match.group(0).strip()}'", line, column)


def sanitize_html(source: str) -> str:
    """Clean marketer HTML for email with bleach, keeping its Velocity syntax intact.
    Raises TemplateSyntaxError for a bad template and HtmlSanitizeError when cleaning would
    break the template or a <style> block carries script."""
    styles: list[str] = []

    def keep_style(match: re.Match[str]) -> str:
        _check_stylesheet(match.group(1), source, match.start(1))
        styles.append(match.group(0))
        # An ASCII marker that is plain text to both airspeed and bleach.
        return f"herald-style-{len(styles) - 1}-block"

    without_styles = _STYLE_BLOCK.sub(keep_style, source)
    without_styles = _REMOVE_WITH_CONTENT.sub("", without_styles)
    protected, placeholders = _protect(without_styles, comments=True)
    cleaned = _cleaner().clean(protected)
    ours = {f"<!--{token}-->" for token in placeholders}
    cleaned = re.sub(
        r"<!--.*?-->", lambda m: m.group(0) if m.group(0) in ours else "", cleaned, flags=re.S
    )
    restored = _restore(cleaned, placeholders, without_styles, strict=True)
    for index, block in enumerate(styles):
        restored = restored.replace(f"herald-style-{index}-block", block, 1)
    compile_template(restored)  # the result must still be a valid template
    return restored


def html_to_text(source: str) -> str:
    """Plain-text alternative of an HTML template; Velocity syntax is carried over as is."""
    protected, placeholders = _protect(source, comments=False)
    converter = html2text.HTML2Text()
    converter.body_width = 0  # wrapping could split a restored expression across lines
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_tables = True
    converter.unicode_snob = True
    text = _unescape_markdown(converter.handle(protected))
    restored = _restore(text, placeholders, source, strict=False).strip() + "\n"
    try:
        compile_template(restored)
    except TemplateSyntaxError as exc:
        raise HtmlSanitizeError(
            f"could not derive a plain-text body from the HTML ({exc.message}); "
            "write the text body yourself"
        ) from None
    return restored


# html2text escapes what Markdown would read as lists ("1\\.", "\\-", "\\+") and doubles a
# backslash before such characters; a plain-text email wants the characters as written.
_MD_ESCAPES = (
    (re.compile(r"^(\s*\d+)\\\.(?=\s)", re.M), r"\1."),
    (re.compile(r"^(\s*)\\([-+])", re.M), r"\1\2"),
    (re.compile(r"\\\\(?=[\\`*_{}\[\]()#+\-.!])"), r"\\"),
)


def _unescape_markdown(text: str) -> str:
    for pattern, replacement in _MD_ESCAPES:
        text = pattern.sub(replacement, text)
    return text


def inline_css(html: str) -> str:
    """Move <style> rules into style attributes (most email clients ignore <style>);
    @media rules stay in a <style> block for the clients that honour them."""
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    return inliner.inline(html)
