"""Running the Redis board's Lua scripts on the lean path.

Every board operation is one ``EVALSHA``; through redis-py's client each
costs about 60 us of CPU (pool checkout, retry and instrumentation layers),
three times the ~20 us of sending it on a connection directly. So each thread
keeps one connection checked out of the client's pool (connected by the
pool: same server, credentials, TLS, Sentinel master resolution) and the runner does
what the client would: reload a script the server forgot (``NOSCRIPT``) and
retry a dropped connection a few times with a short back-off. It also
writes the command's wire form itself (:func:`pack`) and reads the reply
itself (:func:`parse`, straight from the connection's socket): redis-py's
general packer and parser took most of the remaining CPU of a call. Retrying is
safe because every script call carries a nonce (see ``_redis_scripts``).
"""

from __future__ import annotations

import hashlib
import socket
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


class Incomplete(Exception):
    """More bytes are needed to parse the reply."""


def parse(buf: bytes, pos: int = 0) -> tuple[Any, int]:
    """The RESP (2 or 3) value starting at ``buf[pos]`` and where it ends.

    Errors come back as ``str`` wrapped in :class:`ErrorReply` (the caller
    raises them); :class:`Incomplete` when ``buf`` ends first.
    """
    end = buf.find(b'\r\n', pos)
    if end < 0:
        raise Incomplete()
    kind, line, pos = buf[pos], buf[pos + 1:end], end + 2
    if kind == 58:  # ':'
        return int(line), pos
    if kind in (36, 61):  # '$', '=' (verbatim, RESP3)
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise Incomplete()
        data = buf[pos:pos + size]
        return (data[4:] if kind == 61 else data), pos + size + 2
    if kind in (42, 126):  # '*', '~' (set, RESP3)
        size = int(line)
        if size < 0:
            return None, pos
        items = []
        for _ in range(size):
            item, pos = parse(buf, pos)
            items.append(item)
        return items, pos
    if kind == 43:  # '+'
        return line, pos
    if kind == 45:  # '-'
        return ErrorReply(line.decode('utf-8', 'replace')), pos
    if kind == 95:  # '_' (null, RESP3)
        return None, pos
    if kind == 35:  # '#' (boolean, RESP3)
        return line == b't', pos
    if kind == 44:  # ',' (double, RESP3)
        return float(line), pos
    raise redis_exceptions.InvalidResponse(
        'Unexpected reply type %r from the server' % chr(kind))


class ErrorReply(str):
    """An error the server answered (``-ERR ...``)."""


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
                try:
                    conn.send_packed_command([packed])
                    reply = self._read(conn)
                except RETRYABLE:
                    raise
                except BaseException:
                    # Half a reply may be left unread: the stream is lost.
                    self._drop(conn)
                    raise
                if isinstance(reply, ErrorReply):
                    raise conn._parser.parse_error(str(reply))
                return reply
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

    @staticmethod
    def _read(conn: Any) -> Any:
        """One reply, read from ``conn``'s socket (nothing else reads it:
        the connection is this thread's alone, one reply per call)."""
        sock = conn._sock
        if sock is None:
            raise redis_exceptions.ConnectionError('Connection closed')
        buf = b''
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                raise redis_exceptions.TimeoutError(
                    'Timeout reading from the server') from None
            except OSError as e:
                raise redis_exceptions.ConnectionError(
                    'Error reading from the server: %s' % e) from e
            if not chunk:
                raise redis_exceptions.ConnectionError(
                    'Connection closed by server.')
            buf += chunk
            try:
                reply, end = parse(buf)
            except Incomplete:
                continue
            except ValueError as e:
                raise redis_exceptions.InvalidResponse(
                    'Unreadable reply: %s' % e) from e
            if end != len(buf):
                # More than one reply: the stream is out of step.
                raise redis_exceptions.ConnectionError(
                    'Unexpected data after a reply')
            return reply

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
