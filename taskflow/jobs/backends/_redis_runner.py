"""Running the Redis board's Lua scripts on the lean path.

Every board operation is one ``EVALSHA``; through redis-py's client each
costs about 60 us of CPU (pool checkout, retry and instrumentation layers),
three times the ~20 us of sending it on a connection directly. So each thread
keeps one connection checked out of the client's pool (connected by the
pool: same server, credentials, TLS, Sentinel master resolution) and the runner does
what the client would: reload a script the server forgot (``NOSCRIPT``) and
retry a dropped connection a few times with a short back-off. It also
writes the command's wire form itself (:func:`pack`): redis-py's general
packer took most of the remaining CPU of a call. Retrying is
safe because every script call carries a nonce (see ``_redis_scripts``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from redis import exceptions as redis_exceptions

#: Tries of a call whose connection dropped, and the back-off between them.
ATTEMPTS = 3
FIRST_DELAY = 0.02
MAX_DELAY = 0.2

RETRYABLE = (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError,
             redis_exceptions.ReadOnlyError, OSError)


def pack(head: bytes, parts: list[Any], encoding: str = 'utf-8',
         errors: str = 'strict') -> bytes:
    """The RESP array of ``head`` (bytes, already encoded) and ``parts``:
    bytes as they are, str encoded, int and float as redis-py writes them
    (decimal, ``repr``)."""
    out = [head]
    for part in parts:
        if isinstance(part, bytes):
            pass
        elif isinstance(part, str):
            part = part.encode(encoding, errors)
        elif isinstance(part, int) and not isinstance(part, bool):
            part = b'%d' % part
        elif isinstance(part, float):
            part = repr(part).encode('ascii')
        else:
            raise redis_exceptions.DataError(
                'Invalid input of type %r for a script argument'
                % type(part).__name__)
        out.append(b'$%d\r\n%s\r\n' % (len(part), part))
    return b''.join(out)


class ScriptRunner:
    """Runs named Lua scripts, one connection per calling thread."""

    def __init__(self, client: Any, sources: dict[str, str]) -> None:
        self._client = client
        self._pool = client.connection_pool
        self._sources = dict(sources)
        self._shas = {name: hashlib.sha1(source.encode('utf-8')).hexdigest()
                      for name, source in sources.items()}
        # "EVALSHA <sha>" of each script, on the wire: the start of every call.
        self._heads = {name: b'$7\r\nEVALSHA\r\n$40\r\n%s\r\n'
                       % sha.encode('ascii') for name, sha in self._shas.items()}
        kwargs = self._pool.connection_kwargs
        self._encoding = kwargs.get('encoding') or 'utf-8'
        self._errors = kwargs.get('encoding_errors') or 'strict'
        self._local = threading.local()
        self._lock = threading.Lock()
        self._made: list[Any] = []

    def load(self) -> None:
        """Load every script on the server (checks the server answers)."""
        for source in self._sources.values():
            self._client.script_load(source)

    def _connection(self) -> Any:
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            # Checked out of the pool for good: the pool connects it (and a
            # Sentinel pool resolves the master first).
            try:
                conn = self._pool.get_connection()
            except TypeError:  # redis-py < 6 wants a command name
                conn = self._pool.get_connection('EVALSHA')
            with self._lock:
                self._made.append(conn)
            self._local.conn = conn
        return conn

    def _drop(self, conn: Any) -> None:
        """Give up a broken connection; the thread's next call gets a new
        one from the pool."""
        self._local.conn = None
        with self._lock:
            if conn in self._made:
                self._made.remove(conn)
        conn.disconnect()
        self._pool.release(conn)

    def __call__(self, name: str, keys: list[Any], args: list[Any]) -> Any:
        """The reply of script ``name`` run with ``keys`` and ``args``."""
        packed = pack(b'*%d\r\n%s' % (3 + len(keys) + len(args),
                                        self._heads[name]),
                      [len(keys), *keys, *args], self._encoding, self._errors)
        delay = FIRST_DELAY
        attempt = 0
        while True:
            attempt += 1
            conn = self._connection()
            try:
                conn.send_packed_command([packed])
                return conn.read_response()
            except redis_exceptions.NoScriptError:
                # The server restarted or flushed its scripts.
                if attempt >= ATTEMPTS:
                    raise
                self._client.script_load(self._sources[name])
            except RETRYABLE:
                self._drop(conn)
                if attempt >= ATTEMPTS:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)

    def close(self) -> None:
        """Disconnect every connection made (threads get new ones)."""
        with self._lock:
            made, self._made = self._made, []
            self._local = threading.local()
        for conn in made:
            try:
                conn.disconnect()
                self._pool.release(conn)
            except Exception:  # closing: nothing more to do with it
                pass
