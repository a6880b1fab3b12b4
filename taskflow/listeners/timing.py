"""Listeners that time flows and atoms and save the figures in storage.

* :class:`DurationListener` measures how long each task and flow runs (from
  ``RUNNING``/``REVERTING`` to a finish state, on a monotonic clock) and
  saves ``{'duration': seconds}`` in the atom or flow detail's ``meta``.
* :class:`PrintingDurationListener` also prints when each one starts and
  how long it took.
* :class:`EventTimeListener` saves a wall-clock ``'<STATE>-timestamp'`` for
  every event it receives.

A storage failure while saving is logged (``taskflow.listeners.timing``,
WARNING) and never interrupts the run.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

from taskflow import exceptions as exc
from taskflow import logging
from taskflow import states
from taskflow.listeners import base
from taskflow.types import timing

LOG = logging.getLogger(__name__)

#: States that start a timer.
STARTING_STATES = frozenset([states.RUNNING, states.REVERTING])
#: States that stop a timer and record its duration.
FINISHED_STATES = frozenset(base.FINISH_STATES)
#: Everything a duration listener subscribes to (``PENDING`` drops a timer).
WATCH_STATES = frozenset(itertools.chain(FINISHED_STATES, STARTING_STATES,
                                         [states.PENDING]))

_TASK = 'task'
_FLOW = 'flow'


def _printer(message: str) -> None:
    print(message)


class DurationListener(base.Listener):
    """Saves how long each task and flow took as ``meta['duration']`` (seconds).

    A revert is timed too, and its duration replaces the execution's.
    Retries are not timed.
    """

    def __init__(self, engine: Any) -> None:
        super().__init__(engine, task_listen_for=WATCH_STATES,
                         flow_listen_for=WATCH_STATES)
        self._timers: dict[str, dict[str, timing.StopWatch]] = {_TASK: {}, _FLOW: {}}

    def deregister(self) -> None:
        """Deregister, warning about (and dropping) timers that never finished."""
        super().deregister()
        for item_type, timers in self._timers.items():
            if timers:
                LOG.warning("%s %s(s) did not enter %s states", len(timers), item_type,
                            FINISHED_STATES)
                timers.clear()

    def _record_ending(self, timer: timing.StopWatch, item_type: str, item_name: str,
                       state: str) -> None:
        meta_update = {'duration': timer.elapsed()}
        storage = self._engine.storage
        try:
            if item_type == _FLOW:
                storage.update_flow_metadata(meta_update)
            else:
                storage.update_atom_metadata(item_name, meta_update)
        except exc.StorageFailure:
            LOG.warning("Failure to store duration update %s for %s %s", meta_update,
                        item_type, item_name, exc_info=True)

    def _task_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._receiver(_TASK, details['task_name'], state)

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._receiver(_FLOW, details['flow_name'], state)

    def _receiver(self, item_type: str, item_name: str, state: str) -> None:
        timers = self._timers[item_type]
        if state == states.PENDING:
            timers.pop(item_name, None)
        elif state in STARTING_STATES:
            timers[item_name] = timing.StopWatch().start()
        elif state in FINISHED_STATES:
            timer = timers.pop(item_name, None)
            if timer is not None:
                timer.stop()
                self._record_ending(timer, item_type, item_name, state)


class PrintingDurationListener(DurationListener):
    """A :class:`DurationListener` that also reports starts and durations.

    :param printer: called with each line (default: ``print``).
    """

    def __init__(self, engine: Any, printer: Callable[[str], Any] | None = None) -> None:
        super().__init__(engine)
        self._printer = _printer if printer is None else printer

    def _record_ending(self, timer: timing.StopWatch, item_type: str, item_name: str,
                       state: str) -> None:
        super()._record_ending(timer, item_type, item_name, state)
        self._printer("It took %s '%s' %0.2f seconds to finish."
                      % (item_type, item_name, timer.elapsed()))

    def _receiver(self, item_type: str, item_name: str, state: str) -> None:
        super()._receiver(item_type, item_name, state)
        if state in STARTING_STATES:
            self._printer("'%s' %s started." % (item_name, item_type))


class EventTimeListener(base.Listener):
    """Saves ``time.time()`` as ``meta['<STATE>-timestamp']`` for every event."""

    def __init__(self, engine: Any,
                 task_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 flow_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 retry_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR) -> None:
        super().__init__(engine, task_listen_for=task_listen_for,
                         flow_listen_for=flow_listen_for,
                         retry_listen_for=retry_listen_for)

    def _record_atom_event(self, state: str, atom_name: str) -> None:
        meta_update = {'%s-timestamp' % state: time.time()}
        try:
            self._engine.storage.update_atom_metadata(atom_name, meta_update)
        except exc.StorageFailure:
            LOG.warning("Failure to store timestamp %s for atom %s", meta_update, atom_name,
                        exc_info=True)

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        meta_update = {'%s-timestamp' % state: time.time()}
        try:
            self._engine.storage.update_flow_metadata(meta_update)
        except exc.StorageFailure:
            LOG.warning("Failure to store timestamp %s for flow %s", meta_update,
                        details['flow_name'], exc_info=True)

    def _task_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._record_atom_event(state, details['task_name'])

    def _retry_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._record_atom_event(state, details['retry_name'])
