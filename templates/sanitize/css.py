"""The CSS of email HTML: which properties a style attribute may keep, what in a <style>
block could run script, and inlining <style> rules at render time."""

from __future__ import annotations

import re
from typing import Any

import css_inline
import tinycss2
from bleach.css_sanitizer import CSSSanitizer

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
DANGEROUS_CSS = re.compile(
    r"expression\s*\(|javascript:|vbscript:|-moz-binding|behavior\s*:|@import", re.I
)
# Old-client script hooks in CSS, by their unescaped names as tinycss2 reads them.
_CSS_SCRIPT_FUNCTIONS = frozenset({"expression"})
_CSS_SCRIPT_PROPERTIES = frozenset({"behavior", "-moz-binding"})
_CSS_SCRIPT_URL = re.compile(r"(?:java|vb)script:", re.I)
_CSS_SPACE = re.compile(r"[\x00-\x20]+")


class EmailCSSSanitizer(CSSSanitizer):
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
            if d.type == "declaration" and safe_css_value(d.value)
        ]
        return "; ".join(kept)


def safe_css_value(tokens: list[Any]) -> bool:
    if DANGEROUS_CSS.search(tinycss2.serialize(tokens)):
        return False
    for token in tokens:
        if token.type in ("bad-url", "error"):
            return False
        if token.type == "function" and not safe_css_value(token.arguments):
            return False
    return True


def stylesheet_problem(css: str) -> str | None:
    """What in a style sheet could run script or close its <style> element, or None."""
    if "<" in css:
        return "'<' (not even in a comment or a string)"
    match = DANGEROUS_CSS.search(css)
    if match:
        return f"'{match.group(0).strip().lower()}'"
    return _css_tokens_problem(tinycss2.parse_stylesheet(css))


def _css_tokens_problem(nodes: Any) -> str | None:
    for node in nodes:
        kind = node.type
        keyword = node.lower_at_keyword if kind == "at-rule" else getattr(node, "lower_value", "")
        if kind in ("at-rule", "at-keyword") and keyword == "import":
            return "'@import'"
        if kind == "ident" and node.lower_value in _CSS_SCRIPT_PROPERTIES:
            return f"'{node.lower_value}'"
        if kind == "function" and node.lower_name in _CSS_SCRIPT_FUNCTIONS:
            return f"'{node.lower_name}('"
        if kind in ("url", "string") and _CSS_SCRIPT_URL.search(_CSS_SPACE.sub("", node.value)):
            return "a 'javascript:' URL"
        for children in ("prelude", "content", "arguments"):
            inner = getattr(node, children, None)
            if inner:
                problem = _css_tokens_problem(inner)
                if problem:
                    return problem
    return None


def inline_css(html: str) -> str:
    """Move <style> rules into style attributes (most email clients ignore <style>);
    @media rules stay in a <style> block for the clients that honour them."""
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    return inliner.inline(html)
