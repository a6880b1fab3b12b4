"""A client-side limit on waiting for a database server that hangs.

Server-side timeouts (PostgreSQL's ``statement_timeout``) do nothing when
the server, or the network to it, stops answering while the TCP connection
stays up (a frozen server, a stuck proxy, a black-holed route before the
keepalives notice): libpq has no read timeout, so the client would wait
forever. The watchdog gives each connection the backend runs an operation
on a deadline (``limit`` seconds after its latest statement, commit or
rollback began, until it is checked back in); a connection past it has its
socket shut down from the watchdog's thread, which makes the blocked call
fail at once with a lost-connection error (retried like any other, see
``retrying``).

One daemon thread serves every backend; it wakes every ``TICK`` seconds
while connections are checked out and sleeps otherwise.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

__all__ = ['TICK', 'WATCHED', 'install']

LOG = logging.getLogger(__name__)

TICK = 0.25
_IDLE_TICKS = 20
_WARNING_INTERVAL = 10.0
_last_warning = -_WARNING_INTERVAL


class _Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # id(dbapi connection) -> [deadline, limit, connection, what]
        self._armed: dict[int, list] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def arm(self, dbapi_connection: Any, limit: float, what: str) -> None:
        """(Re)start the connection's deadline: ``limit`` seconds from now."""
        entry = self._armed.get(id(dbapi_connection))
        if entry is not None:
            entry[0] = time.monotonic() + limit
            return
        with self._lock:
            self._armed[id(dbapi_connection)] = [
                time.monotonic() + limit, limit, dbapi_connection, what]
            if ((self._thread is None or not self._thread.is_alive())
                    and not sys.is_finalizing()):
                # (No new thread while the interpreter exits: starting one
                # then blocks forever, e.g. a lease released by a finalizer.)
                self._thread = threading.Thread(
                    target=self._run, name='taskflow-sql-watchdog',
                    daemon=True)
                self._thread.start()
        if not self._wake.is_set():
            self._wake.set()

    def disarm(self, dbapi_connection: Any) -> None:
        with self._lock:
            self._armed.pop(id(dbapi_connection), None)

    def _run(self) -> None:
        idle = 0
        while True:
            # Sleep for good only after a while without connections: a
            # busy engine checks connections out and in all the time.
            idle = idle + 1 if not self._armed else 0
            if idle > _IDLE_TICKS:
                self._wake.clear()
                if not self._armed:  # checked again: arm() may have raced
                    self._wake.wait()
                idle = 0
            time.sleep(TICK)
            now = time.monotonic()
            with self._lock:
                for key, entry in list(self._armed.items()):
                    if entry[0] <= now:
                        del self._armed[key]
                        _cut(entry[2], entry[1], entry[3])


def _cut(dbapi_connection: Any, limit: float, what: str) -> None:
    """Shut the connection's socket down (the blocked call then fails)."""
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # already closed
        return
    if fd is None or fd < 0:
        return
    # A duplicate of the descriptor: shutdown() acts on the socket itself,
    # and closing the duplicate leaves the driver's descriptor alone.
    try:
        duplicate = os.dup(fd)
    except OSError:
        return
    try:
        sock = socket.socket(fileno=duplicate)
    except OSError:
        os.close(duplicate)
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
    global _last_warning
    now = time.monotonic()
    # Rate limited: a hung server can make every pooled connection wait.
    if now - _last_warning >= _WARNING_INTERVAL:
        _last_warning = now
        LOG.warning('%s: no answer from the database for %.1f s'
                    ' (read_timeout): cut the connection', what, limit)


_WATCHDOG = _Watchdog()


#: Execution option marking the connections the watchdog watches (the
#: backend's own operations; not what a program does with ``backend.engine``).
WATCHED = 'taskflow_watched'


def install(engine: sa.Engine, limit: float, what: str) -> None:
    """Watch the connections of ``engine`` that run with the execution
    option :data:`WATCHED` (see the module doc)."""
    watchdog = _WATCHDOG

    def _arm(conn: sa.Connection, *args: Any) -> None:
        # An invalidated connection (the watchdog may have cut it) has no
        # DBAPI connection to watch, and asking for it would raise.
        if (conn.invalidated or conn.closed
                or not conn.get_execution_options().get(WATCHED)):
            return
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection is not None:
            watchdog.arm(dbapi_connection, limit, what)

    for name in ('before_cursor_execute', 'commit', 'rollback'):
        event.listen(engine, name, _arm)

    def _disarm(dbapi_connection: Any, *args: Any) -> None:
        if dbapi_connection is not None:
            watchdog.disarm(dbapi_connection)

    # Checked in (after its reset), invalidated or closed: no longer ours.
    for name in ('checkin', 'invalidate', 'soft_invalidate', 'close',
                 'close_detached', 'detach'):
        event.listen(engine, name, _disarm)
