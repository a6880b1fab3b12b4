"""Task progress, copies, and the functor task family."""

from __future__ import annotations

import abc
import functools
import json
import logging
import math
import operator

import pytest

from taskflow import task
from taskflow.types import notifier


class Downloader(task.Task):
    def execute(self, url):
        self.update_progress(0.5)
        return 'data'


def test_progress_notifies_listeners_and_clamps(caplog):
    t = Downloader()
    seen = []
    t.notifier.register(task.EVENT_UPDATE_PROGRESS, lambda event, details: seen.append(details))
    with caplog.at_level(logging.DEBUG, logger='taskflow.task'):
        t.update_progress(0.25)
        t.update_progress(7)
        t.update_progress(-1)
        t.update_progress(float('nan'))   # not clamped (neither bound compares true)
    assert seen[:3] == [{'progress': 0.25}, {'progress': 1.0}, {'progress': 0.0}]
    # The reference's words, level and logger; the value is a logging argument.
    message = ("Progress value must be greater or equal to 0.0 or less than or equal"
               " to 1.0 instead of being '%s'")
    assert [(r.name, r.levelno, r.msg, r.args) for r in caplog.records] == [
        ('taskflow.task', logging.WARNING, message, (7,)),
        ('taskflow.task', logging.WARNING, message, (-1,)),
    ]


def test_task_notifier_only_allows_progress_events():
    with pytest.raises(ValueError) as info:
        Downloader().notifier.register('other', print)
    assert str(info.value) == "Disallowed event type 'other' can not have a callback registered"
    assert list(Downloader().notifier.events_iter()) == ['update_progress']


def test_task_notifier_reads_as_a_restricted_notifier():
    listeners = Downloader().notifier
    assert type(listeners).__name__ == 'RestrictedNotifier'
    assert type(listeners.copy()).__name__ == 'RestrictedNotifier'
    assert isinstance(listeners, notifier.RestrictedNotifier)
    assert listeners.can_be_registered(notifier.Notifier.ANY)   # allow_any, as the reference


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


class Encoder(json.JSONEncoder):
    pass


class Doubler:
    def __call__(self, x):
        return x * 2

    class Inner:
        def __call__(self, x):
            return x


class Abstract(abc.ABC):
    def __init__(self, x):
        pass


HERE = 'tests.unit.test_task'


@pytest.mark.parametrize('functor, name', [
    # Builtins, partials and callable objects are named after their type...
    (len, 'builtins.builtin_function_or_method'),
    (math.sqrt, 'builtins.builtin_function_or_method'),
    (operator.add, 'builtins.builtin_function_or_method'),
    ([].append, 'builtins.builtin_function_or_method'),
    (str.upper, 'builtins.method_descriptor'),
    (object().__str__, 'builtins.method-wrapper'),
    (functools.partial(add, 1), 'functools.partial'),
    (Doubler(), HERE + '.Doubler'),
    (Doubler.Inner(), HERE + '.Doubler.Inner'),
    # ...a class after itself, or its metaclass when it has one...
    (K, HERE + '.K'),
    (Abstract, 'abc.ABCMeta'),
    # ...and a bound method after the module of the class it is bound to.
    (Encoder().encode, HERE + '.JSONEncoder.encode'),
    (json.JSONEncoder().encode, 'json.encoder.JSONEncoder.encode'),
])
def test_functor_task_names_like_the_reference(functor, name):
    assert task.FunctorTask(functor).name == name


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


@pytest.mark.parametrize('cls', [task.MapFunctorTask, task.ReduceFunctorTask])
def test_map_and_reduce_argument_errors_name_their_own_class(cls):
    with pytest.raises(TypeError) as info:
        cls(lambda a, b=None: a)
    assert str(info.value) == ("%s.__init__() missing 1 required positional argument:"
                               " 'requires'" % cls.__name__)
    with pytest.raises(TypeError) as info:
        cls(lambda a, b=None: a, requires=['a', 'b'], bogus=1)
    assert str(info.value) == ("%s.__init__() got an unexpected keyword argument 'bogus'"
                               % cls.__name__)
