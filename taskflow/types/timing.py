"""Timing helpers: interruptible :class:`Timeout` and a :class:`StopWatch`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple


class Timeout:
    """An interruptible timeout: :meth:`wait` sleeps ``value`` seconds or
    until :meth:`interrupt` is called.
    """

    def __init__(self, value: float,
                 event_factory: Callable[[], Any] = threading.Event) -> None:
        if value < 0:
            raise ValueError("Timeout value must be greater or"
                             " equal to zero and not '%s'" % (value,))
        self._value = value
        self._event = event_factory()

    @property
    def value(self) -> float:
        """The number of seconds :meth:`wait` sleeps."""
        return self._value

    def interrupt(self) -> None:
        """Wake up :meth:`wait` (now and until :meth:`reset`)."""
        self._event.set()

    def is_stopped(self) -> bool:
        """Whether :meth:`interrupt` was called (since the last reset)."""
        return self._event.is_set()

    def wait(self) -> None:
        """Sleep ``value`` seconds, or less if interrupted."""
        self._event.wait(self._value)

    def reset(self) -> None:
        """Forget a previous :meth:`interrupt`."""
        self._event.clear()


def convert_to_timeout(value: Any = None, default_value: Any = None,
                       event_factory: Callable[[], Any] = threading.Event
                       ) -> Timeout:
    """Turn ``value`` (or ``default_value``) into a :class:`Timeout`.

    A ``Timeout`` is returned as is; anything else is converted with
    ``float()``.
    """
    if value is None:
        value = default_value
    if isinstance(value, Timeout):
        return value
    try:
        value = float(value)
    except TypeError:
        raise ValueError("Invalid timeout literal '%s'" % (value,)) from None
    return Timeout(value, event_factory=event_factory)


class Split(NamedTuple):
    """A split time of a :class:`StopWatch`."""

    #: Seconds since the watch started.
    elapsed: float
    #: Seconds since the previous split (or the start).
    length: float


_STARTED = 'STARTED'
_STOPPED = 'STOPPED'


class StopWatch:
    """A simple timer (monotonic clock) with an optional expiry ``duration``.

    Same API as ``oslo_utils.timeutils.StopWatch``, which the reference
    library uses: ``start``, ``stop``, ``resume``, ``restart``, ``split``,
    ``elapsed``, ``leftover``, ``expired``; also a context manager.
    """

    _STARTED = _STARTED
    _STOPPED = _STOPPED

    def __init__(self, duration: float | None = None) -> None:
        if duration is not None and duration < 0:
            raise ValueError("Duration must be greater or equal to"
                             " zero and not %s" % (duration,))
        self._duration = duration
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._state: str | None = None
        self._splits: tuple[Split, ...] = ()

    def start(self) -> StopWatch:
        """Start (or start again from zero); returns the watch.

        Split times taken before are kept (as the reference does).
        """
        self._started_at = time.monotonic()
        self._stopped_at = None
        self._state = _STARTED
        return self

    @property
    def splits(self) -> tuple[Split, ...]:
        """The split times taken so far."""
        return self._splits

    def split(self) -> Split:
        """Record and return a split time."""
        if self._state != _STARTED:
            raise RuntimeError("Can not create a split time of a stopwatch"
                               " if it has not been started or if it has been"
                               " stopped")
        elapsed = self.elapsed()
        if self._splits:
            length = elapsed - self._splits[-1].elapsed
        else:
            length = elapsed
        split = Split(elapsed, length)
        self._splits = self._splits + (split,)
        return split

    def restart(self) -> StopWatch:
        """Stop (if running) and start again from zero."""
        if self._state == _STARTED:
            self.stop()
        self.start()
        return self

    def elapsed(self, maximum: float | None = None) -> float:
        """Seconds elapsed, at most ``maximum`` when given."""
        if self._state not in (_STARTED, _STOPPED):
            raise RuntimeError("Can not get the elapsed time of a stopwatch"
                               " if it has not been started/stopped")
        if self._state == _STOPPED:
            elapsed = self._stopped_at - self._started_at
        else:
            elapsed = time.monotonic() - self._started_at
        elapsed = max(0.0, elapsed)
        if maximum is not None and elapsed > maximum:
            elapsed = max(0.0, maximum)
        return elapsed

    def __enter__(self) -> StopWatch:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, exc_tb: Any) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass

    def leftover(self, return_none: bool = False) -> float | None:
        """Seconds left until ``duration`` expires (never below zero)."""
        if self._state != _STARTED:
            raise RuntimeError("Can not get the leftover time of a stopwatch"
                               " that has not been started")
        if self._duration is None:
            if return_none:
                return None
            raise RuntimeError("Can not get the leftover time of a watch that"
                               " has no duration")
        return max(0.0, self._duration - self.elapsed())

    def expired(self) -> bool:
        """Whether more than ``duration`` seconds elapsed (never without one)."""
        if self._state not in (_STARTED, _STOPPED):
            raise RuntimeError("Can not check if a stopwatch has expired"
                               " if it has not been started/stopped")
        if self._duration is None:
            return False
        return self.elapsed() > self._duration

    def has_started(self) -> bool:
        """Whether the watch is running."""
        return self._state == _STARTED

    def has_stopped(self) -> bool:
        """Whether the watch was stopped."""
        return self._state == _STOPPED

    def resume(self) -> None:
        """Continue a stopped watch (the stopped time counts as elapsed)."""
        if self._state != _STOPPED:
            raise RuntimeError("Can not resume a stopwatch that has not been"
                               " stopped")
        self._stopped_at = None
        self._state = _STARTED

    def stop(self) -> StopWatch | None:
        """Stop the watch; returns it (``None`` if it was already stopped)."""
        if self._state == _STOPPED:
            return None
        if self._state != _STARTED:
            raise RuntimeError("Can not stop a stopwatch that has not been"
                               " started")
        self._stopped_at = time.monotonic()
        self._state = _STOPPED
        return self
