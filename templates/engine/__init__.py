"""Sandboxed Velocity rendering for marketer-written message templates.

Templates are written in the Velocity syntax of the eSputnik v1 API's message templates
(`$!data.get('discount')`, `#if(...)#else#end`, `#foreach($item in $data.get('items'))`,
`$x.equals('0')`, arithmetic).

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

from templates.engine.compiler import compile_template
from templates.engine.renderer import CompiledTemplate
from templates.engine.values import (
    MAX_DATA_DEPTH,
    MAX_LOOP_ITERATIONS,
    MAX_MACRO_DEPTH,
    MAX_OUTPUT_CHARS,
    MAX_SOURCE_CHARS,
    MAX_STEPS,
    MAX_SYNTAX_MARKS,
    TemplateContext,
    to_plain,
)
from templates.errors import TemplateError, TemplateRenderError, TemplateSyntaxError

__all__ = [
    "MAX_DATA_DEPTH",
    "MAX_LOOP_ITERATIONS",
    "MAX_MACRO_DEPTH",
    "MAX_OUTPUT_CHARS",
    "MAX_SOURCE_CHARS",
    "MAX_STEPS",
    "MAX_SYNTAX_MARKS",
    "CompiledTemplate",
    "TemplateContext",
    "TemplateError",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "compile_template",
    "to_plain",
]
