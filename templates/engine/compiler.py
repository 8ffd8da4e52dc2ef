"""Compilation: airspeed parses, and Herald walks the tree once to refuse what the sandbox
does not support (with line and column) and to prepare expression trees for rendering."""

from __future__ import annotations

import re
from typing import Any

import airspeed

from templates.engine.renderer import CompiledTemplate, expression_of, list_values
from templates.engine.values import ALLOWED_METHODS, MAX_INT, MAX_SOURCE_CHARS, MAX_SYNTAX_MARKS
from templates.errors import TemplateSyntaxError

FORBIDDEN_DIRECTIVES: dict[type, str] = {
    airspeed.IncludeDirective: "#include",
    airspeed.ParseDirective: "#parse",
    airspeed.EvaluateDirective: "#evaluate",
    airspeed.DefineDefinition: "#define",
    airspeed.StopDirective: "#stop",
    airspeed.UserDefinedDirective: "user-defined directives",
}


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
            self.expression(expression_of(node.condition), base)
            self.block(node.block, base)
            for elseif in node.elseifs:
                self.expression(expression_of(elseif.condition), base)
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
            for value in list_values(part.parameters.values):
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
                for value in list_values(values):
                    self.value(value, base)
        elif kind is airspeed.DictionaryLiteral:
            for key, value in node.local_data.items():
                self.value(key, base)
                self.value(value, base)
        elif kind in (airspeed.ParenthesizedExpression, airspeed.Condition):
            self.expression(expression_of(node), base)
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
