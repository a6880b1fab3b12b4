"""Listeners that write flow and task state changes to a logger.

* :class:`LoggingListener` logs the :class:`~taskflow.listeners.base.DumpingListener`
  messages at one level.
* :class:`DynamicLoggingListener` picks the level from the state (failures
  and reverts at ``failure_level``) and, for failures, appends what the
  :class:`~taskflow.formatters.FailureFormatter` says about the atoms that
  ran before the failing one.

Secrets: results, failure details and tracebacks are masked before they
are logged, with the project-wide keys (see :mod:`taskflow.secrets`) and,
for :class:`DynamicLoggingListener`, its ``mask_outputs_keys`` (results) and
``mask_inputs_keys``; whatever logger the records go to.  A traceback that
quotes a remembered secret is logged as scrubbed text after the message
instead of as ``exc_info``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from taskflow import formatters
from taskflow import logging as tf_logging
from taskflow import secrets
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
        _log(self._logger, self._level, message, args, kwargs.pop('exc_info', None),
             **kwargs)


def _log(logger: Any, level: int, message: str, args: tuple[Any, ...], exc_info: Any,
         **kwargs: Any) -> None:
    """``logger.log(level, message, *args, exc_info=exc_info)``, secrets hidden.

    The args are already masked; what remains is a traceback quoting a
    remembered secret (the exception's own message, say).  Such a traceback
    is appended to the message as scrubbed text -- the same lines a
    formatter would print -- because the logger may be any logger, and
    ``exc_info`` would be formatted from the live exception later.
    """
    if exc_info is not None and secrets.is_active():
        clean = secrets.safe_traceback(exc_info)
        if clean is not None:
            logger.log(level, message + '\n%s', *args, clean.rstrip('\n'), **kwargs)
            return
    if exc_info is not None:
        kwargs['exc_info'] = exc_info
    logger.log(level, message, *args, **kwargs)


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

    Logged results have the values under ``mask_outputs_keys`` (and the
    project-wide masked keys) shown as ``'***'`` -- the original only masks
    them in the failure details -- and a failure's traceback never quotes a
    value found under ``mask_inputs_keys``/``mask_outputs_keys``.
    """

    #: Subclasses may set a default logger here.
    _LOGGER: Any = None

    _SHOWS_VALUES = True

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
        self._mask_any_keys = self._mask_inputs_keys | self._mask_outputs_keys
        self._logger = _pick_logger(self, log)
        if fail_formatter is None:
            fail_formatter = formatters.FailureFormatter(
                engine, hide_inputs_outputs_of=self._hide_inputs_outputs_of,
                mask_inputs_keys=self._mask_inputs_keys,
                mask_outputs_keys=self._mask_outputs_keys)
        self._fail_formatter = fail_formatter

    def _mask_keys_of_own(self) -> Any:
        return self._mask_any_keys

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        if state == states.RUNNING:
            self._learn_secrets()
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
            if self._mask_outputs_keys or secrets.is_active():
                result = secrets.safe_for_display(result, self._mask_outputs_keys)
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
        if self._mask_any_keys:
            # What the failed task was called with, named like a masked key,
            # may be quoted by its exception's message: remember it first.
            secrets.learn_from_failure(result, self._mask_any_keys)
        exc_info, fail_details = self._fail_formatter.format(
            result, _make_matcher(details['task_name']))
        if fail_details and secrets.is_active():
            fail_details = secrets.scrub(fail_details)   # a custom formatter's too
        tail: tuple[str, str] = (os.linesep, fail_details) if fail_details else ('', '')
        _log(self._logger, level, "Task '%s' (%s) transitioned into state '%s' from state"
             " '%s'%s%s", (details['task_name'], details['task_uuid'], state,
                           details['old_state'], *tail), exc_info)
