"""Listeners that write flow and task state changes to a logger.

* :class:`LoggingListener` logs the :class:`~taskflow.listeners.base.DumpingListener`
  messages at one level.
* :class:`DynamicLoggingListener` picks the level from the state (failures
  and reverts at ``failure_level``) and, for failures, appends what the
  :class:`~taskflow.formatters.FailureFormatter` says about the atoms that
  ran before the failing one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from taskflow import formatters
from taskflow import logging as tf_logging
from taskflow import states
from taskflow import task
from taskflow.listeners import base
from taskflow.types import failure

LOG = tf_logging.getLogger(__name__)


def _pick_logger(listener: Any, log: Any) -> Any:
    # Explicit logger, else a class-level override, else this module's logger.
    if log is not None:
        return log
    if listener._LOGGER is not None:
        return listener._LOGGER
    return LOG


class LoggingListener(base.DumpingListener):
    """Logs every flow and task state change at ``level``.

    :param log: the logger to use (default: the class attribute ``_LOGGER``
        when set, else the ``taskflow.listeners.logging`` logger).
    :param level: the level of every message; failures carry ``exc_info``.
    """

    #: Subclasses may set a default logger here.
    _LOGGER: Any = None

    def __init__(self, engine: Any,
                 task_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 flow_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 retry_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 log: Any = None, level: int = logging.DEBUG) -> None:
        super().__init__(engine, task_listen_for=task_listen_for,
                         flow_listen_for=flow_listen_for,
                         retry_listen_for=retry_listen_for)
        self._logger = _pick_logger(self, log)
        self._level = level

    def _dump(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._logger.log(self._level, message, *args, **kwargs)


def _make_matcher(task_name: str) -> Callable[[Any], bool]:
    """An ``atom_matcher`` for :meth:`FailureFormatter.format`: the task named ``task_name``."""

    def _task_matcher(node: Any) -> bool:
        item = node.item
        return isinstance(item, task.Task) and item.name == task_name

    return _task_matcher


class DynamicLoggingListener(base.Listener):
    """Logs flow and task state changes at a level that depends on the state.

    Flows entering ``FAILURE``/``REVERTED`` and tasks entering ``FAILURE``,
    ``REVERT_FAILURE``, ``REVERTED`` or ``RETRYING`` are logged at
    ``failure_level``; everything else at ``level``.  A task whose result is
    a :class:`~taskflow.types.failure.Failure` is always logged at
    ``failure_level``, with its ``exc_info`` and the details produced by
    ``fail_formatter`` (by default a
    :class:`~taskflow.formatters.FailureFormatter` built from
    ``hide_inputs_outputs_of``, ``mask_inputs_keys`` and
    ``mask_outputs_keys``).  Results of tasks named in
    ``hide_inputs_outputs_of`` are never logged, nor are results when
    ``level`` is not enabled on the logger.  Retry events are not logged.
    """

    #: Subclasses may set a default logger here.
    _LOGGER: Any = None

    #: Task states whose details carry a Failure (informative).
    _FAILURE_STATES = (states.FAILURE, states.REVERT_FAILURE)

    def __init__(self, engine: Any,
                 task_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 flow_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 retry_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 log: Any = None, failure_level: int = logging.WARNING,
                 level: int = logging.DEBUG,
                 hide_inputs_outputs_of: Iterable[str] = (),
                 fail_formatter: Any = None,
                 mask_inputs_keys: Iterable[str] = (),
                 mask_outputs_keys: Iterable[str] = ()) -> None:
        super().__init__(engine, task_listen_for=task_listen_for,
                         flow_listen_for=flow_listen_for,
                         retry_listen_for=retry_listen_for)
        self._failure_level = failure_level
        self._level = level
        self._task_log_levels = {
            states.FAILURE: failure_level,
            states.REVERTED: failure_level,
            states.RETRYING: failure_level,
            states.REVERT_FAILURE: failure_level,
        }
        self._flow_log_levels = {
            states.FAILURE: failure_level,
            states.REVERTED: failure_level,
        }
        self._hide_inputs_outputs_of = frozenset(hide_inputs_outputs_of)
        self._mask_inputs_keys = frozenset(mask_inputs_keys)
        self._mask_outputs_keys = frozenset(mask_outputs_keys)
        self._logger = _pick_logger(self, log)
        if fail_formatter is None:
            fail_formatter = formatters.FailureFormatter(
                engine, hide_inputs_outputs_of=self._hide_inputs_outputs_of,
                mask_inputs_keys=self._mask_inputs_keys,
                mask_outputs_keys=self._mask_outputs_keys)
        self._fail_formatter = fail_formatter

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        level = self._flow_log_levels.get(state, self._level)
        self._logger.log(level, "Flow '%s' (%s) transitioned into state '%s' from state '%s'",
                         details['flow_name'], details['flow_uuid'], state,
                         details['old_state'])

    def _task_receiver(self, state: str, details: dict[str, Any]) -> None:
        task_name = details['task_name']
        result = details.get('result')
        if isinstance(result, failure.Failure):
            self._log_failure(state, details, result)
            return
        level = self._task_log_levels.get(state, self._level)
        if ('result' in details and state in base.FINISH_STATES
                and task_name not in self._hide_inputs_outputs_of
                # Results can be big or secret: only show them to loggers that
                # asked for the detailed level.
                and self._logger.isEnabledFor(self._level)):
            self._logger.log(level, "Task '%s' (%s) transitioned into state '%s' from state"
                             " '%s' with result '%s'", task_name, details['task_uuid'],
                             state, details['old_state'], result)
        else:
            self._logger.log(level, "Task '%s' (%s) transitioned into state '%s' from state"
                             " '%s'", task_name, details['task_uuid'], state,
                             details['old_state'])

    def _log_failure(self, state: str, details: dict[str, Any],
                     result: failure.Failure) -> None:
        level = self._failure_level
        if not self._logger.isEnabledFor(level):
            return  # formatting walks the graph and storage: skip it when unseen
        exc_info, fail_details = self._fail_formatter.format(
            result, _make_matcher(details['task_name']))
        if fail_details:
            tail = (os.linesep, fail_details)
        else:
            tail = ('', '')
        self._logger.log(level, "Task '%s' (%s) transitioned into state '%s' from state"
                         " '%s'%s%s", details['task_name'], details['task_uuid'], state,
                         details['old_state'], *tail, exc_info=exc_info)
