"""``retry``: subflows under ``retry.Times(3)`` that fail twice, then succeed.

Each subflow is a linear flow with a ``Times(3)`` retry controller and one
task that raises on its first two attempts, so it executes, reverts and
retries twice before it succeeds. Two shapes (``shape=``):

``runs``
    N separate engines, each loading and running a flow made of one such
    subflow: the whole cost of a small flow with retries, paid N times.
``chain``
    one linear flow of N such subflows, run once: how retrying scales with
    the size of the flow around it.

Timed: ``engines.load(flow)`` + ``engine.run()`` (serial engine), for all N
flows in the ``runs`` shape.
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


def build(n, tasks):
    """A linear flow of ``n`` retried subflows; their tasks are appended to ``tasks``."""
    flow = linear_flow.Flow('retries')
    for i in range(n):
        sub = linear_flow.Flow('sub_%d' % i,
                               retry=retry.Times(FAILURES + 1, name='retry_%d' % i))
        tasks.append(Flaky('flaky_%d' % i))
        flow.add(sub.add(tasks[-1]))
    return flow


def run_once(size, shape):
    tasks = []
    if shape == 'runs':
        flows = [build(1, tasks) for _ in range(size)]
    else:
        flows = [build(size, tasks)]

    def load_and_run():
        for flow in flows:
            engines.load(flow).run()

    seconds, _ = _flows.timed(load_and_run)
    if len(tasks) != size or any(t.attempts != FAILURES + 1 for t in tasks):
        raise AssertionError('some task did not run exactly %d times' % (FAILURES + 1))
    return seconds


def measure(size, shape='runs'):
    run_once(_flows.WARM_UP_SIZE, shape)
    return {'seconds': run_once(size, shape)}
