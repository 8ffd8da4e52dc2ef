"""Herald as production runs it (gunicorn, a Celery worker, beat) under a bounded mixed load
of events, contact upserts, tracking hits and pages (tests/load/harness.py says what and how).

The normal run loads it for HERALD_LOAD_SECONDS (default 25) after a 5-second warm-up; the
full run is `HERALD_LOAD_SECONDS=180 pytest -m load tests/load -s`. With `-s` the figures are
printed. No figure is asserted as a speed: only that nothing failed, that the work the
answers acknowledged was done, and that no process grew without bound.
"""

import os

import pytest

from tests.load import harness
from tests.support import worker

pytestmark = [pytest.mark.load, pytest.mark.django_db(transaction=True)]

USERS = 6
# After the warm-up every worker has imported its code, filled its caches and opened its
# database connections; what it gains after that is what the load left behind.
WARM_UP_SECONDS = 5
# Generous: a leak per request grows by much more over thousands of requests, while
# allocator noise and a few lazily built caches stay well below it.
MEMORY_GROWTH_MAX_KB = 50 * 1024


def load_seconds() -> float:
    return float(os.environ.get("HERALD_LOAD_SECONDS") or 25)


def test_mixed_load_has_no_errors_does_all_the_work_and_does_not_grow():
    clock = harness.Phases()
    with harness.herald_running(database_url=worker.test_database_url()) as stack:
        clock.lap("stack up")
        targets = harness.targets_prepare(stack)
        clock.lap("campaign sent")
        warm_up = harness.load_run(
            stack.port, targets, seconds=WARM_UP_SECONDS, users=USERS, tag="warm"
        )
        processes = stack.processes()
        start = stack.memory()
        result = harness.load_run(
            stack.port, targets, seconds=load_seconds(), users=USERS, tag="load"
        )
        end = stack.memory()
        clock.lap("load")
        done = warm_up.done
        done.add(result.done)
        missing = harness.work_check(done, targets)
        clock.lap("work done")
        print("\n" + harness.load_report(result))
        print(harness.memory_report(start, end))
    clock.lap("stack down")
    print(clock)

    assert (warm_up.total.errors, result.total.errors) == (0, 0), (
        harness.load_report(result) + "\n" + harness.load_report(warm_up)
    )
    assert all(stats.requests for stats in result.kinds.values())
    assert not missing, missing
    # A worker that died and was replaced would hide its memory and its errors.
    assert set(end) == set(start) == set(processes)
    growth = harness.memory_growth_kb(start, end)
    assert max(growth.values()) <= MEMORY_GROWTH_MAX_KB, harness.memory_report(start, end)
