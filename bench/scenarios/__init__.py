"""Benchmark scenarios: one module per scenario, run inside a fresh worker process.

Every module defines ``measure(size, **params) -> dict``. It builds what it
needs *outside* the timed region, times only the part under test with
``time.perf_counter()`` and returns at least ``{'seconds': float}``; any other
keys (a check value, an ideal time, a memory peak) are kept in the raw results.
After the timed part it checks the outcome (a wrong result is an error, not a
fast run). A scenario that cannot run here (a missing service) raises ``Skip``.

Before the timed run, each scenario runs itself once at ``WARM_UP_SIZE``
(untimed), so one-time costs -- lazy imports of the engine modules, entry
point look-ups, SQL statement caches -- are not counted as engine work.

Scenario code uses only the public taskflow API, so the very same module runs
on taskflow-ng and on the original.
"""


class Skip(Exception):
    """This measurement cannot be taken on this machine (the message says why)."""
