"""Template-injection payloads. Each must be refused when the template is saved (syntax
error), stop with a clear render error, or render harmlessly: no Python internals in the
output, the caller's data unchanged, and quickly."""

import copy

import pytest

from templates.engine import (
    MAX_OUTPUT_CHARS,
    TemplateRenderError,
    TemplateSyntaxError,
    compile_template,
)

SYNTAX = "refused on save"
RENDER = "render error"
HARMLESS = "renders harmlessly"

PAYLOADS = [
    # Python object model
    ("$data.__class__", SYNTAX),
    ("${data.__class__}", SYNTAX),
    ("$!data.__class__.__mro__", SYNTAX),
    ("$contact.__init__.__globals__", SYNTAX),
    ("$data.get('x').__class__.__base__.__subclasses__()", SYNTAX),
    ("$data['__class__']", HARMLESS),
    ("$data.get('__class__')", HARMLESS),
    ("$data.get('__class__').get('__globals__')", HARMLESS),
    ("$__builtins__", SYNTAX),
    ("#set($_x = 1)", SYNTAX),
    ("#foreach($__i in [1])x#end", SYNTAX),
    ("#macro(__m)x#end", SYNTAX),
    ("$self $namespace $loader $stream", HARMLESS),
    # Mutation and arbitrary methods on caller data
    ("$data.clear()", SYNTAX),
    ("#set($x = $data.items())", SYNTAX),
    ("$data.keys() $data.values()", SYNTAX),
    ("$data.pop('name')", SYNTAX),
    ("$data.update({})", SYNTAX),
    ("$data.put('name', 'x')", SYNTAX),
    ("$data.putAll({'name': 'x'})", SYNTAX),
    ("$data.remove('name')", SYNTAX),
    ("$data.items.add(9)", SYNTAX),
    ("$data.items.append(9)", SYNTAX),
    ("$data.items.set(0, 9)", SYNTAX),
    ("$contact.fields.setdefault('a', 1)", SYNTAX),
    ("#set($data.name = 'x')", SYNTAX),
    ("#set($contact.fields.city = 'x')", SYNTAX),
    ("#set($data = 'replaced')$data", HARMLESS),
    ("$data.name.format('{0.__class__}')", SYNTAX),
    ("$data.name.join($data.items)", SYNTAX),
    ("$data.name.encode()", SYNTAX),
    ("$data.name.matches('(a+)+$')", SYNTAX),
    ("$data.name.replaceAll('(a+)+$', 'x')", SYNTAX),
    # Java-style escapes from other Velocity sandboxes
    ("$data.getClass().forName('java.lang.Runtime')", SYNTAX),
    ("#set($rt = $data.class.forName('java.lang.Runtime'))$!rt", SYNTAX),
    ("$data.class $data.class.name", HARMLESS),
    ("$class.inspect('java.lang.Runtime')", SYNTAX),
    # Loading other templates or evaluating strings
    ("#include('/etc/passwd')", SYNTAX),
    ("#parse('/etc/passwd')", SYNTAX),
    ('#evaluate("$data.__class__")', SYNTAX),
    ("#evaluate('#set($x = 1)')", SYNTAX),
    ("#define($block)x#end$block", SYNTAX),
    ("#stop", SYNTAX),
    # Resource exhaustion
    ("#foreach($i in [1..100000000])x#end", RENDER),
    ("#foreach($i in [1..9223372036854775807])x#end", RENDER),
    ("#foreach($i in [1..99999999999999999999])x#end", SYNTAX),
    (
        "#set($a = -9223372036854775807)#set($r = [$a..9223372036854775807])$r.size()",
        RENDER,
    ),
    ("#set($m = {})#foreach($i in [1..3000])#set($m = {$i: $m})#end$m.keySet()", HARMLESS),
    (
        "#foreach($a in [1..100])#foreach($b in [1..100])#foreach($c in [1..100])x#end#end#end",
        RENDER,
    ),
    ("#set($r = [1..100000000])$r.size() $r.get(5)", HARMLESS),
    ("#set($r = [1..100000000])$r", RENDER),
    ("#macro(r)#r()#end#r()", RENDER),
    ("#macro(f $n)#f($n)#f($n)#f($n)#f($n)#end#f(1)", RENDER),
    ("#macro(a)#b()#end#macro(b)#a()#end#a()", RENDER),
    ("#set($s = 'aaaaaaaaaa')#foreach($i in [1..40])#set($s = \"$s$s\")#end$s.length()", RENDER),
    ("#set($s = 'aaaaaaaaaa')#foreach($i in [1..40])#set($s = $s + $s)#end$s.length()", RENDER),
    ("#set($s = 'a' * 1000000000)$!s", HARMLESS),
    ("#set($s = $data.name * 1000000000)$!s", HARMLESS),
    (
        "#set($s = 'aaaaaaaaaaaaaaaaaaaa')#foreach($i in [1..16])#set($s = \"$s$s\")#end"
        "$s.replace('a', $s).length()",
        RENDER,
    ),
    (
        "#set($s = 'aaaaaaaaaaaaaaaaaaaa')#foreach($i in [1..15])#set($s = \"$s$s\")#end"
        "#foreach($i in [1..9000])#set($t = $s.toUpperCase())#end",
        RENDER,
    ),
    ("#set($x = 999999999)#foreach($i in [1..10])#set($x = $x * $x)#end$x", RENDER),
    ("#set($a = [1])#foreach($i in [1..200])#set($a = [$a, $a])#end$a", RENDER),
    (
        "#set($a = [1])#set($b = [1])#foreach($i in [1..60])#set($a = [$a, $a])"
        "#set($b = [$b, $b])#end$a.equals($b)",
        RENDER,
    ),
    (
        "#set($a = [1])#foreach($i in [1..25])#set($a = [$a, $a, $a])#end"
        "#set($b = [1])#foreach($i in [1..25])#set($b = [$b, $b, $b])#end#if($a == $b)eq#end",
        RENDER,
    ),
    ("#set($l = [])#foreach($i in [1..9000])#set($l = [$l])#end$l.size()", HARMLESS),
    ("$data.name.substring(0, 999999999)", HARMLESS),
    ("#set($x = {[1]: 2})", RENDER),
    ("#if($a not $b)#end", SYNTAX),
    ("#set($x = " + "1 + " * 5000 + "1)$x", SYNTAX),
    ("#if(" + "(" * 3000 + "true" + ")" * 3000 + ")x#end", SYNTAX),
    ("\x00 $data.name \x00", HARMLESS),
]

FORBIDDEN_OUTPUT = ("<class", "<built-in", "<bound", "<function", "<module", "object at 0x")


def _caller_data():
    return {"name": "Ann", "items": [{"name": "Tea"}], "nested": {"a": [1, 2]}}


def _caller_contact():
    return {"firstName": "Ann", "fields": {"city": "Paris"}, "tags": ["vip"]}


@pytest.mark.parametrize(("payload", "expected"), PAYLOADS)
def test_injection_payload_is_refused_or_harmless(payload, expected):
    data, contact = _caller_data(), _caller_contact()
    data_before, contact_before = copy.deepcopy(data), copy.deepcopy(contact)
    outcome = HARMLESS
    try:
        output = compile_template(payload).render(contact, data)
    except TemplateSyntaxError as exc:
        outcome = SYNTAX
        assert exc.line >= 1 and exc.column >= 1
    except TemplateRenderError as exc:
        outcome = RENDER
        assert str(exc)
    else:
        assert not any(marker in output for marker in FORBIDDEN_OUTPUT), output[:200]
        assert len(output) <= MAX_OUTPUT_CHARS
    assert outcome == expected
    assert data == data_before
    assert contact == contact_before


def test_rendering_cannot_reach_caller_objects():
    class Secret:
        def __str__(self):
            return "secret-as-text"

        def clear(self):
            raise AssertionError("a template called a method of a caller object")

    output = compile_template("$data.obj $data.obj.length()").render({}, {"obj": Secret()})
    assert output == "secret-as-text 14"


def test_template_made_values_never_leak_into_the_next_render():
    template = compile_template('#set($seen = "$!seen$data.n")$seen')
    assert template.render({}, {"n": 1}) == "1"
    assert template.render({}, {"n": 2}) == "2"
