"""Benchmarks: run by `bin/bench` (python -m tests.benchmarks), never collected by pytest.

Each `bench_<name>.py` exposes `main(argv: list[str]) -> None` and prints its figures.
"""
