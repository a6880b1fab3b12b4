"""Retry controllers: Times, ForEach, ParameterizedForEach, AlwaysRevert(All), nesting."""

from __future__ import annotations

import threading

import pytest

from taskflow import exceptions as exc
from taskflow import retry
from taskflow import states
from taskflow import task
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.types import failure
from tests.engines.helpers import Log, Step, atom_events, intentions_of, states_of

R, P, S, F = states.RUNNING, states.PENDING, states.SUCCESS, states.FAILURE
RVG, RVD = states.REVERTING, states.REVERTED


class Flaky(Step):
    """Fails its first ``failures`` executions (each with a new ValueError)."""

    def __init__(self, name, log, failures, **kwargs):
        super().__init__(name, log, **kwargs)
        self.failures = failures
        self.errors = []
        self._lock = threading.Lock()

    def execute(self, **kwargs):
        self._log.record('execute', self.name, arguments=kwargs)
        with self._lock:
            if len(self.errors) < self.failures:
                self.errors.append(ValueError('%s failed #%d' % (self.name, len(self.errors) + 1)))
                raise self.errors[-1]
        return self._result


def logged(retry_cls):
    """A subclass of ``retry_cls`` that records its execute/revert in ``self.log``."""

    class Logged(retry_cls):
        def __init__(self, *args, log, **kwargs):
            super().__init__(*args, **kwargs)
            self.log = log

        def execute(self, history, *args, **kwargs):
            self.log.record('execute', self.name)
            return super().execute(history, *args, **kwargs)

        def revert(self, history, *args, **kwargs):
            self.log.record('revert', self.name)
            return super().revert(history, *args, **kwargs)

    return Logged


LTimes = logged(retry.Times)


# -- Times ------------------------------------------------------------------------


def test_times_retries_until_the_subflow_succeeds(kind):
    log = Log()
    flaky = Flaky('flaky', log, failures=2, requires=['attempt'])
    flow = lf.Flow('outer').add(
        Step('prep', log),
        lf.Flow('inner', retry=retry.Times(5, provides='attempt')).add(Step('x', log), flaky),
        Step('after', log))
    engine = kind.load(flow)
    engine.run()
    assert log.entries == [
        ('execute', 'prep'),
        ('execute', 'x'), ('execute', 'flaky'), ('revert', 'flaky'), ('revert', 'x'),
        ('execute', 'x'), ('execute', 'flaky'), ('revert', 'flaky'), ('revert', 'x'),
        ('execute', 'x'), ('execute', 'flaky'),
        ('execute', 'after')]
    attempts = [d['arguments']['attempt'] for a, n, d in log.details
                if (a, n) == ('execute', 'flaky')]
    assert attempts == [1, 2, 3]
    assert engine.storage.fetch('attempt') == 3
    assert engine.storage.get_flow_state() == S


def test_retry_event_sequence(kind):
    flow = lf.Flow('outer').add(
        lf.Flow('inner', retry=retry.Times(3)).add(Flaky('flaky', Log(), failures=1)))
    engine = kind.load(flow)
    seen = atom_events(engine)
    engine.run()
    assert seen == [
        ('inner_retry', R, P), ('inner_retry', S, R),
        ('flaky', R, P), ('flaky', F, R), ('flaky', RVG, F), ('flaky', RVD, RVG),
        ('inner_retry', states.RETRYING, S), ('flaky', P, RVD),
        ('inner_retry', R, states.RETRYING), ('inner_retry', S, R),
        ('flaky', R, P), ('flaky', S, R)]


def test_retry_details_use_retry_keys(kind):
    flow = lf.Flow('f', retry=retry.Times(2, name='r', provides='n')).add(Step('a', Log()))
    engine = kind.load(flow)
    seen = []
    engine.atom_notifier.register('*', lambda state, details: seen.append((state, details)))
    engine.run()
    retry_details = [(state, d) for state, d in seen if 'retry_name' in d]
    assert [state for state, _d in retry_details] == [R, S]
    assert list(retry_details[0][1]) == ['retry_name', 'retry_uuid', 'old_state']
    assert list(retry_details[1][1]) == ['retry_name', 'retry_uuid', 'old_state', 'result']
    assert retry_details[1][1]['result'] == 1
    assert retry_details[1][1]['retry_uuid'] == engine.storage.get_atom_uuid('r')


def test_history_records_each_attempt_and_its_failures(kind):
    flaky = Flaky('flaky', Log(), failures=2)
    flow = lf.Flow('f', retry=retry.Times(4, name='r')).add(flaky)
    engine = kind.load(flow)
    engine.run()
    history = engine.storage.get_retry_history('r')
    assert len(history) == 3
    assert list(history.provided_iter()) == [1, 2, 3]
    assert [sorted(fails) for _value, fails in history] == [['flaky'], ['flaky'], []]
    assert history[0][1]['flaky'].exception is flaky.errors[0]
    assert history[1][1]['flaky'].exception is flaky.errors[1]
    assert [(name, str(f)) for name, f in history.outcomes_iter()] == [
        ('flaky', 'Failure: ValueError: flaky failed #1'),
        ('flaky', 'Failure: ValueError: flaky failed #2')]
    assert history.caused_by(ValueError)
    assert not history.caused_by(KeyError)
    assert history.failure is None


def test_exhausted_times_reverts_only_its_subflow(kind):
    log = Log()
    flaky = Flaky('flaky', log, failures=99)
    r = LTimes(2, name='r', log=log)
    flow = lf.Flow('outer').add(Step('prep', log),
                                lf.Flow('inner', retry=r).add(Step('x', log), flaky),
                                Step('after', log))
    engine = kind.load(flow)
    with pytest.raises(ValueError) as info:
        engine.run()
    assert info.value is flaky.errors[-1]
    assert len(flaky.errors) == 2
    assert log.entries[-3:] == [('revert', 'flaky'), ('revert', 'x'), ('revert', 'r')]
    assert 'prep' not in log.names('revert')
    assert engine.storage.get_flow_state() == RVD
    assert states_of(engine, ['prep', 'r', 'x', 'flaky', 'after']) == {
        'prep': S, 'r': RVD, 'x': RVD, 'flaky': RVD, 'after': P}
    assert intentions_of(engine, ['prep', 'r', 'after']) == {
        'prep': states.EXECUTE, 'r': states.REVERT, 'after': states.REVERT}
    assert len(engine.storage.get_retry_history('r')) == 0  # cleared once reverted


def test_exhausted_times_with_revert_all_reverts_everything(kind):
    log = Log()
    flow = lf.Flow('outer').add(
        Step('prep', log),
        lf.Flow('inner', retry=retry.Times(2, revert_all=True)).add(
            Flaky('flaky', log, failures=99)))
    engine = kind.load(flow)
    with pytest.raises(ValueError):
        engine.run()
    assert log.names('revert')[-1] == 'prep'
    assert states_of(engine, ['prep', 'inner_retry', 'flaky']) == dict.fromkeys(
        ['prep', 'inner_retry', 'flaky'], RVD)


def test_defer_reverts_makes_an_exhausted_retry_revert_everything(kind):
    log = Log()
    flow = lf.Flow('outer').add(
        Step('prep', log),
        lf.Flow('inner', retry=retry.Times(2)).add(Flaky('flaky', log, failures=99)))
    engine = kind.load(flow, defer_reverts=True)
    with pytest.raises(ValueError):
        engine.run()
    assert log.names('execute').count('flaky') == 2
    assert log.names('revert')[-1] == 'prep'
    assert engine.storage.get_atom_state('prep') == RVD


def test_a_failure_outside_the_retried_subflow_reverts_all(kind):
    log = Log()
    r = LTimes(3, name='r', log=log)
    flow = lf.Flow('outer').add(lf.Flow('inner', retry=r).add(Step('x', log)),
                                Step('boom', log, fail=KeyError('outside')))
    engine = kind.load(flow)
    with pytest.raises(KeyError):
        engine.run()
    assert log.names('execute') == ['r', 'x', 'boom']
    assert log.names('revert') == ['boom', 'x', 'r']


def test_retry_runs_before_every_atom_of_its_graph_flow(kind):
    log = Log()
    flow = gf.Flow('g', retry=LTimes(2, name='r', log=log)).add(
        Step('a', log, provides='a'), Step('b', log, requires=['a']), Step('c', log))
    kind.run(flow)
    assert log.names('execute')[0] == 'r'
    assert sorted(log.names('execute')) == ['a', 'b', 'c', 'r']


def test_retried_subflow_republishes_its_results(kind):
    class Counter(task.Task):
        def execute(self, attempt):
            if attempt < 3:
                raise ValueError('not yet')
            return 'made on attempt %d' % attempt

    flow = lf.Flow('f', retry=retry.Times(3, provides='attempt')).add(
        Counter(name='counter', provides='made'))
    assert kind.run(flow) == {'attempt': 3, 'made': 'made on attempt 3'}


def test_retry_around_an_unordered_flow_reverts_what_ran(kind):
    log = Log()
    flow = uf.Flow('u', retry=retry.Times(2)).add(
        Step('a', log), Step('b', log), Flaky('flaky', log, failures=1))
    engine = kind.load(flow)
    engine.run()
    # First attempt: whatever ran before the failure was reverted.
    assert sorted(log.names('execute')).count('flaky') == 2
    for name in ('a', 'b'):
        assert log.count('execute', name) - log.count('revert', name) == 1
    assert states_of(engine, ['a', 'b', 'flaky']) == dict.fromkeys(['a', 'b', 'flaky'], S)


# -- nested retries ---------------------------------------------------------------


def _nested(log, inner_failures=99):
    return lf.Flow('root').add(
        Step('prep', log),
        lf.Flow('outer', retry=LTimes(2, name='r_out', log=log)).add(
            Step('a', log),
            lf.Flow('inner', retry=LTimes(2, name='r_in', log=log)).add(
                Flaky('fail', log, failures=inner_failures))))


def test_exhausted_inner_retry_lets_the_outer_retry_try_again(kind):
    log = Log()
    engine = kind.load(_nested(log))
    with pytest.raises(ValueError):
        engine.run()
    attempt = [('execute', 'r_in'), ('execute', 'fail'), ('revert', 'fail')]
    assert log.entries == (
        [('execute', 'prep'), ('execute', 'r_out'), ('execute', 'a')]
        + attempt + attempt + [('revert', 'r_in'), ('revert', 'a'),
                               ('execute', 'r_out'), ('execute', 'a')]
        + attempt + attempt + [('revert', 'r_in')])
    # The outer retry's REVERT has no parent: its subflow stays as it ended.
    assert states_of(engine, ['prep', 'r_out', 'a', 'r_in', 'fail']) == {
        'prep': S, 'r_out': S, 'a': S, 'r_in': RVD, 'fail': RVD}
    assert engine.storage.get_flow_state() == RVD


def test_inner_retry_success_on_a_later_outer_attempt(kind):
    log = Log()
    engine = kind.load(_nested(log, inner_failures=3))
    engine.run()
    assert log.count('execute', 'fail') == 4
    assert log.count('execute', 'r_out') == 2
    assert engine.storage.get_flow_state() == S
    assert len(engine.storage.get_retry_history('r_out')) == 2
    assert len(engine.storage.get_retry_history('r_in')) == 2


def test_defer_reverts_with_nested_retries_reverts_everything_at_the_end(kind):
    log = Log()
    engine = kind.load(_nested(log), defer_reverts=True)
    with pytest.raises(ValueError):
        engine.run()
    assert log.count('execute', 'fail') == 4
    assert log.entries[-4:] == [('revert', 'r_in'), ('revert', 'a'), ('revert', 'r_out'),
                                ('revert', 'prep')]
    assert states_of(engine, ['prep', 'r_out', 'a', 'r_in', 'fail']) == dict.fromkeys(
        ['prep', 'r_out', 'a', 'r_in', 'fail'], RVD)


def test_inner_revert_all_skips_the_outer_retry(kind):
    log = Log()
    flow = lf.Flow('root').add(
        Step('prep', log),
        lf.Flow('outer', retry=LTimes(5, name='r_out', log=log)).add(
            lf.Flow('inner', retry=retry.AlwaysRevertAll(name='r_in')).add(
                Flaky('fail', log, failures=1))))
    engine = kind.load(flow)
    with pytest.raises(ValueError):
        engine.run()
    assert log.count('execute', 'r_out') == 1
    assert log.names('revert')[-1] == 'prep'


# -- ForEach / ParameterizedForEach -------------------------------------------------


class NeedsValue(task.Task):
    """Fails unless ``value`` is in ``good``."""

    def __init__(self, good, tried, **kwargs):
        super().__init__(**kwargs)
        self.good = good
        self.tried = tried

    def execute(self, value):
        self.tried.append(value)
        if value not in self.good:
            raise ValueError('bad value %r' % (value,))
        return value


def test_for_each_tries_values_in_order_until_one_works(kind):
    tried = []
    flow = lf.Flow('f', retry=retry.ForEach(['a', 'b', 'c', 'd'], provides='value')).add(
        NeedsValue({'c'}, tried, name='needs', provides='chosen'))
    engine = kind.load(flow)
    engine.run()
    assert tried == ['a', 'b', 'c']
    assert engine.storage.fetch('chosen') == 'c'
    history = engine.storage.get_retry_history('f_retry')
    assert list(history.provided_iter()) == ['a', 'b', 'c']


def test_for_each_with_repeated_values_tries_each_occurrence(kind):
    tried = []
    flow = lf.Flow('f', retry=retry.ForEach(['a', 'a', 'b'], provides='value')).add(
        NeedsValue({'b'}, tried, name='needs'))
    kind.run(flow)
    assert tried == ['a', 'a', 'b']


def test_for_each_exhausted_reverts_its_subflow(kind):
    tried = []
    log = Log()
    flow = lf.Flow('root').add(
        Step('prep', log),
        lf.Flow('f', retry=retry.ForEach([1, 2], provides='value')).add(
            NeedsValue(set(), tried, name='needs')))
    engine = kind.load(flow)
    with pytest.raises(ValueError, match='bad value 2'):
        engine.run()
    assert tried == [1, 2]
    assert states_of(engine, ['prep', 'f_retry', 'needs']) == {
        'prep': S, 'f_retry': RVD, 'needs': RVD}


def test_for_each_revert_all_reverts_everything(kind):
    log = Log()
    flow = lf.Flow('root').add(
        Step('prep', log),
        lf.Flow('f', retry=retry.ForEach([1], provides='value', revert_all=True)).add(
            NeedsValue(set(), [], name='needs')))
    engine = kind.load(flow)
    with pytest.raises(ValueError):
        engine.run()
    assert log.names('revert') == ['prep']


def test_parameterized_for_each_reads_its_values_from_storage(kind):
    tried = []
    flow = lf.Flow('f', retry=retry.ParameterizedForEach(
        rebind={'values': 'candidates'}, provides='value')).add(
        NeedsValue({'y'}, tried, name='needs'))
    engine = kind.load(flow, store={'candidates': ['x', 'y', 'z']})
    engine.run()
    assert tried == ['x', 'y']


def test_parameterized_for_each_exhausted(kind):
    tried = []
    flow = lf.Flow('f', retry=retry.ParameterizedForEach(
        rebind=['candidates'], provides='value')).add(NeedsValue(set(), tried, name='needs'))
    with pytest.raises(ValueError, match='bad value 8'):
        kind.run(flow, store={'candidates': [7, 8]})
    assert tried == [7, 8]


# -- AlwaysRevert / AlwaysRevertAll -------------------------------------------------


def test_always_revert_reverts_only_its_subflow(kind):
    log = Log()
    flow = lf.Flow('root').add(
        Step('prep', log),
        lf.Flow('f', retry=retry.AlwaysRevert('r')).add(
            Step('a', log), Step('b', log, fail=ValueError('b'))))
    engine = kind.load(flow)
    with pytest.raises(ValueError):
        engine.run()
    assert log.names('revert') == ['b', 'a']
    assert states_of(engine, ['prep', 'r', 'a', 'b']) == {
        'prep': S, 'r': RVD, 'a': RVD, 'b': RVD}


def test_always_revert_all_reverts_everything(kind):
    log = Log()
    flow = lf.Flow('root').add(
        Step('prep', log),
        lf.Flow('f', retry=retry.AlwaysRevertAll('r')).add(
            Step('a', log), Step('b', log, fail=ValueError('b'))))
    engine = kind.load(flow)
    with pytest.raises(ValueError):
        engine.run()
    assert log.names('revert') == ['b', 'a', 'prep']
    assert engine.storage.get_atom_state('r') == RVD


# -- custom retries -------------------------------------------------------------------


def test_custom_retry_sees_the_failure_in_the_history_it_gets(kind):
    calls = []

    class Twice(retry.Retry):
        def execute(self, history, start):
            calls.append(('execute', len(history)))
            return start + len(history)

        def on_failure(self, history, start):
            last_value, last_failures = history[-1]
            calls.append(('on_failure', len(history), last_value, sorted(last_failures),
                          start))
            return retry.RETRY if len(history) < 2 else retry.REVERT

        def revert(self, history, start, flow_failures):
            calls.append(('revert', len(history), sorted(flow_failures)))

    flow = lf.Flow('f', retry=Twice(name='twice', provides='n')).add(
        Step('boom', Log(), requires=['n'], fail=ValueError('boom')))
    with pytest.raises(ValueError):
        kind.run(flow, store={'start': 10})
    assert calls == [
        ('execute', 0), ('on_failure', 1, 10, ['boom'], 10),
        ('execute', 1), ('on_failure', 2, 11, ['boom'], 10),
        ('revert', 2, ['boom'])]


def test_retry_whose_execute_fails_is_resolved_by_the_parent(kind):
    log = Log()

    class Broken(retry.Times):
        def execute(self, history, *args, **kwargs):
            raise KeyError('retry broke')

    flow = lf.Flow('root', retry=LTimes(2, name='r_out', log=log)).add(
        Step('prep', log),
        lf.Flow('inner', retry=Broken(3, name='broken')).add(Step('a', log)))
    engine = kind.load(flow)
    with pytest.raises(KeyError):
        engine.run()
    assert log.entries == [('execute', 'r_out'), ('execute', 'prep'), ('revert', 'prep'),
                           ('execute', 'r_out'), ('execute', 'prep'), ('revert', 'prep'),
                           ('revert', 'r_out')]
    assert states_of(engine, ['r_out', 'prep', 'broken', 'a']) == {
        'r_out': RVD, 'prep': RVD, 'broken': RVD, 'a': P}
    assert engine.storage.get_flow_state() == RVD


def test_retry_whose_execute_fails_without_a_parent_reverts_all(kind):
    class Broken(retry.Times):
        def execute(self, history, *args, **kwargs):
            raise KeyError('retry broke')

    log = Log()
    flow = lf.Flow('root').add(Step('prep', log),
                               lf.Flow('inner', retry=Broken(3, name='broken')).add(
                                   Step('a', log)))
    engine = kind.load(flow)
    with pytest.raises(KeyError):
        engine.run()
    assert log.entries == [('execute', 'prep'), ('revert', 'prep')]
    assert str(engine.storage.get_retry_history('broken').failure) == \
        "Failure: KeyError: 'retry broke'"


def test_unknown_decision_ends_in_failure(kind):
    class Punt(retry.Times):
        def on_failure(self, history, *args, **kwargs):
            return 'PUNT'

    log = Log()
    flow = lf.Flow('root').add(Step('prep', log), lf.Flow('inner', retry=Punt(3, name='punt')).add(
        Step('b', log, fail=ValueError('b'))))
    engine = kind.load(flow)
    with pytest.raises(ValueError) as info:
        engine.run()
    assert str(info.value) == "Unknown atom failure resolution action/strategy 'PUNT'"
    assert engine.storage.get_flow_state() == F
    assert log.names('revert') == []
    assert states_of(engine, ['prep', 'punt', 'b']) == {'prep': S, 'punt': S, 'b': F}


def test_on_failure_that_raises_ends_in_failure(kind):
    error = IndexError('on_failure broke')

    class Broken(retry.Times):
        def on_failure(self, history, *args, **kwargs):
            raise error

    flow = lf.Flow('f', retry=Broken(3, name='r')).add(Step('b', Log(), fail=ValueError()))
    engine = kind.load(flow)
    with pytest.raises(IndexError) as info:
        engine.run()
    assert info.value is error
    assert engine.storage.get_flow_state() == F
    assert intentions_of(engine, ['r', 'b']) == {'r': states.EXECUTE, 'b': states.EXECUTE}


def test_retry_names_default_to_the_flow_name(kind):
    flow = lf.Flow('named', retry=retry.Times(2)).add(Step('a', Log()))
    engine = kind.load(flow)
    engine.run()
    assert engine.storage.get_atom_state('named_retry') == S


def test_an_empty_retry_name_is_refused(kind):
    flow = lf.Flow('f', retry=retry.Times(2, name='')).add(Step('a', Log()))
    with pytest.raises(ValueError) as info:
        kind.run(flow)
    assert str(info.value) == 'Retry name must be non-empty'


def test_retry_revert_gets_flow_failures_and_its_history(kind):
    seen = {}

    class Watch(retry.AlwaysRevert):
        def revert(self, history, *args, **kwargs):
            seen['history'] = [(value, sorted(fails)) for value, fails in history]
            seen['flow_failures'] = {name: type(f) for name, f
                                     in kwargs['flow_failures'].items()}

    flow = lf.Flow('f', retry=Watch('w')).add(Step('b', Log(), fail=ValueError()))
    engine = kind.load(flow)
    with pytest.raises(ValueError):
        engine.run()
    assert seen == {'history': [(None, ['b'])], 'flow_failures': {'b': failure.Failure}}


def test_rerun_after_a_reverted_retry_starts_a_fresh_history(kind):
    log = Log()
    flaky = Flaky('flaky', log, failures=2)
    flow = lf.Flow('f', retry=retry.Times(2, name='r', provides='n')).add(flaky)
    engine = kind.load(flow)
    with pytest.raises(ValueError):
        engine.run()
    engine.run()  # third execution of flaky succeeds, on a fresh first attempt
    assert engine.storage.fetch('n') == 1
    assert len(engine.storage.get_retry_history('r')) == 1


# -- which failures are re-raised ---------------------------------------------------
# Reference behaviour: storage keeps the latest execute failure of every atom
# that failed while the engine ran (a retry resetting the atom does not drop
# it), and a run that ends REVERTED re-raises all of them.


def test_failures_of_earlier_attempts_are_reraised_with_the_final_one(kind):
    log = Log()
    t1, t2 = Flaky('t1', log, failures=1), Flaky('t2', log, failures=1)
    engine = kind.load(lf.Flow('f', retry=retry.Times(2)).add(t1, t2))
    with pytest.raises(exc.WrappedFailure) as info:
        engine.run()
    assert sorted(id(f.exception) for f in info.value) == sorted(
        [id(t1.errors[0]), id(t2.errors[0])])
    assert sorted(engine.storage.get_execute_failures()) == ['t1', 't2']


def test_the_latest_failure_of_an_atom_replaces_its_earlier_ones(kind):
    log = Log()
    flaky = Flaky('flaky', log, failures=3)
    engine = kind.load(lf.Flow('f', retry=retry.Times(3)).add(flaky))
    with pytest.raises(ValueError) as info:
        engine.run()
    assert info.value is flaky.errors[-1]
    assert engine.storage.get_execute_failures()['flaky'].exception is flaky.errors[-1]


def test_a_failure_a_retry_recovered_from_is_still_listed_by_storage(kind):
    log = Log()
    engine = kind.load(lf.Flow('f', retry=retry.Times(3)).add(Flaky('t1', log, failures=1)))
    engine.run()
    assert engine.storage.get_flow_state() == S
    assert engine.storage.get('t1') == 't1'
    assert list(engine.storage.get_execute_failures()) == ['t1']
    assert engine.storage.has_failures()


class _Scripted(retry.Retry):
    """A retry whose ``on_failure`` answers (or raises) what it is given."""

    def __init__(self, on_failure, **kwargs):
        super().__init__(**kwargs)
        self._on_failure = on_failure

    def on_failure(self, history, *args, **kwargs):
        return self._on_failure()

    def execute(self, history, *args, **kwargs):
        return len(history) + 1

    def revert(self, history, *args, **kwargs):
        return 'undone'


def test_a_retried_atoms_old_failure_stays_readable_and_failures_keep_flow_order(kind):
    """As the original: a retry puts atoms back to PENDING without clearing
    their failures; failures are listed (and raised) in flow order."""
    log = Log()

    class SecondTimeFails(Step):
        runs = 0

        def execute(self, **kwargs):
            SecondTimeFails.runs += 1
            if SecondTimeFails.runs == 2:
                raise ValueError('s2')
            return super().execute(**kwargs)

    # Attempt 1: s succeeds, b fails; attempt 2: s fails, b never runs again.
    flow = lf.Flow('f', retry=retry.Times(2, name='r')).add(
        SecondTimeFails('s', log), Step('b', log, fail=RuntimeError('b')))
    engine = kind.load(flow)
    with pytest.raises(exc.WrappedFailure) as info:
        engine.run()
    assert [f.exception_str for f in info.value] == ['s2', 'b']
    assert list(engine.storage.get_failures()) == ['s', 'b']
    assert engine.storage.get_atom_state('b') == P
    assert engine.storage.get('b').exception_str == 'b'


def test_a_retrys_revert_result_is_notified_not_stored(kind):
    flow = lf.Flow('f', retry=_Scripted(lambda: retry.REVERT, name='r')).add(
        Step('b', Log(), fail=RuntimeError('b')))
    engine = kind.load(flow)
    seen = []
    engine.atom_notifier.register(
        RVD, lambda state, details: seen.append((details.get('retry_name'),
                                                 details.get('result'))))
    with pytest.raises(RuntimeError):
        engine.run()
    assert ('r', 'undone') in seen
    assert engine.storage.get_revert_result('r') is None


def test_statistics_when_on_failure_raises(kind):
    def broken():
        raise KeyError('on_failure')
    flow = lf.Flow('f', retry=_Scripted(broken, name='r')).add(
        Step('a', Log()), Step('b', Log(), fail=RuntimeError('b')))
    engine = kind.load(flow)
    with pytest.raises(KeyError):
        engine.run()
    assert engine.storage.get_flow_state() == F
    # As the original: the failure was not resolved, nor its execution counted.
    assert engine.statistics['discarded_failures'] == 0
    assert engine.statistics['completed'] == 2
