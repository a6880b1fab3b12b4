"""Task progress, copies, and the functor task family."""

from __future__ import annotations

import functools

import pytest

from taskflow import task


class Downloader(task.Task):
    def execute(self, url):
        self.update_progress(0.5)
        return 'data'


def test_progress_notifies_listeners_and_clamps(caplog):
    t = Downloader()
    seen = []
    t.notifier.register(task.EVENT_UPDATE_PROGRESS, lambda event, details: seen.append(details))
    t.update_progress(0.25)
    t.update_progress(7)
    t.update_progress(-1)
    assert seen == [{'progress': 0.25}, {'progress': 1.0}, {'progress': 0.0}]
    assert 'clamping' in caplog.text


def test_task_notifier_only_allows_progress_events():
    with pytest.raises(ValueError) as info:
        Downloader().notifier.register('other', print)
    assert str(info.value) == "Disallowed event type 'other' can not have a callback registered"
    assert list(Downloader().notifier.events_iter()) == ['update_progress']


def test_copy_keeps_or_drops_listeners():
    t = Downloader()
    t.notifier.register(task.EVENT_UPDATE_PROGRESS, print)
    assert len(t.copy().notifier) == 1
    assert len(t.copy(retain_listeners=False).notifier) == 0
    assert len(t.notifier) == 1
    assert t.copy().notifier is not t.notifier


def add(x, y):
    return x + y


class K:
    def m(self, a):
        return a


module_lambda = lambda: 1  # noqa: E731 - the point is a lambda's name


def test_functor_task_names():
    assert task.FunctorTask(add).name == 'tests.unit.test_task.add'
    assert task.FunctorTask(K().m).name == 'tests.unit.test_task.K.m'
    assert task.FunctorTask(module_lambda).name == 'tests.unit.test_task.<lambda>'

    def outer():
        def inner():
            pass
        return inner
    assert task.FunctorTask(outer()).name == \
        'tests.unit.test_task.test_functor_task_names.<locals>.outer.<locals>.inner'


def test_functor_task_mapping_and_calls():
    t = task.FunctorTask(add, name='add2', rebind={'x': 'a', 'y': 'b'}, provides='total',
                         version=(2, 1))
    assert sorted(t.requires) == ['a', 'b']
    assert str(t) == '"add2==2.1"'
    assert t.execute(x=1, y=2) == 3
    assert t.revert(x=1, y=2, result=3, flow_failures={}) is None


def test_functor_revert_parameters_are_not_ignored():
    def undo(x, y, result, flow_failures):
        pass
    t = task.FunctorTask(add, revert=undo)
    assert sorted(t.requires) == ['flow_failures', 'result', 'x', 'y']


@pytest.mark.parametrize('make, error, message', [
    (lambda: task.FunctorTask('x'), ValueError, 'Function to use for executing must be callable'),
    (lambda: task.FunctorTask(add, revert=1), ValueError,
     'Function to use for reverting must be callable'),
    (lambda: task.MapFunctorTask(1, requires=['a']), ValueError,
     'Function to use for map must be callable'),
    (lambda: task.MapFunctorTask(add, requires=['a']), ValueError,
     '2 arguments were provided. Map functor must take exactly 1 argument.'),
    (lambda: task.MapFunctorTask(abs, requires='a'), TypeError,
     "<class 'str'> type was provided for requires. Requires must be an iterable."),
    (lambda: task.ReduceFunctorTask(add, requires=['only']), ValueError,
     '1 elements were provided. Requires must have at least 2 elements.'),
    (lambda: task.ReduceFunctorTask(abs, requires=['a', 'b']), ValueError,
     '1 arguments were provided. Reduce functor must take exactly 2 arguments.'),
])
def test_functor_checks(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert str(info.value) == message


def test_map_and_reduce_follow_requires_order_even_when_rebound():
    mapper = task.MapFunctorTask(lambda n: n * 10, requires=['a', 'b'], rebind={'a': 'x'})
    assert sorted(mapper.requires) == ['b', 'x']
    assert mapper.execute(a=1, b=2) == [10, 20]
    reducer = task.ReduceFunctorTask(add, requires=['a', 'b', 'c'])
    assert reducer.execute(a=1, b=2, c=3) == 6


def test_partial_functions_work_as_functors():
    t = task.FunctorTask(functools.partial(add, 1), name='inc')
    assert list(t.requires) == ['y']
    assert t.execute(y=2) == 3
