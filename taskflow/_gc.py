"""The cyclic garbage collector around bulk construction and around runs.

Building the structures of a large flow (a graph flow's ``add``, compiling,
preparing and validating) allocates many long-lived objects and no garbage
cycles.  Every full collection meanwhile rescans the whole heap, which makes
big flows cost more per atom than small ones.  These operations run no user
code (besides atom properties) and restore the previous setting, so the
pause is short and invisible (:func:`paused`).

A run is different: it calls user code and may last for hours, so the
collector stays on.  But each atom allocates a few dozen short-lived
container objects (a coroutine and its task, a call, notification details),
and with the default first-generation threshold (700 allocations) the
collector then runs every few dozen atoms; the young objects it finds still
alive (atoms in flight) are promoted and eventually trigger full
collections of the whole heap -- the flow's own objects included.  For
10,000 ``async def`` atoms that was about a fifth of the run's CPU time.
:func:`run_threshold` raises only the first threshold, to
:data:`RUN_THRESHOLD`, while a run lasts: cycles are still collected, just
in batches of up to that many young objects (a few megabytes at most).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

# First-generation threshold during a run (CPython's default is 700).
RUN_THRESHOLD = 10_000

_lock = threading.Lock()
_runs = 0                                       # runs in progress, in any thread
_saved: tuple[int, ...] | None = None           # thresholds before the first of them
_ours: tuple[int, ...] | None = None            # what we set (None: left alone)


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Disable the cyclic collector for the block (if it was enabled)."""
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def run_threshold() -> Iterator[None]:
    """Raise the first-generation threshold to :data:`RUN_THRESHOLD` for the block.

    Process-wide, so counted: runs in several threads share one change, made
    by the first and undone by the last.  Left alone when the program set a
    threshold of 0 (collection off) or one at least as high; not restored
    when the program changed the thresholds meanwhile (its setting wins).
    """
    global _runs, _saved, _ours
    with _lock:
        _runs += 1
        if _runs == 1:
            _saved = gc.get_threshold()
            _ours = None
            if 0 < _saved[0] < RUN_THRESHOLD:
                _ours = (RUN_THRESHOLD,) + _saved[1:]
                gc.set_threshold(*_ours)
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                if _ours is not None and _saved is not None and gc.get_threshold() == _ours:
                    gc.set_threshold(*_saved)
                _saved = _ours = None
