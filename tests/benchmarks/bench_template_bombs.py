"""Template bombs against the sandbox's budget: the time and Python memory each hostile
template of tests/hostile/test_template_bombs.py costs before the budget stops it, against
the raw baseline of one ordinary personalised email (bench_render's template) rendered by
the same engine in the same run.

Time is the best of a few renders without tracing; memory is the peak traced by tracemalloc
in a separate render (tracing slows allocation-heavy renders many times over)."""

import argparse
import os
import time
import tracemalloc


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _render(source: str, contact: dict, data: dict) -> str:
    from templates.engine import TemplateError, compile_template

    try:
        compile_template(source).render(contact, data)
    except TemplateError as exc:
        return str(exc)
    return "rendered"


def _best_seconds(source: str, contact: dict, data: dict, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        _render(source, contact, data)
        best = min(best, time.perf_counter() - started)
    return best


def _peak_bytes(source: str, contact: dict, data: dict) -> int:
    tracemalloc.start()
    try:
        _render(source, contact, data)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench template_bombs")
    parser.add_argument("--repeat", type=int, default=3, help="renders timed per template")
    args = parser.parse_args(argv)
    _setup()
    from templates.engine import MAX_LOOP_ITERATIONS, MAX_OUTPUT_CHARS, MAX_STEPS
    from tests.benchmarks.bench_render import HTML, _recipients
    from tests.hostile.test_template_bombs import BOMBS

    contact, data = _recipients(1)[0]
    baseline = _best_seconds(HTML, contact, data, max(args.repeat, 20))
    print(
        f"budget: {MAX_STEPS:,} steps, {MAX_LOOP_ITERATIONS:,} loop iterations, "
        f"{MAX_OUTPUT_CHARS:,} output characters"
    )
    print(f"baseline: one ordinary email rendered in {baseline * 1000:.2f} ms")
    print(f"{'bomb':26} {'time':>10} {'x email':>9} {'peak memory':>12}  stopped by")
    worst = 0.0
    for name, source in BOMBS.items():
        seconds = _best_seconds(source, {}, {}, args.repeat)
        peak = _peak_bytes(source, {}, {})
        worst = max(worst, seconds)
        outcome = _render(source, {}, {})
        print(
            f"{name:26} {seconds * 1000:8.1f} ms {seconds / baseline:8.0f}x "
            f"{peak / 2**20:9.1f} MiB  {outcome[:70]}"
        )
    print(f"worst bomb: {worst * 1000:.0f} ms, {worst / baseline:.0f}x one ordinary email")
    # Not a bomb the budget stops: the most work a template may do and still render, a list
    # printed with one step per item just within MAX_STEPS (its output within the limit too).
    within = f"#set($r = [1..{MAX_STEPS - 10_000}])$r"
    seconds = _best_seconds(within, {}, {}, 1)
    print(
        f"most work a render may do (printing {MAX_STEPS - 10_000:,} items): "
        f"{seconds * 1000:.0f} ms, {seconds / baseline:.0f}x one ordinary email"
    )
