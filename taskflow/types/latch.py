"""A count-down latch: wait until something happened ``count`` times."""

from __future__ import annotations

import threading


class Latch:
    """Threads :meth:`wait` until :meth:`countdown` was called ``count`` times."""

    def __init__(self, count: int) -> None:
        count = int(count)
        if count <= 0:
            raise ValueError("Count must be greater than zero")
        self._count = count
        self._cond = threading.Condition()

    @property
    def needed(self) -> int:
        """How many more count downs are needed (never below zero)."""
        return max(0, self._count)

    def countdown(self) -> None:
        """Decrement the count, waking up the waiters when it reaches zero."""
        with self._cond:
            self._count -= 1
            if self._count <= 0:
                self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the count reaches zero; ``False`` if ``timeout`` elapsed."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count <= 0,
                                       timeout=timeout)
