"""The daemon thread behind the jobboards' event connections (Redis pub/sub,
the etcd watch, PostgreSQL LISTEN): :class:`ReconnectingLoop`.

It calls ``session(connected)`` until stopped. A session opens its
connection, calls ``connected()`` once that is in place, and serves until it
returns (the next session starts) or raises (an outage: the next starts
after a back-off, ``first_backoff`` doubling up to ``max_backoff``, each
pause drawn between half of it and all of it so the processes that lost the
same server do not all come back at the same instant). Sessions never start
more often than every ``first_backoff`` seconds, so nothing spins. An outage
is logged once, however many attempts it takes, and its end once. An error
raised after :meth:`~ReconnectingLoop.stop` is the session being torn down,
not an outage: the loop just ends.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from taskflow import logging

__all__ = ['ReconnectingLoop']

LOG = logging.getLogger(__name__)

FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0

#: What a session is given: call it once connected; ``True`` if that ended
#: an outage (what was sent meanwhile was missed: a session may resync).
Connected = Callable[[], bool]


class ReconnectingLoop:
    """Runs ``session`` on a daemon thread named ``thread_name`` until
    :meth:`stop` (see the module's doc); ``what`` names the connection in
    the log. ``wake`` is called by :meth:`stop` to interrupt a session
    blocked on its connection (else it should look at :attr:`stopping` at
    least every few tenths of a second)."""

    def __init__(self, thread_name: str, what: str,
                 session: Callable[[Connected], None], *,
                 wake: Callable[[], None] | None = None,
                 first_backoff: float = FIRST_BACKOFF,
                 max_backoff: float = MAX_BACKOFF,
                 rng: random.Random | None = None) -> None:
        self._what = what
        self._session = session
        self._wake = wake
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._backoff = first_backoff
        self._rng = rng or random.Random()
        self._outage_since: float | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()  # start() vs stop()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=thread_name)

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped.is_set()

    def start(self) -> None:
        """Start the thread; later calls, and calls after :meth:`stop`, do
        nothing."""
        with self._lock:
            if self._thread.ident is None and not self._stopped.is_set():
                self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the loop and wait up to ``timeout`` seconds for its thread
        to end; whether it has (``False`` when called from the thread)."""
        with self._lock:  # after this no start() starts the thread
            self._stopped.set()
        if self._wake is not None:
            self._wake()
        if self._thread.ident is not None and \
                self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopped.is_set():
            began = time.monotonic()
            try:
                self._session(self._connected)
                pause = began + self._first_backoff - time.monotonic()
            except Exception as error:
                if self._stopped.is_set():
                    return
                self._failed(error)
                pause = max(self._first_backoff,
                            self._rng.uniform(self._backoff / 2, self._backoff))
                self._backoff = min(self._backoff * 2, self._max_backoff)
            if pause > 0 and self._stopped.wait(pause):
                return

    def _connected(self) -> bool:
        self._backoff = self._first_backoff
        if self._outage_since is None:
            return False
        LOG.info('%s is back (after %.1f s)', self._what,
                 time.monotonic() - self._outage_since)
        self._outage_since = None
        return True

    def _failed(self, error: Exception) -> None:
        if self._outage_since is not None:
            return  # still the same outage: said already
        self._outage_since = time.monotonic()
        # The traceback of a refused connection is noise; a debug log has it.
        LOG.warning('%s failed (%s); retrying with back-off', self._what,
                    _short(error), exc_info=LOG.isEnabledFor(logging.DEBUG))


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return '%s: %s' % (type(error).__name__, text[0] if text else '')
