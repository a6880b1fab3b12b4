"""The flows the crash harness kills and resumes, and their factory.

Every flow is built by :func:`make_flow` from its shape name alone, so a
resumed worker rebuilds it with ``engines.load_from_detail`` (the factory is
saved in the flow detail as ``tests.reliability.shapes.make_flow``).

Results are deterministic (a short digest of the atom name and its inputs),
so a run that was killed and resumed must end with exactly the results of a
run that was not.  The *time* a task takes is random (a few milliseconds of
sleeping and hashing) so that kills land in different places.

===================  ========  =================================================
shape                engine    what it is
===================  ========  =================================================
``linear``           serial    a chain of six tasks
``parallel``         parallel  a graph flow: a source, four two-task branches, a sink
``nested``           parallel  linear / unordered / graph flows inside each other
``revert``           serial    a chain whose fifth task fails: everything reverts
``revert-parallel``  parallel  three branches start together; one fails, all revert
``revert-fan``       parallel  an unordered flow of three, the first one fails (few
                               atoms: revert intentions are written one by one)
``retry``            serial    a ``retry.Times(5)`` subflow failing attempts 1 and 2
``async-parallel``   parallel  ``parallel`` with ``async def`` atoms mixed in
``async-revert``     parallel  branches of async and plain atoms; an async one
                               fails, all revert (async reverts); the worker
                               runs it with ``await engine.run_async()``
``async-retry``      serial    ``retry`` with a coroutine retry controller
                               (execute/revert/on_failure) and async atoms
===================  ========  =================================================

Async atoms sleep with ``await asyncio.sleep`` (and hash like the others), so
kills land while coroutines are suspended in an ``await`` too.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

from taskflow import retry, task
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from tests.reliability import ledger
from tests.reliability.ledger import END, EXECUTE, REVERT, START

FACTORY = 'tests.reliability.shapes.make_flow'
# How long one piece of "work" takes, in seconds (uniformly random).
WORK_SECONDS = (0.001, 0.008)
work_random = random.Random()   # the worker seeds it


class StepFailed(Exception):
    """What a task that is meant to fail raises."""


def _work(scale: float = 1.0) -> None:
    time.sleep(work_random.uniform(*WORK_SECONDS) * scale)
    _hash(scale)


async def _async_work(scale: float = 1.0) -> None:
    await asyncio.sleep(work_random.uniform(*WORK_SECONDS) * scale)
    _hash(scale)


def _hash(scale: float) -> None:
    digest = b'x'
    for _ in range(int(work_random.randrange(50, 500) * scale)):
        digest = hashlib.sha256(digest).digest()


def digest(name: str, inputs: dict[str, Any]) -> str:
    """The deterministic result of task ``name`` given ``inputs``."""
    text = repr((name, sorted(inputs.items())))
    return '%s:%s' % (name, hashlib.sha1(text.encode()).hexdigest()[:8])


class Step(task.Task):
    """Works a little, then returns ``digest(name, inputs)`` (or raises).

    ``fail_below``: raise :class:`StepFailed` while the ``attempt`` input is
    below this number (``ALWAYS``: on every execution).  ``slow``: how many
    times longer than usual its execute works.
    """

    ALWAYS = 1 << 30

    def __init__(self, name: str, requires: tuple[str, ...] = (),
                 fail_below: int | None = None, slow: float = 1.0) -> None:
        super().__init__(name=name, provides=name, requires=list(requires))
        self.fail_below = fail_below
        self.slow = slow

    def execute(self, **inputs: Any) -> str:
        self._start(EXECUTE, inputs)
        _work(self.slow)
        return self._executed(inputs)

    def revert(self, result: Any, flow_failures: Any, **inputs: Any) -> None:
        self._start(REVERT, inputs)
        _work()
        ledger.record(self.name, REVERT, END, inputs.get('attempt'), 'ok')

    def _start(self, action: str, inputs: dict[str, Any]) -> None:
        ledger.record(self.name, action, START, inputs.get('attempt'))

    def _executed(self, inputs: dict[str, Any]) -> str:
        attempt = inputs.get('attempt')
        if self.fail_below is not None and (attempt or 0) < self.fail_below:
            ledger.record(self.name, EXECUTE, END, attempt, 'raised')
            raise StepFailed('%s failed (attempt %s)' % (self.name, attempt))
        value = digest(self.name, inputs)
        ledger.record(self.name, EXECUTE, END, attempt, 'ok')
        return value


class AsyncStep(Step):
    """:class:`Step` as coroutines: the work awaits ``asyncio.sleep``."""

    async def execute(self, **inputs: Any) -> str:  # type: ignore[override]
        self._start(EXECUTE, inputs)
        await _async_work(self.slow)
        return self._executed(inputs)

    async def revert(self, result: Any, flow_failures: Any,  # type: ignore[override]
                     **inputs: Any) -> None:
        self._start(REVERT, inputs)
        await _async_work()
        ledger.record(self.name, REVERT, END, inputs.get('attempt'), 'ok')


class LoggedTimes(retry.Times):
    """``retry.Times`` that also writes ledger records (attempt = 1, 2...)."""

    def execute(self, history: Any, *args: Any, **kwargs: Any) -> int:
        attempt = len(history) + 1
        ledger.record(self.name, EXECUTE, START, attempt)
        _work()
        value = super().execute(history, *args, **kwargs)
        ledger.record(self.name, EXECUTE, END, attempt, 'ok')
        return value

    def revert(self, history: Any, *args: Any, **kwargs: Any) -> None:
        attempt = len(history)
        ledger.record(self.name, REVERT, START, attempt)
        _work()
        ledger.record(self.name, REVERT, END, attempt, 'ok')


class AsyncLoggedTimes(LoggedTimes):
    """:class:`LoggedTimes` with coroutine execute, revert and on_failure."""

    async def execute(self, history: Any, *args: Any,  # type: ignore[override]
                      **kwargs: Any) -> int:
        attempt = len(history) + 1
        ledger.record(self.name, EXECUTE, START, attempt)
        await _async_work()
        ledger.record(self.name, EXECUTE, END, attempt, 'ok')
        return attempt

    async def revert(self, history: Any, *args: Any,  # type: ignore[override]
                     **kwargs: Any) -> None:
        attempt = len(history)
        ledger.record(self.name, REVERT, START, attempt)
        await _async_work()
        ledger.record(self.name, REVERT, END, attempt, 'ok')

    async def on_failure(self, history: Any, *args: Any,  # type: ignore[override]
                         **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return super().on_failure(history, *args, **kwargs)


@dataclass(frozen=True)
class Shape:
    """How to run one flow shape, and what its run looks like without crashes."""

    name: str
    engine: str
    final_state: str
    options: dict[str, Any] = field(default_factory=dict)
    retry_name: str | None = None
    retry_subflow: tuple[str, ...] = ()
    attempts_needed: int | None = None   # retry shapes: attempt that succeeds
    run_async: bool = False              # the worker awaits engine.run_async()


def _linear() -> Any:
    names = ['a', 'b', 'c', 'd', 'e', 'f']
    flow = lf.Flow('linear').add(Step('a'))
    for before, name in zip(names, names[1:]):
        flow.add(Step(name, (before,)))
    return flow


def _parallel() -> Any:
    flow = gf.Flow('parallel').add(Step('src'))
    for i in range(1, 5):
        flow.add(Step('b%d' % i, ('src',)), Step('c%d' % i, ('b%d' % i,)))
    flow.add(Step('sink', tuple('c%d' % i for i in range(1, 5))))
    return flow


def _nested() -> Any:
    left = lf.Flow('nested-left').add(Step('n2a', ('n1',)), Step('n3a', ('n2a',)))
    right = gf.Flow('nested-right').add(Step('n2b', ('n1',)), Step('n3b', ('n2b',)))
    return lf.Flow('nested').add(
        Step('n1'),
        uf.Flow('nested-fan').add(left, right, Step('n2c', ('n1',))),
        lf.Flow('nested-tail').add(Step('n4', ('n3a', 'n3b', 'n2c')), Step('n5', ('n4',))))


def _revert() -> Any:
    return lf.Flow('revert').add(
        Step('r1'), Step('r2', ('r1',)),
        uf.Flow('revert-fan').add(Step('r3a', ('r2',)), Step('r3b', ('r2',))),
        Step('boom', ('r3a', 'r3b'), fail_below=Step.ALWAYS),
        Step('r5', ('boom',)))


def _revert_parallel() -> Any:
    return gf.Flow('revert-parallel').add(
        Step('p0'),
        # The failing branch is quick: p1 and p2 are still running when it
        # fails, so kills often land while they run with intention REVERT.
        Step('p1', ('p0',), slow=4), Step('p2', ('p0',), slow=4),
        Step('pboom', ('p0',), fail_below=Step.ALWAYS),
        Step('pend', ('p1', 'p2', 'pboom')))


def _revert_fan() -> Any:
    # The failing task comes first in the flow, so it gets its REVERT
    # intention before its siblings do.
    return uf.Flow('revert-fan').add(
        Step('fboom', fail_below=Step.ALWAYS), Step('fx', slow=3), Step('fy', slow=3))


RETRY_ATTEMPTS_NEEDED = 3


def _retry() -> Any:
    attempts = lf.Flow('attempts', retry=LoggedTimes(5, name='attempts_retry',
                                                     provides='attempt'))
    attempts.add(Step('s1', ('prep', 'attempt')),
                 Step('flaky', ('s1', 'attempt'), fail_below=RETRY_ATTEMPTS_NEEDED),
                 Step('s2', ('flaky', 'attempt')))
    return lf.Flow('retry').add(Step('prep'), attempts, Step('post', ('s2',)))


def _async_parallel() -> Any:
    flow = gf.Flow('async-parallel').add(AsyncStep('src'))
    for i in range(1, 5):
        second = AsyncStep if i % 2 else Step
        flow.add(AsyncStep('b%d' % i, ('src',)), second('c%d' % i, ('b%d' % i,)))
    flow.add(AsyncStep('sink', tuple('c%d' % i for i in range(1, 5))))
    return flow


def _async_revert() -> Any:
    return gf.Flow('async-revert').add(
        Step('q0'),
        AsyncStep('q1', ('q0',), slow=4), Step('q2', ('q0',), slow=4),
        AsyncStep('q3', ('q0',), slow=4),
        AsyncStep('qboom', ('q0',), fail_below=Step.ALWAYS),
        AsyncStep('qend', ('q1', 'q2', 'q3', 'qboom')))


def _async_retry() -> Any:
    attempts = lf.Flow('async-attempts', retry=AsyncLoggedTimes(
        5, name='async_attempts_retry', provides='attempt'))
    attempts.add(AsyncStep('as1', ('aprep', 'attempt')),
                 AsyncStep('aflaky', ('as1', 'attempt'), fail_below=RETRY_ATTEMPTS_NEEDED),
                 Step('as2', ('aflaky', 'attempt')))
    return lf.Flow('async-retry').add(Step('aprep'), attempts, AsyncStep('apost', ('as2',)))


_BUILDERS = {
    'linear': _linear,
    'parallel': _parallel,
    'nested': _nested,
    'revert': _revert,
    'revert-parallel': _revert_parallel,
    'revert-fan': _revert_fan,
    'retry': _retry,
    'async-parallel': _async_parallel,
    'async-revert': _async_revert,
    'async-retry': _async_retry,
}

SHAPES = {
    'linear': Shape('linear', 'serial', 'SUCCESS'),
    'parallel': Shape('parallel', 'parallel', 'SUCCESS', {'max_workers': 4}),
    'nested': Shape('nested', 'parallel', 'SUCCESS', {'max_workers': 3}),
    'revert': Shape('revert', 'serial', 'REVERTED'),
    'revert-parallel': Shape('revert-parallel', 'parallel', 'REVERTED',
                             {'max_workers': 3}),
    'revert-fan': Shape('revert-fan', 'parallel', 'REVERTED', {'max_workers': 3}),
    'retry': Shape('retry', 'serial', 'SUCCESS', retry_name='attempts_retry',
                   retry_subflow=('s1', 'flaky', 's2'),
                   attempts_needed=RETRY_ATTEMPTS_NEEDED),
    'async-parallel': Shape('async-parallel', 'parallel', 'SUCCESS', {'max_workers': 2}),
    'async-revert': Shape('async-revert', 'parallel', 'REVERTED', {'max_workers': 2},
                          run_async=True),
    'async-retry': Shape('async-retry', 'serial', 'SUCCESS',
                         retry_name='async_attempts_retry',
                         retry_subflow=('as1', 'aflaky', 'as2'),
                         attempts_needed=RETRY_ATTEMPTS_NEEDED),
}


def make_flow(shape: str) -> Any:
    """The flow factory saved in every flow detail the harness creates."""
    return _BUILDERS[shape]()
