"""Backing off while a board or database is away (exponential, capped,
jittered), logging once per step rather than once per loop."""

from __future__ import annotations

import random
import threading
from typing import Any

# First pause, growth factor, longest pause (seconds).
INITIAL = 0.1
FACTOR = 2.0
CAP = 5.0
# At the cap, log one failure in this many (about once a minute).
_LOG_EVERY_AT_CAP = 12


class Backoff:
    """Pauses that grow while failures repeat and reset after a success.

    :meth:`pause` waits on ``stop_event`` so a stop interrupts it at once.
    """

    def __init__(self, stop_event: threading.Event, log: Any, what: str,
                 initial: float = INITIAL, cap: float = CAP,
                 rng: random.Random | None = None) -> None:
        self._stop = stop_event
        self._log = log
        self._what = what
        self._initial = initial
        self._cap = cap
        self._rng = rng or random.Random()
        self._failures = 0
        self._delay = 0.0

    @property
    def failures(self) -> int:
        """Failures in a row since the last success."""
        return self._failures

    def failed(self, error: BaseException) -> float:
        """Record a failure; returns the pause to take (and logs it when the
        pause grows, so an outage logs a bounded number of lines)."""
        self._failures += 1
        grown = self._delay < self._cap
        if self._delay == 0:
            self._delay = self._initial
        else:
            self._delay = min(self._cap, self._delay * FACTOR)
        if grown or self._failures % _LOG_EVERY_AT_CAP == 0:
            self._log.warning('%s failed (%d time(s) in a row), retrying in'
                              ' up to %.1f s: %s', self._what, self._failures,
                              self._delay, error)
        # Full jitter: conductors that lost the same service spread out.
        return self._rng.uniform(self._delay / 2, self._delay)

    def pause(self, error: BaseException) -> bool:
        """:meth:`failed`, then wait (``False`` if stopped meanwhile)."""
        return not self._stop.wait(self.failed(error))

    def succeeded(self) -> None:
        """The service answered: start again from the shortest pause."""
        if self._failures:
            self._log.info('%s works again after %d failure(s)', self._what,
                           self._failures)
        self._failures = 0
        self._delay = 0.0
