"""How fast hostile input is refused: HTML past the sanitiser's bounds and template bombs.

Each hostile input goes through what saving a template runs (`sanitize_html`, which
enforces the size, depth, attribute and node bounds) or through the sandboxed engine
(`compile_template(...).render`, which stops loops, recursion and output growth). The
baseline, measured in the same run, is the work an honest user causes: sanitising a real,
large (about 480 KB) but shallow email. A refusal should cost a fraction of that (ratio
well under 1); an input that takes many times longer is one a worker could be frozen with.
"""

import argparse
import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.benchmarks.settings")
django.setup()

from templates.engine import TemplateError, compile_template  # noqa: E402
from templates.sanitize import (  # noqa: E402
    MAX_HTML_CHARS,
    MAX_HTML_NODES,
    HtmlSanitizeError,
    sanitize_html,
)

ROW = (
    '<table width="600" cellpadding="0" cellspacing="0"><tr><td style="color: #333; '
    'padding: 4px"><p>Hello $!contact.firstName, <a href="https://shop.example/a?b=1">see '
    'this</a> and some more text about it.</p><img src="https://shop.example/i.png" alt="x" '
    'width="100"></td></tr></table>\n'
)
HOSTILE_HTML = {
    "nested divs": "<div>" * 100_000,
    "nested tables": "<table><tr><td>" * 30_000,
    "attributes": "<p " + " ".join(f"a{i}=1" for i in range(20_000)) + ">x</p>",
    "references": "<p>" + "&amp;" * (MAX_HTML_NODES + 1) + "</p>",
    "size": "<p>" + "x" * MAX_HTML_CHARS + "</p>",
}
BOMBS = {
    "huge range": "#foreach($i in [1..100000000])x#end",
    "recursion": "#macro(r)#r()#end#r()",
    "fan-out recursion": "#macro(f $n)#f($n)#f($n)#f($n)#f($n)#end#f(1)",
    "string doubling": "#set($s = 'aaaaaaaaaa')#foreach($i in [1..40])#set($s = \"$s$s\")#end$s",
    "number squaring": "#set($x = 999999999)#foreach($i in [1..10])#set($x = $x * $x)#end$x",
    "list doubling": "#set($a = [1])#foreach($i in [1..200])#set($a = [$a, $a])#end$a",
}


def timed(work) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        work()
        outcome = "accepted"
    except (HtmlSanitizeError, TemplateError) as exc:
        outcome = f"refused: {str(exc)[:60]}"
    return time.perf_counter() - started, outcome


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench bounds", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    args = parser.parse_args(argv)

    honest = "<div>" + ROW * (480_000 // len(ROW)) + "</div>"
    baseline = min(timed(lambda: sanitize_html(honest))[0] for _ in range(args.repeat))
    print(f"baseline: sanitising a real {len(honest) // 1000} KB email: {baseline:.3f} s")
    rows = [
        (f"html: {name}", lambda s=source: sanitize_html(s))
        for name, source in HOSTILE_HTML.items()
    ]
    rows += [
        (f"template: {name}", lambda s=source: compile_template(s).render({}, {}))
        for name, source in BOMBS.items()
    ]
    for label, work in rows:
        runs = [timed(work) for _ in range(args.repeat)]
        seconds = min(run[0] for run in runs)
        print(f"{label:<28} {seconds:7.3f} s  ratio {seconds / baseline:5.2f}  {runs[0][1]}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
