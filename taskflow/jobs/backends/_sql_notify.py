"""Waking ``wait()`` when a job is posted: PostgreSQL ``LISTEN/NOTIFY``.

``post`` sends ``NOTIFY`` in its own transaction (delivered on commit). A
board that waits keeps one extra connection of its own (psycopg 3,
autocommit) listening on the board's channel; it starts listening *before*
it looks for jobs, so a job posted between the look and the wait still
wakes it. Other databases have no such thing: the board polls.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import sqlalchemy as sa

__all__ = ['Listener', 'channel_for', 'supported']


def supported(engine: sa.Engine) -> bool:
    """Whether ``engine`` reaches PostgreSQL through psycopg 3."""
    return (engine.dialect.name == 'postgresql'
            and engine.url.get_driver_name() == 'psycopg')


def channel_for(namespace: str) -> str:
    """The notification channel of a board namespace (a short identifier)."""
    return 'taskflow_jobs_' + hashlib.sha1(
        namespace.encode('utf-8')).hexdigest()[:24]


class Listener:
    """One listening connection, opened on first use, reopened after errors."""

    def __init__(self, engine: sa.Engine, channel: str) -> None:
        self._engine = engine
        self._channel = channel
        self._lock = threading.Lock()
        self._conn: Any = None

    def _open(self) -> Any:
        raw = self._engine.raw_connection()
        conn: Any = raw.driver_connection
        raw.detach()  # ours alone, never back in the pool
        conn.rollback()
        conn.autocommit = True
        conn.execute('LISTEN %s' % self._channel)
        return conn

    def listen(self) -> None:
        """Make sure we listen (call before looking for jobs)."""
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._open()

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a notification; ``True`` if
        one came (a broken connection is dropped and reports ``True`` so the
        caller looks again)."""
        with self._lock:
            conn = self._conn
            if conn is None:
                return True
            try:
                got = False
                for _ in conn.notifies(timeout=max(timeout, 0.0),
                                       stop_after=1):
                    got = True
                if got:  # one look at the board answers every pending post
                    for _ in conn.notifies(timeout=0):
                        pass
                return got
            except Exception:  # a dropped connection: reopened by listen()
                self._drop()
                time.sleep(min(timeout, 0.1))
                return True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken
                pass

    def close(self) -> None:
        with self._lock:
            self._drop()
