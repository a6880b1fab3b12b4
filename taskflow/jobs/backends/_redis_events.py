"""POSTED / REMOVAL notifications of the Redis board, from Redis pub/sub.

The board's scripts publish every posting taskflow-ng makes on
``<namespace>:posted`` and every consumed or trashed one on
``<namespace>:removed`` (the message is the msgpack posting). Nothing
listens until someone registers on the board's notifier: then one daemon
thread per board subscribes and turns messages into notifications. Jobs the
original posts or consumes publish nothing, so a listener (a conductor
woken by POSTED, say) must still look at the listings now and then.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from taskflow.jobs.backends import _background

#: Seconds a listener thread blocks per read (how fast close() stops it).
READ_TIMEOUT = 0.5


class Listener:
    """A daemon thread delivering ``(channel, message)`` pairs to
    ``deliver`` until :meth:`stop`; it resubscribes after connection errors
    (backing off, logging once per outage)."""

    def __init__(self, name: str, client: Any, channels: list[bytes],
                 deliver: Callable[[bytes, bytes], None]) -> None:
        self._client = client
        self._channels = channels
        self._deliver = deliver
        #: Set once subscribed (messages published before are not seen).
        self.subscribed = threading.Event()
        self._loop = _background.ReconnectingLoop(
            'redis-jobboard-events-%s' % name,
            'Jobboard %r: the event subscription' % name, self._session)

    def start(self) -> None:
        self._loop.start()

    def stop(self, timeout: float = 2 * READ_TIMEOUT) -> bool:
        """Stop; whether the thread ended within ``timeout`` seconds."""
        return self._loop.stop(timeout)

    def _session(self, connected: _background.Connected) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(*self._channels)
            # The subscription is confirmed by the first read.
            pubsub.get_message(timeout=READ_TIMEOUT)
            self.subscribed.set()
            connected()
            while not self._loop.stopping:
                message = pubsub.get_message(timeout=READ_TIMEOUT)
                if message and message.get('type') == 'message':
                    self._deliver(message['channel'], message['data'])
        finally:
            with contextlib.suppress(Exception):  # a broken subscription
                pubsub.close()
