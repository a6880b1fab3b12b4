"""Listener base classes: subscribe a few receivers to an engine's notifiers.

A :class:`Listener` wraps three receivers, one per kind of event:

* ``_flow_receiver(state, details)`` on ``engine.notifier`` (flow states),
* ``_task_receiver(state, details)`` on ``engine.atom_notifier``, filtered to
  task events (details with ``task_name`` and ``task_uuid``),
* ``_retry_receiver(state, details)`` on ``engine.atom_notifier``, filtered to
  retry events (details with ``retry_name`` and ``retry_uuid``).

Nothing is subscribed until :meth:`Listener.register` (or ``with listener:``),
so an unregistered listener costs nothing.  Subscriptions are made per event
named in the ``*_listen_for`` arguments (``'*'`` by default): listeners that
only care about a few states register only for those, and the engine skips
building notifications nobody listens to.

:class:`DumpingListener` turns events into the classic
``"<engine> has moved task 'x' (uuid) into state ..."`` messages and hands
them to an abstract :meth:`DumpingListener._dump` (printing and logging
listeners implement it).

Secrets: results are shown through :func:`taskflow.secrets.safe_for_display`
and tracebacks through :func:`taskflow.secrets.safe_traceback`, so values
under project-wide masked keys (and values remembered as secret) never
reach a listener's output.  With nothing masked, output is the original's.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from taskflow import logging
from taskflow import secrets
from taskflow import states
from taskflow.types import failure
from taskflow.types import notifier

LOG = logging.getLogger(__name__)

#: Events a listener subscribes to unless told otherwise: all of them.
DEFAULT_LISTEN_FOR = (notifier.Notifier.ANY,)

#: Atom states that end an execution or a revert (their details carry a result).
FINISH_STATES = (states.FAILURE, states.SUCCESS, states.REVERTED, states.REVERT_FAILURE)

# The three kinds of receivers, in the order they are registered.
_TASK = 'task'
_RETRY = 'retry'
_FLOW = 'flow'


def _task_matcher(details: Mapping[str, Any]) -> bool:
    """Details filter accepting only task events."""
    return 'task_name' in details and 'task_uuid' in details


def _retry_matcher(details: Mapping[str, Any]) -> bool:
    """Details filter accepting only retry events."""
    return 'retry_name' in details and 'retry_uuid' in details


def _bulk_register(watch_states: Iterable[str], notifier: notifier.Notifier,
                   cb: Callable[..., Any],
                   details_filter: Callable[..., Any] | None = None) -> list[str]:
    """Register ``cb`` for each of ``watch_states``; return the states registered here.

    States for which ``cb`` (with this filter) is already registered are
    skipped and not returned, so deregistering later leaves them alone.  If a
    registration fails, the ones made so far are undone before re-raising.
    """
    registered: list[str] = []
    try:
        for state in watch_states:
            if not notifier.is_registered(state, cb, details_filter=details_filter):
                notifier.register(state, cb, details_filter=details_filter)
                registered.append(state)
    except Exception:
        _bulk_deregister(notifier, registered, cb, details_filter=details_filter)
        raise
    return registered


def _bulk_deregister(notifier: notifier.Notifier, registered: Iterable[str],
                     cb: Callable[..., Any],
                     details_filter: Callable[..., Any] | None = None) -> None:
    """Undo what :func:`_bulk_register` returned."""
    for state in registered:
        notifier.deregister(state, cb, details_filter=details_filter)


class Listener:
    """Base class for objects that react to an engine's notifications.

    Override ``_flow_receiver``, ``_task_receiver`` and/or
    ``_retry_receiver`` (each called as ``(state, details)``).

    :param engine: the engine to listen to.
    :param task_listen_for: task events (new states) to receive; falsy for none.
    :param flow_listen_for: flow events to receive; falsy for none.
    :param retry_listen_for: retry events to receive; falsy for none.

    Use it as a context manager to register for the duration of a block::

        with MyListener(engine):
            engine.run()
    """

    def __init__(self, engine: Any,
                 task_listen_for: Iterable[str] | None = DEFAULT_LISTEN_FOR,
                 flow_listen_for: Iterable[str] | None = DEFAULT_LISTEN_FOR,
                 retry_listen_for: Iterable[str] | None = DEFAULT_LISTEN_FOR) -> None:
        self._engine = engine
        self._listen_for = {
            _TASK: list(task_listen_for) if task_listen_for else [],
            _RETRY: list(retry_listen_for) if retry_listen_for else [],
            _FLOW: list(flow_listen_for) if flow_listen_for else [],
        }
        # Kind -> the states registered by this listener (and only those).
        self._registered: dict[str, list[str]] = {}

    def _subscriptions(self) -> list[tuple[str, notifier.Notifier, Callable[..., Any],
                                           Callable[..., Any] | None]]:
        engine = self._engine
        return [
            (_TASK, engine.atom_notifier, self._task_receiver, _task_matcher),
            (_RETRY, engine.atom_notifier, self._retry_receiver, _retry_matcher),
            (_FLOW, engine.notifier, self._flow_receiver, None),
        ]

    #: Whether this listener's output shows values (results, failures).  Such
    #: a listener remembers the flow's values under masked keys when it is
    #: registered (and its flow receiver when the flow starts running), so
    #: text that quotes them (a result string, an error message) is
    #: scrubbed; see :mod:`taskflow.secrets`.  Costs nothing while no key is
    #: masked.
    _SHOWS_VALUES = False

    def _learn_secrets(self) -> None:
        """Remember the flow's values under masked keys (when masking is on)."""
        if not secrets.is_active() and not self._mask_keys_of_own():
            return
        try:
            values = self._engine.storage.fetch_all()
        except Exception:
            # Best effort: e.g. storage not reachable right now.  Results
            # are still masked when they are shown.
            LOG.debug('Could not read the flow values to learn its secrets', exc_info=True)
            return
        secrets.learn(values, self._mask_keys_of_own())

    def _mask_keys_of_own(self) -> Any:
        """The listener's own masked keys, besides the project-wide ones."""
        return ()

    def register(self) -> None:
        """Subscribe the receivers to the engine's notifiers (again: no-op)."""
        made = []
        try:
            for kind, target, cb, details_filter in self._subscriptions():
                made.append((kind, target, cb, details_filter,
                             _bulk_register(self._listen_for[kind], target, cb,
                                            details_filter=details_filter)))
        except Exception:
            # All or nothing: undo what this call managed to register.
            for _kind, target, cb, details_filter, states_done in made:
                _bulk_deregister(target, states_done, cb, details_filter=details_filter)
            raise
        for kind, _target, _cb, _filter, states_done in made:
            if states_done:
                self._registered.setdefault(kind, []).extend(states_done)
        if self._SHOWS_VALUES:
            self._learn_secrets()   # a resumed flow may not notify RUNNING again

    def deregister(self) -> None:
        """Remove exactly the subscriptions :meth:`register` made."""
        for kind, target, cb, details_filter in self._subscriptions():
            registered = self._registered.pop(kind, None)
            if registered:
                _bulk_deregister(target, registered, cb, details_filter=details_filter)

    def __enter__(self) -> Listener:
        self.register()
        return self

    def __exit__(self, type: Any, value: Any, tb: Any) -> None:
        try:
            self.deregister()
        except Exception:
            # Never hide the with-block's own exception (or its success)
            # behind a cleanup problem; log it instead.
            LOG.warning('Failed deregistering listeners from engine %s', self._engine,
                        exc_info=True)

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        """Called on flow events (override)."""

    def _task_receiver(self, state: str, details: dict[str, Any]) -> None:
        """Called on task events (override)."""

    def _retry_receiver(self, state: str, details: dict[str, Any]) -> None:
        """Called on retry events (override)."""


class DumpingListener(Listener, metaclass=abc.ABCMeta):
    """A listener that renders flow and task events as text for :meth:`_dump`.

    Retry events are not dumped.
    """

    _SHOWS_VALUES = True

    @abc.abstractmethod
    def _dump(self, message: str, *args: Any, **kwargs: Any) -> None:
        """Output ``message % args``.

        Task events that end an execution or a revert (:data:`FINISH_STATES`)
        also pass ``exc_info=``: the failure's ``exc_info``, else ``None``.
        The result in ``args`` is already masked (see :mod:`taskflow.secrets`);
        a traceback printed from ``exc_info`` should go through
        :func:`taskflow.secrets.safe_traceback`.
        """

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        if state == states.RUNNING:
            self._learn_secrets()
        self._dump("%s has moved flow '%s' (%s) into state '%s' from state '%s'",
                   self._engine, details['flow_name'], details['flow_uuid'], state,
                   details['old_state'])

    def _task_receiver(self, state: str, details: dict[str, Any]) -> None:
        if state not in FINISH_STATES:
            self._dump("%s has moved task '%s' (%s) into state '%s' from state '%s'",
                       self._engine, details['task_name'], details['task_uuid'], state,
                       details['old_state'])
            return
        result = details.get('result')
        was_failure = isinstance(result, failure.Failure)
        message = ("%s has moved task '%s' (%s) into state '%s' from state '%s'"
                   " with result '%s' (failure=%s)")
        # The result as it may be shown: masked keys and remembered secrets
        # hidden (it is the result itself when there is nothing to hide).
        shown = secrets.safe_for_display(result) if secrets.is_active() else result
        args = (self._engine, details['task_name'], details['task_uuid'], state,
                details['old_state'], shown, was_failure)
        # ``exc_info`` is always passed for these states (``None`` unless the
        # failure has one): subclasses written for the reference rely on it.
        exc_info = result.exc_info if isinstance(result, failure.Failure) else None
        self._dump(message, *args, exc_info=exc_info)
