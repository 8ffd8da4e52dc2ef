"""Velocity syntax inside HTML: where every construct is, swapping each for a placeholder
before the HTML is cleaned and putting it back after, and checking that no block or macro
joins text of one HTML context to another."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import airspeed

from templates.engine import compile_template
from templates.errors import HtmlSanitizeError

_TAG_START = re.compile(r"<[a-zA-Z/!?]")
_CONTEXT_NAMES = {"data": "between tags", "attr": "in an attribute value", "style": "in <style>"}


def line_column(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


@dataclass
class Layout:
    """Velocity syntax of a template: `spans` (start, end, is_comment) of every piece;
    `blocks`, the span indices of each #if/#foreach/#macro (head, #else..., #end); `macros`,
    the block of each macro by name; `calls`, (span index, macro name) of each macro call."""

    spans: list[tuple[int, int, bool]] = field(default_factory=list)
    blocks: list[list[int]] = field(default_factory=list)
    macros: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[int, str]] = field(default_factory=list)


def velocity_layout(source: str) -> Layout:
    """Every piece of Velocity syntax in `source`: references, #set, macro calls, comments and
    the heads/#else/#end of block directives. The text between them (the HTML) is not
    included. Raises TemplateSyntaxError for a bad template."""
    compiled = compile_template(source)
    layout = Layout()

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


def protect(
    source: str, *, comments: bool, layout: Layout | None = None
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
        if not is_comment and _TAG_START.search(span):
            line, column = line_column(source, start)
            raise HtmlSanitizeError(
                "HTML tags are not allowed inside template expressions", line, column
            )
        token = f"hv{nonce}t{index}x"
        placeholders[token] = (span, start)
        parts.append(f"<!--{token}-->" if comments and not in_tag else token)
        position = end
    parts.append(source[position:])
    return "".join(parts), placeholders


def token_pattern(placeholders: dict[str, tuple[str, int]]) -> re.Pattern[str] | None:
    if not placeholders:
        return None
    any_token = next(iter(placeholders))
    return re.compile(re.escape(any_token[: any_token.rindex("t") + 1]) + r"\d+x")


def restore(
    text: str, placeholders: dict[str, tuple[str, int]], source: str, *, strict: bool
) -> str:
    seen: dict[str, int] = {}

    def put_back(match: re.Match[str]) -> str:
        token = match.group(1) or match.group(2)
        seen[token] = seen.get(token, 0) + 1
        return placeholders[token][0]

    pattern = token_pattern(placeholders)
    if pattern is not None:
        # One pass over the text: a 100 KB template can hold thousands of placeholders.
        text = re.sub(rf"<!--({pattern.pattern})-->|({pattern.pattern})", put_back, text)
    if strict:
        for token, (span, start) in placeholders.items():
            if seen.get(token) != 1:
                line, column = line_column(source, start)
                raise HtmlSanitizeError(
                    f"'{span.strip()[:40]}' cannot stay where it is: HTML sanitising removed it "
                    "(template syntax may not replace an attribute name or sit inside a removed "
                    "element)",
                    line,
                    column,
                )
    return text


def check_contexts(
    layout: Layout, placeholders: dict[str, tuple[str, int]], contexts: dict[str, str],
    source: str,
) -> None:  # fmt: skip
    """Skipping or repeating a block, or expanding a macro, must not move text from one
    HTML context to another (text between tags holds quotes that would end an attribute)."""
    tokens = list(placeholders)

    def where(index: int) -> str:
        return contexts.get(tokens[index], "unknown")

    def error(message: str, index: int) -> HtmlSanitizeError:
        line, column = line_column(source, layout.spans[index][0])
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
