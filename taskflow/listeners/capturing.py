"""A listener that records the events it receives (handy in tests).

With masking switched on (:mod:`taskflow.secrets`), a recorded result has
values under project-wide masked keys shown as ``'***'`` and a recorded
failure's texts scrubbed (its live ``exc_info`` is kept).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskflow import secrets
from taskflow import states
from taskflow.listeners import base
from taskflow.types import failure


def _freeze_it(values: Iterable[str] | None) -> frozenset[str]:
    if not values:
        return frozenset()
    return frozenset(values)


def _safe(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` (this event's own copy) with its result masked, if masking is on."""
    if 'result' in details and secrets.is_active():
        result = details['result']
        if isinstance(result, failure.Failure):
            details['result'] = secrets.redact_failure(result)
        else:
            details['result'] = secrets.redact(result)
    return details


class CaptureListener(base.Listener):
    """Appends one entry per event to :attr:`values`.

    Each entry is ``_format_capture(kind, state, details)``, by default the
    tuple ``(kind, state, details)`` with ``kind`` one of :attr:`FLOW`,
    :attr:`TASK`, :attr:`RETRY`.  Override ``_format_capture`` to record
    something else.

    :param capture_flow: record flow events (likewise ``capture_task`` and
        ``capture_retry``).
    :param skip_tasks: names of tasks whose events are not recorded
        (likewise ``skip_retries``, ``skip_flows``).
    :param values: the list to append to (shared, not copied); a new list
        when ``None``.
    """

    _SHOWS_VALUES = True

    #: Kind of a flow event.
    FLOW = 'flow'
    #: Kind of a task event.
    TASK = 'task'
    #: Kind of a retry event.
    RETRY = 'retry'

    def __init__(self, engine: Any,
                 task_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 flow_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 retry_listen_for: Iterable[str] | None = base.DEFAULT_LISTEN_FOR,
                 capture_flow: bool = True, capture_task: bool = True,
                 capture_retry: bool = True,
                 skip_tasks: Iterable[str] | None = None,
                 skip_retries: Iterable[str] | None = None,
                 skip_flows: Iterable[str] | None = None,
                 values: list[Any] | None = None) -> None:
        super().__init__(engine, task_listen_for=task_listen_for,
                         flow_listen_for=flow_listen_for,
                         retry_listen_for=retry_listen_for)
        self._capture_flow = capture_flow
        self._capture_task = capture_task
        self._capture_retry = capture_retry
        self._skip_tasks = _freeze_it(skip_tasks)
        self._skip_flows = _freeze_it(skip_flows)
        self._skip_retries = _freeze_it(skip_retries)
        self.values: list[Any] = [] if values is None else values

    @staticmethod
    def _format_capture(kind: str, state: str, details: dict[str, Any]) -> Any:
        """What to record for one event (default: ``(kind, state, details)``)."""
        return (kind, state, details)

    def _task_receiver(self, state: str, details: dict[str, Any]) -> None:
        if self._capture_task and details['task_name'] not in self._skip_tasks:
            self.values.append(self._format_capture(self.TASK, state, _safe(details)))

    def _retry_receiver(self, state: str, details: dict[str, Any]) -> None:
        if self._capture_retry and details['retry_name'] not in self._skip_retries:
            self.values.append(self._format_capture(self.RETRY, state, _safe(details)))

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        if state == states.RUNNING:
            self._learn_secrets()
        if self._capture_flow and details['flow_name'] not in self._skip_flows:
            self.values.append(self._format_capture(self.FLOW, state, details))
