"""A listener that stops an engine when the job it runs for is no longer ours.

A conductor that claimed a job on a jobboard runs the job's flow with this
listener attached.  On every task and flow event the listener checks that
the job is still claimed by ``owner``; when it is not (another owner, the
claim expired, or the job vanished), the engine is suspended so two
conductors never keep working on the same job.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from taskflow import exceptions
from taskflow import states
from taskflow.listeners import base

# A plain logger (no NullHandler), as the original: with no logging configured,
# a lost claim is still reported on stderr.
LOG = logging.getLogger(__name__)


class CheckingClaimListener(base.Listener):
    """Checks, on each task and flow event, that ``job`` is still claimed by ``owner``.

    ``job`` needs a ``state`` attribute and ``board`` a ``find_owner(job)``
    method (any jobboard and its jobs qualify).  The job counts as lost when
    its state is ``UNCLAIMED``, its owner is someone else, or reading either
    raises :class:`~taskflow.exceptions.NotFound` or
    :class:`~taskflow.exceptions.JobFailure`.  Then
    ``on_job_loss(engine, state, details)`` is called, on every event while
    the loss lasts; the default handler suspends the engine.
    """

    def __init__(self, engine: Any, job: Any, board: Any, owner: Any,
                 on_job_loss: Callable[[Any, str, dict[str, Any]], Any] | None = None) -> None:
        super().__init__(engine)
        self._job = job
        self._board = board
        self._owner = owner
        self._on_job_loss: Callable[[Any, str, dict[str, Any]], Any]
        if on_job_loss is None:
            self._on_job_loss = self._suspend_engine_on_loss
        else:
            if not callable(on_job_loss):
                raise ValueError("Custom 'on_job_loss' handler must be callable")
            self._on_job_loss = on_job_loss

    def _suspend_engine_on_loss(self, engine: Any, state: str,
                                details: dict[str, Any]) -> None:
        """The default ``on_job_loss``: suspend the engine (failures are logged)."""
        try:
            engine.suspend()
        except exceptions.TaskFlowException as e:
            LOG.warning("Failed suspending engine '%s', (previously owned by '%s'):%s%s",
                        engine, self._owner, os.linesep, e.pformat())

    def _flow_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._claim_checker(state, details)

    def _task_receiver(self, state: str, details: dict[str, Any]) -> None:
        self._claim_checker(state, details)

    def _has_been_lost(self) -> bool:
        try:
            job_state = self._job.state
            job_owner = self._board.find_owner(self._job)
        except (exceptions.NotFound, exceptions.JobFailure):
            return True
        return bool(job_state == states.UNCLAIMED or job_owner != self._owner)

    def _claim_checker(self, state: str, details: dict[str, Any]) -> None:
        if not self._has_been_lost():
            LOG.debug("Job '%s' is still claimed (actively owned by '%s')",
                      self._job, self._owner)
        else:
            LOG.warning("Job '%s' has lost its claim (previously owned by '%s')",
                        self._job, self._owner)
            self._on_job_loss(self._engine, state, details)
