"""JSON requests to etcd's v3 gateway over kept-alive ``http.client``
connections (the etcd board's transport).

A board request costs well under a millisecond of client CPU this way,
several times less than through ``requests`` (which ``etcd3gw`` uses); the
board still uses ``etcd3gw`` to discover the API path, for watches, and
for every request when the caller hands it an ``etcd3gw`` client.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
import threading
from typing import Any

__all__ = ['EtcdRequestError', 'Transport']

_HEADERS = {'Content-Type': 'application/json'}


class EtcdRequestError(Exception):
    """A request did not get an answer, or got an error status."""


def _no_delay(sock: socket.socket) -> None:
    # http.client sends the headers and the body in two writes: with Nagle's
    # algorithm on, the body waits for the server's (delayed) ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _no_delay(self.sock)


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _no_delay(self.sock)


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
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connection(self) -> http.client.HTTPConnection:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not _dropped(conn):
                    return conn
                conn.close()
        if self._context is not None:
            return _HTTPSConnection(self._host, self._port,
                                    timeout=self._timeout,
                                    context=self._context)
        return _HTTPConnection(self._host, self._port, timeout=self._timeout)

    def post(self, path: str, payload: dict) -> dict:
        """The answer to ``payload`` POSTed to ``path`` (e.g.
        ``'kv/range'``); ``EtcdRequestError`` on any failure."""
        conn = self._connection()
        try:
            conn.request('POST', self._prefix + path.lstrip('/'),
                         body=json.dumps(payload).encode('utf-8'),
                         headers=_HEADERS)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise EtcdRequestError(str(e) or type(e).__name__) from e
        with self._lock:
            if self._closed:
                conn.close()
            else:
                self._idle.append(conn)
        if resp.status != 200:
            raise EtcdRequestError(body.decode('utf-8', 'replace'),
                                   resp.reason)
        try:
            return json.loads(body)
        except ValueError as e:
            raise EtcdRequestError('unreadable answer: %r' % body[:200]) from e

    def close(self) -> None:
        """Close every idle connection (requests still running close
        theirs when they end)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection was closed by the server (etcd restarted
    or timed it out): an idle socket that is readable has hit EOF."""
    sock = conn.sock
    if sock is None:
        return False  # closed by http.client itself: it reopens on request
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True
