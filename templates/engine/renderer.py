"""Rendering: Herald's own interpreter over a compiled template's tree, spending a bounded
budget (loop iterations, steps, macro depth, output size)."""

from __future__ import annotations

import html
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import airspeed

from templates.engine.values import (
    DICT_METHODS,
    LIST_METHODS,
    MAX_DATA_DEPTH,
    MAX_INT,
    MAX_LOOP_ITERATIONS,
    MAX_MACRO_DEPTH,
    MAX_OUTPUT_CHARS,
    MAX_RANGE,
    MAX_STEPS,
    STEP_CHARS,
    STR_METHODS,
    TemplateContext,
    as_number,
    hashable,
    int_arg,
    is_number,
    seq_get,
)
from templates.errors import TemplateRenderError

# The ordering operators (`#if ($a < $b)`), the only four `tree` passes to `compare`.
_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def expression_of(node: Any) -> Any:
    # ParenthesizedExpression and Condition keep only the bound `calculate` of their
    # Expression; its __self__ is the Expression node.
    expression = getattr(node.calculate, "__self__", None)
    if not isinstance(expression, airspeed.Expression):
        raise TypeError(f"unexpected airspeed node {type(node).__name__}")
    return expression


def list_values(node: Any) -> list[Any]:
    return node.values if isinstance(node, airspeed.ValueList) else []


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
        if self.truthy(self.tree(expression_of(node.condition).herald_tree, scopes)):
            self.block(node.block, scopes)
            return
        for elseif in node.elseifs:
            if self.truthy(self.tree(expression_of(elseif.condition).herald_tree, scopes)):
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
                args = [self.calc(arg, scopes) for arg in list_values(part.parameters.values)]
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
            return value.get(key) if hashable(key) else None
        if isinstance(value, list | range):
            return seq_get(value, key)
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
                if int_arg(low) is None or int_arg(high) is None:
                    return None
                # A range stays lazy: [1..100000000] costs nothing until a loop walks it,
                # and the loop budget stops that walk.
                if abs(high - low) >= MAX_RANGE:
                    raise TemplateRenderError(f"range [{low}..{high}] is too large")
                return range(low, high + 1) if low <= high else range(low, high - 1, -1)
            return [self.calc(value, scopes) for value in list_values(values)]
        if kind is airspeed.DictionaryLiteral:
            result = {}
            for key_node, value_node in node.local_data.items():
                key = self.calc(key_node, scopes)
                if not hashable(key):
                    raise TemplateRenderError("map keys must be strings or numbers")
                result[key] = self.calc(value_node, scopes)
            return result
        if kind is airspeed.ParenthesizedExpression:
            return self.tree(expression_of(node).herald_tree, scopes)
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
        if is_number(value):
            return value != 0
        if isinstance(value, str | list | dict | range):
            return len(value) > 0
        return True

    def equals(self, left: Any, right: Any, depth: int = 0) -> bool:
        self.step()
        if depth > MAX_DATA_DEPTH:
            raise TemplateRenderError("values compared are nested too deeply")
        if is_number(left) or is_number(right):
            a, b = as_number(left), as_number(right)
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
        a, b = as_number(left), as_number(right)
        if a is not None and b is not None:
            return _ORDERINGS[op](a, b)
        if isinstance(left, str) and isinstance(right, str):
            return _ORDERINGS[op](left, right)
        return False  # Velocity: incomparable values compare false

    def arithmetic(self, op: str, left: Any, right: Any) -> Any:
        if op == "+" and (isinstance(left, str) or isinstance(right, str)):
            if left is None or right is None:
                return None
            head, tail = self.to_str(left), self.to_str(right)
            if len(head) + len(tail) > MAX_OUTPUT_CHARS:
                raise TemplateRenderError(
                    f"a string built by the template exceeds {MAX_OUTPUT_CHARS} characters"
                )
            self.step((len(head) + len(tail)) // STEP_CHARS)
            return head + tail
        a, b = as_number(left), as_number(right)
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
        # Each item printed costs a step: a list (a range of a hundred million, say) longer
        # than the steps left is refused before a second is spent finding that out.
        if len(value) > MAX_STEPS - self.steps:
            self.step(len(value))
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
