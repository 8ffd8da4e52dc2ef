"""The sandboxed Velocity engine: eSputnik's template language as its documentation shows it,
syntax errors with line and column."""

import pytest

from templates.engine import (
    MAX_OUTPUT_CHARS,
    MAX_SOURCE_CHARS,
    TemplateRenderError,
    TemplateSyntaxError,
    compile_template,
)


def render(source, contact=None, data=None, **kwargs):
    return compile_template(source).render(contact or {}, data or {}, **kwargs)


# --- eSputnik's documented examples -------------------------------------------------------


def test_documented_quiet_reference_inserts_event_params():
    data = {"discount": "5%", "link": "https://example.site.com/items_for_sale"}
    source = "Save $!data.get('discount') at $!data.get('link')"
    assert render(source, data=data) == "Save 5% at https://example.site.com/items_for_sale"


def test_missing_value_renders_literally_for_dollar_and_empty_for_quiet_reference():
    assert render("[$data.get('x')]") == "[$data.get('x')]"
    assert render("[$!data.get('x')]") == "[]"
    assert render("[${data.x}]") == "[${data.x}]"
    assert render("[$!{data.x}]") == "[]"


def test_documented_if_equals_zero_condition():
    source = "#if($data.get('field_name').equals('0'))zero#else other#end"
    assert render(source, data={"field_name": "0"}) == "zero"
    assert render(source, data={"field_name": "1"}) == " other"
    # JSON numbers compare with numeric strings: what a marketer means by .equals('0').
    assert render(source, data={"field_name": 0}) == "zero"
    assert render(source, data={}) == " other"


def test_documented_foreach_over_items_reads_fields_with_get():
    source = "#foreach($item in $data.get('items'))$item.get('name')=$item.get('price');#end"
    data = {"items": [{"name": "Tea", "price": 3}, {"name": "Cake", "price": 4.5}]}
    assert render(source, data=data) == "Tea=3;Cake=4.5;"


def test_arithmetic_follows_velocity():
    source = "#set($total = $data.get('price') * $data.get('qty'))$total $data.get('qty') / 2 "
    source += "#set($half = $data.get('qty') / 2)$half #set($neg = -7 / 2)$neg #set($m = 7 % 3)$m"
    assert render(source, data={"price": 2.5, "qty": 3}) == "7.5 3 / 2 1 -3 1"
    assert render("#set($r = -7 % 3)$r #set($r = 7 % -3)$r #set($r = 7.5 % 2)$r") == "-1 1 1.5"


def test_arithmetic_accepts_numeric_strings_from_event_params():
    assert render("#set($x = $data.get('n') * 2)$x", data={"n": "21"}) == "42"
    assert render("#set($x = $data.get('n') - 0.5)$x", data={"n": "2"}) == "1.5"


def test_plus_with_a_string_concatenates():
    assert render("#set($s = 'Order ' + $data.get('n'))$s", data={"n": 7}) == "Order 7"


def test_division_by_zero_and_arithmetic_on_text_give_null():
    assert render("#set($x = 1 / 0)[$!x]") == "[]"
    assert render("#set($x = 'a' * 3)[$!x]") == "[]"


def test_property_access_is_map_get():
    data = {"user": {"name": "Ann", "tags": ["a", "b"]}}
    assert (
        render("$data.user.name $data.user.tags.size() $data.user.tags[1]", data=data) == "Ann 2 b"
    )
    assert render("$data.user.name.missing") == "$data.user.name.missing"


def test_contact_fields_and_custom_fields():
    contact = {"firstName": "Ann", "fields": {"12": "Paris", "city": "Paris"}}
    source = "Hi $contact.firstName from $contact.fields.get('12') / $contact.fields.city"
    assert render(source, contact=contact) == "Hi Ann from Paris / Paris"


def test_if_elseif_else_and_logical_operators():
    source = (
        "#if($data.n > 10 && $data.vip)big vip#elseif($data.n > 10 || $data.vip)one#else none#end"
    )
    assert render(source, data={"n": 11, "vip": True}) == "big vip"
    assert render(source, data={"n": 11, "vip": False}) == "one"
    assert render(source, data={"n": 1}) == " none"


def test_empty_values_are_false_in_conditions():
    source = "#if($data.x)yes#else no#end"
    assert [render(source, data={"x": v}) for v in ("", [], {}, 0, None, "a", [1])] == [
        " no", " no", " no", " no", " no", "yes", "yes"
    ]  # fmt: skip


def test_string_methods():
    source = (
        "$data.s.toUpperCase() $data.s.toLowerCase() $data.s.length() [$data.p.trim()] "
        "$data.s.substring(1, 3) $data.s.replace('l', 'L') $data.s.contains('ell') "
        "$data.s.startsWith('He') $data.s.endsWith('x') $data.s.equalsIgnoreCase('HELLO')"
    )
    assert render(source, data={"s": "Hello", "p": "  pad "}) == (
        "HELLO hello 5 [pad] el HeLLo true true false true"
    )


def test_list_and_map_methods():
    data = {"l": [1, 2, 3], "m": {"a": 1}}
    source = (
        "$data.l.size() $data.l.get(0) $data.l.contains(2) $data.l.isEmpty() "
        "$data.m.containsKey('a') $data.m.keySet() $data.m.size() $data.m.isEmpty() $data.m"
    )
    assert render(source, data=data) == "3 1 true false true [a] 1 false {a=1}"


def test_method_on_the_wrong_type_renders_the_reference_literally():
    assert render("$data.n.length()", data={"n": 5}) == "$data.n.length()"
    assert render("$data.s.get(0)", data={"s": "abc"}) == "$data.s.get(0)"
    assert render("$data.s.substring(5, 1)", data={"s": "abc"}) == "$data.s.substring(5, 1)"


def test_foreach_counters_and_restoring_the_loop_variable():
    source = (
        "#set($i = 'outer')#foreach($i in [1..3])$foreach.count$velocityCount"
        "#if($foreach.hasNext),#end#end $i"
    )
    assert render(source) == "11,22,33 outer"


def test_foreach_over_a_map_walks_values_and_over_null_does_nothing():
    assert render("#foreach($v in $data.m)$v#end", data={"m": {"a": 1, "b": 2}}) == "12"
    assert render("#foreach($v in $data.none)x#end.") == "."


def test_set_inside_loop_updates_the_outer_variable():
    source = "#set($sum = 0)#foreach($x in $data.l)#set($sum = $sum + $x)#end$sum"
    assert render(source, data={"l": [1, 2, 3]}) == "6"


def test_macros_with_arguments():
    source = "#macro(price $amount)$amount EUR#end#price(5) and #price($data.p)"
    assert render(source, data={"p": 7}) == "5 EUR and 7 EUR"


def test_booleans_and_floats_print_like_velocity():
    assert render("$data.b $data.f $data.n", data={"b": True, "f": 2.0, "n": None}) == (
        "true 2.0 $data.n"
    )


def test_values_are_html_escaped_only_when_asked():
    data = {"name": "<b>Ann & co</b>"}
    assert render("<p>$data.name</p>", data=data, escape_html=True) == (
        "<p>&lt;b&gt;Ann &amp; co&lt;/b&gt;</p>"
    )
    assert render("$data.name", data=data) == "<b>Ann & co</b>"


def test_non_json_values_become_strings():
    import datetime
    import decimal

    data = {"d": datetime.date(2026, 1, 2), "p": decimal.Decimal("9.50")}
    assert render("$data.d $data.p", data=data) == "2026-01-02 9.50"


def test_velocity_comments_and_escapes():
    assert render("a## line comment\nb#* block *#c \\$data.x") == "abc $data.x"


def test_css_colours_and_dollar_amounts_are_plain_text():
    source = '<td style="color:#fff;background:#123abc">$5 #1 winner</td>'
    assert render(source) == source


# --- syntax errors with line and column -----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "column", "fragment"),
    [
        (
            "Hello\n#if($x) hi",
            2,
            11,
            "#else, #elseif or #end in if directive that starts at line 2",
        ),
        ("a\n\n  #end", 3, 3, "unexpected '#end'"),
        ("$data.get('x'", 1, 14, "expected )"),
        ("<p>\n #foreach($i in $x) a", 2, 22, "expected #end in foreach directive"),
        ("x\n  $data.__class__", 2, 9, "names starting with '_'"),
        ("$data.clear()", 1, 7, "method 'clear' is not allowed"),
        ("line1\n#include('x')", 2, 1, "#include is not allowed"),
        ("#foo(1)", 1, 1, "unknown macro #foo"),
        ("#macro(m $a)x#end#m(1, 2)", 1, 18, "takes 1 argument(s), got 2"),
        ("#set($data.x = 1)", 1, 1, "#set can only assign a plain variable"),
        ("$data()", 1, 2, "is not a method call"),
    ],
)
def test_syntax_errors_name_line_and_column(source, line, column, fragment):
    with pytest.raises(TemplateSyntaxError) as caught:
        compile_template(source)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"line {line}, column {column}: ")


def test_error_inside_an_interpolated_string_points_into_the_string():
    with pytest.raises(TemplateSyntaxError) as caught:
        compile_template('x\n#set($s = "a $data.__dict__")')
    assert caught.value.line == 2
    assert "names starting with '_'" in caught.value.message


def test_too_deep_nesting_is_a_syntax_error_not_a_crash():
    with pytest.raises(TemplateSyntaxError, match="nested too deeply"):
        compile_template("#if(true)" * 2000 + "#end" * 2000)


def test_template_too_long_is_refused():
    with pytest.raises(TemplateSyntaxError, match="longer than"):
        compile_template("x" * (MAX_SOURCE_CHARS + 1))
    compile_template("x" * MAX_SOURCE_CHARS)


def test_a_template_with_too_many_syntax_marks_is_refused_before_parsing():
    with pytest.raises(TemplateSyntaxError, match="more than 50,000 '\\$' and '#'"):
        compile_template("$a #b " * 25_001)


def test_render_limits_raise_render_errors_with_clear_messages():
    with pytest.raises(TemplateRenderError, match="exceed 10000 iterations"):
        render("#foreach($i in [1..20000])x#end")
    with pytest.raises(TemplateRenderError, match="output exceeds"):
        render("#foreach($i in [1..5000])" + "x" * (MAX_OUTPUT_CHARS // 4000) + "#end")


def test_one_context_serves_several_templates_without_leaking_sets():
    from templates.engine import TemplateContext

    context = TemplateContext({"firstName": "Ann"}, {"n": 1})
    first = compile_template("#set($data = 'x')#set($n = 5)$data $n")
    second = compile_template("$data.n $contact.firstName [$!n]")
    assert first.render_context(context) == "x 5"
    assert second.render_context(context) == "1 Ann []"
