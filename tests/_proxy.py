"""A TCP proxy in front of a real database, to fake its failures.

``TcpProxy(host, port)`` listens on a free loopback port and relays every
connection to ``host:port``. Tests point a backend at the proxy, then:

* ``hang()``: stop relaying and stop accepting, keeping every connection
  open -- a server that stopped answering (connects complete in the
  kernel's backlog and then get no greeting; queries get no reply);
  ``resume()`` relays again (what was queued is delivered then);
* ``down()``: reset every connection and refuse new ones -- a server that
  died or restarts; ``up()`` accepts again.

The real service is never touched. One daemon thread does the relaying.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time

__all__ = ['TcpProxy']


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._hung = False
        self._stopped = False
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='tcp-proxy-%d' % self.port)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return ('127.0.0.1', self.port)

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', port))
        listener.listen(64)
        listener.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ)
        return listener

    # -- faults ---------------------------------------------------------------

    def hang(self) -> None:
        with self._lock:
            self._hung = True

    def resume(self) -> None:
        with self._lock:
            self._hung = False

    def down(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._selector.unregister(self._listener)
                self._listener.close()
                self._listener = None
            while self._peers:
                self._close(next(iter(self._peers)), reset=True)

    def up(self) -> None:
        with self._lock:
            self._hung = False
            if self._listener is None:
                self._listener = self._listen(self.port)

    def connections(self) -> int:
        with self._lock:
            return len(self._peers) // 2

    def close(self) -> None:
        self.down()
        self._stopped = True
        self._thread.join(5)

    # -- relaying -------------------------------------------------------------

    def _close(self, sock: socket.socket, reset: bool = False) -> None:
        for one in (sock, self._peers.pop(sock, None)):
            if one is None or one.fileno() == -1:
                continue
            self._peers.pop(one, None)
            try:
                self._selector.unregister(one)
            except (KeyError, ValueError):
                pass
            if reset:  # RST, not FIN: like a crashed server
                one.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                               struct.pack('ii', 1, 0))
            one.close()

    def _run(self) -> None:
        while not self._stopped:
            if self._hung:
                time.sleep(0.02)
                continue
            try:
                events = self._selector.select(timeout=0.05)
            except OSError:
                continue
            with self._lock:
                if self._hung:
                    continue
                for key, _ in events:
                    sock = key.fileobj
                    if sock is self._listener:
                        self._accept()
                    elif sock in self._peers:
                        self._relay(sock)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            client.close()
            return
        for one in (client, upstream):
            one.setblocking(True)
            one.settimeout(5)
        self._peers[client] = upstream
        self._peers[upstream] = client
        self._selector.register(client, selectors.EVENT_READ)
        self._selector.register(upstream, selectors.EVENT_READ)

    def _relay(self, sock: socket.socket) -> None:
        peer = self._peers[sock]
        try:
            data = sock.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._close(sock)
