"""``parallel_sleep``: N tasks each sleeping ``sleep`` seconds on the parallel engine.

An unordered flow on ``engine='parallel'`` with ``max_workers`` threads.
Timed: ``engines.load(...)`` + ``engine.run()`` (the engine starts and stops
its own thread pool). The ideal time is ``ceil(N / max_workers) * sleep``;
with ``sleep=0`` and N=1 this measures the fixed cost of a parallel run.
"""

import math
import time

from taskflow import engines
from taskflow import task

from scenarios import _flows


class Sleeper(task.Task):
    def __init__(self, name, seconds):
        super().__init__(name)
        self._seconds = seconds

    def execute(self):
        if self._seconds:
            time.sleep(self._seconds)


def run_once(size, sleep, max_workers):
    flow = _flows.build_wide(size, cls=Sleeper, seconds=sleep)

    def load_and_run():
        engine = engines.load(flow, engine='parallel', max_workers=max_workers)
        engine.run()

    seconds, _ = _flows.timed(load_and_run)
    return seconds


def measure(size, sleep=0.01, max_workers=16):
    run_once(1, 0.0, max_workers)
    seconds = run_once(size, sleep, max_workers)
    ideal = math.ceil(size / max_workers) * sleep
    return {'seconds': seconds, 'ideal_seconds': ideal,
            'vs_ideal': seconds / ideal if ideal else None}
