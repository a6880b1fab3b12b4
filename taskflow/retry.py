"""Retry controllers: atoms that decide what happens when their subflow fails.

A retry is attached to a flow (``Flow(name, retry=...)``), runs before the
flow's children and is asked, through ``on_failure``, what to do when one of
them fails: run the subflow again (``RETRY``), revert the subflow
(``REVERT``) or revert the whole flow (``REVERT_ALL``).
"""

from __future__ import annotations

import abc
import collections
import enum
from collections.abc import Iterable, Iterator
from typing import Any

from taskflow import atom
from taskflow import delays
from taskflow import exceptions as exc

# Keyword names the engine passes to retry methods.
EXECUTE_REVERT_HISTORY = 'history'
REVERT_FLOW_FAILURES = 'flow_failures'


class Decision(str, enum.Enum):
    """What a retry controller decides when its subflow fails."""

    REVERT = 'REVERT'          # revert this retry's subflow (the parent may decide more)
    REVERT_ALL = 'REVERT_ALL'  # revert the whole flow
    RETRY = 'RETRY'            # revert the subflow, then run it again

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return self.value.__format__(spec)


REVERT = Decision.REVERT
REVERT_ALL = Decision.REVERT_ALL
RETRY = Decision.RETRY


class History:
    """What a retry's attempts produced and which failures they met.

    Each entry is ``(value provided by execute, {atom name: Failure})``.
    """

    def __init__(self, contents: list, failure: Any = None) -> None:
        self._contents = contents
        self._failure = failure

    @property
    def failure(self) -> Any:
        """The retry's own execute failure, or ``None``."""
        return self._failure

    def __len__(self) -> int:
        return len(self._contents)

    def __getitem__(self, index: int) -> tuple[Any, dict]:
        return self._contents[index]

    def __iter__(self) -> Iterator[tuple[Any, dict]]:
        return iter(self._contents)

    def provided_iter(self) -> Iterator[Any]:
        """The values the retry provided, attempt by attempt."""
        for provided, _failures in self._contents:
            yield provided

    def outcomes_iter(self, index: int | None = None) -> Iterator[tuple[str, Any]]:
        """``(atom name, Failure)`` pairs of every attempt, or of attempt ``index``."""
        contents = self._contents if index is None else [self._contents[index]]
        for _provided, failures in contents:
            yield from failures.items()

    def caused_by(self, exception_cls: Any, index: int | None = None,
                  include_retry: bool = False) -> bool:
        """Whether any recorded failure matches ``exception_cls``."""
        for _name, failure in self.outcomes_iter(index=index):
            if failure.check(exception_cls):
                return True
        if include_retry and self._failure is not None:
            return bool(self._failure.check(exception_cls))
        return False


class Retry(atom.Atom, metaclass=abc.ABCMeta):
    """Base of retry controllers.

    ``execute`` and ``revert`` always receive ``history=`` (a :class:`History`)
    and ``on_failure`` returns a :class:`Decision`.
    """

    def __init__(self, name: str | None = None, provides: Any = None, requires: Any = None,
                 auto_extract: bool = True, rebind: Any = None, *,
                 delay: delays.Delay | None = None) -> None:
        super().__init__(name=name, provides=provides, requires=requires,
                         auto_extract=auto_extract, rebind=rebind,
                         ignore_list=[EXECUTE_REVERT_HISTORY])
        if delay is not None and not callable(delay):
            raise TypeError('Retry %r: delay must be a delay policy (see taskflow.delays),'
                            ' not %r' % (name, delay))
        self.delay = delay

    def delay_for(self, history: History) -> float:
        """Seconds to wait before running the subflow again (taskflow-ng extension).

        Uses the ``delay=`` policy with the number of the coming re-run
        (``len(history)``); override for custom timing.  The engine keeps
        running other branches while it waits.
        """
        if self.delay is None:
            return 0.0
        return self.delay(len(history))

    @property
    def name(self) -> str | None:
        """The retry's name (set by its flow when left empty)."""
        return self._name

    @name.setter
    def name(self, name: str | None) -> None:
        self._name = name

    @abc.abstractmethod
    def execute(self, history: History, *args, **kwargs) -> Any:
        """Run before (each attempt of) the subflow; the result is provided."""

    def revert(self, history: History, *args, **kwargs) -> Any:
        """Undo ``execute`` when the subflow is reverted for good."""

    @abc.abstractmethod
    def on_failure(self, history: History, *args, **kwargs) -> Decision:
        """Decide what to do after an atom of the subflow failed."""


class AlwaysRevert(Retry):
    """Never retries: reverts its subflow."""

    def on_failure(self, *args, **kwargs) -> Decision:
        return REVERT

    def execute(self, *args, **kwargs) -> None:
        return None


class AlwaysRevertAll(Retry):
    """Never retries: reverts the whole flow."""

    def on_failure(self, *args, **kwargs) -> Decision:
        return REVERT_ALL

    def execute(self, *args, **kwargs) -> None:
        return None


class _GivingUp(Retry):
    """A retry that gives up with ``REVERT`` (or ``REVERT_ALL``) when exhausted.

    The decision is kept in ``_revert_action`` (the original's attribute):
    subclasses in the wild return it from their own ``on_failure`` or change
    it, and ``on_failure`` honours it.
    """

    def __init__(self, name: str | None = None, provides: Any = None, requires: Any = None,
                 auto_extract: bool = True, rebind: Any = None,
                 revert_all: bool = False, *, delay: delays.Delay | None = None) -> None:
        super().__init__(name, provides, requires, auto_extract, rebind, delay=delay)
        self._revert_action = REVERT_ALL if revert_all else REVERT


class Times(_GivingUp):
    """Runs the subflow at most ``attempts`` times; provides the attempt number."""

    def __init__(self, attempts: int = 1, name: str | None = None, provides: Any = None,
                 requires: Any = None, auto_extract: bool = True, rebind: Any = None,
                 revert_all: bool = False, *, delay: delays.Delay | None = None) -> None:
        super().__init__(name, provides, requires, auto_extract, rebind, revert_all,
                         delay=delay)
        self._attempts = attempts

    def on_failure(self, history: History, *args, **kwargs) -> Decision:
        if len(history) < self._attempts:
            return RETRY
        return self._revert_action

    def execute(self, history: History, *args, **kwargs) -> int:
        return len(history) + 1


class ForEachBase(_GivingUp):
    """Tries each value of a collection once; provides the value being tried.

    Subclasses may override ``_get_next_value(values, history)`` and
    ``_on_failure(values, history)`` (the original's hooks).
    """

    @staticmethod
    def _remaining(values: Iterable, history: History) -> list:
        # A multiset difference: a value listed twice is tried twice.
        tried = collections.Counter(history.provided_iter())
        remaining = []
        for value in values:
            if tried[value] > 0:
                tried[value] -= 1
            else:
                remaining.append(value)
        return remaining

    def _get_next_value(self, values: Iterable, history: History) -> Any:
        """The first of ``values`` not tried yet (``NotFound`` when none is left)."""
        remaining = self._remaining(values, history)
        if not remaining:
            raise exc.NotFound('No elements left in collection of iterable retry controller %s'
                               % self.name)
        return remaining[0]

    def _on_failure(self, values: Iterable, history: History) -> Decision:
        """``RETRY`` while an untried value is left, else ``_revert_action``."""
        if self._remaining(values, history):
            return RETRY
        return self._revert_action


class ForEach(ForEachBase):
    """Tries each of ``values`` in turn."""

    def __init__(self, values: Iterable, name: str | None = None, provides: Any = None,
                 requires: Any = None, auto_extract: bool = True, rebind: Any = None,
                 revert_all: bool = False, *, delay: delays.Delay | None = None) -> None:
        super().__init__(name, provides, requires, auto_extract, rebind, revert_all,
                         delay=delay)
        self._values = values

    def on_failure(self, history: History, *args, **kwargs) -> Decision:
        return self._on_failure(self._values, history)

    def execute(self, history: History, *args, **kwargs) -> Any:
        return self._get_next_value(self._values, history)


class ParameterizedForEach(ForEachBase):
    """Like :class:`ForEach`, with the values read from storage (argument ``values``)."""

    def on_failure(self, values: Iterable, history: History, *args, **kwargs) -> Decision:
        return self._on_failure(values, history)

    def execute(self, values: Iterable, history: History, *args, **kwargs) -> Any:
        return self._get_next_value(values, history)
