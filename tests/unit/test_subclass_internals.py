"""Private-looking names of the original that code in the wild subclasses or reads.

OpenStack services return ``self._revert_action`` from their own
``Times.on_failure``, call ``self._notifier.notify(...)`` from tasks, and
override ``_build_arg_mapping``/``_get_next_value``; these must behave as
the original's (tests/compat/test_oracle_internals.py compares with it).
"""

from __future__ import annotations

import collections
import threading

import pytest

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import retry
from taskflow import states
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.types import notifier
from taskflow.types import sets


class Boom(task.Task):
    def execute(self):
        raise RuntimeError('boom')


class Recorded(task.Task):
    """Records executions and reverts in a shared list."""

    def __init__(self, name, log, **kwargs):
        super().__init__(name, **kwargs)
        self.log = log

    def execute(self):
        self.log.append('execute ' + self.name)

    def revert(self, **kwargs):
        self.log.append('revert ' + self.name)


class ServiceTimes(retry.Times):
    """The Octavia pattern: its own on_failure, giving up with ``_revert_action``."""

    def on_failure(self, history, *args, **kwargs):
        if len(history) < self._attempts:
            return retry.RETRY
        return self._revert_action


def run_retried(retry_controller):
    log = []
    flow = lf.Flow('outer').add(
        Recorded('before', log),
        lf.Flow('inner', retry=retry_controller).add(Recorded('inside', log), Boom('boom')))
    engine = taskflow.engines.load(flow)
    with pytest.raises(RuntimeError, match='^boom$'):
        engine.run()
    atom_states = {name: engine.storage.get_atom_state(name)
                   for name in ('before', 'inside', 'boom', retry_controller.name)}
    return log, atom_states, engine.storage.get_flow_state()


# -- retries ---------------------------------------------------------------------

@pytest.mark.parametrize('make, action', [
    (lambda: retry.Times(3), retry.REVERT),
    (lambda: retry.Times(3, revert_all=True), retry.REVERT_ALL),
    (lambda: retry.ForEach([1, 2]), retry.REVERT),
    (lambda: retry.ForEach([1, 2], revert_all='yes'), retry.REVERT_ALL),
    (lambda: retry.ParameterizedForEach(revert_all=0), retry.REVERT),
    (lambda: retry.ParameterizedForEach(revert_all=True), retry.REVERT_ALL),
])
def test_exhausting_retries_carry_their_revert_action(make, action):
    controller = make()
    assert controller._revert_action is action
    assert isinstance(controller._revert_action, retry.Decision)


def test_always_revert_controllers_have_no_revert_action():
    assert not hasattr(retry.AlwaysRevert(), '_revert_action')
    assert not hasattr(retry.AlwaysRevertAll(), '_revert_action')


def test_times_and_foreach_keep_their_arguments_where_subclasses_read_them():
    assert retry.Times(4)._attempts == 4
    values = (1, 2)
    assert retry.ForEach(values)._values is values


def test_a_service_times_subclass_reverts_only_its_subflow_when_exhausted():
    log, atom_states, flow_state = run_retried(ServiceTimes(2, name='r'))
    assert log == ['execute before',
                   'execute inside', 'revert inside',
                   'execute inside', 'revert inside']
    assert atom_states == {'before': states.SUCCESS, 'inside': states.REVERTED,
                           'boom': states.REVERTED, 'r': states.REVERTED}
    assert flow_state == states.REVERTED


def test_a_service_times_subclass_with_revert_all_reverts_everything():
    log, atom_states, _flow_state = run_retried(ServiceTimes(2, name='r', revert_all=True))
    assert log[-2:] == ['revert inside', 'revert before']
    assert atom_states['before'] == states.REVERTED


def test_on_failure_follows_a_changed_revert_action():
    controller = retry.Times(1, name='r')
    controller._revert_action = retry.REVERT_ALL
    history = retry.History([(1, {})])
    assert controller.on_failure(history) is retry.REVERT_ALL
    controller._attempts = 2
    assert controller.on_failure(history) is retry.RETRY
    each = retry.ForEach([1], name='e')
    each._revert_action = retry.REVERT_ALL
    assert each.on_failure(history) is retry.REVERT_ALL
    _log, atom_states, _state = run_retried(controller)
    assert atom_states['before'] == states.REVERTED


def test_foreach_hooks_can_be_overridden():
    seen = []

    class Backwards(retry.ForEach):
        def _get_next_value(self, values, history):
            return super()._get_next_value(list(reversed(values)), history)

    class Fussy(retry.ParameterizedForEach):
        def _on_failure(self, values, history):
            seen.append(list(values))
            return retry.REVERT_ALL

    class Uses(task.Task):
        def execute(self, value):
            seen.append(value)
            raise RuntimeError('boom')

    flow = lf.Flow('f', retry=Backwards([1, 2, 3], name='r', provides='value')).add(Uses('u'))
    with pytest.raises(RuntimeError):
        taskflow.engines.run(flow)
    assert seen == [3, 2, 1]
    seen.clear()
    flow = lf.Flow('g', retry=Fussy(name='p', provides='value',
                                    rebind={'values': 'choices'})).add(Uses('u'))
    with pytest.raises(RuntimeError):
        taskflow.engines.run(flow, store={'choices': ['a', 'b']})
    assert seen == ['a', ['a', 'b']]


def test_foreach_next_value_when_nothing_is_left():
    each = retry.ForEach([1], name='e')
    assert each._get_next_value([1, 2, 1], retry.History([(1, {})])) == 2
    with pytest.raises(exc.NotFound, match='^No elements left in collection of iterable'
                                           ' retry controller e$'):
        each._get_next_value([1], retry.History([(1, {})]))
    assert each._on_failure([1, 2], retry.History([(1, {})])) is retry.RETRY
    assert each._on_failure([1], retry.History([(1, {})])) is retry.REVERT


# -- Task._notifier ----------------------------------------------------------------

class Reporting(task.Task):
    """The Masakari pattern: notifies through the private notifier."""

    def execute(self):
        self._notifier.notify(task.EVENT_UPDATE_PROGRESS,
                              {'progress': 0.5, 'progress_details': ['half']})
        return 'ok'


def test_private_notifier_exists_from_the_start_and_is_the_public_one():
    reporting = Reporting('r')
    assert isinstance(reporting._notifier, notifier.RestrictedNotifier)
    assert reporting._notifier is reporting.notifier
    seen = []
    reporting.notifier.register(task.EVENT_UPDATE_PROGRESS,
                                lambda event_type, details: seen.append(details))
    assert reporting.execute() == 'ok'
    assert seen == [{'progress': 0.5, 'progress_details': ['half']}]


def test_notifying_through_the_private_notifier_inside_an_engine_stores_progress():
    engine = taskflow.engines.load(lf.Flow('f').add(Reporting('r', provides='out')))
    engine.run()
    assert engine.storage.fetch('out') == 'ok'
    assert engine.storage.get_task_progress('r') == 1.0
    assert engine.storage.get_task_progress_details('r') == {
        'at_progress': 0.5, 'details': {'progress_details': ['half']}}


def test_private_notifier_copies_and_replacement():
    original = Reporting('r')
    original.notifier.register(task.EVENT_UPDATE_PROGRESS, print)
    kept, emptied = original.copy(), original.copy(retain_listeners=False)
    assert kept._notifier is not original._notifier
    assert kept._notifier.is_registered(task.EVENT_UPDATE_PROGRESS, print)
    assert not emptied._notifier.is_registered(task.EVENT_UPDATE_PROGRESS, print)
    mine = notifier.RestrictedNotifier(['update_progress'])
    original._notifier = mine
    assert original.notifier is mine


def test_threads_reading_the_private_notifier_first_get_the_same_one():
    reporting = Reporting('r')
    barrier = threading.Barrier(8)
    found = []

    def read():
        barrier.wait()
        found.append(reporting._notifier)
    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(n) for n in found}) == 1


# -- argument inference --------------------------------------------------------------

def test_a_bound_methods_first_parameter_is_never_an_input():
    class Odd(task.Task):
        def execute(me, x):
            return x * 2

        def revert(this, x, result, flow_failures):
            pass

    odd = Odd('odd')
    assert list(odd.requires) == ['x'] and dict(odd.rebind) == {'x': 'x'}
    assert taskflow.engines.run(lf.Flow('f').add(Odd('odd', provides='y')),
                                store={'x': 21})['y'] == 42


def test_unbound_callables_keep_a_first_parameter_named_self():
    class Static(task.Task):
        @staticmethod
        def execute(self, x):
            pass

    class Classy(task.Task):
        @classmethod
        def execute(klass, x):
            pass

    def functor(self, x):
        pass

    assert list(Static().requires) == ['self', 'x']
    assert list(Classy().requires) == ['x']
    assert list(task.FunctorTask(functor).requires) == ['self', 'x']

    class Holder:
        def method(me, q):
            pass
    assert list(task.FunctorTask(Holder().method).requires) == ['q']


def test_build_arg_mapping_returns_rebind_requires_and_optional():
    class Joiner(task.Task):
        def execute(self, a, b=2, **kwargs):
            pass

        def revert(self, a, c, **kwargs):
            pass

    joiner = Joiner(inject={'a': 1})
    assert joiner._build_arg_mapping(joiner.execute) == (
        collections.OrderedDict([('a', 'a'), ('b', 'b')]), sets.OrderedSet([]),
        sets.OrderedSet(['b']))
    assert joiner._build_arg_mapping(joiner.revert, requires=['z'], rebind={'a': 'q'},
                                     ignore_list=['c']) == (
        collections.OrderedDict([('a', 'q'), ('z', 'z')]), sets.OrderedSet(['q', 'z']),
        sets.OrderedSet([]))


def test_the_constructor_goes_through_an_overridden_build_arg_mapping():
    calls = []

    def traced(self, executor, requires=None, rebind=None, auto_extract=True,
               ignore_list=None):
        calls.append((executor.__name__, requires, rebind, ignore_list))
        return type(self).__mro__[1]._build_arg_mapping(self, executor, requires, rebind,
                                                        auto_extract, ignore_list)

    class Traced(task.Task):
        _build_arg_mapping = traced

        def execute(self, a, **kwargs):
            pass

    class Fixed(task.Task):
        def _build_arg_mapping(self, executor, requires=None, rebind=None,
                               auto_extract=True, ignore_list=None):
            return (collections.OrderedDict([('q', 'Q')]), sets.OrderedSet(['Q']),
                    sets.OrderedSet())

        def execute(self, **kwargs):
            return kwargs

    Traced(requires=['r'], rebind={'a': 'b'}, revert_requires=['rr'], ignore_list=['zz'])
    assert calls == [('execute', ['r'], {'a': 'b'}, []),
                     ('revert', ['rr'], {'a': 'b'}, ['result', 'flow_failures'])]
    calls.clear()

    class TracedRetry(retry.Times):
        _build_arg_mapping = traced
    TracedRetry(2)
    assert [c[3] for c in calls] == [['history'], ['history', 'result', 'flow_failures']]

    fixed = Fixed('fixed', provides='out')
    assert (dict(fixed.rebind), list(fixed.requires)) == ({'q': 'Q'}, ['Q'])
    assert taskflow.engines.run(lf.Flow('f').add(fixed), store={'Q': 7})['out'] == {'q': 7}
