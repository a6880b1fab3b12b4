"""``retry``: N subflows, each failing twice and then succeeding under ``Times``.

A linear flow of N linear subflows; each subflow has a ``retry.Times(3)``
controller and one task that raises on its first two attempts. So every
subflow executes, reverts and retries twice before it succeeds.
Timed: ``engines.load(flow)`` + ``engine.run()`` (serial engine).
"""

from taskflow import engines
from taskflow import retry
from taskflow import task
from taskflow.patterns import linear_flow

from scenarios import _flows

FAILURES = 2


class Flaky(task.Task):
    """Fails on its first ``FAILURES`` attempts (counted on the instance)."""

    def __init__(self, name):
        super().__init__(name)
        self.attempts = 0

    def execute(self):
        self.attempts += 1
        if self.attempts <= FAILURES:
            raise RuntimeError('attempt %d of %s fails on purpose' % (self.attempts, self.name))
        return self.attempts

    def revert(self, *args, **kwargs):
        pass


def build(n):
    flow = linear_flow.Flow('retries')
    tasks = []
    for i in range(n):
        sub = linear_flow.Flow('sub_%d' % i,
                               retry=retry.Times(FAILURES + 1, name='retry_%d' % i))
        tasks.append(Flaky('flaky_%d' % i))
        flow.add(sub.add(tasks[-1]))
    return flow, tasks


def run_once(size):
    flow, tasks = build(size)

    def load_and_run():
        engines.load(flow).run()

    seconds, _ = _flows.timed(load_and_run)
    if any(t.attempts != FAILURES + 1 for t in tasks):
        raise AssertionError('some task did not run exactly %d times' % (FAILURES + 1))
    return seconds


def measure(size):
    run_once(_flows.WARM_UP_SIZE)
    return {'seconds': run_once(size)}
