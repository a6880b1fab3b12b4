"""Hearing about posted jobs at once: PostgreSQL ``LISTEN/NOTIFY``.

``post`` sends ``NOTIFY <channel>, '<job uuid>'`` in the statement that
inserts the job (delivered on commit, only if it commits). A board that
wants to hear about posts (``wait()``, or a callback registered on its
``notifier``, as an idle conductor does) runs one :class:`Listener`: a
daemon thread holding one connection of its own (psycopg 3, autocommit,
never in the pool) that listens on the board's channel and hands the
payloads it receives to the board.

It reconnects after the connection is lost (a terminated backend, a
restarted server) as any :class:`~._background.ReconnectingLoop` does, and
once it listens again tells the board (``on_resync``) so posts it could have
missed meanwhile are looked for. It never raises into the board or its
users. Other databases (and PostgreSQL through another driver) have no such
thing: boards on them poll.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from taskflow import logging
from taskflow.jobs.backends import _background

__all__ = ['Listener', 'channel_for', 'supported']

LOG = logging.getLogger(__name__)

#: Seconds :meth:`Listener.start` waits for the first LISTEN to be in place.
START_TIMEOUT = 5.0


def supported(engine: sa.Engine) -> bool:
    """Whether ``engine`` reaches PostgreSQL through psycopg 3."""
    return (engine.dialect.name == 'postgresql'
            and engine.url.get_driver_name() == 'psycopg')


def channel_for(namespace: str) -> str:
    """The notification channel of a board namespace (a short identifier)."""
    return 'taskflow_jobs_' + hashlib.sha1(
        namespace.encode('utf-8')).hexdigest()[:24]


class Listener:
    """A daemon thread listening on ``channel`` until :meth:`close`.

    ``on_notified(payloads)`` gets the payloads of each burst of
    notifications; ``on_resync()`` is called when listening resumes after a
    lost connection. Both run on the listener's thread (their errors are
    logged, never raised). :meth:`wait_for_notification` lets another
    thread block until a notification (or a reconnection) arrives.
    """

    def __init__(self, engine: sa.Engine, channel: str, name: str,
                 on_notified: Callable[[list[str]], None],
                 on_resync: Callable[[], None]) -> None:
        self._engine = engine
        self._channel = channel
        self._name = name
        self._on_notified = on_notified
        self._on_resync = on_resync
        self._cond = threading.Condition()
        self._listening = False
        self._generation = 0     # bumped by every wake-up (see wait_for_...)
        self._tried = threading.Event()   # the first connection attempt ended
        # Written to by close(): interrupts the thread's select() at once.
        self._wake_r, self._wake_w = os.pipe()
        self._loop = _background.ReconnectingLoop(
            'sql-jobboard-listener-%s' % name,
            'Jobboard %r: listening for posted jobs' % name, self._session,
            wake=self._wake)

    # -- for the board --------------------------------------------------------

    @property
    def listening(self) -> bool:
        """Whether LISTEN is in place right now (posts wake waiters)."""
        return self._listening

    @property
    def generation(self) -> int:
        """A counter bumped by every notification burst and reconnection:
        read it *before* looking at the board, then pass it to
        :meth:`wait_for_notification`."""
        return self._generation

    def start(self, timeout: float = START_TIMEOUT) -> bool:
        """Start the thread (once) and wait up to ``timeout`` seconds for its
        first connection attempt; ``True`` if it listens."""
        self._loop.start()
        self._tried.wait(timeout)  # close() sets it too
        return self._listening

    def wait_for_notification(self, generation: int, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until :attr:`generation` moves on
        from ``generation``; ``True`` if it did."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._generation != generation or self._loop.stopping,
                timeout=max(timeout, 0.0)) and not self._loop.stopping

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and drop its connection (waits for it to end)."""
        ended = self._loop.stop(timeout)
        self._tried.set()  # release a start() that waits still
        if ended:
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            # A second close() must not write into a reused descriptor.
            self._wake_r = self._wake_w = -1

    # -- the thread ----------------------------------------------------------

    def _open(self) -> Any:
        raw = self._engine.raw_connection()
        try:
            conn: Any = raw.driver_connection
            raw.detach()  # ours alone, never back in the pool
            conn.rollback()
            conn.autocommit = True
            conn.execute('LISTEN %s' % self._channel)
        except BaseException:
            raw.invalidate()
            raise
        return conn

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # closed already
            os.write(self._wake_w, b'x')
        with self._cond:
            self._cond.notify_all()

    def _session(self, connected: _background.Connected) -> None:
        conn = None
        try:
            conn = self._open()
            self._set_listening(True)
            self._tried.set()
            if connected():
                self._call(self._on_resync)
            self._listen(conn)
        finally:
            self._set_listening(False)
            self._tried.set()
            if conn is not None:
                with contextlib.suppress(Exception):  # a broken connection
                    conn.close()

    def _listen(self, conn: Any) -> None:
        """Deliver notifications until the connection breaks or close()."""
        fd = conn.fileno()
        while not self._loop.stopping:
            ready, _, _ = select.select([fd, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            # Readable: notifications, or the server closing the connection
            # (raises here, and the thread reconnects).
            payloads = [n.payload for n in conn.notifies(timeout=0)]
            if conn.closed:
                raise ConnectionError('the listening connection was closed')
            if payloads:
                self._bump()
                self._call(self._on_notified, payloads)

    def _set_listening(self, value: bool) -> None:
        with self._cond:
            if value != self._listening:
                self._listening = value
                # A waiter polling meanwhile must look at the board again.
                self._generation += 1
                self._cond.notify_all()

    def _bump(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _call(self, func: Callable[..., None], *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            LOG.warning('Jobboard %r: handling posted jobs failed', self._name,
                        exc_info=True)
