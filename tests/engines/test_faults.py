"""Engine correctness under odd stored states and interrupted runs (issue 7).

Each test pins what the original TaskFlow 6.5.0 does (checked through the
oracle) for a case that used to lose or undo work: retries whose subflow
has dependants that already ran, resuming a retry stored ``RETRYING``, an
error thrown into ``run_iter()``, invalid run options, inputs removed
between runs, and timed-out calls holding the pool.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from taskflow import exceptions as exc
from taskflow import retry
from taskflow import states as st
from taskflow import task
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf


class T(task.Task):
    def __init__(self, name, fail=False, **kwargs):
        super().__init__(name=name, **kwargs)
        self.fail = fail

    def execute(self, **kwargs):
        if self.fail:
            raise RuntimeError('Woot!')
        return 1


def _events(engine):
    events = []
    engine.atom_notifier.register('*', lambda state, details: events.append(
        '%s:%s' % (details.get('task_name') or details.get('retry_name'), state)))
    return events


def _states(engine, names):
    return {name: engine.storage.get_atom_state(name) for name in names}


def test_retry_reverts_and_reruns_atoms_after_its_subflow_that_already_ran(kind):
    # 'a' needs x from the retried subflow; storage says it already ran.
    flow = gf.Flow('top').add(
        T('a', requires=['x']),
        lf.Flow('sub', retry=retry.Times(2, name='r')).add(T('b', provides='x'),
                                                           T('c', fail=True)))
    engine = kind.load(flow)
    engine.compile()
    engine.prepare()
    engine.storage.save('r', 1)
    engine.storage.save('b', 11)
    engine.storage.save('a', 10)
    events = _events(engine)
    with pytest.raises(RuntimeError, match='Woot!'):
        engine.run()
    assert events == ('c:RUNNING c:FAILURE a:REVERTING a:REVERTED c:REVERTING c:REVERTED'
                      ' b:REVERTING b:REVERTED r:RETRYING b:PENDING c:PENDING a:PENDING'
                      ' r:RUNNING r:SUCCESS b:RUNNING b:SUCCESS c:RUNNING c:FAILURE'
                      ' c:REVERTING c:REVERTED b:REVERTING b:REVERTED r:REVERTING'
                      ' r:REVERTED').split()
    assert engine.storage.get_flow_state() == st.REVERTED
    assert _states(engine, 'abcr') == {'a': st.PENDING, 'b': st.REVERTED,
                                       'c': st.REVERTED, 'r': st.REVERTED}


def test_resuming_a_retry_stored_retrying_runs_its_reverted_subflow_again(kind):
    flow = lf.Flow('f', retry.Times(3, 'r1')).add(T('t1'), T('t2'), T('t3'))
    engine = kind.load(flow)
    engine.compile()
    engine.prepare()
    engine.storage.set_atom_state('r1', st.RETRYING)
    engine.storage.set_atom_state('t2', st.REVERTED)
    engine.storage.set_atom_state('t3', st.REVERTED)
    events = _events(engine)
    engine.run()
    assert events == ('t2:PENDING t3:PENDING r1:RUNNING r1:SUCCESS t1:RUNNING t1:SUCCESS'
                      ' t2:RUNNING t2:SUCCESS t3:RUNNING t3:SUCCESS').split()
    assert engine.storage.get_flow_state() == st.SUCCESS
    assert set(_states(engine, ['r1', 't1', 't2', 't3']).values()) == {st.SUCCESS}


def test_resuming_a_retry_stored_retrying_with_a_retry_intention(kind):
    # A crash before the intentions were reset: the retry step runs again.
    flow = lf.Flow('f', retry.Times(3, 'r1')).add(T('t1'), T('t2'))
    engine = kind.load(flow)
    engine.compile()
    engine.prepare()
    engine.storage.set_atom_state('r1', st.RETRYING)
    engine.storage.set_atom_intention('r1', st.RETRY)
    engine.storage.set_atom_state('t1', st.REVERTED)
    engine.storage.set_atom_intention('t1', st.REVERT)
    engine.storage.set_atom_state('t2', st.REVERTED)
    engine.storage.set_atom_intention('t2', st.REVERT)
    engine.run()
    assert engine.storage.get_flow_state() == st.SUCCESS
    assert set(_states(engine, ['r1', 't1', 't2']).values()) == {st.SUCCESS}


@pytest.mark.parametrize('at, ran', [
    (st.RESUMING, ['t1']),                  # the round RESUMING starts still runs
    (st.SCHEDULING, ['t1']),
    (st.WAITING, ['t1']),
    (st.ANALYZING, ['t1']),
])
def test_an_error_thrown_into_run_iter_ends_the_round_then_fails(kind, at, ran):
    executed = []

    class Noop(task.Task):
        def execute(self):
            executed.append(self.name)

    engine = kind.load(lf.Flow('f').add(Noop('t1'), Noop('t2'), Noop('t3')))
    iterator = engine.run_iter()
    with pytest.raises(OSError, match='I Broke'):
        for state in iterator:
            if state == at:
                iterator.throw(OSError('I Broke'))
    assert executed == ran
    assert engine.storage.get_flow_state() == st.FAILURE
    assert _states(engine, ['t1', 't2', 't3']) == {'t1': st.SUCCESS, 't2': st.PENDING,
                                                   't3': st.PENDING}


def test_an_error_thrown_at_the_second_scheduling_finishes_that_round(kind):
    engine = kind.load(lf.Flow('f').add(T('t1'), T('t2'), T('t3')))
    iterator = engine.run_iter()
    seen = []
    with pytest.raises(OSError):
        for state in iterator:
            seen.append(state)
            if seen.count(st.SCHEDULING) == 2:
                iterator.throw(OSError('I Broke'))
    assert engine.storage.get_flow_state() == st.FAILURE
    assert _states(engine, ['t1', 't2', 't3']) == {'t1': st.SUCCESS, 't2': st.SUCCESS,
                                                   't3': st.PENDING}


@pytest.mark.parametrize('timeout', [-1, -0.5, 'soon', True, [1], float('nan')])
def test_invalid_run_timeouts_are_refused_before_any_atom_runs(kind, timeout):
    executed = []

    class Noop(task.Task):
        def execute(self):
            executed.append(self.name)

    engine = kind.load(uf.Flow('f').add(Noop('a'), Noop('b')))
    with pytest.raises(ValueError, match="run\\(\\)'s timeout must be a number of"
                                         " seconds >= 0"):
        engine.run(timeout=timeout)
    assert executed == []
    assert engine.storage.get_flow_state() == st.PENDING
    assert _states(engine, 'ab') == {'a': st.PENDING, 'b': st.PENDING}
    engine.run(timeout=0.5)   # the same engine still runs once asked properly
    assert sorted(executed) == ['a', 'b']


@pytest.mark.parametrize('needs_foo', ['b', 'c'])
def test_validation_is_checked_again_after_inputs_are_removed(kind, needs_foo):
    class Step(task.Task):
        def execute(self, **kwargs):
            if self.name == 'b':
                engine.suspend()

    flow = lf.Flow('lin').add(Step('b', requires=['foo'] if needs_foo == 'b' else []),
                              Step('c', requires=['foo'] if needs_foo == 'c' else []))
    engine = kind.load(flow)
    engine.storage.inject({'foo': 'bar'})
    engine.run()
    assert engine.storage.get_flow_state() == st.SUSPENDED
    engine.storage.save(engine.storage.injector_name, {}, st.SUCCESS)  # un-inject foo
    for call in (engine.validate, engine.run):
        with pytest.raises(exc.MissingDependencies, match=r"requires \['foo'\]"):
            call()
    assert engine.storage.get_atom_state('c') == st.PENDING


@pytest.mark.parametrize('workers', [1, 2])
def test_timed_out_calls_do_not_use_up_the_pool(workers):
    import taskflow.engines

    calls = []
    forever = threading.Event()

    class Quick(task.Task):
        def execute(self):
            calls.append('execute ' + self.name)

        def revert(self, **kwargs):
            calls.append('revert ' + self.name)

    class Blocker(task.Task):
        def execute(self):
            calls.append('execute ' + self.name)
            forever.wait()

        def revert(self, **kwargs):
            calls.append('revert ' + self.name)

    flow = lf.Flow('f', retry=retry.Times(3, name='r')).add(Quick('q1'),
                                                            Blocker('b', timeout=0.3))
    engine = taskflow.engines.load(flow, engine='parallel', max_workers=workers)
    try:
        with pytest.raises(exc.AtomTimeout, match="Task 'b' did not finish execute"):
            engine.run()
        # Every attempt timed out, then b and q1 were really reverted and retried.
        assert calls.count('execute b') == 3
        assert calls.count('revert b') == 3 and calls.count('revert q1') == 3
        assert engine.storage.get_flow_state() == st.REVERTED
    finally:
        forever.set()


def test_the_process_exits_while_an_abandoned_call_still_runs(tmp_path):
    program = textwrap.dedent('''
        import threading
        import taskflow.engines
        from taskflow import task
        from taskflow.patterns import linear_flow as lf
        forever = threading.Event()
        class B(task.Task):
            def execute(self):
                forever.wait()
        for kind in ('serial', 'parallel'):
            try:
                taskflow.engines.run(lf.Flow('f').add(B('b', timeout=0.2)), engine=kind)
            except Exception as e:
                print(kind, type(e).__name__)
        print('done')
    ''')
    proc = subprocess.run([sys.executable, '-c', program], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split('\n')[:3] == ['serial AtomTimeout', 'parallel AtomTimeout',
                                           'done']
