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

import threading
from collections.abc import Callable
from typing import Any

from taskflow import logging

LOG = logging.getLogger(__name__)

#: Seconds a listener thread blocks per read (how fast close() stops it).
READ_TIMEOUT = 0.5
#: Back-off after a failed subscription, doubling up to MAX_BACKOFF.
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0


class Listener:
    """A daemon thread delivering ``(channel, message)`` pairs to
    ``deliver`` until :meth:`stop`; it resubscribes after connection errors
    (backing off, logging once per outage)."""

    def __init__(self, name: str, client: Any, channels: list[bytes],
                 deliver: Callable[[bytes, bytes], None]) -> None:
        self._client = client
        self._channels = channels
        self._deliver = deliver
        self._stopped = threading.Event()
        #: Set once subscribed (messages published before are not seen).
        self.subscribed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='redis-jobboard-events-%s' % name)
        self._name = name

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2 * READ_TIMEOUT) -> None:
        self._stopped.set()
        if self._thread.is_alive() and \
                self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = FIRST_BACKOFF
        failing = False
        while not self._stopped.is_set():
            pubsub = None
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(*self._channels)
                # The subscription is confirmed by the first read.
                pubsub.get_message(timeout=READ_TIMEOUT)
                self.subscribed.set()
                if failing:
                    LOG.info('Jobboard %r: event subscription is back',
                             self._name)
                failing, backoff = False, FIRST_BACKOFF
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=READ_TIMEOUT)
                    if message and message.get('type') == 'message':
                        self._deliver(message['channel'], message['data'])
            except Exception:
                if not failing:
                    LOG.warning('Jobboard %r: event subscription failed'
                                ' (retrying)', self._name, exc_info=True)
                failing = True
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # closing a broken subscription
                        pass
