"""Template injection and work bombs through the ways a template reaches the Velocity
sandbox over HTTP: saving one (the API and the editor page), previewing it (the API and the
editor's preview pane), and message parameters at send time (smartsend).

Escapes from the sandbox are refused when the template is saved, as a 400 naming the field
(a form error on the page) with nothing saved. Bombs that parse are stopped by the
sandbox's budget (templates.engine: loop iterations, steps, macro depth, output size) when
they render: a 400 naming the part that failed in a preview (a form error in the editor's
pane), a failed delivery with the reason at send time. Times are printed, not asserted; the
time and memory each bomb costs against an ordinary email are the template_bombs
benchmark's (`python -m tests.benchmarks template_bombs`)."""

from __future__ import annotations

import time

import pytest

from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery
from templates.engine import MAX_OUTPUT_CHARS
from templates.models import MessageTemplate
from templates.services import template_create, template_publish

pytestmark = pytest.mark.django_db

ESCAPES = {
    "python attribute": "$data.__class__",
    "dunder chain": "$data.get('x').__class__.__base__.__subclasses__()",
    "java getClass": "$data.getClass().forName('java.lang.Runtime')",
    "class inspect": "$class.inspect('java.lang.Runtime')",
    "private name": "#set($_x = 1)",
    "mutating method": "$data.clear()",
    "format string": "$data.name.format('{0.__class__}')",
    "include a file": "#include('/etc/passwd')",
    "parse a file": "#parse('/etc/passwd')",
    "evaluate a string": '#evaluate("$data.__class__")',
    "define a block": "#define($block)x#end$block",
    "range past a long": "#foreach($i in [1..99999999999999999999])x#end",
}
BOMBS = {
    "huge foreach range": "#foreach($i in [1..100000000])x#end",
    "nested loops": (
        "#foreach($a in [1..1000])#foreach($b in [1..1000])#foreach($c in [1..1000])x#end#end#end"
    ),
    "deep macro recursion": "#macro(r)#r()#end#r()",
    "macro fan-out": "#macro(f $n)#f($n)#f($n)#f($n)#f($n)#end#f(1)",
    "string doubling": "#set($s = 'aaaaaaaaaa')#foreach($i in [1..40])#set($s = \"$s$s\")#end$s",
    "concatenation in a loop": (
        "#set($s = 'aaaaaaaaaa')#foreach($i in [1..40])#set($s = $s + $s)#end$s.length()"
    ),
    "huge #set list": "#set($r = [1..100000000])$r",
    "list just past the steps": "#set($r = [1..600000])$r",
    "list doubling": "#set($a = [1])#foreach($i in [1..200])#set($a = [$a, $a])#end$a",
    "replace amplification": (
        "#set($s = 'aaaaaaaaaaaaaaaaaaaa')#foreach($i in [1..16])#set($s = \"$s$s\")#end"
        "$s.replace('a', $s).length()"
    ),
    "number squaring": "#set($x = 999999999)#foreach($i in [1..10])#set($x = $x * $x)#end$x",
}


def timed(call):
    """(result, seconds) of call()."""
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def report(what: str, where: str, answer: str, seconds: float) -> None:
    print(f"{what:26} {where:24} {seconds * 1000:7.0f} ms  {answer[:90]}")


def template_body(html: str) -> dict:
    return {
        "name": "Bomb",
        "subject": "Hi",
        "html": f"<p>{html}</p>",
        "fromEmail": "s@shop.example",
    }


def test_an_escape_is_refused_on_save_naming_the_field_and_nothing_is_saved(
    api, full_key, client, marketer
):
    client.force_login(marketer)
    print()
    for what, source in ESCAPES.items():
        for field in ("html", "subject"):
            body = {
                **template_body("ok"),
                field: source if field == "subject" else f"<p>{source}</p>",
            }
            answer, seconds = timed(
                lambda body=body: api.post("/api/herald/templates", key=full_key, body=body)
            )
            assert answer.status_code == 400, (what, field, answer.content)
            assert field in answer.json(), (what, field, answer.json())
            report(what, f"API save, {field}", str(answer.json()[field]), seconds)
        page = client.post(
            "/templates/new/",
            {"name": "Bomb", "channel": "email", "subject": "Hi", "html": f"<p>{source}</p>"},
        )
        assert page.status_code in (200, 400), (what, page.status_code)
        assert "errorlist" in page.content.decode() or "field-error" in page.content.decode(), what
    assert not MessageTemplate.objects.exists()


@pytest.mark.parametrize("what", list(BOMBS))
def test_a_bomb_is_stopped_by_the_budget_in_every_preview(api, full_key, client, marketer, what):
    source = BOMBS[what]
    client.force_login(marketer)
    print()
    saved = api.post("/api/herald/templates", key=full_key, body=template_body(source))
    if saved.status_code == 400:
        # Refused while parsing (some bombs are too big to be a template at all).
        assert "html" in saved.json(), saved.json()
        report(what, "API save", str(saved.json()["html"]), 0)
        return
    assert saved.status_code == 201, saved.content
    template_id = saved.json()["id"]

    answer, seconds = timed(
        lambda: api.post(f"/api/herald/templates/{template_id}/preview", key=full_key, body={})
    )
    assert answer.status_code == 400, (what, answer.content[:300])
    [problem] = answer.json()["data"]
    assert problem.startswith("html: "), answer.json()
    report(what, "API preview", problem, seconds)

    pane, seconds = timed(
        lambda: client.post(
            "/templates/preview/",
            {"channel": "email", "subject": "Hi", "html": f"<p>{source}</p>"},
        )
    )
    assert pane.status_code == 200
    text = pane.content.decode()
    assert "x" * 1000 not in text and "aaaaaaaaaa" * 100 not in text
    assert "error" in text.lower(), what
    report(what, "editor preview pane", "form error shown", seconds)
    assert MessageTemplate.objects.count() == 1


def test_message_parameters_cannot_push_a_render_past_the_budget(api, full_key):
    """Data, not code: parameters cannot add template syntax, but a big one repeated by a
    loop makes the output large; the send fails with the reason, nothing half-sent."""
    template = template_create(
        name="Repeat",
        subject="Hi $!data.get('name')",
        html="<p>#foreach($i in [1..5000])$!data.get('big')#end</p>",
        from_email="s@shop.example",
    )
    template_publish(template=template)
    big = "b" * (MAX_OUTPUT_CHARS // 5000 + 10)
    body = {
        "recipients": [
            {
                "locator": "ann@example.com",
                "jsonParam": '{"name": "#set($x = 1)$data.__class__", "big": "' + big + '"}',
            }
        ]
    }
    answer, seconds = timed(
        lambda: api.post(f"/api/v1/message/{template.pk}/smartsend", key=full_key, body=body)
    )
    assert answer.status_code == 200, answer.content
    delivery = Delivery.objects.get()
    _, send_seconds = timed(lambda: send_request_process(send_request_id=delivery.send_request_id))
    delivery.refresh_from_db()
    print(f"\nsmartsend: {seconds * 1000:.0f} ms; send {send_seconds * 1000:.0f} ms")
    print(f"{delivery.status}: {delivery.error[:120]}")
    assert delivery.status == "failed"
    assert (
        delivery.error == f"rendering failed: rendered output exceeds {MAX_OUTPUT_CHARS} characters"
    )
