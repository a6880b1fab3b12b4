"""Riding out short database outages, giving up on long ones, quietly.

An operation of the SQL backend is one transaction; when it fails with a
``TRANSIENT`` error (see ``errors``) it was rolled back and is run again
after a back-off: exponential (``retry_backoff`` seconds, doubling, at most
``MAX_BACKOFF``) with jitter (each delay is drawn between half and all of
it, so processes that lost the database together do not return together).
No new attempt starts once ``max_retries`` retries were made or it would
begin more than ``max_retry_time`` seconds after the operation started: the
last error is then raised (a ``StorageFailure``). Each attempt is itself
bounded (connect, statement, lock, pool and busy timeouts), so an operation
never takes much more than ``max_retry_time`` plus one attempt.

Logging is rate limited per backend (:class:`OutageLog`): the first failure
of an outage is a warning, then at most one warning per ``log_interval``
seconds however many operations and attempts fail, and one line when the
database answers again -- not a line per attempt per call.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from taskflow import exceptions as exc
from taskflow.persistence.backends.sqlalchemy import errors as _errors

__all__ = ['DEFAULT_MAX_RETRIES', 'DEFAULT_MAX_RETRY_TIME',
           'DEFAULT_RETRY_BACKOFF', 'MAX_BACKOFF', 'OutageLog', 'Retrying']

LOG = logging.getLogger('taskflow.persistence.backends.impl_sqlalchemy')

T = TypeVar('T')

DEFAULT_MAX_RETRIES = 10
DEFAULT_MAX_RETRY_TIME = 30.0
DEFAULT_RETRY_BACKOFF = 0.1
MAX_BACKOFF = 5.0
DEFAULT_LOG_INTERVAL = 10.0


def is_transient(error: exc.StorageFailure) -> bool:
    """Whether a ``StorageFailure`` raised by an operation is worth another
    attempt (its cause is a transient database error)."""
    if isinstance(error, exc.UnstorableValue):
        return False
    return _errors.classify(error.cause) == _errors.TRANSIENT


class OutageLog:
    """Rate-limited log lines about one backend's failing operations."""

    def __init__(self, name: str, interval: float = DEFAULT_LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._name = name
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None   # start of the outage
        self._last_line = 0.0
        self._quiet = 0                     # failures not logged since

    def failed(self, operation: str, error: exc.StorageFailure,
               giving_up: bool) -> None:
        """An attempt of ``operation`` failed (and will be retried unless
        ``giving_up``)."""
        now = self._clock()
        with self._lock:
            first = self._since is None
            if first:
                self._since = now
            elif now - self._last_line < self._interval:
                self._quiet += 1
                return
            self._last_line = now
            quiet, self._quiet = self._quiet, 0
            since = self._since or now
        what = _errors.describe(error.cause) if error.cause else str(error)
        if first:
            LOG.warning('%s: %s %s (%s)', self._name, operation,
                        'failed, giving up' if giving_up
                        else 'failed, retrying', what)
        else:
            LOG.warning('%s: the database has been failing for %.1f s (%d'
                        ' more failed attempts); %s %s (%s)', self._name,
                        now - since, quiet, operation,
                        'gave up' if giving_up else 'failed, retrying', what)

    def succeeded(self) -> None:
        """An operation worked: ends the outage, if there was one."""
        if self._since is None:  # unlocked read: the common case
            return
        now = self._clock()
        with self._lock:
            if self._since is None:
                return
            since, quiet = self._since, self._quiet
            self._since = None
            self._quiet = 0
        LOG.warning('%s: the database answers again after %.1f s (%d failed'
                    ' attempts not logged)', self._name, now - since, quiet)


class Retrying:
    """The retry policy of one backend (see the module doc)."""

    def __init__(self, log: OutageLog,
                 max_retries: int = DEFAULT_MAX_RETRIES,
                 max_time: float = DEFAULT_MAX_RETRY_TIME,
                 backoff: float = DEFAULT_RETRY_BACKOFF,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_retries < 0 or max_time < 0 or backoff < 0:
            raise ValueError('max_retries, max_retry_time and retry_backoff'
                             ' must be >= 0, not %r, %r and %r'
                             % (max_retries, max_time, backoff))
        self.log = log
        self.max_retries = max_retries
        self.max_time = max_time
        self.backoff = backoff
        self._sleep = sleep
        self._clock = clock

    def delay(self, retry: int) -> float:
        """How long to wait before retry number ``retry`` (1, 2...)."""
        full = min(MAX_BACKOFF, self.backoff * 2 ** (retry - 1))
        return random.uniform(full / 2, full)

    def call(self, operation: str, func: Callable[..., T], *args: Any
             ) -> T:
        """``func(*args)``, retried after transient failures."""
        started = self._clock()
        try:
            result = func(*args)
        except exc.StorageFailure as e:
            if not is_transient(e):
                raise
            return self._again(operation, func, args, started, e)
        self.log.succeeded()
        return result

    def _again(self, operation: str, func: Callable[..., T], args: tuple,
               started: float, error: exc.StorageFailure) -> T:
        retry = 0
        while True:
            retry += 1
            delay = self.delay(retry)
            giving_up = (retry > self.max_retries or self._clock() + delay
                         - started > self.max_time)
            self.log.failed(operation, error, giving_up)
            if giving_up:
                raise error
            self._sleep(delay)
            try:
                result = func(*args)
            except exc.StorageFailure as e:
                if not is_transient(e):
                    raise
                error = e
                continue
            self.log.succeeded()
            return result
