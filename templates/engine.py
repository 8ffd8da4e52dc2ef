"""Sandboxed Velocity rendering for marketer-written message templates.

Templates are written in the Velocity syntax of the seeds (`$!data.get('discount')`,
`#if(...)#else#end`, `#foreach($item in $data.get('items'))`, `$x.equals('0')`, arithmetic).

airspeed is used only as a *parser*. Its own evaluator resolves any Python attribute
(`$data.__class__`), calls any method (`$data.clear()`, `$s.format(...)`), multiplies
strings, runs `#evaluate`/`#parse`, and writes through `#set($a.b = ...)`; wrapping the
context in proxies would not help because template-made values (string and list literals,
ranges) reach it unwrapped. So Herald walks airspeed's syntax tree with its own interpreter
below, in which a template can only:

- read plain data (None, bool, int, float, str, list, dict; the caller's data is copied to
  these types on every render, so nothing of the caller is reachable or mutable);
- call the methods of the `*_METHODS` allowlists, checked by name when the template is
  compiled (an unknown method or any name starting with `_` is a syntax error at save time);
- assign simple variables with `#set($name = ...)`;
- spend a bounded budget: loop iterations, evaluation steps, macro depth, output size and
  the size of every string it builds.

Velocity semantics kept on purpose: a missing value renders as the reference's own text for
`$x` and as nothing for `$!x`; `$map.key` is `$map.get('key')`; `#foreach` over a map walks
its values; `+` with a string concatenates; integer division truncates toward zero.
Deliberately lenient where marketers' data arrive as strings (event params are strings):
`-`, `*`, `/`, `%` and `<`/`>` accept numeric strings, and `equals`/`==` between a number and
a numeric string compare the numbers (`$n.equals('0')` is true for 0).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import airspeed

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

FORBIDDEN_DIRECTIVES: dict[type, str] = {
    airspeed.IncludeDirective: "#include",
    airspeed.ParseDirective: "#parse",
    airspeed.EvaluateDirective: "#evaluate",
    airspeed.DefineDefinition: "#define",
    airspeed.StopDirective: "#stop",
    airspeed.UserDefinedDirective: "user-defined directives",
}


class TemplateError(Exception):
    """Base of every error a template can cause; its message is meant for the marketer."""


class TemplateSyntaxError(TemplateError):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


class TemplateRenderError(TemplateError):
    """A template failed while rendering (limits exceeded, bad data shape)."""


# --- allowlisted methods -------------------------------------------------------------------
# Each entry: name -> (arity, function). Functions get plain values and return plain values
# or None ("no result": Velocity then renders the reference literally).


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int_arg(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_substring(s: str, begin: Any, end: Any = None) -> str | None:
    begin = _int_arg(begin)
    end = len(s) if end is None else _int_arg(end)
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


def _seq_get(seq: Sequence[Any], index: Any) -> Any:
    index = _int_arg(index)
    if index is None or not 0 <= index < len(seq):
        return None
    return seq[index]


LIST_METHODS: dict[str, tuple[tuple[int, ...], Callable[..., Any]]] = {
    "get": ((1,), _seq_get),
    "size": ((0,), len),
    "isEmpty": ((0,), lambda seq: len(seq) == 0),
}

DICT_METHODS: dict[str, tuple[tuple[int, ...], Callable[..., Any]]] = {
    "get": ((1,), lambda d, key: d.get(key) if _hashable(key) else None),
    "containsKey": ((1,), lambda d, key: _hashable(key) and key in d),
    "keySet": ((0,), lambda d: list(d)),
    "size": ((0,), len),
    "isEmpty": ((0,), lambda d: not d),
}

# Methods every value has; they need the renderer (bounded comparison and stringification).
COMMON_METHODS = frozenset({"equals", "toString", "contains"})

ALLOWED_METHODS = frozenset(STR_METHODS) | set(LIST_METHODS) | set(DICT_METHODS) | COMMON_METHODS


def _hashable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


# --- data copying ---------------------------------------------------------------------------


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


# --- compilation ----------------------------------------------------------------------------

_BINARY_PRECEDENCE = {
    "*": 4,
    "/": 4,
    "%": 4,
    "+": 5,
    "-": 5,
    "<": 7,
    ">": 7,
    "<=": 7,
    ">=": 7,
    "lt": 7,
    "gt": 7,
    "le": 7,
    "ge": 7,
    "==": 8,
    "!=": 8,
    "eq": 8,
    "ne": 8,
    "&&": 12,
    "and": 12,
    "||": 13,
    "or": 13,
}
_OP_ALIASES = {
    "lt": "<",
    "gt": ">",
    "le": "<=",
    "ge": ">=",
    "eq": "==",
    "ne": "!=",
    "and": "&&",
    "or": "||",
}
_AIRSPEED_MESSAGE = re.compile(r"^line \d+, column \d+: expected (.*) in ([a-z ]+), got: ", re.S)


def _position(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _expression_of(node: Any) -> Any:
    # ParenthesizedExpression and Condition keep only the bound `calculate` of their
    # Expression; its __self__ is the Expression node.
    expression = getattr(node.calculate, "__self__", None)
    if not isinstance(expression, airspeed.Expression):
        raise TypeError(f"unexpected airspeed node {type(node).__name__}")
    return expression


def _list_values(node: Any) -> list[Any]:
    return node.values if isinstance(node, airspeed.ValueList) else []


class _Compiler:
    """Walks airspeed's tree once: refuses what the sandbox does not support (with line and
    column), collects macros and prepares expression trees for the interpreter."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.macros: dict[str, Any] = {}
        self.calls: list[tuple[Any, int]] = []

    def error(self, message: str, node: Any, base: int) -> TemplateSyntaxError:
        line, column = _position(self.source, min(base + node.start, len(self.source)))
        return TemplateSyntaxError(message, line, column)

    def name(self, name: str, node: Any, base: int) -> None:
        if name.startswith("_"):
            raise self.error(f"names starting with '_' are not allowed: '{name}'", node, base)

    def block(self, block: Any, base: int) -> None:
        for child in block.children:
            self.element(child, base)

    def element(self, node: Any, base: int) -> None:
        kind = type(node)
        if kind in (airspeed.Text, airspeed.FallthroughHashText, airspeed.Comment):
            return
        if kind in FORBIDDEN_DIRECTIVES:
            raise self.error(
                f"{FORBIDDEN_DIRECTIVES[kind]} is not allowed in message templates", node, base
            )
        if kind is airspeed.FormalReference:
            self.reference(node, base)
        elif kind is airspeed.IfDirective:
            self.expression(_expression_of(node.condition), base)
            self.block(node.block, base)
            for elseif in node.elseifs:
                self.expression(_expression_of(elseif.condition), base)
                self.block(elseif.block, base)
            if isinstance(node.else_block, airspeed.ElseBlock):
                self.block(node.else_block.block, base)
        elif kind is airspeed.SetDirective:
            if len(node.terms) != 1:
                raise self.error(
                    "#set can only assign a plain variable such as $name, not a property",
                    node,
                    base,
                )
            self.name(node.terms[0], node, base)
            self.expression(node.value, base)
        elif kind is airspeed.ForeachDirective:
            self.name(node.loop_var_name, node, base)
            self.value(node.value, base)
            self.block(node.block, base)
        elif kind is airspeed.MacroDefinition:
            name = node.function_name.lower()
            self.name(name, node, base)
            if name in self.macros:
                raise self.error(f"macro #{name} is defined twice", node, base)
            for arg in node.arg_names:
                self.name(arg, node, base)
            self.macros[name] = node
            self.block(node.block, base)
        elif kind is airspeed.MacroCall:
            for arg in node.args:
                self.value(arg, base)
            self.calls.append((node, base))
        else:
            raise self.error(f"unsupported template construct ({kind.__name__})", node, base)

    def check_calls(self) -> None:
        for node, base in self.calls:
            macro = self.macros.get(node.macro_name)
            if macro is None:
                raise self.error(f"unknown macro #{node.macro_name}", node, base)
            if len(node.args) != len(macro.arg_names):
                raise self.error(
                    f"macro #{node.macro_name} takes {len(macro.arg_names)} argument(s), "
                    f"got {len(node.args)}",
                    node,
                    base,
                )

    def reference(self, node: Any, base: int) -> None:
        if node.expression is not None:
            self.variable(node.expression, base, top=True)
        if node.alternate is not None:
            self.value(node.alternate.expression, base)

    def variable(self, node: Any, base: int, *, top: bool) -> None:
        part = node.part
        self.name(part.name, part, base)
        if part.parameters is not None:
            if top:
                raise self.error(f"${part.name}(...) is not a method call on a value", part, base)
            if part.name not in ALLOWED_METHODS:
                allowed = ", ".join(sorted(ALLOWED_METHODS))
                raise self.error(
                    f"method '{part.name}' is not allowed (allowed: {allowed})", part, base
                )
            for value in _list_values(part.parameters.values):
                self.value(value, base)
        if part.index is not None:
            self.value(part.index.index, base)
        sub = node.subexpression
        while sub is not None:
            if isinstance(sub.expression, airspeed.ArrayIndex):
                self.value(sub.expression.index, base)
                sub = sub.subexpression
            else:
                self.variable(sub.expression, base, top=False)
                sub = None

    def value(self, node: Any, base: int) -> None:
        kind = type(node)
        if kind is airspeed.Value:
            self.value(node.expression, base)
        elif kind is airspeed.FormalReference:
            self.reference(node, base)
        elif kind in (
            airspeed.IntegerLiteral,
            airspeed.FloatingPointLiteral,
            airspeed.StringLiteral,
            airspeed.BooleanLiteral,
            airspeed.NullLiteral,
        ):
            if kind is airspeed.IntegerLiteral and abs(node.value) > MAX_INT:
                raise self.error("number is too large", node, base)
        elif kind is airspeed.InterpolatedStringLiteral:
            # Offsets inside the string are relative to its text; +1 skips the quote.
            self.block(node.block, base + node.start + 1)
        elif kind is airspeed.ArrayLiteral:
            values = node.values
            if isinstance(values, airspeed.Range):
                self.value(values.value1, base)
                self.value(values.value2, base)
            else:
                for value in _list_values(values):
                    self.value(value, base)
        elif kind is airspeed.DictionaryLiteral:
            for key, value in node.local_data.items():
                self.value(key, base)
                self.value(value, base)
        elif kind in (airspeed.ParenthesizedExpression, airspeed.Condition):
            self.expression(_expression_of(node), base)
        elif kind is airspeed.Expression:
            self.expression(node, base)
        elif kind is airspeed.UnaryOperatorValue:
            self.value(node.value, base)
        else:
            raise self.error(f"unsupported expression ({kind.__name__})", node, base)

    def expression(self, node: Any, base: int) -> None:
        """Checks the operands and stores a (op, left, right) tree on the node, built with
        Java precedence and left associativity, so rendering never re-parses it."""
        items = node.expression
        operands: list[Any] = []
        operators: list[str] = []

        def reduce() -> None:
            right = operands.pop()
            left = operands.pop()
            operands.append((operators.pop(), left, right))

        for index, item in enumerate(items):
            if index % 2 == 0:
                self.value(item, base)
                operands.append(item)
                continue
            op = item.my_text().strip()
            if op not in _BINARY_PRECEDENCE:
                raise self.error(f"unknown operator '{op}'", item, base)
            while operators and _BINARY_PRECEDENCE[operators[-1]] <= _BINARY_PRECEDENCE[op]:
                reduce()
            operators.append(op)
        while operators:
            reduce()
        node.herald_tree = _canonical(operands[0])


def _canonical(tree: Any) -> Any:
    if isinstance(tree, tuple):
        op, left, right = tree
        return (_OP_ALIASES.get(op, op), _canonical(left), _canonical(right))
    return tree


def _syntax_error_from_airspeed(
    source: str, exc: airspeed.TemplateSyntaxError
) -> TemplateSyntaxError:
    match = _AIRSPEED_MESSAGE.match(str(exc))
    got = exc.element.next_text()[:30].split("\n")[0]
    element = type(exc.element).__name__
    if element == "TemplateBody" and got.lower().startswith(("#end", "#else", "#{end", "#{else")):
        word = got.split()[0] if got.split() else got
        message = f"unexpected '{word}' without a matching #if/#foreach/#macro"
    elif match:
        expected, where = match.groups()
        start_line, start_column = _position(source, exc.element.start)
        message = (
            f"expected {expected} in {where} that starts at line {start_line}, "
            f"column {start_column}"
        )
        if got:
            message += f", found '{got}'"
        else:
            message += ", found the end of the template"
    else:
        message = str(exc)
    return TemplateSyntaxError(message, exc.line, exc.column)


def compile_template(source: str) -> CompiledTemplate:
    """Parse once; raise TemplateSyntaxError (with line and column) for anything the sandbox
    would refuse, so that mistakes show when the template is saved, not when it is sent."""
    if not isinstance(source, str):
        raise TypeError("template source must be a string")
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateSyntaxError(f"template is longer than {MAX_SOURCE_CHARS:,} characters", 1, 1)
    if source.count("$") + source.count("#") > MAX_SYNTAX_MARKS:
        raise TemplateSyntaxError(
            f"template has more than {MAX_SYNTAX_MARKS:,} '$' and '#' characters", 1, 1
        )
    try:
        body = airspeed.TemplateBody("<template>", source)
        compiler = _Compiler(source)
        compiler.block(body.block, 0)
        compiler.check_calls()
    except airspeed.TemplateSyntaxError as exc:
        raise _syntax_error_from_airspeed(source, exc) from None
    except RecursionError:
        raise TemplateSyntaxError("template is nested too deeply", 1, 1) from None
    except TemplateSyntaxError:
        raise
    except Exception as exc:  # airspeed raises bare KeyError/ValueError on some inputs
        raise TemplateSyntaxError(f"invalid template syntax ({type(exc).__name__})", 1, 1) from None
    return CompiledTemplate(source, body.block, compiler.macros)


class TemplateContext:
    """`$contact` and `$data` copied once into plain values, for rendering several templates
    (subject, HTML, text) of one message. Renders never change it: `#set` and loop variables
    live in a scope of each render's own."""

    __slots__ = ("namespace",)

    def __init__(
        self, contact: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None
    ) -> None:
        self.namespace = {"contact": to_plain(contact or {}), "data": to_plain(data or {})}


@dataclass(frozen=True, eq=False)
class CompiledTemplate:
    source: str
    block: Any
    macros: dict[str, Any]

    def render(
        self,
        contact: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        escape_html: bool = False,
    ) -> str:
        """Render with `$contact` and `$data`. With escape_html, what references write (their
        value, or their own text when they have none) is HTML-escaped, the template's other
        text is not: used for HTML bodies, where contact-supplied values must not become
        markup."""
        return self.render_context(TemplateContext(contact, data), escape_html=escape_html)

    def render_context(self, context: TemplateContext, *, escape_html: bool = False) -> str:
        renderer = _Renderer(self.macros, escape_html)
        try:
            renderer.block(self.block, [context.namespace, {}])
        except RecursionError:
            raise TemplateRenderError("template is nested too deeply to render") from None
        return "".join(renderer.out)


# --- interpretation -------------------------------------------------------------------------

_MISSING = object()


class _Renderer:
    def __init__(self, macros: dict[str, Any], escape_html: bool) -> None:
        self.macros = macros
        self.escape_html = escape_html
        self.out: list[str] = []
        self.size = 0
        self.steps = 0
        self.iterations = 0
        self.macro_depth = 0

    # output and budgets

    def write(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_OUTPUT_CHARS:
            raise TemplateRenderError(f"rendered output exceeds {MAX_OUTPUT_CHARS} characters")
        self.out.append(text)

    def step(self, cost: int = 1) -> None:
        self.steps += cost
        if self.steps > MAX_STEPS:
            raise TemplateRenderError(f"template does too much work (more than {MAX_STEPS} steps)")

    # statements

    def block(self, block: Any, scopes: list[dict[str, Any]]) -> None:
        for child in block.children:
            self.step()
            kind = type(child)
            if kind is airspeed.Text or kind is airspeed.FallthroughHashText:
                self.write(child.text)
            elif kind is airspeed.FormalReference:
                self.reference(child, scopes)
            elif kind is airspeed.IfDirective:
                self.if_(child, scopes)
            elif kind is airspeed.ForeachDirective:
                self.foreach(child, scopes)
            elif kind is airspeed.SetDirective:
                self.assign(scopes, child.terms[0], self.tree(child.value.herald_tree, scopes))
            elif kind is airspeed.MacroCall:
                self.macro_call(child, scopes)
            # Comment and MacroDefinition (collected at compile time) write nothing.

    def reference(self, node: Any, scopes: list[dict[str, Any]]) -> None:
        value = self.reference_value(node, scopes)
        if value is None:
            if node.silent and node.expression is not None:
                return
            # The reference's own text comes from the template source, not from sanitised
            # HTML: in an attribute its quotes would end the value.
            text = node.my_text()
        else:
            text = value if isinstance(value, str) else self.to_str(value)
        self.write(html.escape(text) if self.escape_html else text)

    def reference_value(self, node: Any, scopes: list[dict[str, Any]]) -> Any:
        value = self.variable(node.expression, scopes) if node.expression is not None else None
        if value is None and node.alternate is not None:
            value = self.calc(node.alternate.expression, scopes)
        return value

    def if_(self, node: Any, scopes: list[dict[str, Any]]) -> None:
        if self.truthy(self.tree(_expression_of(node.condition).herald_tree, scopes)):
            self.block(node.block, scopes)
            return
        for elseif in node.elseifs:
            if self.truthy(self.tree(_expression_of(elseif.condition).herald_tree, scopes)):
                self.block(elseif.block, scopes)
                return
        if isinstance(node.else_block, airspeed.ElseBlock):
            self.block(node.else_block.block, scopes)

    def foreach(self, node: Any, scopes: list[dict[str, Any]]) -> None:
        iterable = self.calc(node.value, scopes)
        if isinstance(iterable, dict):
            items: Sequence[Any] = list(iterable.values())
        elif isinstance(iterable, list | range):
            items = iterable
        else:
            return  # Velocity skips a loop over null or a non-collection
        scope = scopes[-1]
        saved = {
            key: scope.get(key, _MISSING)
            for key in (node.loop_var_name, "foreach", "velocityCount", "velocityHasNext")
        }
        length = len(items)
        try:
            for index, item in enumerate(items):
                self.iterations += 1
                if self.iterations > MAX_LOOP_ITERATIONS:
                    raise TemplateRenderError(
                        f"#foreach loops exceed {MAX_LOOP_ITERATIONS} iterations in one message"
                    )
                scope[node.loop_var_name] = item
                scope["foreach"] = {
                    "count": index + 1,
                    "index": index,
                    "hasNext": index + 1 < length,
                    "first": index == 0,
                    "last": index + 1 == length,
                }
                scope["velocityCount"] = index + 1
                scope["velocityHasNext"] = index + 1 < length
                self.block(node.block, scopes)
        finally:
            for key, value in saved.items():
                if value is _MISSING:
                    scope.pop(key, None)
                else:
                    scope[key] = value

    def macro_call(self, node: Any, scopes: list[dict[str, Any]]) -> None:
        macro = self.macros[node.macro_name]
        if self.macro_depth >= MAX_MACRO_DEPTH:
            raise TemplateRenderError(
                f"macros call each other deeper than {MAX_MACRO_DEPTH} levels"
            )
        args = [self.calc(arg, scopes) for arg in node.args]
        self.macro_depth += 1
        try:
            self.block(macro.block, [*scopes, dict(zip(macro.arg_names, args, strict=True))])
        finally:
            self.macro_depth -= 1

    @staticmethod
    def assign(scopes: list[dict[str, Any]], name: str, value: Any) -> None:
        # scopes[0] is the shared TemplateContext: a #set of $data or $contact shadows it in
        # the render's own scope instead of writing into it.
        for scope in reversed(scopes[1:]):
            if name in scope:
                scope[name] = value
                return
        scopes[-1][name] = value

    # expressions

    def lookup(self, name: str, scopes: list[dict[str, Any]]) -> Any:
        for scope in reversed(scopes):
            if name in scope:
                return scope[name]
        return None

    def variable(self, node: Any, scopes: list[dict[str, Any]]) -> Any:
        part = node.part
        value = self.lookup(part.name, scopes)
        if part.index is not None and value is not None:
            value = self.index(value, self.calc(part.index.index, scopes))
        sub = node.subexpression
        while sub is not None and value is not None:
            self.step()
            if isinstance(sub.expression, airspeed.ArrayIndex):
                value = self.index(value, self.calc(sub.expression.index, scopes))
                sub = sub.subexpression
                continue
            expression = sub.expression
            part = expression.part
            if part.parameters is not None:
                args = [self.calc(arg, scopes) for arg in _list_values(part.parameters.values)]
                value = self.call(value, part.name, args)
            elif isinstance(value, dict):
                value = value.get(part.name)  # $map.key is $map.get('key')
            else:
                value = None
            if part.index is not None and value is not None:
                value = self.index(value, self.calc(part.index.index, scopes))
            sub = expression.subexpression
        return value

    def index(self, value: Any, key: Any) -> Any:
        if isinstance(value, dict):
            return value.get(key) if _hashable(key) else None
        if isinstance(value, list | range):
            return _seq_get(value, key)
        return None

    def call(self, value: Any, name: str, args: list[Any]) -> Any:
        if name == "equals":
            return self.equals(value, args[0]) if len(args) == 1 else None
        if name == "toString":
            return self.to_str(value) if not args else None
        if isinstance(value, str):
            methods = STR_METHODS
        elif isinstance(value, list | range):
            if name == "contains":
                return any(self.equals(item, args[0]) for item in value) if len(args) == 1 else None
            methods = LIST_METHODS
        elif isinstance(value, dict):
            methods = DICT_METHODS
        else:
            return None
        entry = methods.get(name)
        if entry is None or len(args) not in entry[0]:
            return None
        # Charged by size: a loop repeating this on a big string, list or map must run out
        # of steps, not of time.
        if isinstance(value, str):
            self.step(len(value) // STEP_CHARS)
        elif name == "keySet":
            self.step(len(value))
        return entry[1](value, *args)

    def calc(self, node: Any, scopes: list[dict[str, Any]]) -> Any:
        self.step()
        kind = type(node)
        if kind is airspeed.Value:
            return self.calc(node.expression, scopes)
        if kind is airspeed.FormalReference:
            return self.reference_value(node, scopes)
        if kind in (
            airspeed.StringLiteral,
            airspeed.IntegerLiteral,
            airspeed.FloatingPointLiteral,
            airspeed.BooleanLiteral,
        ):
            return node.value
        if kind is airspeed.NullLiteral:
            return None
        if kind is airspeed.InterpolatedStringLiteral:
            return self.capture(node.block, scopes)
        if kind is airspeed.ArrayLiteral:
            values = node.values
            if isinstance(values, airspeed.Range):
                low = self.calc(values.value1, scopes)
                high = self.calc(values.value2, scopes)
                if _int_arg(low) is None or _int_arg(high) is None:
                    return None
                # A range stays lazy: [1..100000000] costs nothing until a loop walks it,
                # and the loop budget stops that walk.
                if abs(high - low) >= MAX_RANGE:
                    raise TemplateRenderError(f"range [{low}..{high}] is too large")
                return range(low, high + 1) if low <= high else range(low, high - 1, -1)
            return [self.calc(value, scopes) for value in _list_values(values)]
        if kind is airspeed.DictionaryLiteral:
            result = {}
            for key_node, value_node in node.local_data.items():
                key = self.calc(key_node, scopes)
                if not _hashable(key):
                    raise TemplateRenderError("map keys must be strings or numbers")
                result[key] = self.calc(value_node, scopes)
            return result
        if kind is airspeed.ParenthesizedExpression:
            return self.tree(_expression_of(node).herald_tree, scopes)
        if kind is airspeed.UnaryOperatorValue:
            return not self.truthy(self.calc(node.value, scopes))
        raise TemplateRenderError(f"unsupported expression ({kind.__name__})")

    def capture(self, block: Any, scopes: list[dict[str, Any]]) -> str:
        out, size, escape = self.out, self.size, self.escape_html
        self.out, self.size, self.escape_html = [], 0, False
        try:
            self.block(block, scopes)
            result = "".join(self.out)
            self.step(len(result) // STEP_CHARS)
            return result
        finally:
            self.out, self.size, self.escape_html = out, size, escape

    def tree(self, tree: Any, scopes: list[dict[str, Any]]) -> Any:
        if not isinstance(tree, tuple):
            return self.calc(tree, scopes)
        op, left_tree, right_tree = tree
        left = self.tree(left_tree, scopes)
        if op == "&&":
            return self.truthy(left) and self.truthy(self.tree(right_tree, scopes))
        if op == "||":
            return self.truthy(left) or self.truthy(self.tree(right_tree, scopes))
        right = self.tree(right_tree, scopes)
        if op == "==":
            return self.equals(left, right)
        if op == "!=":
            return not self.equals(left, right)
        if op in ("<", ">", "<=", ">="):
            return self.compare(op, left, right)
        return self.arithmetic(op, left, right)

    # value semantics

    def truthy(self, value: Any) -> bool:
        if value is None or value is False:
            return False
        if value is True:
            return True
        if _is_number(value):
            return value != 0
        if isinstance(value, str | list | dict | range):
            return len(value) > 0
        return True

    def equals(self, left: Any, right: Any, depth: int = 0) -> bool:
        self.step()
        if depth > MAX_DATA_DEPTH:
            raise TemplateRenderError("values compared are nested too deeply")
        if _is_number(left) or _is_number(right):
            a, b = _as_number(left), _as_number(right)
            return a is not None and b is not None and a == b
        if isinstance(left, bool) or isinstance(right, bool):
            if isinstance(left, str) or isinstance(right, str):
                return self.to_str(left) == self.to_str(right)
            return left is right
        if isinstance(left, list | range) and isinstance(right, list | range):
            return len(left) == len(right) and all(
                self.equals(a, b, depth + 1) for a, b in zip(left, right, strict=True)
            )
        if isinstance(left, dict) and isinstance(right, dict):
            return left.keys() == right.keys() and all(
                self.equals(value, right[key], depth + 1) for key, value in left.items()
            )
        if type(left) is not type(right):
            return False
        if isinstance(left, str):
            self.step(min(len(left), len(right)) // STEP_CHARS)
        return left == right  # str or None

    def compare(self, op: str, left: Any, right: Any) -> bool:
        a, b = _as_number(left), _as_number(right)
        if a is None or b is None:
            if not (isinstance(left, str) and isinstance(right, str)):
                return False  # Velocity: incomparable values compare false
            a, b = left, right
        if op == "<":
            return a < b
        if op == ">":
            return a > b
        if op == "<=":
            return a <= b
        return a >= b

    def arithmetic(self, op: str, left: Any, right: Any) -> Any:
        if op == "+" and (isinstance(left, str) or isinstance(right, str)):
            if left is None or right is None:
                return None
            a, b = self.to_str(left), self.to_str(right)
            if len(a) + len(b) > MAX_OUTPUT_CHARS:
                raise TemplateRenderError(
                    f"a string built by the template exceeds {MAX_OUTPUT_CHARS} characters"
                )
            self.step((len(a) + len(b)) // STEP_CHARS)
            return a + b
        a, b = _as_number(left), _as_number(right)
        if a is None or b is None:
            return None  # Velocity: arithmetic on non-numbers is null
        if op == "+":
            result = a + b
        elif op == "-":
            result = a - b
        elif op == "*":
            result = a * b
        elif b == 0:
            return None  # Velocity: division by zero is null
        elif op == "/":
            if isinstance(a, int) and isinstance(b, int):
                result = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            else:
                result = a / b
        elif isinstance(a, float) or isinstance(b, float):
            result = math.fmod(a, b)
        else:
            result = abs(a) % abs(b) * (-1 if a < 0 else 1)  # Java: sign of the dividend
        if isinstance(result, int) and abs(result) > MAX_INT:
            raise TemplateRenderError("number out of range (beyond 64-bit integers)")
        return result

    def to_str(self, value: Any, depth: int = 0) -> str:
        """Velocity/Java string forms, bounded in size and depth (a template can build a
        list that contains itself twice per level; printing it must not run away)."""
        if isinstance(value, str):
            return value
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if math.isnan(value):
                return "NaN"
            if math.isinf(value):
                return "Infinity" if value > 0 else "-Infinity"
            return repr(value)
        if depth > MAX_DATA_DEPTH:
            raise TemplateRenderError("value is nested too deeply to print")
        parts: list[str] = []
        size = 2
        if isinstance(value, dict):
            pairs = ((self.to_str(k, depth + 1) + "=", v) for k, v in value.items())
            opening, closing = "{", "}"
        else:
            pairs = (("", v) for v in value)
            opening, closing = "[", "]"
        for prefix, item in pairs:
            self.step()
            text = prefix + self.to_str(item, depth + 1)
            size += len(text) + 2
            if size > MAX_OUTPUT_CHARS:
                raise TemplateRenderError(
                    f"a value printed by the template exceeds {MAX_OUTPUT_CHARS} characters"
                )
            parts.append(text)
        return opening + ", ".join(parts) + closing


def _as_number(value: Any) -> int | float | None:
    if _is_number(value):
        return value
    if isinstance(value, str) and len(value) <= 64:
        text = value.strip()
        if re.fullmatch(r"[+-]?\d{1,18}", text):
            return int(text)
        if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?", text):
            return float(text)
    return None
