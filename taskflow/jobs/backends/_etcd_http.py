"""JSON requests to etcd's v3 gateway over kept-alive connections (the etcd
board's transport).

A request is written with one ``sendall`` (request line, headers and body
together) and its answer read with a minimal HTTP/1.1 reader: about 20 µs
of client CPU and a third of the latency of ``http.client`` (which parses
headers with the email package and writes headers and body separately),
and several times less again than ``requests`` (which ``etcd3gw`` uses).
The board still uses ``etcd3gw`` to discover the API path, for watches, and
for every request when the caller hands it an ``etcd3gw`` client.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import threading
from typing import BinaryIO

__all__ = ['EtcdRequestError', 'Transport']

# Longest status or header line accepted (etcd's are short).
_MAX_LINE = 65536


class EtcdRequestError(Exception):
    """A request did not get an answer, or got an error status."""


class _Connection:
    """One kept-alive HTTP/1.1 connection (used by one request at a time)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: BinaryIO = sock.makefile('rb')

    def close(self) -> None:
        for closing in (self.reader.close, self.sock.close):
            try:
                closing()
            except OSError:
                pass

    def dropped(self) -> bool:
        """Whether the server closed it while idle (etcd restarted or timed
        it out): an idle connection with something to read has hit EOF."""
        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def exchange(self, request: bytes) -> tuple[int, str, bytes, bool]:
        """Send ``request``; ``(status, reason, body, keep)`` of the answer
        (``keep``: the connection may serve another request)."""
        self.sock.sendall(request)
        line = self._line()
        if not line:
            raise EtcdRequestError('connection closed by the server')
        version, _, rest = line.partition(b' ')
        code, _, reason = rest.partition(b' ')
        try:
            status = int(code)
        except ValueError:
            raise EtcdRequestError('not an HTTP answer: %r' % line[:100])
        length = None
        chunked = False
        keep = version == b'HTTP/1.1'
        while True:
            header = self._line()
            if header in (b'\r\n', b'\n', b''):
                break
            name, _, value = header.partition(b':')
            name = name.strip().lower()
            if name == b'content-length':
                length = int(value)
            elif name == b'transfer-encoding':
                chunked = b'chunked' in value.lower()
            elif name == b'connection':
                keep = b'close' not in value.lower()
        if chunked:
            body = self._chunks()
        elif length is not None:
            body = self._exactly(length)
        else:
            body, keep = self.reader.read(), False  # ends at EOF
        return status, reason.strip().decode('latin-1'), body, keep

    def _line(self) -> bytes:
        line = self.reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise EtcdRequestError('HTTP line too long')
        return line

    def _exactly(self, size: int) -> bytes:
        data = self.reader.read(size)
        if len(data) != size:
            raise EtcdRequestError('connection closed mid-answer')
        return data

    def _chunks(self) -> bytes:
        parts = []
        while True:
            size_line = self._line()
            if not size_line:
                raise EtcdRequestError('connection closed mid-answer')
            size = int(size_line.split(b';', 1)[0].strip() or b'0', 16)
            if size == 0:
                while self._line() not in (b'\r\n', b'\n', b''):
                    pass  # trailers
                return b''.join(parts)
            parts.append(self._exactly(size))
            self._exactly(2)  # the CRLF after each chunk


class Transport:
    """POSTs JSON bodies to ``<protocol>://<host>:<port><api_path>`` and
    returns the decoded answers; safe to share between threads (each
    request takes an idle connection, or opens one)."""

    def __init__(self, host: str, port: int, api_path: str,
                 protocol: str = 'http', timeout: float | None = None,
                 ca_cert: str | None = None, cert_key: str | None = None,
                 cert_cert: str | None = None) -> None:
        self._host = host
        self._port = int(port)
        self._prefix = '/' + api_path.strip('/') + '/'
        self._timeout = timeout
        self._context: ssl.SSLContext | None = None
        if protocol == 'https':
            self._context = ssl.create_default_context(cafile=ca_cert)
            if cert_cert and cert_key:
                self._context.load_cert_chain(cert_cert, cert_key)
        host_header = '[%s]' % host if ':' in host else host
        self._head = ('Host: %s:%d\r\nContent-Type: application/json\r\n'
                      'Content-Length: ' % (host_header, self._port)
                      ).encode('latin-1')
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connection(self) -> _Connection:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.dropped():
                    return conn
                conn.close()
        sock = socket.create_connection((self._host, self._port),
                                        timeout=self._timeout)
        try:
            # Each request is one write: send it now, do not wait for ACKs.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock = self._context.wrap_socket(sock,
                                                 server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def post(self, path: str, payload: dict) -> dict:
        """The answer to ``payload`` POSTed to ``path`` (e.g.
        ``'kv/range'``); ``EtcdRequestError`` on any failure."""
        body = json.dumps(payload, separators=(',', ':')).encode('utf-8')
        request = b''.join((
            b'POST ', (self._prefix + path.lstrip('/')).encode('utf-8'),
            b' HTTP/1.1\r\n', self._head, str(len(body)).encode('ascii'),
            b'\r\n\r\n', body))
        conn = None
        try:
            conn = self._connection()
            status, reason, answer, keep = conn.exchange(request)
        except (OSError, ValueError, EtcdRequestError) as e:
            if conn is not None:
                conn.close()
            if isinstance(e, EtcdRequestError):
                raise
            raise EtcdRequestError(str(e) or type(e).__name__) from e
        with self._lock:
            keep = keep and not self._closed
            if keep:
                self._idle.append(conn)
        if not keep:
            conn.close()
        if status != 200:
            raise EtcdRequestError(answer.decode('utf-8', 'replace'), reason)
        try:
            return json.loads(answer)
        except ValueError as e:
            raise EtcdRequestError('unreadable answer: %r'
                                   % answer[:200]) from e

    def close(self) -> None:
        """Close every idle connection (requests still running close
        theirs when they end)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
