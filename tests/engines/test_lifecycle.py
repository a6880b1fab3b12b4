"""The engine lifecycle: run_iter, re-running, reset, suspend, resume, lock, statistics."""

from __future__ import annotations

import contextlib
import threading

import pytest

from taskflow import exceptions as exc
from taskflow import retry
from taskflow import states
from taskflow import task
from taskflow.engines.action_engine import engine as action_engine
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.utils import persistence_utils
from tests.engines.helpers import (
    Log, Step, atom_events, flow_events, intentions_of, states_of)

RES, SCH, WAI, ANA = states.RESUMING, states.SCHEDULING, states.WAITING, states.ANALYZING
R, P, S = states.RUNNING, states.PENDING, states.SUCCESS
ENGINE_STATES = {RES, SCH, WAI, ANA}
FINAL = {states.SUCCESS, states.REVERTED, states.FAILURE, states.SUSPENDED}
# What may follow each engine state in run_iter().
NEXT = {RES: {SCH}, SCH: {WAI}, WAI: {ANA}, ANA: {SCH, WAI} | FINAL}


def collect(engine, **kwargs) -> tuple[list[str], BaseException | None]:
    seen = []
    try:
        for state in engine.run_iter(**kwargs):
            seen.append(state)
    except Exception as error:
        return seen, error
    return seen, None


def assert_valid_state_sequence(seen: list[str], final: str | None) -> None:
    assert seen[0] == RES
    for current, following in zip(seen, seen[1:]):
        assert following in NEXT[current], '%s -> %s in %s' % (current, following, seen)
    if final is not None:
        assert seen[-1] == final
        assert all(state in ENGINE_STATES for state in seen[:-1])


# -- run_iter -----------------------------------------------------------------


def test_run_iter_states_of_a_successful_linear_flow(kind):
    engine = kind.load(lf.Flow('f').add(Step('a', Log()), Step('b', Log())))
    seen, error = collect(engine)
    assert error is None
    if kind.parallel:
        assert_valid_state_sequence(seen, S)
    else:
        assert seen == [RES, SCH, WAI, ANA, SCH, WAI, ANA, S]


def test_run_iter_states_of_an_empty_flow(kind):
    seen, error = collect(kind.load(lf.Flow('empty')))
    assert (seen, error) == ([RES, SCH, WAI, ANA, S], None)


def test_run_iter_states_of_an_unordered_flow(kind):
    engine = kind.load(uf.Flow('u').add(Step('a', Log()), Step('b', Log())))
    seen, error = collect(engine)
    assert error is None
    if kind.parallel:
        assert_valid_state_sequence(seen, S)
        assert seen.count(SCH) == 1
    else:
        # The serial engine runs every ready atom in one SCHEDULING pass.
        assert seen == [RES, SCH, WAI, ANA, S]


def test_run_iter_of_a_reverted_flow_yields_reverted_then_raises(kind):
    engine = kind.load(lf.Flow('f').add(Step('a', Log()), Step('b', Log(), fail=ValueError())))
    seen, error = collect(engine)
    assert isinstance(error, ValueError)
    if kind.parallel:
        assert_valid_state_sequence(seen, states.REVERTED)
    else:
        assert seen == [RES, SCH, WAI, ANA, SCH, WAI, ANA, SCH, WAI, ANA, SCH, WAI, ANA,
                        states.REVERTED]


def test_run_iter_raises_after_analyzing_when_a_revert_fails(kind):
    # Reference behaviour: FAILURE is notified but never yielded.
    flow = lf.Flow('f').add(Step('a', Log(), revert_fail=KeyError('undo')),
                            Step('b', Log(), fail=ValueError()))
    engine = kind.load(flow)
    flow_seen = flow_events(engine)
    seen, error = collect(engine)
    assert isinstance(error, KeyError)
    assert flow_seen[-1] == (states.FAILURE, R)
    assert seen[-1] == ANA
    assert_valid_state_sequence(seen, None)
    if not kind.parallel:
        assert seen == [RES, SCH, WAI, ANA, SCH, WAI, ANA, SCH, WAI, ANA, SCH, WAI, ANA]


def test_run_iter_raises_after_analyzing_with_never_resolve(kind):
    flow = lf.Flow('f').add(Step('a', Log()), Step('b', Log(), fail=ValueError()))
    seen, error = collect(kind.load(flow, never_resolve=True))
    assert isinstance(error, ValueError)
    assert seen == [RES, SCH, WAI, ANA, SCH, WAI, ANA]


def test_sending_true_into_run_iter_suspends(kind):
    log = Log()
    engine = kind.load(lf.Flow('f').add(Step('p', log), Step('q', log), Step('r', log)))
    it = engine.run_iter()
    seen = [next(it)]
    while True:
        try:
            state = it.send(True) if seen[-1] == ANA else next(it)
        except StopIteration:
            break
        seen.append(state)
    assert seen == [RES, SCH, WAI, ANA, states.SUSPENDED]
    assert engine.storage.get_flow_state() == states.SUSPENDED
    assert log.names('execute') == ['p']
    engine.run()
    assert log.names('execute') == ['p', 'q', 'r']
    assert engine.storage.get_flow_state() == S


def test_closing_run_iter_early_suspends_cleanly(kind):
    log = Log()
    engine = kind.load(lf.Flow('f').add(Step('a', log), Step('b', log), Step('c', log)))
    flow_seen = flow_events(engine)
    it = engine.run_iter()
    for state in it:
        if state == ANA:
            break
    it.close()
    assert flow_seen == [(R, P), (states.SUSPENDING, R), (states.SUSPENDED, states.SUSPENDING)]
    assert states_of(engine, 'abc') == {'a': S, 'b': P, 'c': P}
    engine.run()
    assert log.names('execute') == ['a', 'b', 'c']


# -- re-running and reset ---------------------------------------------------------


def test_rerun_after_success_executes_nothing(kind):
    log = Log()
    engine = kind.load(lf.Flow('f').add(Step('a', log), Step('b', log)))
    engine.run()
    flow_seen = flow_events(engine)
    atoms_seen = atom_events(engine)
    engine.run()
    assert log.names('execute') == ['a', 'b']
    assert flow_seen == [(R, S), (S, R)]
    assert atoms_seen == []


def test_rerun_after_reverted_starts_over(kind):
    log = Log()
    engine = kind.load(lf.Flow('f').add(Step('a', log), Step('b', log, fail=ValueError('b'))))
    with pytest.raises(ValueError):
        engine.run()
    flow_seen = flow_events(engine)
    atoms_seen = atom_events(engine)
    with pytest.raises(ValueError, match='b'):
        engine.run()
    assert log.names('execute') == ['a', 'b', 'a', 'b']
    assert flow_seen == [(P, states.REVERTED), (R, P), (states.REVERTED, R)]
    assert atoms_seen[:2] == [('a', P, states.REVERTED), ('b', P, states.REVERTED)]
    assert atoms_seen[2:4] == [('a', R, P), ('a', S, R)]


def test_reset_makes_everything_pending_again(kind):
    log = Log()
    engine = kind.load(lf.Flow('f').add(Step('a', log, provides='x'), Step('b', log)))
    engine.run()
    flow_seen = flow_events(engine)
    atoms_seen = atom_events(engine)
    engine.reset()
    assert flow_seen == [(P, S)]
    assert atoms_seen == [('a', P, S), ('b', P, S)]
    assert engine.storage.get_flow_state() == P
    assert states_of(engine, 'ab') == {'a': P, 'b': P}
    assert intentions_of(engine, 'ab') == {'a': states.EXECUTE, 'b': states.EXECUTE}
    assert engine.storage.fetch_all() == {}
    engine.run()
    assert log.names('execute') == ['a', 'b', 'a', 'b']


def test_reset_keeps_retry_history_so_attempts_carry_on(kind):
    attempts = []

    class NeedsTwo(task.Task):
        def execute(self, attempt):
            attempts.append(attempt)
            if attempt < 2:
                raise ValueError('too early')

    flow = lf.Flow('f', retry=retry.Times(5, name='r', provides='attempt'))
    engine = kind.load(flow.add(NeedsTwo('t')))
    engine.run()
    engine.reset()
    assert [value for value, _ in engine.storage.get_retry_history('r')] == [1, 2]
    engine.run()
    assert attempts == [1, 2, 3]
    engine.storage.reset('r')  # storage.reset() does forget it
    assert len(engine.storage.get_retry_history('r')) == 0


def test_reset_after_revert(kind):
    engine = kind.load(lf.Flow('f').add(Step('a', Log()), Step('b', Log(), fail=ValueError())))
    with pytest.raises(ValueError):
        engine.run()
    atoms_seen = atom_events(engine)
    engine.reset()
    assert atoms_seen == [('a', P, states.REVERTED), ('b', P, states.REVERTED)]
    assert engine.storage.get_flow_state() == P
    assert states_of(engine, 'ab') == {'a': P, 'b': P}


def test_reset_of_a_fresh_engine_notifies_nothing(kind):
    engine = kind.load(lf.Flow('f').add(Step('a', Log())))
    engine.compile()
    engine.prepare()
    flow_seen = flow_events(engine)
    engine.reset()
    assert flow_seen == []
    assert engine.storage.get_flow_state() == P


@pytest.mark.parametrize('method, message', [
    ('prepare', 'Can not prepare an engine which has not been compiled'),
    ('validate', 'Can not validate an engine which has not been compiled'),
    ('reset', 'Can not reset an engine which has not been compiled'),
    ('suspend', 'Can not suspend an engine which has not been compiled'),
])
def test_methods_that_need_a_compiled_engine(kind, method, message):
    engine = kind.load(Step('a', Log()))
    with pytest.raises(exc.InvalidState) as info:
        getattr(engine, method)()
    assert str(info.value) == message


@pytest.mark.parametrize('method', ['validate', 'reset'])
def test_methods_that_need_prepared_storage(kind, method):
    engine = kind.load(Step('a', Log()))
    engine.compile()
    with pytest.raises(exc.InvalidState) as info:
        getattr(engine, method)()
    assert str(info.value) == ('Can not %s an engine which has not had its storage'
                               ' populated' % method)


def test_compile_is_lazy_and_idempotent(kind):
    engine = kind.load(Step('a', Log()))
    assert engine.compilation is None
    engine.compile()
    compilation = engine.compilation
    assert compilation is not None
    engine.compile()
    assert engine.compilation is compilation


# -- suspend ----------------------------------------------------------------------


def test_suspend_from_a_task_stops_after_it_and_resumes_later(kind):
    log = Log()

    class Suspender(Step):
        def execute(self, **kwargs):
            engine.suspend()
            return super().execute(**kwargs)

    flow = lf.Flow('f').add(Step('a', log), Suspender('b', log), Step('c', log), Step('d', log))
    engine = kind.load(flow)
    flow_seen = flow_events(engine)
    engine.run()
    assert engine.storage.get_flow_state() == states.SUSPENDED
    assert flow_seen == [(R, P), (states.SUSPENDING, R), (states.SUSPENDED, states.SUSPENDING)]
    assert states_of(engine, 'abcd') == {'a': S, 'b': S, 'c': P, 'd': P}
    del flow_seen[:]
    engine.run()
    assert log.names('execute') == ['a', 'b', 'c', 'd']
    assert flow_seen == [(R, states.SUSPENDED), (S, R)]


def test_suspend_from_another_thread_between_steps(kind):
    log = Log()
    engine = kind.load(lf.Flow('f').add(Step('a', log), Step('b', log), Step('c', log)))
    seen = []
    for state in engine.run_iter():
        seen.append(state)
        if state == ANA and len(seen) == 4:
            other = threading.Thread(target=engine.suspend)
            other.start()
            other.join(10)
    assert seen[-1] == states.SUSPENDED
    assert states_of(engine, 'abc') == {'a': S, 'b': P, 'c': P}
    engine.run()
    assert log.names('execute') == ['a', 'b', 'c']


def test_suspend_from_another_thread_while_a_task_runs(parallel_kind):
    # (The reference serial engine blocks suspend() until the running task ends.)
    log = Log()
    started, proceed = threading.Event(), threading.Event()

    class Blocker(Step):
        def execute(self, **kwargs):
            started.set()
            assert proceed.wait(10)
            return super().execute(**kwargs)

    engine = parallel_kind.load(lf.Flow('f').add(Blocker('a', log), Step('b', log),
                                                 Step('c', log)))
    flow_seen = flow_events(engine)
    runner = threading.Thread(target=engine.run)
    runner.start()
    try:
        assert started.wait(10)
        engine.suspend()
    finally:
        proceed.set()
        runner.join(10)
    assert not runner.is_alive()
    assert flow_seen == [(R, P), (states.SUSPENDING, R), (states.SUSPENDED, states.SUSPENDING)]
    assert states_of(engine, 'abc') == {'a': S, 'b': P, 'c': P}
    engine.run()
    assert log.names('execute') == ['a', 'b', 'c']


def test_suspend_with_nothing_left_ends_in_the_natural_state(kind):
    class LastOne(Step):
        def execute(self, **kwargs):
            engine.suspend()
            return super().execute(**kwargs)

    engine = kind.load(lf.Flow('f').add(Step('a', Log()), LastOne('b', Log())))
    flow_seen = flow_events(engine)
    engine.run()
    assert engine.storage.get_flow_state() == S
    assert flow_seen == [(R, P), (states.SUSPENDING, R), (S, states.SUSPENDING)]


def test_suspend_while_reverting_resumes_the_revert(kind):
    log = Log()

    class SuspendingUndo(Step):
        def revert(self, *args, **kwargs):
            engine.suspend()
            return super().revert(*args, **kwargs)

    flow = lf.Flow('f').add(Step('a', log), SuspendingUndo('b', log),
                            Step('c', log, fail=ValueError('c')))
    engine = kind.load(flow)
    engine.run()  # suspended: nothing is raised
    assert engine.storage.get_flow_state() == states.SUSPENDED
    assert states_of(engine, 'abc') == {'a': S, 'b': states.REVERTED, 'c': states.REVERTED}
    with pytest.raises(ValueError):
        engine.run()
    assert log.names('revert') == ['c', 'b', 'a']
    assert engine.storage.get_flow_state() == states.REVERTED


def test_suspend_when_not_running_is_a_no_op(kind):
    engine = kind.load(Step('a', Log()))
    engine.compile()
    engine.suspend()
    engine.run()
    assert engine.storage.get_flow_state() == S


# -- resuming stored state -----------------------------------------------------------


def _persisted(flow):
    backend = backends.fetch({'connection': 'memory'})
    book = models.LogBook('book')
    detail = persistence_utils.create_flow_detail(flow, book=book, backend=backend)
    return backend, detail


def _reload(backend, detail):
    with contextlib.closing(backend.get_connection()) as conn:
        return conn.get_flow_details(detail.uuid)


def test_an_atom_left_running_by_a_crash_runs_again(kind):
    log = Log()
    flow = lf.Flow('f').add(Step('a', log), Step('b', log), Step('c', log))
    backend, detail = _persisted(flow)
    engine = kind.load(flow, flow_detail=detail, backend=backend)
    engine.run()
    # Make the stored state look like a crash while 'b' was running.
    engine.storage.set_atom_state('b', states.RUNNING)
    engine.storage.set_atom_state('c', states.PENDING)
    engine.storage.set_flow_state(states.RUNNING)

    log = Log()
    again = lf.Flow('f').add(Step('a', log), Step('b', log), Step('c', log))
    resumed = kind.load(again, flow_detail=_reload(backend, detail), backend=backend)
    flow_seen = flow_events(resumed)
    atoms_seen = atom_events(resumed)
    resumed.run()
    assert log.names('execute') == ['b', 'c']
    assert flow_seen == [(states.RESUMING, R), (states.SUSPENDED, states.RESUMING),
                         (R, states.SUSPENDED), (S, R)]
    # Reference behaviour: the interrupted atom is announced RUNNING again.
    assert atoms_seen == [('b', R, R), ('b', S, R), ('c', R, P), ('c', S, R)]


def test_an_atom_left_reverting_by_a_crash_reverts_again(kind):
    flow = lf.Flow('f').add(Step('a', Log()), Step('b', Log()), Step('c', Log(), fail=ValueError()))
    backend, detail = _persisted(flow)
    engine = kind.load(flow, flow_detail=detail, backend=backend)
    with pytest.raises(ValueError):
        engine.run()
    engine.storage.set_atom_state('a', states.SUCCESS)
    engine.storage.set_atom_state('b', states.REVERTING)
    engine.storage.set_flow_state(states.RUNNING)

    log = Log()
    again = lf.Flow('f').add(Step('a', log), Step('b', log), Step('c', log, fail=ValueError()))
    resumed = kind.load(again, flow_detail=_reload(backend, detail), backend=backend)
    atoms_seen = atom_events(resumed)
    # The reloaded failure has no exc_info any more: it comes back wrapped.
    with pytest.raises(exc.WrappedFailure) as info:
        resumed.run()
    assert info.value.check(ValueError) is ValueError
    assert log.entries == [('revert', 'b'), ('revert', 'a')]
    assert atoms_seen == [('b', states.REVERTING, states.REVERTING),
                          ('b', states.REVERTED, states.REVERTING),
                          ('a', states.REVERTING, S), ('a', states.REVERTED, states.REVERTING)]
    assert resumed.storage.get_flow_state() == states.REVERTED


def test_a_new_engine_over_a_finished_flow_detail_runs_nothing(kind):
    flow = lf.Flow('f').add(Step('a', Log(), provides='x'))
    backend, detail = _persisted(flow)
    kind.load(flow, flow_detail=detail, backend=backend).run()
    log = Log()
    again = kind.load(lf.Flow('f').add(Step('a', log, provides='x')),
                      flow_detail=_reload(backend, detail), backend=backend)
    again.run()
    assert log.entries == []
    assert again.storage.fetch('x') == 'a'


def test_store_values_survive_in_the_flow_detail(kind):
    flow = lf.Flow('f').add(Step('a', Log(), requires=['x']))
    backend, detail = _persisted(flow)
    engine = kind.load(flow, flow_detail=detail, backend=backend, store={'x': 1})
    engine.compile()
    engine.prepare()
    log = Log()
    again = kind.load(lf.Flow('f').add(Step('a', log, requires=['x'])),
                      flow_detail=_reload(backend, detail), backend=backend)
    again.run()
    assert log.last('execute', 'a')['arguments'] == {'x': 1}


# -- engine lock --------------------------------------------------------------------


def test_running_an_engine_twice_at_once_is_refused(kind):
    started, proceed = threading.Event(), threading.Event()

    class Blocker(task.Task):
        def execute(self):
            started.set()
            assert proceed.wait(10)

    engine = kind.load(Blocker(name='blocker'))
    runner = threading.Thread(target=engine.run)
    runner.start()
    try:
        assert started.wait(10)
        with pytest.raises(exc.ExecutionFailure) as info:
            engine.run()
        assert str(info.value) == 'Engine currently locked, please try again later'
    finally:
        proceed.set()
        runner.join(10)
    assert engine.storage.get_flow_state() == S
    engine.run()  # the lock was released


# -- statistics ---------------------------------------------------------------------


STAT_KEYS = ['active_for', 'awaiting', 'completed', 'discarded_failures', 'incomplete',
             'seconds_per_state']


def test_statistics_after_a_successful_run(kind):
    engine = kind.load(lf.Flow('f').add(Step('a', Log()), Step('b', Log())))
    assert engine.statistics == {}
    engine.run()
    stats = engine.statistics
    assert sorted(stats) == STAT_KEYS
    assert list(stats['seconds_per_state']) == ['analyzing', 'resuming', 'scheduling',
                                                  'waiting']
    assert all(isinstance(v, float) and v >= 0 for v in stats['seconds_per_state'].values())
    assert isinstance(stats['active_for'], float) and stats['active_for'] >= 0
    assert (stats['completed'], stats['discarded_failures'], stats['awaiting'],
            stats['incomplete']) == (2, 0, 0, 0)


def test_statistics_key_order(kind):
    engine = kind.load(Step('a', Log()))
    engine.run()
    assert list(engine.statistics) == ['seconds_per_state', 'discarded_failures', 'awaiting',
                                       'completed', 'incomplete', 'active_for']


def test_statistics_count_executions_reverts_and_resolved_failures(kind):
    flow = lf.Flow('f').add(Step('a', Log()), Step('b', Log()), Step('c', Log(), fail=KeyError()))
    engine = kind.load(flow)
    with pytest.raises(KeyError):
        engine.run()
    stats = engine.statistics
    assert (stats['completed'], stats['discarded_failures'], stats['awaiting'],
            stats['incomplete']) == (6, 1, 0, 0)


def test_statistics_count_every_failure_a_retry_resolved(kind):
    flow = lf.Flow('f', retry=retry.Times(3)).add(Step('boom', Log(), fail=KeyError()))
    engine = kind.load(flow)
    with pytest.raises(KeyError):
        engine.run()
    # 3 x (retry execute + boom execute + boom revert) + retry revert
    assert engine.statistics['completed'] == 10
    assert engine.statistics['discarded_failures'] == 3


def test_statistics_after_suspension(kind):
    class Suspender(Step):
        def execute(self, **kwargs):
            engine.suspend()
            return super().execute(**kwargs)

    engine = kind.load(lf.Flow('f').add(Suspender('a', Log()), Step('b', Log())))
    engine.run()
    assert engine.statistics['completed'] == 1
    engine.run()
    assert engine.statistics['completed'] == 1


@pytest.mark.parametrize('value', [False, 'false', 'no', '0'])
def test_statistics_can_be_turned_off(kind, value):
    engine = kind.load(Step('a', Log()), gather_statistics=value)
    engine.run()
    assert engine.statistics == {}


def test_rerunning_after_a_failed_revert_reraises_every_stored_failure(kind):
    log = Log()
    flow = lf.Flow('f').add(Step('a', log, revert_fail=RuntimeError('undo a')),
                            Step('b', log, fail=ValueError('b')), Step('c', log))
    engine = kind.load(flow)
    with pytest.raises(RuntimeError):
        engine.run()
    assert engine.storage.get_flow_state() == states.FAILURE
    flow_seen = flow_events(engine)
    with pytest.raises(exc.WrappedFailure) as info:
        engine.run()
    # Nothing runs again; the failures that ended the last run are raised.
    assert [str(f) for f in info.value] == ['Failure: ValueError: b',
                                            'Failure: RuntimeError: undo a']
    assert flow_seen == [(R, states.FAILURE), (states.REVERTED, R)]
    assert log.entries.count(('revert', 'a')) == 1


def test_rerunning_a_never_resolve_failure_still_reverts_nothing(kind):
    log = Log()
    flow = lf.Flow('f').add(Step('a', log), Step('b', log, fail=ValueError('b')))
    engine = kind.load(flow, never_resolve=True)
    for _ in range(2):
        with pytest.raises(ValueError):
            engine.run()
    assert log.names('revert') == []
    assert states_of(engine, 'ab') == {'a': S, 'b': states.FAILURE}
    assert engine.storage.get_flow_state() == states.REVERTED


def test_an_engine_without_a_flow_detail_fails_only_once_storage_is_used():
    engine = action_engine.SerialActionEngine(lf.Flow('f').add(Step('a', Log())), None,
                                              None, {})
    assert engine.options == {}
    with pytest.raises(exc.StorageFailure, match='Invalid storage class'):
        engine.run()


def test_a_resumed_atom_waits_for_a_pending_one_before_it(kind):
    """A flow changed between runs: ``z`` (new, first) must finish before
    ``c`` runs, although ``c``'s direct predecessor is already done."""
    backend = backends.fetch('memory://')
    book = models.LogBook('book')
    detail = models.FlowDetail('lin', uuid='fd-1')
    book.add(detail)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.save_logbook(book)
    log = Log()

    class Suspender(Step):
        def execute(self, **kwargs):
            first.suspend()
            return super().execute(**kwargs)

    first = kind.load(lf.Flow('lin').add(Step('a', log), Suspender('b', log), Step('c', log)),
                      flow_detail=detail, book=book, backend=backend)
    first.run()
    assert first.storage.get_flow_state() == states.SUSPENDED
    changed = lf.Flow('lin').add(Step('z', log, fail=ValueError('z')), Step('a', log),
                                 Step('b', log), Step('c', log))
    second = kind.load(changed, flow_detail=detail, book=book, backend=backend)
    with pytest.raises(ValueError):
        second.run()
    assert log.names('execute') == ['a', 'b', 'z']   # c never ran
    assert states_of(second, 'zabc') == {'z': states.REVERTED, 'a': states.REVERTED,
                                         'b': states.REVERTED, 'c': P}
