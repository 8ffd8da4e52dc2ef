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

from templates.errors import HtmlSanitizeError
from templates.sanitize.budget import (
    MAX_HTML_CHARS,
    MAX_HTML_DEPTH,
    MAX_HTML_NODES,
    MAX_TAG_ATTRIBUTES,
    html_size_check,
)
from templates.sanitize.cleaning import html_to_text, sanitize_html
from templates.sanitize.css import inline_css

__all__ = [
    "MAX_HTML_CHARS",
    "MAX_HTML_DEPTH",
    "MAX_HTML_NODES",
    "MAX_TAG_ATTRIBUTES",
    "HtmlSanitizeError",
    "html_size_check",
    "html_to_text",
    "inline_css",
    "sanitize_html",
]
