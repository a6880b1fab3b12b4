"""The coroutine lane (``_async.CoroutineLane``) on a loop driven by hand.

Every call submitted is delivered exactly once -- with its outcome, a
timeout failure, or ``INTERRUPTED`` -- whatever point an interruption
lands at, including before a task's first step.
"""

from __future__ import annotations

import asyncio

import pytest

from taskflow import exceptions as exc
from taskflow import task
from taskflow.engines.action_engine import _async
from taskflow.engines.action_engine import _call
from taskflow.engines.action_engine import _executors


class Waits(task.Task):
    def __init__(self, name, gate, seen):
        super().__init__(name=name)
        self.gate = gate
        self.seen = seen

    async def execute(self):
        self.seen.append(self.name)
        await self.gate.wait()
        return self.name


class Lane:
    def __init__(self, limit):
        self.loop = asyncio.new_event_loop()
        self.delivered = []
        self.lane = _async.CoroutineLane(self.loop, limit,
                                         lambda token, settled:
                                         self.delivered.append((token, settled)),
                                         threadsafe=False)
        self.gate = asyncio.Event()
        self.started = []

    def submit(self, name, timeout=None):
        call = _call.Call(_call.EXECUTE, Waits(name, self.gate, self.started), {},
                          coroutine=True)
        self.lane.submit(name, call, timeout)

    def spin(self, passes=3):
        for _ in range(passes):
            self.loop.call_soon(self.loop.stop)
            self.loop.run_forever()

    def close(self):
        _async.close_loop(self.loop)


@pytest.fixture
def lane():
    made = Lane(limit=2)
    yield made
    made.close()


def test_at_most_limit_calls_run_the_rest_wait_in_order(lane):
    for name in 'abcde':
        lane.submit(name)
    lane.spin()
    assert lane.started == ['a', 'b']
    lane.gate.set()
    lane.spin(10)
    assert lane.started == list('abcde')
    assert [(token, outcome.value) for token, outcome in lane.delivered] == \
        [(n, n) for n in 'abcde']


def test_an_interruption_delivers_every_call_once_started_or_not(lane):
    for name in 'abcd':
        lane.submit(name)
    # What interrupt() does on the loop, before any task took its first step
    # (two tasks created, two calls still queued): a window a real run hits
    # only by chance.
    lane.lane._interrupted = True
    lane.lane._cancel_all()
    lane.spin(5)
    assert lane.started == []
    assert sorted(token for token, _ in lane.delivered) == list('abcd')
    assert all(settled is _executors.INTERRUPTED for _, settled in lane.delivered)


def test_an_interruption_of_running_calls(lane):
    for name in 'abcd':
        lane.submit(name)
    lane.spin()
    assert lane.started == ['a', 'b']
    lane.lane.interrupt()
    lane.spin(5)
    assert sorted(token for token, _ in lane.delivered) == list('abcd')
    assert all(settled is _executors.INTERRUPTED for _, settled in lane.delivered)
    assert lane.started == ['a', 'b']   # c and d never started


def test_a_timeout_is_a_failure_and_frees_the_slot(lane):
    lane.submit('slow', timeout=0.05)
    lane.submit('next')
    lane.submit('after')
    lane.loop.run_until_complete(asyncio.sleep(0.2))
    token, outcome = lane.delivered[0]
    assert token == 'slow' and not outcome.ok and outcome.value.check(exc.AtomTimeout)
    assert lane.started == ['slow', 'next', 'after']
