"""Keeping a job's claim alive while its flow runs.

A claim expires unless renewed (``JobBoard.renew_claim``); a daemon thread
renews it every third of its expiry.  When the claim is lost (the board
says another claimer holds it, or it could not be renewed before it ran
out), the thread flags it and calls ``on_lost`` (the conductor suspends the
engine then: fencing already refuses its writes, suspending stops it
running tasks whose results could not be stored anyway).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from taskflow import exceptions as exc


class ClaimKeeper:
    """Renews ``who``'s claim of ``job`` until :meth:`stop`."""

    def __init__(self, board: Any, job: Any, who: str, expiry: float,
                 log: Any, on_lost: Callable[[str], Any] | None = None) -> None:
        self._board = board
        self._job = job
        self._who = who
        # Read now: a board may hand the same job object to a later claim.
        self.claim_token: int | None = getattr(job, 'claim_token', None)
        self._expiry = expiry
        self._log = log
        self._on_lost = on_lost
        self._stopped = threading.Event()
        self._lost_reason: str | None = None
        # The claim was (re)taken now: it lasts until then, at least.
        self._valid_until = time.monotonic() + expiry
        self._thread = threading.Thread(
            target=self._run, daemon=True,
            name='claim-keeper-%s' % getattr(job, 'uuid', job))

    @property
    def lost(self) -> str | None:
        """Why the claim was lost, or ``None`` while it is held."""
        return self._lost_reason

    def start(self) -> ClaimKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing (the claim stays until consumed/abandoned/expired)."""
        self._stopped.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(1)  # daemon: a renewal stuck on an outage is left behind

    def set_on_lost(self, on_lost: Callable[[str], Any] | None) -> None:
        """Call ``on_lost(reason)`` when the claim is lost (at once if it
        already was)."""
        self._on_lost = on_lost
        if on_lost is not None and self._lost_reason is not None:
            on_lost(self._lost_reason)

    def _run(self) -> None:
        period = self._expiry / 3.0
        delay = period
        while not self._stopped.wait(delay):
            started = time.monotonic()
            try:
                self._board.renew_claim(self._job, self._who, expiry=self._expiry)
            except (exc.JobFailure, exc.NotFound) as error:
                if self._claim_taken(error) or time.monotonic() >= self._valid_until:
                    self._lose('claim of job %s by %s lost: %s'
                               % (self._job.uuid, self._who, error))
                    return
                # The board is away: retry sooner, the claim still runs.
                self._log.warning('Could not renew the claim of job %s (%s);'
                                  ' retrying', self._job.uuid, error)
                delay = max(0.2, min(period / 3.0, self._valid_until - time.monotonic()))
                continue
            except Exception as error:  # a board bug: keep trying until expiry
                self._log.warning('Renewing the claim of job %s failed', self._job.uuid,
                                  exc_info=True)
                if time.monotonic() >= self._valid_until:
                    self._lose('claim of job %s by %s could not be renewed: %s'
                               % (self._job.uuid, self._who, error))
                    return
                delay = max(0.2, period / 3.0)
                continue
            self._valid_until = started + self._expiry
            delay = period

    def _claim_taken(self, error: BaseException) -> bool:
        """Whether ``error`` means someone else holds (or nobody holds) the
        claim now, rather than the board being unreachable."""
        if isinstance(error, exc.NotFound):
            return True
        try:
            owner = self._board.find_owner(self._job)
        except Exception:
            return False
        return owner != self._who

    def _lose(self, reason: str) -> None:
        self._lost_reason = reason
        self._log.warning('%s', reason)
        if self._on_lost is not None:
            try:
                self._on_lost(reason)
            except Exception:
                self._log.warning('Reacting to the lost claim of job %s failed',
                                  self._job.uuid, exc_info=True)
