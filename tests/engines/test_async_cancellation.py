"""Coroutines are cancelled for real: timeouts, and cancelling ``run_async()``.

A timed-out coroutine sees ``CancelledError`` where it awaits, its ``finally``
runs, and the task fails with ``AtomTimeout``.  Cancelling the caller of
``run_async()`` suspends the flow, cancels the coroutines still running and
leaves the flow resumable: a new engine over the stored flow detail (SQLite
here, a real database file) finishes it.  ``engine.suspend()`` does not cancel
anything: running coroutines finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter

import pytest

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import states
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.utils import persistence_utils
from tests.engines.helpers import Log

ENGINES = ['serial', 'parallel']
R, P, S = states.RUNNING, states.PENDING, states.SUCCESS


class Sleeper(task.Task):
    """Awaits ``seconds`` (default: far too long), logging how it ended.

    ``started`` (an ``asyncio.Event`` of the running loop, made on first use)
    is set once it is inside its ``await``.
    """

    def __init__(self, name, log, seconds=60.0, swallow=False, **kwargs):
        super().__init__(name=name, **kwargs)
        self.log = log
        self.seconds = seconds
        self.swallow = swallow
        self.started: threading.Event = threading.Event()

    def post_execute(self):
        self.log.record('post_execute', self.name)

    async def execute(self):
        self.log.record('start', self.name)
        self.started.set()
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.log.record('cancelled', self.name)
            if self.swallow:
                return 'swallowed'
            raise
        finally:
            self.log.record('finally', self.name)
        self.log.record('done', self.name)
        return self.name

    async def revert(self, **kwargs):
        self.log.record('revert', self.name)


class Plain(task.Task):
    def __init__(self, name, log, **kwargs):
        super().__init__(name=name, **kwargs)
        self.log = log

    def execute(self):
        self.log.record('done', self.name)
        return self.name

    def revert(self, **kwargs):
        self.log.record('revert', self.name)


# -- timeouts ---------------------------------------------------------------------------


@pytest.mark.parametrize('engine', ENGINES)
def test_a_timed_out_coroutine_sees_cancelled_error_and_its_finally_runs(engine):
    log = Log()
    flow = lf.Flow('f').add(Plain('before', log), Sleeper('stuck', log, timeout=0.2))
    loaded = taskflow.engines.load(flow, engine=engine)
    with pytest.raises(exc.AtomTimeout) as info:
        loaded.run()
    assert isinstance(info.value, TimeoutError)
    assert str(info.value) == ("Task 'stuck' did not finish execute within 0.2 seconds;"
                               " it was cancelled")
    # All of it happened before the task was failed (and reverted).
    assert log.entries == [('done', 'before'), ('start', 'stuck'), ('cancelled', 'stuck'),
                           ('finally', 'stuck'), ('post_execute', 'stuck'),
                           ('revert', 'stuck'), ('revert', 'before')]
    assert loaded.storage.get_flow_state() == states.REVERTED
    assert loaded.storage.get('stuck').check(exc.AtomTimeout)


@pytest.mark.parametrize('engine', ENGINES)
def test_task_timeout_applies_to_coroutines_too(engine):
    log = Log()
    flow = uf.Flow('u').add(Sleeper('slow', log), Sleeper('quick', log, seconds=0.01))
    loaded = taskflow.engines.load(flow, engine=engine, task_timeout=1)
    with pytest.raises(exc.AtomTimeout, match="'slow' did not finish execute within 1.0"):
        loaded.run()
    assert log.count('cancelled', 'slow') == 1 and log.count('done', 'quick') == 1


def test_a_coroutine_that_swallows_the_cancellation_still_times_out(caplog):
    log = Log()
    loaded = taskflow.engines.load(Sleeper('stubborn', log, swallow=True, timeout=0.1))
    with pytest.raises(exc.AtomTimeout):
        loaded.run()
    assert log.names('cancelled') == ['stubborn']
    assert 'ignored its cancellation' in caplog.text


class RevertSleeper(Plain):
    async def revert(self, **kwargs):
        try:
            await asyncio.sleep(60)
        finally:
            self.log.record('revert finally', self.name)


@pytest.mark.parametrize('engine', ENGINES)
def test_a_timed_out_revert_coroutine_is_cancelled_and_the_flow_fails(engine):
    log = Log()

    class Boom(task.Task):
        async def execute(self):
            raise ValueError('boom')

    flow = lf.Flow('f').add(RevertSleeper('undo', log, timeout=0.2), Boom('boom'))
    loaded = taskflow.engines.load(flow, engine=engine)
    with pytest.raises(exc.AtomTimeout,
                       match="'undo' did not finish revert within 0.2 seconds; it was cancelled"):
        loaded.run()
    assert log.names('revert finally') == ['undo']
    assert loaded.storage.get_atom_state('undo') == states.REVERT_FAILURE
    assert loaded.storage.get_flow_state() == states.FAILURE


def test_a_coroutines_clock_starts_when_it_starts_not_while_it_waits_its_turn():
    log = Log()
    # One at a time: the last ones start 0.4 and 0.5 s after submission, past
    # their 0.45 s timeout if queueing counted.
    flow = uf.Flow('u').add(*(Sleeper('s%d' % i, log, seconds=0.1, timeout=0.45)
                              for i in range(6)))
    taskflow.engines.run(flow, engine='parallel', async_concurrency=1)
    assert sorted(log.names('done')) == ['s%d' % i for i in range(6)]
    assert log.names('cancelled') == []


# -- suspend() --------------------------------------------------------------------------


def _suspend_when_both_started(engine, first, second):
    def watch():
        if first.started.wait(10) and second.started.wait(10):
            engine.suspend()
    threading.Thread(target=watch, daemon=True).start()


@pytest.mark.parametrize('run_async', [False, True], ids=['run', 'run_async'])
def test_suspend_lets_running_coroutines_finish(run_async):
    log = Log()
    a, b = Sleeper('a', log, seconds=0.2), Sleeper('b', log, seconds=0.2)
    flow = lf.Flow('f').add(uf.Flow('both').add(a, b), Plain('after', log))
    engine = taskflow.engines.load(flow, engine='parallel')
    _suspend_when_both_started(engine, a, b)
    if run_async:
        asyncio.run(engine.run_async())
    else:
        engine.run()
    assert sorted(log.names('done')) == ['a', 'b']
    assert log.names('cancelled') == []
    storage = engine.storage
    assert storage.get_flow_state() == states.SUSPENDED
    assert [storage.get_atom_state(n) for n in ('a', 'b', 'after')] == [S, S, P]
    engine.run()
    assert log.names('done') [-1] == 'after'
    assert storage.get_flow_state() == states.SUCCESS


# -- cancelling run_async() ---------------------------------------------------------------


@contextlib.contextmanager
def sqlite_backend(tmp_path):
    backend = backends.fetch({'connection': 'sqlite:///%s' % (tmp_path / 'flows.db')})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
    try:
        yield backend
    finally:
        backend.close()


def _stored(flow, backend):
    return persistence_utils.create_flow_detail(flow, book=models.LogBook('book'),
                                                backend=backend)


def _reloaded(backend, detail):
    with contextlib.closing(backend.get_connection()) as conn:
        return conn.get_flow_details(detail.uuid)


class Blocking(Plain):
    """A plain task that waits for ``release`` (a thread: it cannot be cancelled)."""

    def __init__(self, name, log, release, **kwargs):
        super().__init__(name, log, **kwargs)
        self.release = release
        self.started = threading.Event()

    def execute(self):
        self.started.set()
        assert self.release.wait(10)
        return super().execute()


def _atoms(flow):
    for node, _meta in flow.iter_nodes():
        if isinstance(node, task.Task):
            yield node
        else:
            yield from _atoms(node)


class Scenario:
    """A flow whose middle never ends by itself: coroutines awaiting for a
    minute (and, on the parallel engine, a thread waiting to be released)."""

    def __init__(self, engine):
        self.log = Log()
        self.release = threading.Event()
        if engine == 'serial':
            middle = Sleeper('waiting', self.log)
        else:
            middle = uf.Flow('middle').add(
                Sleeper('waiting', self.log), Sleeper('also-waiting', self.log),
                Blocking('in-a-thread', self.log, self.release))
        self.flow = lf.Flow('f').add(Plain('first', self.log), middle,
                                     Plain('last', self.log))
        self.atoms = list(_atoms(self.flow))
        self.sleepers = [a for a in self.atoms if isinstance(a, Sleeper)]

    def all_started(self):
        return all(a.started.is_set() for a in self.atoms if hasattr(a, 'started'))

    async def cancel_once_started(self, job):
        while not self.all_started():
            await asyncio.sleep(0.005)
        job.cancel()
        # A thread cannot be cancelled: it ends when released (after the cancel).
        await asyncio.sleep(0.05)
        self.release.set()

    def check_suspended(self, engine, backend, detail):
        sleepers = sorted(a.name for a in self.sleepers)
        assert sorted(self.log.names('cancelled')) == sleepers
        assert sorted(self.log.names('finally')) == sleepers
        assert engine.storage.get_flow_state() == states.SUSPENDED
        stored = _reloaded(backend, detail)
        assert stored.state == states.SUSPENDED
        expected = {a.name: R if a in self.sleepers else S for a in self.atoms}
        expected['last'] = P
        assert {ad.name: ad.state for ad in stored} == expected
        return stored

    def resume_and_finish(self, stored, backend, engine):
        for sleeper in self.sleepers:
            sleeper.seconds = 0.01
        resumed = taskflow.engines.load(self.flow, flow_detail=stored, backend=backend,
                                        engine=engine)
        resumed.run()
        assert resumed.storage.get_flow_state() == states.SUCCESS
        # Every atom completed exactly once over both runs.
        assert Counter(self.log.names('done')) == Counter(a.name for a in self.atoms)


@pytest.mark.parametrize('engine', ENGINES)
def test_cancelling_run_async_suspends_and_a_new_engine_resumes(engine, tmp_path):
    scenario = Scenario(engine)
    with sqlite_backend(tmp_path) as backend:
        detail = _stored(scenario.flow, backend)
        loaded = taskflow.engines.load(scenario.flow, flow_detail=detail, backend=backend,
                                       engine=engine)

        async def main():
            job = asyncio.ensure_future(loaded.run_async())
            canceller = asyncio.ensure_future(scenario.cancel_once_started(job))
            with pytest.raises(asyncio.CancelledError):
                await job
            await canceller

        asyncio.run(main())
        stored = scenario.check_suspended(loaded, backend, detail)
        scenario.resume_and_finish(stored, backend, engine)


@pytest.mark.parametrize('engine', ENGINES)
def test_a_timeout_around_run_async_suspends_it_resumably(engine, tmp_path):
    scenario = Scenario(engine)
    scenario.release.set()
    with sqlite_backend(tmp_path) as backend:
        detail = _stored(scenario.flow, backend)
        loaded = taskflow.engines.load(scenario.flow, flow_detail=detail, backend=backend,
                                       engine=engine)

        async def main():
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(loaded.run_async(), timeout=0.5)

        asyncio.run(main())
        stored = scenario.check_suspended(loaded, backend, detail)
        scenario.resume_and_finish(stored, backend, engine)


@pytest.mark.parametrize('engine', ENGINES)
def test_cancelling_an_async_for_over_run_iter_async_suspends_it(engine, tmp_path):
    scenario = Scenario(engine)
    with sqlite_backend(tmp_path) as backend:
        detail = _stored(scenario.flow, backend)
        loaded = taskflow.engines.load(scenario.flow, flow_detail=detail, backend=backend,
                                       engine=engine)
        seen = []

        async def consume():
            async for state in loaded.run_iter_async():
                seen.append(state)

        async def main():
            job = asyncio.ensure_future(consume())
            canceller = asyncio.ensure_future(scenario.cancel_once_started(job))
            with pytest.raises(asyncio.CancelledError):
                await job
            await canceller

        asyncio.run(main())
        assert seen[:2] == [states.RESUMING, states.SCHEDULING]
        stored = scenario.check_suspended(loaded, backend, detail)
        scenario.resume_and_finish(stored, backend, engine)


class SlowUndo(Plain):
    def __init__(self, name, log, **kwargs):
        super().__init__(name, log, **kwargs)
        self.started = threading.Event()
        self.seconds = 60.0

    async def revert(self, **kwargs):
        self.started.set()
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.log.record('cancelled', self.name)
            raise
        self.log.record('revert', self.name)


@pytest.mark.parametrize('engine', ENGINES)
def test_a_revert_cancelled_with_run_async_reverts_again_on_resume(engine, tmp_path):
    log = Log()
    undo = SlowUndo('undo', log)

    class Boom(task.Task):
        async def execute(self):
            raise ValueError('boom')

    flow = lf.Flow('f').add(Plain('first', log), undo, Boom('boom'))
    with sqlite_backend(tmp_path) as backend:
        detail = _stored(flow, backend)
        loaded = taskflow.engines.load(flow, flow_detail=detail, backend=backend,
                                       engine=engine)

        async def main():
            job = asyncio.ensure_future(loaded.run_async())
            while not undo.started.is_set():
                await asyncio.sleep(0.005)
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job

        asyncio.run(main())
        assert log.names('cancelled') == ['undo']
        stored = _reloaded(backend, detail)
        assert stored.state == states.SUSPENDED
        assert {ad.name: ad.state for ad in stored} == {
            'first': S, 'undo': states.REVERTING, 'boom': states.REVERTED}
        undo.seconds = 0.0
        resumed = taskflow.engines.load(flow, flow_detail=stored, backend=backend,
                                        engine=engine)
        # (a failure loaded from storage is re-raised wrapped, as always)
        with pytest.raises(exc.WrappedFailure, match='ValueError: boom'):
            resumed.run()
        assert resumed.storage.get_flow_state() == states.REVERTED
        assert log.names('revert') == ['undo', 'first']


class Stuck(task.Task):
    """A plain task blocked on ``release``: its thread can only be abandoned."""

    def __init__(self, name, release, **kwargs):
        super().__init__(name=name, **kwargs)
        self.release = release

    def execute(self):
        self.release.wait(30)


def test_plain_and_coroutine_timeouts_side_by_side_on_the_parallel_engine():
    log = Log()
    release = threading.Event()
    flow = uf.Flow('u').add(Stuck('thread', release, timeout=0.2),
                            Sleeper('coroutine', log, timeout=0.3),
                            Sleeper('quick', log, seconds=0.01, timeout=5))
    loaded = taskflow.engines.load(flow, engine='parallel')
    try:
        with pytest.raises(exc.WrappedFailure) as info:
            loaded.run()
    finally:
        release.set()
    messages = sorted(str(f.exception) for f in info.value)
    assert messages == [
        "Task 'coroutine' did not finish execute within 0.3 seconds; it was cancelled",
        "Task 'thread' did not finish execute within 0.2 seconds; it was abandoned (its"
        " thread may still be running)"]
    assert log.names('done') == ['quick'] and log.names('finally') == ['quick', 'coroutine']
