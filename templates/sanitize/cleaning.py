"""HTML cleaning: bleach and html5lib over the document with its Velocity syntax swapped for
placeholders, and the plain-text alternative derived from the HTML."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import bleach
import html2text
from bleach import html5lib_shim
from bleach._vendor.html5lib.filters.base import Filter

from templates.engine import TemplateSyntaxError, compile_template
from templates.errors import HtmlSanitizeError
from templates.sanitize.budget import BoundedParser, Budget, OverBudget, html_size_check
from templates.sanitize.css import ALLOWED_CSS_PROPERTIES, EmailCSSSanitizer, stylesheet_problem
from templates.sanitize.placeholders import (
    check_contexts,
    line_column,
    protect,
    restore,
    token_pattern,
    velocity_layout,
)

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
ALLOWED_ATTRIBUTES["style"] = ["type", "media"]
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})
# Elements whose *content* must go too: bleach's strip=True keeps the text of a removed
# element, which for <script> would leave its code visible in the email.
_REMOVE_WITH_CONTENT = re.compile(
    r"<(script|iframe|object|embed|noscript|template|title|frameset|applet|svg|math|textarea|select|form|button)\b.*?</\1\s*>",
    re.I | re.S,
)


class _EmailFilter(Filter):
    """Runs after bleach's sanitizer: drops HTML comments other than our placeholders, checks
    <style> blocks and notes where each placeholder landed (`contexts`)."""

    def __init__(
        self, source: Any, *, token: re.Pattern[str], contexts: dict[str, str], html: str
    ) -> None:
        super().__init__(source)
        self.token = token
        self.contexts = contexts
        # Where the n-th <style> of the marketer's HTML starts, to point errors at it.
        self.styles = [m.start() for m in re.finditer(r"<style\b", html, re.I)]
        self.html = html

    def error(self, message: str) -> HtmlSanitizeError:
        offset = self.styles.pop(0) if self.styles else 0
        return HtmlSanitizeError(message, *line_column(self.html, offset))

    def note(self, text: str, context: str) -> None:
        for match in self.token.finditer(text):
            self.contexts.setdefault(match.group(0), context)

    def __iter__(self) -> Any:
        style: list[dict[str, Any]] | None = None
        for token in super().__iter__():
            kind = token["type"]
            if style is not None:
                style.append(token)
                if kind == "EndTag" and token["name"] == "style":
                    yield from self.stylesheet(style)
                    style = None
                elif kind not in ("Characters", "SpaceCharacters", "Entity"):
                    raise self.error("<style> may hold only CSS")
                continue
            if kind == "Comment":
                if self.token.fullmatch(token["data"]):
                    self.note(token["data"], "data")
                    yield token
                continue  # other comments (Outlook conditionals included) are dropped
            if kind in ("StartTag", "EmptyTag"):
                for value in (token.get("data") or {}).values():
                    self.note(value, "attr")
                if token["name"] == "style" and kind == "StartTag":
                    if token.get("namespace") not in (None, html5lib_shim.namespaces["html"]):
                        raise self.error("<style> is not allowed inside <svg> or <math>")
                    style = [token]
                    continue
            elif kind in ("Characters", "SpaceCharacters"):
                self.note(token["data"], "data")
            yield token
        if style is not None:
            yield from self.stylesheet([*style, {"type": "EndTag", "name": "style"}])

    def stylesheet(self, tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
        css = "".join(
            f"&{t['name']};" if t["type"] == "Entity" else t["data"] for t in tokens[1:-1]
        )
        self.note(css, "style")
        # A placeholder inside CSS is an HTML comment; read it as the name it holds.
        bare = re.sub(rf"<!--({self.token.pattern})-->", r"\1", css)
        problem = stylesheet_problem(bare)
        if problem:
            raise self.error(f"<style> may not contain {problem}")
        if self.styles:
            self.styles.pop(0)
        return tokens


def _cleaner() -> bleach.Cleaner:
    return bleach.Cleaner(
        tags=ALLOWED_TAGS | {"style"},
        attributes=ALLOWED_ATTRIBUTES,
        protocols=ALLOWED_PROTOCOLS,
        strip=True,
        strip_comments=False,  # our placeholders are comments; _EmailFilter drops the others
        css_sanitizer=EmailCSSSanitizer(allowed_css_properties=ALLOWED_CSS_PROPERTIES),
    )


def sanitize_html(source: str) -> str:
    """Clean marketer HTML for email with bleach, keeping its Velocity syntax intact.
    Raises TemplateSyntaxError for a bad template and HtmlSanitizeError when the HTML is over
    the work bounds, when cleaning would break the template or a <style> block carries
    script."""
    html_size_check(source)
    source = _REMOVE_WITH_CONTENT.sub("", source)
    layout = velocity_layout(source)
    protected, placeholders = protect(source, comments=True, layout=layout)
    contexts: dict[str, str] = {}
    cleaner = _cleaner()
    parser = cleaner.parser = BoundedParser(
        Budget(protected), tags=cleaner.tags, strip=True, consume_entities=False,
        namespaceHTMLElements=False,
    )  # fmt: skip
    pattern = token_pattern(placeholders) or re.compile(r"(?!)")
    cleaner.filters = [partial(_EmailFilter, token=pattern, contexts=contexts, html=source)]
    # CSS is written as it is (`td > a`, not `td &gt; a`): _EmailFilter refuses a '<' in it,
    # and <style> is the only raw-text element bleach lets through here.
    cleaner.serializer.escape_rcdata = False
    try:
        cleaned = cleaner.clean(protected)
    except OverBudget as exc:
        line, column = parser.tokenizer.stream.position()
        raise HtmlSanitizeError(str(exc), line, column + 1) from None
    restored = restore(cleaned, placeholders, source, strict=True)
    check_contexts(layout, placeholders, contexts, source)
    compile_template(restored)  # the result must still be a valid template
    return restored


def html_to_text(source: str) -> str:
    """Plain-text alternative of an HTML template; Velocity syntax is carried over as is."""
    protected, placeholders = protect(source, comments=False)
    converter = html2text.HTML2Text()
    converter.body_width = 0  # wrapping could split a restored expression across lines
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_tables = True
    converter.unicode_snob = True
    text = _unescape_markdown(converter.handle(protected))
    restored = restore(text, placeholders, source, strict=False).strip() + "\n"
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
