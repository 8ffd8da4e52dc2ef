"""The parse budget: html5lib is pure Python and some inputs cost it time quadratic in their
nesting or attribute count, so the parser itself refuses depth, attribute count and node
count beyond these bounds as it builds the tree, failing at the point each is crossed."""

from __future__ import annotations

from typing import Any

from bleach import html5lib_shim
from bleach._vendor.html5lib import treebuilders

from templates.errors import HtmlSanitizeError

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


class OverBudget(Exception):
    """Raised inside html5lib when a work bound is crossed; becomes an HtmlSanitizeError."""


class Budget:
    def __init__(self, source: str) -> None:
        # Character references cost the sanitizer a token each; charged before parsing.
        self.nodes = source.count("&")

    def charge(self, nodes: int) -> None:
        self.nodes += nodes
        if self.nodes > MAX_HTML_NODES:
            raise OverBudget(
                f"HTML has more than {MAX_HTML_NODES:,} elements, attributes, comments and "
                "character references; simplify it or split it into several emails"
            )


_EtreeBuilder = treebuilders.getTreeBuilder("etree")


class _BoundedTreeBuilder(_EtreeBuilder):  # type: ignore[misc, valid-type]
    """html5lib's tree builder, refusing depth and size beyond the bounds as it builds: the
    open-element stack is what html5lib walks for every block element."""

    budget: Budget

    def _enter(self, token: dict[str, Any]) -> None:
        if len(self.openElements) > MAX_HTML_DEPTH:  # the first is html5lib's own root
            raise OverBudget(f"HTML nests deeper than {MAX_HTML_DEPTH} elements")
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
            raise OverBudget(f"a tag has more than {MAX_TAG_ATTRIBUTES} attributes")
        return super().attributeNameState()


class BoundedParser(html5lib_shim.BleachHTMLParser):
    def __init__(self, budget: Budget, **kwargs: Any) -> None:
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


def html_size_check(source: str) -> None:
    """The cheap bound checked before anything parses the HTML."""
    if len(source) > MAX_HTML_CHARS:
        raise HtmlSanitizeError(f"HTML is longer than {MAX_HTML_CHARS:,} characters")
