"""Tasks: atoms that do work (``execute``) and can undo it (``revert``)."""

from __future__ import annotations

import copy as copy_module
import functools
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from taskflow import atom
from taskflow import logging
from taskflow.types import notifier as notifier_module

LOG = logging.getLogger(__name__)

# Keyword names the engine always passes to ``revert``.
REVERT_RESULT = 'result'
REVERT_FLOW_FAILURES = 'flow_failures'

# The event a task notifies when it reports progress.
EVENT_UPDATE_PROGRESS = 'update_progress'

# Logged (with the value) when update_progress() clamps; the reference's words.
_CLAMPED_MESSAGE = ("Progress value must be greater or equal to 0.0 or less than or equal"
                    " to 1.0 instead of being '%s'")


def _check_timeout(name: str, timeout: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError('Task %r: timeout must be a positive number of seconds, not %r'
                         % (name, timeout))
    return float(timeout)


def _default_name(task: Task) -> str:
    cls = type(task)
    return '%s.%s' % (cls.__module__, cls.__name__)


def _callable_name(function: Callable) -> str:
    """The reference's name for a functor: ``module.qualname`` of what it is.

    Python functions are named after themselves and bound methods after the
    module of the class they are bound to; anything else (builtins, partials,
    callable objects) after its type, and a class after itself (or after its
    metaclass, when it has one).
    """
    if inspect.ismethod(function):
        owner = function.__self__
        owner_cls = owner if isinstance(owner, type) else type(owner)
        return '%s.%s' % (owner_cls.__module__, function.__qualname__)
    if inspect.isfunction(function):
        return '%s.%s' % (function.__module__, function.__qualname__)
    cls = type(function)
    if cls is type:
        cls = function
    return '%s.%s' % (cls.__module__, cls.__qualname__)


class _NotifierOnFirstUse:
    """``task._notifier``: the task's notifier, made the first time it is read.

    The original makes it in ``__init__``; making it on first use keeps flows
    of many tasks (that mostly never get a listener) cheap, and reading it
    always works.  Once made it is a plain instance attribute, so this
    descriptor (it defines no ``__set__``) is out of the way, and assigning
    ``task._notifier`` replaces it as usual.
    """

    _lock = threading.Lock()

    def __get__(self, task: Task | None, owner: type | None = None) -> Any:
        if task is None:
            return self
        with self._lock:   # two threads reading it first must get the same one
            made = task.__dict__.get('_notifier')
            if made is None:
                made = task.__dict__['_notifier'] = RestrictedNotifier(task, task.TASK_EVENTS)
        return made


class Task(atom.Atom):
    """An atom that executes (and reverts) one piece of work.

    Subclasses implement ``execute`` (and usually ``revert``).  Arguments are
    inferred from their signatures; see :class:`taskflow.atom.Atom`.
    """

    TASK_EVENTS = (EVENT_UPDATE_PROGRESS,)

    #: Seconds ``execute`` (and ``revert``) may take before the engine fails the
    #: task with :class:`~taskflow.exceptions.AtomTimeout` (``None``: no limit).
    #: A taskflow-ng extension; see ``docs/timeouts.md``.
    timeout: float | None = None

    def __init__(self, name: str | None = None, provides: Any = None, requires: Any = None,
                 auto_extract: bool = True, rebind: Any = None,
                 inject: Mapping[str, Any] | None = None, ignore_list: Iterable[str] | None = None,
                 revert_rebind: Any = None, revert_requires: Any = None, *,
                 timeout: float | None = None) -> None:
        if name is None:
            name = _default_name(self)
        if timeout is not None:
            self.timeout = _check_timeout(name, timeout)
        # ``ignore_list`` is accepted for signature compatibility and, like the
        # original, ignored by tasks.
        super().__init__(name=name, provides=provides, requires=requires,
                         auto_extract=auto_extract, rebind=rebind, inject=inject,
                         revert_rebind=revert_rebind, revert_requires=revert_requires)
        # Set by the engine while it runs this task: receives (task, progress,
        # details) so progress is stored without a listener per execution.
        self._progress_sink: Callable[[Task, float, dict], None] | None = None

    # ``_notifier`` is the original's attribute (services call
    # ``self._notifier.notify(...)``); see _NotifierOnFirstUse.
    _notifier = _NotifierOnFirstUse()

    @property
    def notifier(self) -> notifier_module.RestrictedNotifier:
        """Notifier for this task's own events (only ``update_progress``)."""
        return self._notifier

    def copy(self, retain_listeners: bool = True) -> Task:
        """A shallow copy with its own notifier (emptied unless ``retain_listeners``)."""
        clone = copy_module.copy(self)
        listeners = self.__dict__.get('_notifier')
        if listeners is not None:
            clone._notifier = listeners.copy()
            clone._notifier._task = clone
            if not retain_listeners:
                clone._notifier.reset()
        return clone

    def update_progress(self, progress: float) -> None:
        """Report progress, a float clamped to ``[0.0, 1.0]``."""
        if progress > 1.0:
            LOG.warning(_CLAMPED_MESSAGE, progress)
            progress = 1.0
        elif progress < 0.0:
            LOG.warning(_CLAMPED_MESSAGE, progress)
            progress = 0.0
        listeners = self.__dict__.get('_notifier')
        if listeners is not None:
            listeners.notify(EVENT_UPDATE_PROGRESS, {'progress': progress})
        elif self._progress_sink is not None:
            self._progress_sink(self, progress, {})

    def _notify_progress(self, progress: float) -> None:
        """Tell listeners about progress the engine sets (it stores that itself)."""
        listeners = self.__dict__.get('_notifier')
        if listeners is not None and listeners.has_listeners(EVENT_UPDATE_PROGRESS):
            notifier_module.RestrictedNotifier.notify(
                listeners, EVENT_UPDATE_PROGRESS, {'progress': progress})

    def __getstate__(self) -> dict:
        # Listeners and the engine's sink are local to this process; drop them
        # so tasks can be shipped to process pools.
        state = self.__dict__.copy()
        state.pop('_notifier', None)   # a fresh one is made on first use
        state['_progress_sink'] = None
        return state


class RestrictedNotifier(notifier_module.RestrictedNotifier):
    """A task's notifier: progress events also reach the engine running the task.

    Whether a task calls ``update_progress`` or notifies ``update_progress``
    itself (with extra detail keys), the engine stores the progress and the
    extra details.  Named like its base class because the reference's task
    notifier is a plain ``RestrictedNotifier`` and code checks the type name.
    """

    def __init__(self, task: Task, events: Iterable[str]) -> None:
        super().__init__(events)
        self._task = task

    def notify(self, event_type: Any, details: Any) -> None:
        super().notify(event_type, details)
        task = self._task
        sink = task._progress_sink
        if sink is not None and event_type == EVENT_UPDATE_PROGRESS and details:
            extra = {k: v for k, v in details.items() if k != 'progress'}
            sink(task, details.get('progress', 0.0), extra)


class FunctorTask(Task):
    """A task made from plain functions: ``execute`` and an optional ``revert``."""

    def __init__(self, execute: Callable, name: str | None = None, provides: Any = None,
                 requires: Any = None, auto_extract: bool = True, rebind: Any = None,
                 revert: Callable | None = None, version: tuple | str | None = None,
                 inject: Mapping[str, Any] | None = None, *,
                 timeout: float | None = None) -> None:
        if not callable(execute):
            raise ValueError('Function to use for executing must be callable')
        if revert is not None and not callable(revert):
            raise ValueError('Function to use for reverting must be callable')
        if name is None:
            name = _callable_name(execute)
        self._execute = execute
        self._revert = revert
        super().__init__(name=name, provides=provides, requires=requires,
                         auto_extract=auto_extract, rebind=rebind, inject=inject,
                         timeout=timeout)
        if version:
            self.version = version

    def _argument_sources(self):
        # Inference reads the wrapped functions.  Like the original, a revert
        # function's ``result``/``flow_failures`` parameters are not ignored,
        # and without one revert is given what execute takes.
        return self._execute, (self._revert or self._execute), ()

    def execute(self, *args, **kwargs):
        return self._execute(*args, **kwargs)

    def revert(self, *args, **kwargs):
        if self._revert is not None:
            return self._revert(*args, **kwargs)
        return None


def _named_arity(function: Callable) -> int:
    return len(atom._signature_of(function).all_args)


class _CollectionFunctorTask(Task):
    """Common part of map/reduce tasks: a functor applied to ``requires`` values."""

    _KIND = ''
    _ARITY = 0
    _ARITY_MESSAGE = ''

    # Each subclass spells out ``__init__`` (calling this): Python names the
    # class of ``__init__`` in argument errors, and users see that text.
    def _setup(self, functor: Callable, requires: Iterable[str], name: str | None,
               provides: Any, auto_extract: bool, rebind: Any,
               inject: Mapping[str, Any] | None, timeout: float | None) -> None:
        if not callable(functor):
            raise ValueError('Function to use for %s must be callable' % self._KIND)
        arity = _named_arity(functor)
        if arity != self._ARITY:
            raise ValueError(self._ARITY_MESSAGE % arity)
        if isinstance(requires, str) or not isinstance(requires, Iterable):
            raise TypeError('%s type was provided for requires. Requires must be an iterable.'
                            % type(requires))
        requires = list(requires)
        self._check_requires(requires)
        if name is None:
            name = _callable_name(functor)
        self._functor = functor
        self._arg_names = requires
        super().__init__(name=name, provides=provides, requires=requires,
                         auto_extract=auto_extract, rebind=rebind, inject=inject,
                         timeout=timeout)

    def _check_requires(self, requires: list) -> None:
        """Hook for extra checks on ``requires``."""

    def _values(self, kwargs: dict) -> list:
        return [kwargs[name] for name in self._arg_names]


class MapFunctorTask(_CollectionFunctorTask):
    """Applies a one-argument functor to each required value; returns the list."""

    _KIND = 'map'
    _ARITY = 1
    _ARITY_MESSAGE = '%s arguments were provided. Map functor must take exactly 1 argument.'

    def __init__(self, functor: Callable, requires: Iterable[str], name: str | None = None,
                 provides: Any = None, auto_extract: bool = True, rebind: Any = None,
                 inject: Mapping[str, Any] | None = None, *,
                 timeout: float | None = None) -> None:
        self._setup(functor, requires, name, provides, auto_extract, rebind, inject, timeout)

    def execute(self, *args, **kwargs):
        return list(map(self._functor, self._values(kwargs)))


class ReduceFunctorTask(_CollectionFunctorTask):
    """Folds the required values with a two-argument functor."""

    _KIND = 'reduce'
    _ARITY = 2
    _ARITY_MESSAGE = '%s arguments were provided. Reduce functor must take exactly 2 arguments.'

    def __init__(self, functor: Callable, requires: Iterable[str], name: str | None = None,
                 provides: Any = None, auto_extract: bool = True, rebind: Any = None,
                 inject: Mapping[str, Any] | None = None, *,
                 timeout: float | None = None) -> None:
        self._setup(functor, requires, name, provides, auto_extract, rebind, inject, timeout)

    def _check_requires(self, requires: list) -> None:
        if len(requires) < 2:
            raise ValueError('%s elements were provided. Requires must have at least 2 elements.'
                             % len(requires))

    def execute(self, *args, **kwargs):
        return functools.reduce(self._functor, self._values(kwargs))
