"""``async_sleep``: N tasks each waiting ``sleep`` seconds, at most C at a time.

An unordered flow on the parallel engine; timed: ``engines.load(...)`` +
running it. ``kind``:

``async``
    tasks are ``async def`` and ``await asyncio.sleep(sleep)``;
    ``async_concurrency=C``, ``engine.run()`` (the engine's own event loop);
``run_async``
    the same, with ``asyncio.run(engine.run_async())`` (the caller's loop);
``threads``
    plain tasks calling ``time.sleep(sleep)`` with ``max_workers=C`` threads:
    what a waiting task costs without asyncio (runs on the original too).

The ideal time is ``ceil(N / C) * sleep``; ``efficiency`` is ideal / actual.
The peak RSS of the process is recorded by the worker for every run.
"""

import asyncio
import math
import time

from taskflow import engines
from taskflow import task

from scenarios import _flows


class AsyncSleeper(task.Task):
    def __init__(self, name, seconds):
        super().__init__(name)
        self._seconds = seconds

    async def execute(self):
        await asyncio.sleep(self._seconds)


class Sleeper(task.Task):
    def __init__(self, name, seconds):
        super().__init__(name)
        self._seconds = seconds

    def execute(self):
        time.sleep(self._seconds)


def run_once(size, kind, sleep, concurrency):
    if kind == 'threads':
        flow = _flows.build_wide(size, cls=Sleeper, seconds=sleep)
        options = {'max_workers': concurrency}
    else:
        flow = _flows.build_wide(size, cls=AsyncSleeper, seconds=sleep)
        options = {'async_concurrency': concurrency}

    def load_and_run():
        engine = engines.load(flow, engine='parallel', **options)
        if kind == 'run_async':
            asyncio.run(engine.run_async())
        else:
            engine.run()
        return engine

    seconds, engine = _flows.timed(load_and_run)
    done = sum(1 for i in range(size) if engine.storage.get_atom_state('t_%d' % i) == 'SUCCESS')
    if done != size:
        raise AssertionError('%d of %d tasks succeeded' % (done, size))
    return seconds


def measure(size, kind='async', sleep=0.01, concurrency=1000):
    run_once(_flows.WARM_UP_SIZE, kind, sleep, concurrency)
    seconds = run_once(size, kind, sleep, concurrency)
    ideal = math.ceil(size / concurrency) * sleep
    return {'seconds': seconds, 'ideal_seconds': ideal, 'efficiency': ideal / seconds}
