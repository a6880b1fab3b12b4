"""Atoms and recorders shared by the engine behaviour suite.

Everything here (and in the tests) uses the public API only, so the suite can
also be run against the original TaskFlow, as a black box, to check that the
tests themselves describe the reference behaviour.

The atoms come in two flavours.  While :data:`FLAVOUR` ``.coroutines`` is
set (the ``kind`` fixture sets it for its ``-async`` kinds), creating a
:class:`Step`, :class:`Echo` or :class:`Const` -- or a subclass a test
defines -- gives an instance whose ``execute``/``revert`` are ``async def``
(awaiting once, then doing what the plain one does), unless the subclass
overrides that method with a plain one: flows then mix both kinds of atoms.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any

from taskflow import task

_OWN_NAME = object()
BARRIER_TIMEOUT = 10.0


class Log:
    """What atoms did, in order; safe to append to from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[str, str]] = []
        self.details: list[tuple[str, str, dict]] = []

    def record(self, action: str, name: str, **details: Any) -> None:
        with self._lock:
            self._entries.append((action, name))
            self.details.append((action, name, details))

    @property
    def entries(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._entries)

    def names(self, action: str) -> list[str]:
        """Names of the atoms that did ``action``, in the order they did it."""
        return [name for act, name in self.entries if act == action]

    def count(self, action: str, name: str) -> int:
        return self.entries.count((action, name))

    def position(self, action: str, name: str) -> int:
        """Index of the first time ``name`` did ``action``."""
        return self.entries.index((action, name))

    def last(self, action: str, name: str) -> dict:
        """Details recorded the last time ``name`` did ``action``."""
        for act, who, details in reversed(self.details):
            if act == action and who == name:
                return details
        raise LookupError('%s never did %s' % (name, action))


class Flavour:
    """Which atoms the helpers make: plain ones, or coroutines (``async def``)."""

    coroutines = False


FLAVOUR = Flavour()


def _awaiting(method: Any) -> Any:
    """``method`` as an ``async def`` with the same signature (inference reads it)."""
    @functools.wraps(method)
    async def coroutine(self: Any, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)   # give way to the event loop, as real I/O would
        return method(self, *args, **kwargs)
    return coroutine


_MADE_ASYNC: set[Any] = set()   # the helpers' own methods that get async twins


@functools.lru_cache(maxsize=None)
def _async_variant(cls: type) -> type:
    namespace: dict[str, Any] = {'__module__': cls.__module__,
                                 '__qualname__': cls.__qualname__}
    for name in ('execute', 'revert'):
        method = getattr(cls, name)
        if method in _MADE_ASYNC:   # not overridden by a plain method of a subclass
            namespace[name] = _awaiting(method)
    if len(namespace) == 2:
        return cls
    return type(cls.__name__, (cls,), namespace)


class _Flavoured:
    """Instances are made async variants of their class while FLAVOUR says so."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if FLAVOUR.coroutines:
            cls = _async_variant(cls)
        return super().__new__(cls)


class Step(_Flavoured, task.Task):
    """A task that records what the engine made it do.

    ``execute(**kwargs)`` records ``('execute', name)`` and the arguments it got,
    then raises ``fail`` (an exception instance) if given, else returns
    ``result`` (default: its own name).  ``revert`` records ``('revert', name)``
    with ``result``/``flow_failures``/arguments, then raises ``revert_fail`` if
    given.  Inputs must be named with ``requires=``/``rebind=``.
    """

    def __init__(self, name: str, log: Log, provides: Any = None, requires: Any = None,
                 result: Any = _OWN_NAME, fail: BaseException | None = None,
                 revert_fail: BaseException | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, provides=provides, requires=requires, **kwargs)
        self._log = log
        self._result = name if result is _OWN_NAME else result
        self._fail = fail
        self._revert_fail = revert_fail

    def execute(self, **kwargs: Any) -> Any:
        self._log.record('execute', self.name, arguments=kwargs)
        if self._fail is not None:
            raise self._fail
        return self._result

    def revert(self, result: Any, flow_failures: dict, **kwargs: Any) -> Any:
        self._log.record('revert', self.name, result=result, flow_failures=flow_failures,
                         arguments=kwargs)
        if self._revert_fail is not None:
            raise self._revert_fail
        return None


class Echo(_Flavoured, task.Task):
    """Returns its single input ``x`` (rebind it to read another name)."""

    def execute(self, x: Any) -> Any:
        return x


class Const(_Flavoured, task.Task):
    """Returns a constant."""

    def __init__(self, value: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value

    def execute(self) -> Any:
        return self.value


_MADE_ASYNC.update((Step.execute, Step.revert, Echo.execute, Const.execute))


def real_engine(engine: Any) -> Any:
    """The engine itself, when the ``-run_async`` kinds wrap it (``AsyncDriven``)."""
    return getattr(engine, 'wrapped_engine', engine)


def flow_events(engine: Any) -> list[tuple[str, str]]:
    """Start recording ``(state, old_state)`` of the engine's flow notifications."""
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def on_flow(state: str, details: dict) -> None:
        with lock:
            seen.append((state, details['old_state']))
    engine.notifier.register('*', on_flow)
    return seen


def atom_events(engine: Any) -> list[tuple[str, str, str]]:
    """Start recording ``(atom name, state, old_state)`` of atom notifications."""
    seen: list[tuple[str, str, str]] = []
    lock = threading.Lock()

    def on_atom(state: str, details: dict) -> None:
        name = details.get('task_name', details.get('retry_name'))
        with lock:
            seen.append((name, state, details['old_state']))
    engine.atom_notifier.register('*', on_atom)
    return seen


def events_of(events: list[tuple[str, str, str]], name: str) -> list[tuple[str, str]]:
    """The ``(state, old_state)`` transitions one atom went through."""
    return [(state, old) for who, state, old in events if who == name]


def states_of(engine: Any, names: Any) -> dict[str, str]:
    return {name: engine.storage.get_atom_state(name) for name in names}


def intentions_of(engine: Any, names: Any) -> dict[str, str]:
    return {name: engine.storage.get_atom_intention(name) for name in names}


def make_barrier(parties: int) -> threading.Barrier:
    """A barrier that breaks (instead of hanging the suite) after a timeout."""
    return threading.Barrier(parties, timeout=BARRIER_TIMEOUT)
