"""The run loop driven by hand through a fake runner.

The fake runner holds every submitted call until the test finishes it, so
the tests decide which of several running atoms completes first -- the
interleavings a thread pool produces only by chance.  The loop's other
collaborators are real (compilation, in-memory storage, notifier).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

import taskflow.engines
from taskflow import states as st
from taskflow import storage as storage_module
from taskflow import task
from taskflow.engines.action_engine import _call
from taskflow.engines.action_engine import _compile
from taskflow.engines.action_engine import _executors
from taskflow.engines.action_engine import _loop
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.persistence import models
from taskflow.types import failure as failure_module
from taskflow.types import notifier as notifier_module


class T(task.Task):
    def execute(self):
        return self.name


class FakeRunner:
    """A :class:`~_executors.Runner` whose calls finish when the test says so."""

    def __init__(self) -> None:
        self.running: dict[str, tuple[Any, _call.Call]] = {}
        self._done: list[tuple[Any, _call.Outcome]] = []

    @property
    def pending(self) -> int:
        return len(self.running) + len(self._done)

    def submit(self, token: Any, call: _call.Call, timeout: float | None) -> None:
        self.running[call.atom.name] = (token, call)

    def run_local(self, token: Any, fn: Any, *args: Any) -> None:
        self._done.append((token, fn(*args)))

    def finish(self, name: str, ok: bool = True) -> _call.Call:
        token, call = self.running.pop(name)
        outcome = (_call.run_task(call) if ok else
                   _call.Outcome(False, failure_module.Failure.from_exception(
                       RuntimeError('%s broke' % name))))
        self._done.append((token, outcome))
        return call

    def wait(self, timeout: float | None) -> _executors.Finished:
        done, self._done = self._done, []
        return done

    def wake(self) -> None:
        pass

    def stop(self) -> None:
        pass


class Harness:
    """A loop over ``flow`` with a fake runner; ``step()`` does one state's work."""

    def __init__(self, flow: Any) -> None:
        self.compilation = _compile.Compilation(flow)
        self.storage = storage_module.Storage(models.FlowDetail('f', 'f-uuid'))
        self.storage.ensure_atoms(self.compilation.iter_atoms())
        self.notifier = notifier_module.Notifier()
        self.events: list[str] = []
        self.notifier.register('*', lambda state, details: self.events.append(
            '%s:%s' % (details.get('task_name') or details.get('retry_name'), state)))
        self.flow_states: list[str] = []
        self.runner = FakeRunner()
        self.suspension = _loop.Suspension()
        self.suspension.start(self.runner)
        self.loop = _loop.RunLoop(self.compilation, self.storage, self.notifier, self.runner,
                                  self.flow_states.append, self.suspension,
                                  _loop.RunOptions(timeout=0.01))
        self.state = st.RESUMING

    def step(self) -> str:
        self.state = self.loop.work[self.state]()
        return self.state

    def record(self) -> None:
        """From WAITING: collect what finished, then record it (ANALYZING)."""
        assert self.state == st.WAITING, self.state
        self.step()
        self.step()

    def until(self, wanted: str) -> None:
        for _ in range(20):
            if self.state == wanted:
                return
            self.step()
        raise AssertionError('never reached %s (at %s)' % (wanted, self.state))


def test_a_run_goes_through_the_engine_states_and_ends_with_an_outcome():
    h = Harness(lf.Flow('f').add(T('a'), T('b')))
    assert [h.step(), h.step()] == [st.SCHEDULING, st.WAITING]
    h.runner.finish('a')
    assert [h.step(), h.step(), h.step()] == [st.ANALYZING, st.SCHEDULING, st.WAITING]
    h.runner.finish('b')
    h.until(st.SUCCESS)
    assert h.flow_states == [st.SUCCESS]
    outcome = h.loop.outcome()
    assert outcome.final_state == st.SUCCESS and outcome.failures == ()
    assert outcome.completed == 2 and outcome.in_flight == 0
    with pytest.raises(TypeError):
        outcome.late_failures['x'] = None   # immutable
    assert h.storage.fetch_all() == {}


def test_atoms_finishing_out_of_order_are_recorded_as_they_finish():
    h = Harness(uf.Flow('u').add(T('a'), T('b'), T('c')))
    h.until(st.WAITING)
    assert sorted(h.runner.running) == ['a', 'b', 'c']
    for name in ('c', 'a', 'b'):
        h.runner.finish(name)
        h.record()
        if h.runner.running:
            h.until(st.WAITING)
    assert h.state == st.SUCCESS
    assert [e for e in h.events if e.endswith(':SUCCESS')] == ['c:SUCCESS', 'a:SUCCESS',
                                                               'b:SUCCESS']


def test_a_sibling_that_succeeds_after_a_failure_is_reverted():
    h = Harness(uf.Flow('u').add(T('a'), T('b')))
    h.until(st.WAITING)
    h.runner.finish('a', ok=False)
    h.record()                         # a's failure: everything reverts
    assert h.storage.get_atom_intention('b') == st.REVERT
    h.until(st.WAITING)
    # Unordered siblings: a reverts at once, while b still runs.
    assert {n: c.kind for n, (_t, c) in h.runner.running.items()} == {
        'a': _call.REVERT, 'b': _call.EXECUTE}
    h.runner.finish('b')
    h.runner.finish('a')
    h.record()
    h.until(st.WAITING)
    assert {n: c.kind for n, (_t, c) in h.runner.running.items()} == {'b': _call.REVERT}
    h.runner.finish('b')
    h.until(st.REVERTED)
    assert h.storage.get_atom_state('a') == st.REVERTED
    assert h.storage.get_atom_state('b') == st.REVERTED
    assert h.loop.outcome().discarded_failures == 1


def test_a_suspension_stops_scheduling_and_ends_suspended():
    h = Harness(lf.Flow('f').add(T('a'), T('b')))
    h.until(st.WAITING)
    h.suspension.request()
    h.runner.finish('a')
    h.until(st.SUSPENDED)
    assert h.storage.get_atom_state('b') == st.PENDING
    # Nobody stored SUSPENDING (only the flag was set): the loop passes through it.
    assert h.flow_states == [st.SUSPENDING, st.SUSPENDED]


def test_the_serial_engine_calls_execute_at_most_seven_frames_below_run():
    # A regression guard on the hot path (issue 7 froze it at 7 frames).
    depth = []

    class Probe(task.Task):
        def execute(self):
            frame, frames = sys._getframe(1), 0
            while frame.f_code.co_name != 'run' or 'engine' not in frame.f_code.co_filename:
                frames += 1
                frame = frame.f_back
            depth.append(frames)

    taskflow.engines.run(lf.Flow('f').add(Probe()), engine='serial')
    assert depth and depth[0] <= 7, depth
