"""What a template can touch: plain values copied from the caller, the methods allowed on
them, and the work budget every render spends."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from templates.errors import TemplateRenderError

# The message/email API accepts 2,000,000 characters of HTML, and sanitising lengthens HTML
# (closing tags, quoted attributes, `&amp;`; bounded by the sanitiser's node budget).
MAX_SOURCE_CHARS = 4_000_000
MAX_OUTPUT_CHARS = 5_000_000
# airspeed spends 30-50 us on every '$' and '#' (a CSS colour too) when parsing.
MAX_SYNTAX_MARKS = 50_000
# Total #foreach iterations per render (all loops together, nested ones included), so that
# nesting three 1,000-item loops cannot multiply into a billion.
MAX_LOOP_ITERATIONS = 10_000
# Every node evaluated costs one step; bounds CPU where loops are not involved (macro fan-out,
# deep data comparison). A typical email spends a few thousand.
MAX_STEPS = 500_000
# String work is charged by size too (one step per STEP_CHARS characters), so a loop that
# copies or upper-cases a 1 MB string ten thousand times runs out of steps, not of time.
STEP_CHARS = 256
MAX_MACRO_DEPTH = 16
MAX_DATA_DEPTH = 32
# Java long range: arithmetic beyond it is an error instead of an ever-growing Python int.
MAX_INT = 2**63 - 1
# Java ranges are int-sized; larger ones would overflow len().
MAX_RANGE = 2**31

# --- allowlisted methods -------------------------------------------------------------------
# Each entry: name -> (arity, function). Functions get plain values and return plain values
# or None ("no result": Velocity then renders the reference literally).


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def int_arg(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_substring(s: str, begin: Any, end: Any = None) -> str | None:
    begin = int_arg(begin)
    end = len(s) if end is None else int_arg(end)
    if begin is None or end is None or not 0 <= begin <= end <= len(s):
        return None
    return s[begin:end]


def _str_replace(s: str, old: Any, new: Any) -> str | None:
    if not isinstance(old, str) or not isinstance(new, str) or not old:
        return None
    # Check the size before building it: 'a'*1000 replaced by 'b'*1000 would be 1 MB.
    if len(s) + s.count(old) * (len(new) - len(old)) > MAX_OUTPUT_CHARS:
        raise TemplateRenderError(
            f"a string built by the template exceeds {MAX_OUTPUT_CHARS} characters"
        )
    return s.replace(old, new)


def _str_arg(func: Callable[[str, str], Any]) -> Callable[[str, Any], Any]:
    def method(s: str, other: Any) -> Any:
        return func(s, other) if isinstance(other, str) else None

    return method


STR_METHODS: dict[str, tuple[tuple[int, ...], Callable[..., Any]]] = {
    "equalsIgnoreCase": (
        (1,),
        lambda s, o: isinstance(o, str) and s.casefold() == o.casefold(),
    ),
    "length": ((0,), len),
    "isEmpty": ((0,), lambda s: not s),
    "toUpperCase": ((0,), str.upper),
    "toLowerCase": ((0,), str.lower),
    "trim": ((0,), str.strip),
    "contains": ((1,), _str_arg(lambda s, o: o in s)),
    "startsWith": ((1,), _str_arg(str.startswith)),
    "endsWith": ((1,), _str_arg(str.endswith)),
    "indexOf": ((1,), _str_arg(str.find)),
    "substring": ((1, 2), _str_substring),
    "replace": ((2,), _str_replace),
}


def seq_get(seq: Sequence[Any], index: Any) -> Any:
    index = int_arg(index)
    if index is None or not 0 <= index < len(seq):
        return None
    return seq[index]


LIST_METHODS: dict[str, tuple[tuple[int, ...], Callable[..., Any]]] = {
    "get": ((1,), seq_get),
    "size": ((0,), len),
    "isEmpty": ((0,), lambda seq: len(seq) == 0),
}

DICT_METHODS: dict[str, tuple[tuple[int, ...], Callable[..., Any]]] = {
    "get": ((1,), lambda d, key: d.get(key) if hashable(key) else None),
    "containsKey": ((1,), lambda d, key: hashable(key) and key in d),
    "keySet": ((0,), lambda d: list(d)),
    "size": ((0,), len),
    "isEmpty": ((0,), lambda d: not d),
}

# Methods every value has; they need the renderer (bounded comparison and stringification).
COMMON_METHODS = frozenset({"equals", "toString", "contains"})

ALLOWED_METHODS = frozenset(STR_METHODS) | set(LIST_METHODS) | set(DICT_METHODS) | COMMON_METHODS


def hashable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


def to_plain(value: Any, depth: int = 0) -> Any:
    """Copy caller data into the only types the interpreter knows. Anything else (dates,
    Decimals, UUIDs, model instances) becomes its string form, so no Python object of the
    caller is ever reachable from a template."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if depth >= MAX_DATA_DEPTH:
        raise TemplateRenderError(f"template data is nested deeper than {MAX_DATA_DEPTH} levels")
    if isinstance(value, Mapping):
        return {
            (k if isinstance(k, str | int | float) else str(k)): to_plain(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [to_plain(item, depth + 1) for item in value]
    return str(value)


class TemplateContext:
    """`$contact` and `$data` copied once into plain values, for rendering several templates
    (subject, HTML, text) of one message. Renders never change it: `#set` and loop variables
    live in a scope of each render's own. `extra` adds other top-level names (`$promo`, given
    by the layer that sends), copied the same way."""

    __slots__ = ("namespace",)

    def __init__(
        self,
        contact: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.namespace = {"contact": to_plain(contact or {}), "data": to_plain(data or {})}
        for name, value in (extra or {}).items():
            self.namespace.setdefault(name, to_plain(value))


def as_number(value: Any) -> int | float | None:
    if is_number(value):
        return value
    if isinstance(value, str) and len(value) <= 64:
        text = value.strip()
        if re.fullmatch(r"[+-]?\d{1,18}", text):
            return int(text)
        if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?", text):
            return float(text)
    return None
