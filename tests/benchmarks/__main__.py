"""`python -m tests.benchmarks [name ...] [options]`: run the benchmarks and print figures.

Names are the `<name>` of `tests/benchmarks/bench_<name>.py` (no name: all of them, in
alphabetical order). Everything from the first option on goes to each benchmark's `main`,
e.g. `bin/bench api --duration 10`.
"""

import importlib
import pkgutil
import sys
import time
from pathlib import Path

PREFIX = "bench_"


def available() -> list[str]:
    folder = Path(__file__).resolve().parent
    return sorted(
        module.name.removeprefix(PREFIX)
        for module in pkgutil.iter_modules([str(folder)])
        if module.name.startswith(PREFIX)
    )


def main(argv: list[str]) -> int:
    names: list[str] = []
    while argv and not argv[0].startswith("-"):
        names.append(argv.pop(0).removeprefix(PREFIX).removesuffix(".py"))
    known = available()
    if argv[:1] in (["-h"], ["--help"]) and not names:
        print(__doc__.strip())
        print("\nBenchmarks:", ", ".join(known) or "none")
        return 0
    unknown = [name for name in names if name not in known]
    if unknown:
        print(f"Unknown benchmark(s): {', '.join(unknown)}.", file=sys.stderr)
        print(f"Available: {', '.join(known)}.", file=sys.stderr)
        return 2
    for name in names or known:
        print(f"== {name} ==", flush=True)
        started = time.monotonic()
        importlib.import_module(f"tests.benchmarks.{PREFIX}{name}").main(list(argv))
        print(f"== {name}: done in {time.monotonic() - started:.1f}s ==\n", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        sys.exit(130)
