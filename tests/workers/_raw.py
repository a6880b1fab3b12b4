"""A bare kombu client that speaks to workers and engines like anyone on the
broker could: any body, any properties.  Used to check that malformed or
hostile messages are refused, and to look at what is answered."""

from __future__ import annotations

import json
import queue
import socket
import time
import uuid
from typing import Any

import kombu

from taskflow.engines.worker_based import proxy


class RawClient:
    """Publishes raw messages on an exchange; collects what comes to its own queue."""

    def __init__(self, url: str, exchange: str) -> None:
        self.reply_to = 'raw-%s' % uuid.uuid4().hex[:12]
        self._conn = proxy.make_connection(url, None, None)
        self._conn.connect()
        self._exchange = proxy.exchange_for(exchange)
        channel = self._conn.channel()
        self._queue = proxy.queue_for(self._exchange, self.reply_to)(channel)
        self._queue.declare()
        self._received: queue.SimpleQueue = queue.SimpleQueue()
        self._consumer = kombu.Consumer(channel, queues=[self._queue], no_ack=True,
                                        on_message=self._received.put, accept=None)
        self._consumer.consume()
        self._producer = kombu.Producer(self._conn.channel(), exchange=self._exchange,
                                        auto_declare=True)

    def publish(self, body: Any, routing_key: str, content_type: str = 'application/json',
                **properties: Any) -> None:
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        self._producer.publish(body, routing_key=routing_key, content_type=content_type,
                               content_encoding='binary' if isinstance(body, bytes)
                               else 'utf-8', retry=True, **properties)

    def request(self, topic: str, body: Any, correlation_id: str | None = None,
                **properties: Any) -> str:
        correlation_id = correlation_id or uuid.uuid4().hex
        self.publish(body, topic, type='REQUEST', reply_to=self.reply_to,
                     correlation_id=correlation_id, **properties)
        return correlation_id

    def replies(self, until: Any = None, timeout: float = 10.0) -> list[tuple[dict, Any]]:
        """(properties, decoded body) of messages received, until ``until(list)``."""
        got: list = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self._conn.drain_events(timeout=0.1)
            except socket.timeout:
                pass
            while True:
                try:
                    message = self._received.get_nowait()
                except queue.Empty:
                    break
                got.append((dict(message.properties, headers=message.headers),
                            json.loads(message.body)))
            if until is not None and until(got):
                return got
        return got

    def ping(self, topic: str, timeout: float = 20.0) -> bool:
        """Send a NOTIFY and wait for the worker's answer (all earlier messages handled)."""
        self.publish({}, topic, type='NOTIFY', reply_to=self.reply_to)
        got = self.replies(lambda g: any(p.get('type') == 'NOTIFY' for p, _ in g), timeout)
        return any(p.get('type') == 'NOTIFY' for p, _ in got)

    def close(self) -> None:
        try:
            self._consumer.cancel()
        finally:
            self._conn.release()
