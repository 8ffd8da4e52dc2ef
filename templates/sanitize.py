"""Email HTML: sanitising on save, plain text from HTML, CSS inlining at render time.

The HTML saved is a Velocity template, so sanitising must not touch the template's own
syntax: bleach would escape the `<` of `#if($a < 5)`, and html5lib moves any text found
directly inside `<table>` (a `#foreach` over rows) in front of the table. Every Velocity
construct is therefore swapped for a placeholder first (an HTML comment between elements,
an alphanumeric token inside a tag), the HTML is cleaned, and the constructs are put back.
A construct the cleaning removed (e.g. `#if` where an attribute name would go) is an error
naming its line and column, never a silently broken template.

The whole document goes through html5lib and bleach, <style> blocks included: what leaves is
what the parser saw, never text lifted out of the raw source. A <style> block's CSS is checked
with tinycss2 (no '<' at all, so nothing in it can close the element). Template syntax must
also not join text of one HTML context to another: the pieces of a #if/#foreach/#macro, and a
macro and its calls, all sit between tags, all inside attribute values or all inside <style>;
otherwise skipping or repeating a block could turn text into attributes.

Sanitising is bounded before and while html5lib runs (it is pure Python, and some inputs cost
it time quadratic in their nesting or attribute count): a size limit checked first, then a
nesting depth, an attribute count per tag and a node budget enforced by the parser as it builds
the tree, each failing at the point it is crossed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import airspeed
import bleach
import css_inline
import html2text
import tinycss2
from bleach import html5lib_shim
from bleach._vendor.html5lib import treebuilders
from bleach._vendor.html5lib.filters.base import Filter
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
ALLOWED_ATTRIBUTES["style"] = ["type", "media"]
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})

# Work bounds, measured with bleach 6.4 on a shared 2-core machine. html5lib walks the stack of
# open elements for every block element, so without a depth bound 100,000 nested <div>s take
# minutes; within it, every node costs about 60 us whatever the depth. Attributes of one tag cost
# the square of their number (a tag with 100,000 of them took ten minutes). At these bounds the
# worst inputs found clean in about 3 s; a real 500 KB email (about 30,000 nodes) in under 2 s.
# The message/email API's documented htmlText size; templates follow it.
MAX_HTML_CHARS = 2_000_000
# Real email HTML nests 20-50 deep.
MAX_HTML_DEPTH = 100
MAX_TAG_ATTRIBUTES = 100
# Elements, attributes, comments and character references ('&') of one document.
MAX_HTML_NODES = 50_000
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
# Old-client script hooks in CSS, by their unescaped names as tinycss2 reads them.
_CSS_SCRIPT_FUNCTIONS = frozenset({"expression"})
_CSS_SCRIPT_PROPERTIES = frozenset({"behavior", "-moz-binding"})
_CSS_SCRIPT_URL = re.compile(r"(?:java|vb)script:", re.I)
_CSS_SPACE = re.compile(r"[\x00-\x20]+")
# Elements whose *content* must go too: bleach's strip=True keeps the text of a removed
# element, which for <script> would leave its code visible in the email.
_REMOVE_WITH_CONTENT = re.compile(
    r"<(script|iframe|object|embed|noscript|template|title|frameset|applet|svg|math|textarea|select|form|button)\b.*?</\1\s*>",
    re.I | re.S,
)
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


class _OverBudget(Exception):
    """Raised inside html5lib when a work bound is crossed; becomes an HtmlSanitizeError."""


class _Budget:
    def __init__(self, source: str) -> None:
        # Character references cost the sanitizer a token each; charged before parsing.
        self.nodes = source.count("&")

    def charge(self, nodes: int) -> None:
        self.nodes += nodes
        if self.nodes > MAX_HTML_NODES:
            raise _OverBudget(
                f"HTML has more than {MAX_HTML_NODES:,} elements, attributes, comments and "
                "character references; simplify it or split it into several emails"
            )


_EtreeBuilder = treebuilders.getTreeBuilder("etree")


class _BoundedTreeBuilder(_EtreeBuilder):  # type: ignore[misc, valid-type]
    """html5lib's tree builder, refusing depth and size beyond the bounds as it builds: the
    open-element stack is what html5lib walks for every block element."""

    budget: _Budget

    def _enter(self, token: dict[str, Any]) -> None:
        if len(self.openElements) > MAX_HTML_DEPTH:  # the first is html5lib's own root
            raise _OverBudget(f"HTML nests deeper than {MAX_HTML_DEPTH} elements")
        self.budget.charge(1 + len(token.get("data") or ()))

    def insertElementNormal(self, token: dict[str, Any]) -> Any:
        self._enter(token)
        return super().insertElementNormal(token)

    def insertElementTable(self, token: dict[str, Any]) -> Any:
        self._enter(token)
        return super().insertElementTable(token)

    def insertComment(self, token: dict[str, Any], parent: Any = None) -> None:
        self.budget.charge(1)
        super().insertComment(token, parent)


class _BoundedTokenizer(html5lib_shim.BleachHTMLTokenizer):
    def attributeNameState(self) -> bool:
        # html5lib compares each new attribute name with all earlier ones of the tag.
        if len(self.currentToken["data"]) > MAX_TAG_ATTRIBUTES:
            raise _OverBudget(f"a tag has more than {MAX_TAG_ATTRIBUTES} attributes")
        return super().attributeNameState()


class _BoundedParser(html5lib_shim.BleachHTMLParser):
    def __init__(self, budget: _Budget, **kwargs: Any) -> None:
        super().__init__(tree=_BoundedTreeBuilder, **kwargs)
        self.tree.budget = budget

    def _parse(
        self, stream: Any, innerHTML: bool = False, container: str = "div", scripting: bool = True,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        # BleachHTMLParser._parse with the bounded tokenizer in place of bleach's.
        self.innerHTMLMode = innerHTML
        self.container = container
        self.scripting = scripting
        self.tokenizer = _BoundedTokenizer(
            stream=stream, consume_entities=self.consume_entities, parser=self, **kwargs
        )
        self.reset()
        try:
            self.mainLoop()
        except html5lib_shim.ReparseException:
            self.reset()
            self.mainLoop()


_CONTEXT_NAMES = {"data": "between tags", "attr": "in an attribute value", "style": "in <style>"}


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
        return HtmlSanitizeError(message, *_position(self.html, offset))

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
        problem = _stylesheet_problem(bare)
        if problem:
            raise self.error(f"<style> may not contain {problem}")
        if self.styles:
            self.styles.pop(0)
        return tokens


def _stylesheet_problem(css: str) -> str | None:
    """What in a style sheet could run script or close its <style> element, or None."""
    if "<" in css:
        return "'<' (not even in a comment or a string)"
    match = _DANGEROUS_CSS.search(css)
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


def _cleaner() -> bleach.Cleaner:
    return bleach.Cleaner(
        tags=ALLOWED_TAGS | {"style"},
        attributes=ALLOWED_ATTRIBUTES,
        protocols=ALLOWED_PROTOCOLS,
        strip=True,
        strip_comments=False,  # our placeholders are comments; _EmailFilter drops the others
        css_sanitizer=_EmailCSSSanitizer(allowed_css_properties=ALLOWED_CSS_PROPERTIES),
    )


def _position(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


@dataclass
class _Layout:
    """Velocity syntax of a template: `spans` (start, end, is_comment) of every piece;
    `blocks`, the span indices of each #if/#foreach/#macro (head, #else..., #end); `macros`,
    the block of each macro by name; `calls`, (span index, macro name) of each macro call."""

    spans: list[tuple[int, int, bool]] = field(default_factory=list)
    blocks: list[list[int]] = field(default_factory=list)
    macros: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[int, str]] = field(default_factory=list)


def velocity_layout(source: str) -> _Layout:
    """Every piece of Velocity syntax in `source`: references, #set, macro calls, comments and
    the heads/#else/#end of block directives. The text between them (the HTML) is not
    included. Raises TemplateSyntaxError for a bad template."""
    compiled = compile_template(source)
    layout = _Layout()

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
            pieces: list[int] = []
            position = child.start
            for inner in blocks:
                if inner.start > position:
                    pieces.append(len(layout.spans))
                    layout.spans.append((position, inner.start, False))
                walk(inner)
                position = inner.end
            if child.end > position:
                pieces.append(len(layout.spans))
                layout.spans.append((position, child.end, kind is airspeed.Comment))
            if blocks:
                layout.blocks.append(pieces)
            if kind is airspeed.MacroDefinition:
                layout.macros[child.function_name.lower()] = len(layout.blocks) - 1
            elif kind is airspeed.MacroCall:
                layout.calls.append((pieces[-1], child.macro_name))

    walk(compiled.block)
    return layout


def _protect(
    source: str, *, comments: bool, layout: _Layout | None = None
) -> tuple[str, dict[str, tuple[str, int]]]:
    """Replace Velocity spans by unique placeholders `hv<nonce>t<index>x`. With `comments`, a
    span outside any tag becomes an HTML comment (which html5lib leaves where it is, even
    inside <table>)."""
    nonce = secrets.token_hex(4)
    while nonce in source:
        nonce = secrets.token_hex(4)
    parts: list[str] = []
    placeholders: dict[str, tuple[str, int]] = {}
    in_tag = False
    position = 0
    spans = (layout or velocity_layout(source)).spans
    for index, (start, end, is_comment) in enumerate(spans):
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


def _token_pattern(placeholders: dict[str, tuple[str, int]]) -> re.Pattern[str] | None:
    if not placeholders:
        return None
    any_token = next(iter(placeholders))
    return re.compile(re.escape(any_token[: any_token.rindex("t") + 1]) + r"\d+x")


def _restore(
    text: str, placeholders: dict[str, tuple[str, int]], source: str, *, strict: bool
) -> str:
    seen: dict[str, int] = {}

    def put_back(match: re.Match[str]) -> str:
        token = match.group(1) or match.group(2)
        seen[token] = seen.get(token, 0) + 1
        return placeholders[token][0]

    pattern = _token_pattern(placeholders)
    if pattern is not None:
        # One pass over the text: a 100 KB template can hold thousands of placeholders.
        text = re.sub(rf"<!--({pattern.pattern})-->|({pattern.pattern})", put_back, text)
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


def _check_contexts(
    layout: _Layout, placeholders: dict[str, tuple[str, int]], contexts: dict[str, str],
    source: str,
) -> None:  # fmt: skip
    """Skipping or repeating a block, or expanding a macro, must not move text from one
    HTML context to another (text between tags holds quotes that would end an attribute)."""
    tokens = list(placeholders)

    def where(index: int) -> str:
        return contexts.get(tokens[index], "unknown")

    def error(message: str, index: int) -> HtmlSanitizeError:
        line, column = _position(source, layout.spans[index][0])
        return HtmlSanitizeError(message, line, column)

    for pieces in layout.blocks:
        first = pieces[0]
        for index in pieces[1:]:
            if where(index) != where(first):
                head = source[slice(*layout.spans[first][:2])].strip()[:40]
                raise error(
                    f"'{source[slice(*layout.spans[index][:2])].strip()[:40]}' is "
                    f"{_CONTEXT_NAMES.get(where(index), 'elsewhere')} but the '{head}' it "
                    f"belongs to is {_CONTEXT_NAMES.get(where(first), 'elsewhere')}: a block "
                    "must open and close in the same kind of place",
                    index,
                )
    for index, name in layout.calls:
        defined = layout.blocks[layout.macros[name]][0] if name in layout.macros else None
        if defined is not None and where(index) != where(defined):
            defined_at = _CONTEXT_NAMES.get(where(defined), "elsewhere")
            called_at = _CONTEXT_NAMES.get(where(index), "elsewhere")
            raise error(
                f"macro #{name} is defined {defined_at} and may only be called there, "
                f"not {called_at}",
                index,
            )


def html_size_check(source: str) -> None:
    """The cheap bound checked before anything parses the HTML."""
    if len(source) > MAX_HTML_CHARS:
        raise HtmlSanitizeError(f"HTML is longer than {MAX_HTML_CHARS:,} characters")


def sanitize_html(source: str) -> str:
    """Clean marketer HTML for email with bleach, keeping its Velocity syntax intact.
    Raises TemplateSyntaxError for a bad template and HtmlSanitizeError when the HTML is over
    the work bounds, when cleaning would break the template or a <style> block carries
    script."""
    html_size_check(source)
    source = _REMOVE_WITH_CONTENT.sub("", source)
    layout = velocity_layout(source)
    protected, placeholders = _protect(source, comments=True, layout=layout)
    contexts: dict[str, str] = {}
    cleaner = _cleaner()
    parser = cleaner.parser = _BoundedParser(
        _Budget(protected), tags=cleaner.tags, strip=True, consume_entities=False,
        namespaceHTMLElements=False,
    )  # fmt: skip
    pattern = _token_pattern(placeholders) or re.compile(r"(?!)")
    cleaner.filters = [partial(_EmailFilter, token=pattern, contexts=contexts, html=source)]
    # CSS is written as it is (`td > a`, not `td &gt; a`): _EmailFilter refuses a '<' in it,
    # and <style> is the only raw-text element bleach lets through here.
    cleaner.serializer.escape_rcdata = False
    try:
        cleaned = cleaner.clean(protected)
    except _OverBudget as exc:
        line, column = parser.tokenizer.stream.position()
        raise HtmlSanitizeError(str(exc), line, column + 1) from None
    restored = _restore(cleaned, placeholders, source, strict=True)
    _check_contexts(layout, placeholders, contexts, source)
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
