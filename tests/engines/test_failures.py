"""Execute failures, reverting, and what ``run()`` raises."""

from __future__ import annotations

import threading

import pytest

from taskflow import exceptions as exc
from taskflow import states
from taskflow import task
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.types import failure
from tests.engines.helpers import (
    Log, Step, atom_events, events_of, flow_events, intentions_of, make_barrier, states_of)


def assert_reverted_after_dependents(log: Log, predecessors: dict[str, list[str]]) -> None:
    """Every reverted atom reverted after each of its reverted dependents."""
    reverted = log.names('revert')
    for atom, preds in predecessors.items():
        if atom not in reverted:
            continue
        for pred in preds:
            if pred in reverted:
                assert log.position('revert', atom) < log.position('revert', pred), \
                    '%s reverted before its dependent %s' % (pred, atom)


def test_failure_reverts_what_ran_in_reverse_order_and_reraises(kind):
    log = Log()
    error = ValueError('c broke')
    flow = lf.Flow('f').add(Step('a', log), Step('b', log), Step('c', log, fail=error),
                            Step('d', log))
    engine = kind.load(flow)
    with pytest.raises(ValueError) as info:
        engine.run()
    assert info.value is error  # the original exception object, not a copy
    assert log.entries == [('execute', 'a'), ('execute', 'b'), ('execute', 'c'),
                           ('revert', 'c'), ('revert', 'b'), ('revert', 'a')]
    assert engine.storage.get_flow_state() == states.REVERTED
    assert states_of(engine, 'abcd') == {'a': states.REVERTED, 'b': states.REVERTED,
                                         'c': states.REVERTED, 'd': states.PENDING}
    assert intentions_of(engine, 'abcd') == dict.fromkeys('abcd', states.REVERT)


def test_revert_gets_the_result_and_the_flow_failures(kind):
    log = Log()
    error = RuntimeError('no')
    flow = lf.Flow('f').add(Step('a', log, result={'made': 1}), Step('b', log, fail=error))
    with pytest.raises(RuntimeError):
        kind.run(flow)
    failed = log.last('revert', 'b')
    assert isinstance(failed['result'], failure.Failure)
    assert failed['result'].exception is error
    assert list(failed['flow_failures']) == ['b']
    assert failed['flow_failures']['b'].exception is error
    succeeded = log.last('revert', 'a')
    assert succeeded['result'] == {'made': 1}
    assert list(succeeded['flow_failures']) == ['b']
    assert str(succeeded['flow_failures']['b']) == 'Failure: RuntimeError: no'


def test_revert_receives_its_own_mapped_arguments(kind):
    seen = {}

    class Undo(task.Task):
        def execute(self, x):
            return x

        def revert(self, y, result, flow_failures):
            seen['args'] = (y, result)

    class Renamed(task.Task):
        def execute(self, x):
            return x

        def revert(self, a, result, flow_failures):
            seen['renamed'] = (a, result)

    flow = lf.Flow('f').add(Undo(name='undo'),
                            Renamed(name='renamed', revert_rebind={'a': 'z'}),
                            Step('boom', Log(), fail=ValueError()))
    with pytest.raises(ValueError):
        kind.run(flow, store={'x': 'ex', 'y': 'why', 'z': 'zed'})
    assert seen == {'args': ('why', 'ex'), 'renamed': ('zed', 'ex')}


def test_revert_return_value_is_stored_as_revert_result(kind):
    class Undo(task.Task):
        def execute(self):
            return 'done'

        def revert(self, result, flow_failures):
            return 'undone ' + result

    flow = lf.Flow('f').add(Undo(name='undo'), Step('boom', Log(), fail=ValueError()))
    engine = kind.load(flow)
    with pytest.raises(ValueError):
        engine.run()
    assert engine.storage.get_revert_result('undo') == 'undone done'
    assert engine.storage.get_revert_result('boom') is None


def test_storage_after_revert_keeps_the_failure_not_the_results(kind):
    error = KeyError('k')
    flow = lf.Flow('f').add(Step('ok', Log(), provides='v'), Step('bad', Log(), fail=error))
    engine = kind.load(flow)
    with pytest.raises(KeyError):
        engine.run()
    stored = engine.storage.get('bad')
    assert isinstance(stored, failure.Failure) and stored.exception is error
    assert list(engine.storage.get_execute_failures()) == ['bad']
    assert engine.storage.has_failures()
    with pytest.raises(exc.NotFound):
        engine.storage.get('ok')  # reverted: its execute result is gone
    assert engine.storage.fetch_all() == {}


def test_pre_and_post_hooks_wrap_execute_even_when_it_fails(kind):
    log = Log()

    class Hooked(task.Task):
        def pre_execute(self):
            log.record('pre_execute', self.name)

        def execute(self):
            log.record('execute', self.name)
            raise ValueError('x')

        def post_execute(self):
            log.record('post_execute', self.name)

        def pre_revert(self):
            log.record('pre_revert', self.name)

        def revert(self, result, flow_failures):
            log.record('revert', self.name)

        def post_revert(self):
            log.record('post_revert', self.name)

    with pytest.raises(ValueError):
        kind.run(Hooked(name='h'))
    assert [action for action, _name in log.entries] == [
        'pre_execute', 'execute', 'post_execute', 'pre_revert', 'revert', 'post_revert']


def test_diamond_reverts_each_atom_after_its_dependents(kind):
    log = Log()
    flow = gf.Flow('diamond').add(
        Step('top', log, provides='t'),
        Step('left', log, requires=['t'], provides='l'),
        Step('right', log, requires=['t'], provides='r'),
        Step('bottom', log, requires=['l', 'r'], fail=ValueError('bottom')))
    with pytest.raises(ValueError):
        kind.run(flow)
    assert sorted(log.names('revert')) == ['bottom', 'left', 'right', 'top']
    assert log.names('revert')[0] == 'bottom'
    assert log.names('revert')[-1] == 'top'
    assert_reverted_after_dependents(log, {'left': ['top'], 'right': ['top'],
                                           'bottom': ['left', 'right']})


def test_failure_in_a_nested_flow_reverts_the_outer_flow_too(kind):
    log = Log()
    flow = lf.Flow('root').add(
        Step('a', log),
        uf.Flow('u').add(Step('b', log),
                         lf.Flow('inner').add(Step('c', log), Step('d', log, fail=OSError()))),
        Step('e', log))
    engine = kind.load(flow)
    with pytest.raises(OSError):
        engine.run()
    assert 'e' not in log.names('execute')
    assert sorted(log.names('revert')) == sorted(log.names('execute'))
    assert log.names('revert')[-1] == 'a'
    assert_reverted_after_dependents(log, {'b': ['a'], 'c': ['a'], 'd': ['c']})
    assert engine.storage.get_atom_state('e') == states.PENDING


def test_only_atoms_that_ran_are_reverted_in_an_unordered_flow(kind):
    log = Log()
    flow = lf.Flow('root').add(
        Step('setup', log),
        uf.Flow('u').add(*(Step('u%d' % i, log) for i in range(4)),
                         Step('boom', log, fail=ValueError())))
    engine = kind.load(flow)
    with pytest.raises(ValueError):
        engine.run()
    ran = set(log.names('execute'))
    assert sorted(log.names('revert')) == sorted(ran)
    assert log.names('revert')[-1] == 'setup'
    for name in ('u0', 'u1', 'u2', 'u3'):
        expected = states.REVERTED if name in ran else states.PENDING
        assert engine.storage.get_atom_state(name) == expected


def test_revert_failure_stops_reverting_and_ends_in_failure(kind):
    log = Log()
    revert_error = KeyError('revert broke')
    flow = lf.Flow('f').add(Step('a', log), Step('b', log, revert_fail=revert_error),
                            Step('c', log, fail=ValueError('boom')), Step('d', log))
    engine = kind.load(flow)
    flow_seen = flow_events(engine)
    with pytest.raises(KeyError) as info:
        engine.run()
    assert info.value is revert_error
    assert log.names('revert') == ['c', 'b']  # 'a' is never reverted
    assert flow_seen == [(states.RUNNING, states.PENDING), (states.FAILURE, states.RUNNING)]
    assert engine.storage.get_flow_state() == states.FAILURE
    assert states_of(engine, 'abcd') == {'a': states.SUCCESS, 'b': states.REVERT_FAILURE,
                                         'c': states.REVERTED, 'd': states.PENDING}
    assert list(engine.storage.get_revert_failures()) == ['b']
    assert engine.storage.get_revert_result('b').exception is revert_error
    assert list(engine.storage.get_execute_failures()) == ['c']


def test_failed_atom_whose_own_revert_fails(kind):
    log = Log()
    flow = lf.Flow('f').add(Step('a', log),
                            Step('c', log, fail=ValueError('exec'),
                                 revert_fail=LookupError('rev')))
    engine = kind.load(flow)
    events = atom_events(engine)
    with pytest.raises(LookupError, match='rev'):
        engine.run()
    assert events_of(events, 'c') == [
        (states.RUNNING, states.PENDING), (states.FAILURE, states.RUNNING),
        (states.REVERTING, states.FAILURE), (states.REVERT_FAILURE, states.REVERTING)]
    assert log.names('revert') == ['c']
    assert engine.storage.get_flow_state() == states.FAILURE


def test_revert_without_result_parameters_is_a_revert_failure(kind):
    class Narrow(task.Task):
        def execute(self):
            raise ValueError('exec')

        def revert(self):  # the engine always passes result= and flow_failures=
            pass

    engine = kind.load(Narrow(name='narrow'))
    with pytest.raises(TypeError):
        engine.run()
    assert engine.storage.get_atom_state('narrow') == states.REVERT_FAILURE
    assert engine.storage.get_flow_state() == states.FAILURE


def test_never_resolve_leaves_the_failure_unreverted(kind):
    log = Log()
    error = ValueError('boom')
    flow = lf.Flow('f').add(Step('a', log), Step('c', log, fail=error), Step('d', log))
    engine = kind.load(flow, never_resolve=True)
    flow_seen = flow_events(engine)
    with pytest.raises(ValueError) as info:
        engine.run()
    assert info.value is error
    assert log.entries == [('execute', 'a'), ('execute', 'c')]
    assert flow_seen == [(states.RUNNING, states.PENDING), (states.FAILURE, states.RUNNING)]
    assert states_of(engine, 'acd') == {'a': states.SUCCESS, 'c': states.FAILURE,
                                        'd': states.PENDING}
    assert intentions_of(engine, 'acd') == dict.fromkeys('acd', states.EXECUTE)


def test_rerunning_after_a_never_resolved_failure_ends_reverted_then_starts_over(kind):
    # Reference behaviour: the second run finds nothing to do but the recorded
    # failure, so it ends REVERTED (re-raising it); the third run starts over.
    log = Log()
    error = ValueError('boom')
    flow = lf.Flow('f').add(Step('a', log), Step('c', log, fail=error))
    engine = kind.load(flow, never_resolve=True)
    with pytest.raises(ValueError):
        engine.run()
    flow_seen = flow_events(engine)
    with pytest.raises(ValueError) as info:
        engine.run()
    assert info.value is error
    assert flow_seen == [(states.RUNNING, states.FAILURE), (states.REVERTED, states.RUNNING)]
    assert log.names('execute') == ['a', 'c']
    with pytest.raises(ValueError):
        engine.run()
    assert log.names('execute') == ['a', 'c', 'a', 'c']


def test_a_requirement_missing_at_run_time_ends_in_failure(kind):
    class Short(task.Task):
        default_provides = ('x', 'y')

        def execute(self):
            return ('only-x',)

    log = Log()
    flow = lf.Flow('f').add(Short(name='short'), Step('needs-y', log, requires=['y']))
    engine = kind.load(flow)
    flow_seen = flow_events(engine)
    with pytest.raises(exc.NotFound):
        engine.run()
    assert log.names('execute') == []
    assert flow_seen[-1] == (states.FAILURE, states.RUNNING)
    assert engine.storage.get_atom_state('short') == states.SUCCESS


# -- parallel: several failures at once -----------------------------------------


def test_concurrent_failures_raise_wrapped_failure(parallel_kind):
    log = Log()
    barrier = make_barrier(2)

    class Breaks(Step):
        def execute(self, **kwargs):
            barrier.wait()  # both have started before either fails
            return super().execute(**kwargs)

    flow = lf.Flow('f').add(
        Step('setup', log),
        uf.Flow('u').add(Breaks('left', log, fail=ValueError('left broke')),
                         Breaks('right', log, fail=ValueError('right broke'))))
    engine = parallel_kind.load(flow)
    with pytest.raises(exc.WrappedFailure) as info:
        engine.run()
    wrapped = info.value
    assert len(wrapped) == 2
    assert sorted(str(f) for f in wrapped) == ['Failure: ValueError: left broke',
                                              'Failure: ValueError: right broke']
    assert wrapped.check(ValueError) is ValueError
    assert wrapped.check(KeyError) is None
    assert sorted(log.names('revert')) == ['left', 'right', 'setup']
    assert log.names('revert')[-1] == 'setup'
    # The reference passes only the failures its storage cache saw (one or
    # both, by timing); either way they are failures of this flow.
    flow_failures = log.last('revert', 'setup')['flow_failures']
    assert flow_failures and set(flow_failures) <= {'left', 'right'}
    assert engine.storage.get_flow_state() == states.REVERTED


def test_atoms_running_when_another_fails_finish_and_are_reverted(parallel_kind):
    log = Log()
    started = make_barrier(2)
    failed = threading.Event()

    class Slow(Step):
        def execute(self, **kwargs):
            started.wait()
            failed.wait(5)  # keep running until the sibling has failed
            return super().execute(**kwargs)

    class Fails(Step):
        def execute(self, **kwargs):
            started.wait()
            try:
                return super().execute(**kwargs)
            finally:
                failed.set()

    flow = uf.Flow('u').add(Slow('slow', log), Fails('fails', log, fail=ValueError('x')))
    engine = parallel_kind.load(flow)
    with pytest.raises(ValueError):
        engine.run()
    assert sorted(log.names('execute')) == ['fails', 'slow']
    assert sorted(log.names('revert')) == ['fails', 'slow']
    assert log.last('revert', 'slow')['result'] == 'slow'


def test_never_resolve_lets_running_atoms_finish(parallel_kind):
    log = Log()
    started = make_barrier(2)

    class Together(Step):
        def execute(self, **kwargs):
            started.wait()
            return super().execute(**kwargs)

    flow = lf.Flow('f').add(
        uf.Flow('u').add(Together('ok', log), Together('bad', log, fail=ValueError('x'))),
        Step('after', log))
    engine = parallel_kind.load(flow, never_resolve=True)
    with pytest.raises(ValueError):
        engine.run()
    assert states_of(engine, ['ok', 'bad', 'after']) == {
        'ok': states.SUCCESS, 'bad': states.FAILURE, 'after': states.PENDING}
    assert engine.storage.get('ok') == 'ok'
    assert log.names('revert') == []


def test_a_rerun_reraises_the_failures_of_earlier_runs_too(kind):
    # Reference behaviour: the engine's storage keeps every atom's latest
    # execute failure across runs; a reverted run re-raises all of them.
    log = Log()

    class FailsFirstTime(Step):
        def execute(self, **kwargs):
            super().execute(**kwargs)
            if self._log.count('execute', self.name) == 1:
                raise LookupError('%s first run' % self.name)

    engine = kind.load(lf.Flow('f').add(FailsFirstTime('x', log), FailsFirstTime('y', log)))
    with pytest.raises(LookupError, match='x first run'):
        engine.run()
    with pytest.raises(exc.WrappedFailure) as info:
        engine.run()
    assert sorted(str(f) for f in info.value) == ['Failure: LookupError: x first run',
                                                 'Failure: LookupError: y first run']
    engine.run()
    assert engine.storage.get_flow_state() == states.SUCCESS
    assert log.names('execute') == ['x', 'x', 'y', 'x', 'y']


class _ReturnsFailure(task.Task):
    """Returns (rather than raises) a Failure from ``execute`` or ``revert``."""

    def __init__(self, name: str, in_execute: bool, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.in_execute = in_execute

    def execute(self):
        if self.in_execute:
            return failure.Failure.from_exception(KeyError(self.name))
        return 1

    def revert(self, **kwargs):
        if not self.in_execute:
            return failure.Failure.from_exception(KeyError('revert ' + self.name))


def test_a_returned_failure_fails_the_task_like_a_raised_one(kind):
    log = Log()
    flow = lf.Flow('f').add(Step('a', log), _ReturnsFailure('rf', True, provides='z'),
                            Step('c', log))
    engine = kind.load(flow)
    with pytest.raises(KeyError):
        engine.run()
    assert states_of(engine, ['a', 'rf', 'c']) == {
        'a': states.REVERTED, 'rf': states.REVERTED, 'c': states.PENDING}
    assert list(engine.storage.get_failures()) == ['rf']
    assert log.entries == [('execute', 'a'), ('revert', 'a')]


def test_a_failure_returned_by_revert_is_a_revert_failure(kind):
    flow = lf.Flow('f').add(_ReturnsFailure('a', False), Step('b', Log(), fail=ValueError('b')))
    engine = kind.load(flow)
    with pytest.raises(KeyError):
        engine.run()
    assert engine.storage.get_flow_state() == states.FAILURE
    assert states_of(engine, 'ab') == {'a': states.REVERT_FAILURE, 'b': states.REVERTED}


@pytest.mark.parametrize('error', [SystemExit(3), KeyboardInterrupt()])
def test_exits_and_interrupts_in_a_task_pass_through_like_a_crash(kind, error):
    """Not a task failure: nothing reverts and the flow stays resumable."""
    log = Log()
    flow = lf.Flow('f').add(Step('a', log), Step('b', log, fail=error), Step('c', log))
    engine = kind.load(flow)
    with pytest.raises(type(error)):
        engine.run()
    assert log.names('revert') == []
    assert engine.storage.get_flow_state() == states.RUNNING
    assert states_of(engine, 'abc') == {'a': states.SUCCESS, 'b': states.RUNNING,
                                        'c': states.PENDING}
