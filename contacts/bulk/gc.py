"""Pausing Python's cycle collector around bulk work (see gc_paused)."""

import contextlib
import gc
import threading
from collections.abc import Iterator

_gc_pause_lock = threading.Lock()
_gc_pauses = 0  # sections inside gc_paused now, in every thread
_gc_paused_by_us = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a bulk batch is decoded, checked and written.

    A batch allocates tens of thousands of small dicts and lists that live until it ends;
    each automatic collection re-scanned all of them (and every older object in the
    process), a fifth of a bulk import's time. They hold no cycles, so reference counting
    frees them; whatever cycles other code makes meanwhile are collected once it resumes.
    The collector is one per process: sections are counted (across threads too), so nested
    ones (a file import's whole run, each chunk it prepares, each batch it writes) keep it
    paused until the outermost ends.
    """
    global _gc_pauses, _gc_paused_by_us
    with _gc_pause_lock:
        if _gc_pauses == 0 and gc.isenabled():
            gc.disable()
            _gc_paused_by_us = True
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_pause_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_paused_by_us:
                _gc_paused_by_us = False
                gc.enable()
