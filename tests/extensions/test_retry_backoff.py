"""Retry delays do not block the engine (taskflow-ng extension).

Assertions are on the order of events, never on wall-clock durations.
"""

from __future__ import annotations

import contextlib
import threading

import pytest

from taskflow import delays
from taskflow import engines
from taskflow import retry
from taskflow import states
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.persistence import backends
from taskflow.persistence import models

ENGINE_KINDS = ['serial', 'parallel']


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.events: list[str] = []

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append(event)


class FailsFirst(task.Task):
    def __init__(self, name, log):
        super().__init__(name=name)
        self.log = log

    def execute(self, attempt):
        self.log.add('%s:run:%s' % (self.name, attempt))
        if attempt == 1:
            raise RuntimeError('first attempt fails')
        return attempt


class Sibling(task.Task):
    def __init__(self, name, log, gate=None):
        super().__init__(name=name)
        self.log = log
        self.gate = gate

    def execute(self):
        if self.gate is not None:
            assert self.gate.wait(10), 'the retry never started waiting'
        self.log.add('%s:done' % self.name)


def _watch_retry(engine, log, gate=None):
    def on_atom(state, details):
        name = details.get('retry_name')
        if name is not None:
            log.add('%s:%s' % (name, state))
            if state == states.RETRYING and gate is not None:
                gate.set()
    engine.atom_notifier.register('*', on_atom)


def _retried_flow_beside_siblings(log, gate=None):
    return uf.Flow('root').add(
        lf.Flow('retried', retry=retry.Times(3, name='r', provides='attempt',
                                             delay=delays.fixed(2))).add(
            FailsFirst('flaky', log)),
        lf.Flow('siblings').add(*[Sibling('s%d' % i, log, gate if i == 0 else None)
                                  for i in range(5)]))


def test_parallel_sibling_branch_runs_while_a_retry_waits():
    log = Recorder()
    gate = threading.Event()   # the siblings start only once the retry waits
    engine = engines.load(_retried_flow_beside_siblings(log, gate), engine='parallel')
    _watch_retry(engine, log, gate)
    engine.run()
    events = log.events
    waiting_starts = events.index('r:RETRYING')
    rerun = events.index('flaky:run:2')
    for i in range(5):
        assert waiting_starts < events.index('s%d:done' % i) < rerun
    assert engine.storage.get_flow_state() == states.SUCCESS
    assert engine.storage.fetch('attempt') == 2


def test_serial_engine_runs_other_atoms_while_a_retry_waits():
    # One thread does everything: siblings can only finish during the 2 s wait
    # if the loop keeps scheduling instead of sleeping.
    log = Recorder()
    engine = engines.load(_retried_flow_beside_siblings(log), engine='serial')
    _watch_retry(engine, log)
    engine.run()
    events = log.events
    waiting_starts = events.index('r:RETRYING')
    rerun = events.index('flaky:run:2')
    done = [events.index('s%d:done' % i) for i in range(5)]
    assert all(index < rerun for index in done)
    assert any(index > waiting_starts for index in done)
    assert engine.storage.get_flow_state() == states.SUCCESS


class AlwaysFails(task.Task):
    def execute(self, attempt):
        raise RuntimeError('nope %s' % attempt)


@pytest.mark.parametrize('kind', ENGINE_KINDS)
def test_suspend_during_a_delay_ends_the_run_without_waiting(kind):
    flow = lf.Flow('r', retry=retry.Times(3, name='r', provides='attempt',
                                          delay=delays.fixed(600))).add(AlwaysFails('af'))
    engine = engines.load(flow, engine=kind)

    def suspend_when_waiting(state, details):
        if state == states.RETRYING:
            threading.Timer(0.05, engine.suspend).start()
    engine.atom_notifier.register(states.RETRYING, suspend_when_waiting)
    done = threading.Event()
    runner = threading.Thread(target=lambda: (engine.run(), done.set()), daemon=True)
    runner.start()
    # A 600 s delay: the run can only end here because suspend() cut it short.
    assert done.wait(30), 'run() did not return after suspend() during a retry delay'
    assert engine.storage.get_flow_state() == states.SUSPENDED
    assert engine.storage.get_atom_state('r') == states.RETRYING
    assert engine.storage.get_atom_state('af') == states.PENDING


def test_resumed_flow_waits_only_for_what_is_left_of_the_delay(tmp_path):
    backend = backends.fetch({'connection': 'sqlite:///%s' % (tmp_path / 'tf.db')})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
    log = Recorder()
    book = models.LogBook('b')
    flow = lf.Flow('r', retry=retry.Times(3, name='r', provides='attempt',
                                          delay=delays.fixed(0.5))).add(FailsFirst('f', log))
    engine = engines.load(flow, book=book, backend=backend)
    engine.atom_notifier.register(
        states.RETRYING, lambda state, details: engine.suspend())
    engine.run()
    assert engine.storage.get_flow_state() == states.SUSPENDED
    retry_at = engine.storage._atoms['r'].meta['retry_at']
    # A new engine on the stored detail (as after a crash) runs the retry again.
    with contextlib.closing(backend.get_connection()) as conn:
        detail = conn.get_flow_details(engine.storage.flow_uuid)
    resumed = engines.load(flow, flow_detail=detail, backend=backend)
    resumed.run()
    assert resumed.storage.get_flow_state() == states.SUCCESS
    assert log.events == ['f:run:1', 'f:run:2']
    assert resumed.storage._atoms['r'].meta['retry_at'] == retry_at


def test_a_failing_delay_policy_fails_the_run_with_its_error():
    class Broken(delays.Delay):
        def __call__(self, retry_number):
            raise ArithmeticError('bad policy')
    flow = lf.Flow('r', retry=retry.Times(3, provides='attempt', delay=Broken())).add(
        AlwaysFails('af'))
    engine = engines.load(flow)
    with pytest.raises(ArithmeticError):
        engine.run()
    assert engine.storage.get_flow_state() == states.FAILURE
