"""The kombu glue shared by engines and workers: one queue in, publishing out.

A :class:`Proxy` consumes the queue ``<exchange>_<topic>`` (bound to the
direct exchange with routing key ``topic``) on a thread of the caller's
(:meth:`Proxy.start` blocks) and publishes on a *second* connection, so
a thread running a task can answer at once instead of waiting for the
consuming thread to wake up.  kombu connections are not thread safe: the
consuming connection is only touched by the consuming thread (acks from
other threads are handed to it, see :meth:`ack_later`) and the publishing
one only under a lock.

Both connections reconnect after broker restarts or dropped connections;
``on_reconnect`` tells the owner that its queue may have been lost (auto-
delete queues vanish with their last consumer) so it can re-send what it
had in flight.  Exchanges and queues are declared exactly as the original
declares them (non-durable, auto-delete), or RabbitMQ would refuse one side's
declaration when both run against the same exchange.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from taskflow.engines.worker_based import protocol

try:
    import kombu
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ModuleNotFoundError("No module named 'kombu': the worker-based engine needs it"
                              " (pip install 'taskflow-ng[workers]')",
                              name='kombu') from _error

LOG = logging.getLogger(__name__)

_IDLE_DRAIN = 0.1    # seconds a quiet consumer waits for messages (bounds stop())
_BUSY_DRAIN = 0.005  # ... while acks wait to be sent
_RECONNECT_MAX = 2.0


def mask_url(url: str | None) -> str | None:
    """``url`` with its password replaced by ``**`` (for banners, logs, errors)."""
    if not url:
        return url
    masked = []
    for part in url.split(';'):   # kombu accepts failover URL lists
        try:
            split = urllib.parse.urlsplit(part)
        except ValueError:
            masked.append('<unparsable url>')
            continue
        if split.password is None:
            masked.append(part)
            continue
        netloc = split.netloc.rpartition('@')
        userinfo = netloc[0].split(':', 1)[0] + ':**'
        masked.append(urllib.parse.urlunsplit(split._replace(netloc=userinfo + '@'
                                                             + netloc[2])))
    return ';'.join(masked)


def make_connection(url: str | None, transport: str | None,
                    transport_options: dict[str, Any] | None) -> kombu.Connection:
    options = dict(transport_options or {})
    if (transport == 'memory' or (url or '').startswith('memory:')):
        # The in-process transport polls; the default second is far too slow.
        options.setdefault('polling_interval', 0.005)
    elif transport in ('redis', 'rediss') or (url or '').startswith(('redis:', 'rediss:')):
        # BRPOP blocks this long; it bounds how fast a consumer notices stop().
        options.setdefault('polling_interval', 0.1)
    return kombu.Connection(url, transport=transport, transport_options=options)


def exchange_for(name: str) -> kombu.Exchange:
    return kombu.Exchange(name, type='direct', durable=False, auto_delete=True)


def queue_for(exchange: kombu.Exchange, topic: str) -> kombu.Queue:
    return kombu.Queue('%s_%s' % (exchange.name, topic), exchange, routing_key=topic,
                       durable=False, auto_delete=True)


class Proxy:
    """Consume one queue, dispatch messages by type, publish on the exchange."""

    DEFAULT_RETRY_OPTIONS = {
        'interval_start': 1,   # seconds before the first retry
        'interval_step': 1,    # added for each further retry
        'interval_max': 1,     # never wait longer than this
        'max_retries': 3,      # then give up (the error propagates)
    }

    def __init__(self, topic: str, exchange: str,
                 type_handlers: dict[str, Callable[[Any], None]] | None = None,
                 on_wait: Callable[[], None] | None = None, url: str | None = None,
                 transport: str | None = None, transport_options: dict[str, Any] | None = None,
                 retry_options: dict[str, Any] | None = None, *,
                 on_reconnect: Callable[[], None] | None = None,
                 prefetch_count: int | None = None) -> None:
        self._topic = topic
        self._exchange = exchange_for(exchange)
        self._queue = queue_for(self._exchange, topic)
        self._handlers = dict(type_handlers or {})
        self._on_wait = on_wait
        self._on_reconnect = on_reconnect
        self._url = url
        self._transport = transport
        self._transport_options = transport_options
        self._retry_options = dict(self.DEFAULT_RETRY_OPTIONS)
        self._retry_options.update(retry_options or {})
        self._prefetch_count = prefetch_count
        self._running = threading.Event()   # consuming (queue declared)
        self._settled = threading.Event()   # running, or failed for good
        self.fatal_error: BaseException | None = None
        self._stopping = threading.Event()
        self._acks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._generation = 0          # bumped on every (re)connect of the consumer
        self._publish_lock = threading.Lock()
        self._pub_conn: kombu.Connection | None = None
        self._producer: Any = None
        probe = make_connection(url, transport, transport_options)
        self.connection_details = {
            'driver': '%s v%s' % (probe.transport.driver_name,
                                  probe.transport.driver_version()),
            'transport': probe.transport_cls if isinstance(probe.transport_cls, str)
            else probe.transport.driver_type,
            'uri': mask_url(probe.as_uri()),
        }
        self._errors = probe.connection_errors + probe.channel_errors

    # -- properties -----------------------------------------------------------

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def exchange(self) -> str:
        return str(self._exchange.name)

    @property
    def is_running(self) -> bool:
        return self._running.is_set()

    @property
    def generation(self) -> int:
        """Which connection the messages being handled came from."""
        return self._generation

    # -- consuming ------------------------------------------------------------

    def start(self, first_connect_attempts: int | None = None) -> None:
        """Consume until :meth:`stop` (blocks; run it on a thread).

        Reconnects forever once it has been connected; before that, gives up
        after ``first_connect_attempts`` failed attempts (``None``: never),
        raising the last error (also kept in ``fatal_error``).
        """
        self._stopping.clear()
        self.fatal_error = None
        delay = 0.0
        first = True
        attempts = 0
        while not self._stopping.is_set():
            if delay:
                self._stopping.wait(delay)
                if self._stopping.is_set():
                    break
            try:
                self._consume(reconnected=not first)
                return
            except self._errors + (OSError,) as error:
                self._running.clear()
                if self._stopping.is_set():
                    return
                attempts += 1
                never_connected = first and not self._settled.is_set()
                if never_connected and first_connect_attempts is not None \
                        and attempts >= first_connect_attempts:
                    LOG.error('Could not connect to %s: %s', self.connection_details['uri'],
                              masked(error, self._url))
                    self.fatal_error = error
                    self._settled.set()
                    raise
                if is_refusal(error):
                    # Wrong credentials or permissions: retrying cannot help.
                    LOG.error('The broker at %s refused us: %s', self.connection_details['uri'],
                              masked(error, self._url))
                    self.fatal_error = error
                    self._settled.set()
                    raise
                LOG.warning("Lost the connection to %s (%s: %s); reconnecting",
                            self.connection_details['uri'], type(error).__name__,
                            masked(error, self._url))
                first = first and not self._settled.is_set()
                delay = min(max(delay * 2, 0.1), _RECONNECT_MAX)

    def _consume(self, reconnected: bool) -> None:
        conn = make_connection(self._url, self._transport, self._transport_options)
        try:
            conn.connect()
            channel = conn.channel()
            self._generation += 1
            generation = self._generation
            if self._prefetch_count:
                channel.basic_qos(0, self._prefetch_count, False)
            queue_ = self._queue(channel)
            queue_.declare()
            consumer = kombu.Consumer(channel, queues=[queue_], no_ack=False,
                                      on_message=self._dispatch, accept=None)
            consumer.consume()
            self._drop_stale_acks()
            self._running.set()
            self._settled.set()
            if reconnected and self._on_reconnect is not None:
                self._on_reconnect()
            while not self._stopping.is_set():
                self._send_acks(generation)
                if self._on_wait is not None:
                    self._on_wait()
                try:
                    conn.drain_events(timeout=_BUSY_DRAIN if not self._acks.empty()
                                      else _IDLE_DRAIN)
                except socket.timeout:
                    pass
            self._send_acks(generation)
            try:
                consumer.cancel()
            except self._errors + (OSError,):
                pass
        finally:
            self._running.clear()
            _close_quietly(conn)

    def _dispatch(self, message: Any) -> None:
        kind = message.properties.get('type')
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            LOG.warning('Dropping a message of unknown type %r on queue %s',
                        kind, self._queue.name)
            self._safe_ack(message)
            return
        try:
            handler(message)
        except Exception:  # a handler bug must not kill the consumer
            LOG.exception('Handling a %s message failed; dropping it', kind)
            self._safe_ack(message)

    def ack_later(self, message: Any, generation: int) -> None:
        """Acknowledge ``message`` from any thread (the consumer sends it)."""
        self._acks.put((generation, message))

    def ack_now(self, message: Any) -> None:
        """Acknowledge ``message``; only from the consuming thread (handlers)."""
        self._safe_ack(message)

    def _safe_ack(self, message: Any) -> None:
        try:
            if not message.acknowledged:
                message.ack()
        except self._errors + (OSError,) as error:
            LOG.debug('Could not acknowledge a message: %s', error)

    def _send_acks(self, generation: int) -> None:
        while True:
            try:
                message_generation, message = self._acks.get_nowait()
            except queue.Empty:
                return
            if message_generation == generation:
                message.ack()   # errors here mean the connection broke: reconnect

    def _drop_stale_acks(self) -> None:
        # Deliveries of a closed channel cannot be acknowledged; the broker
        # has put them back in the queue already.
        while True:
            try:
                self._acks.get_nowait()
            except queue.Empty:
                return

    def wait(self, timeout: float | None = None) -> bool:
        """Block until consuming, failed for good, or ``timeout``; returns whether consuming."""
        self._settled.wait(timeout)
        return self._running.is_set()

    def stop(self) -> None:
        self._stopping.set()
        self._settled.clear()   # a later start() must settle again
        with self._publish_lock:
            if self._pub_conn is not None:
                _close_quietly(self._pub_conn)
                self._pub_conn = None
                self._producer = None

    # -- publishing -----------------------------------------------------------

    def publish(self, body: str, routing_key: str, message_type: str,
                reply_to: str | None = None, correlation_id: str | None = None,
                headers: dict[str, Any] | None = None) -> None:
        """Publish ``body`` (JSON text); thread safe; retries per ``retry_options``.

        Raises the last connection error when the retries are used up.
        """
        properties: dict[str, Any] = {'type': message_type}
        if reply_to is not None:
            properties['reply_to'] = reply_to
        if correlation_id is not None:
            properties['correlation_id'] = correlation_id
        attempts = int(self._retry_options.get('max_retries') or 0) + 1
        delay = float(self._retry_options.get('interval_start', 1))
        with self._publish_lock:
            for attempt in range(attempts):
                try:
                    producer = self._ensure_producer()
                    producer.publish(body, routing_key=routing_key,
                                     content_type=protocol.CONTENT_TYPE,
                                     content_encoding=protocol.CONTENT_ENCODING,
                                     delivery_mode=2, priority=0, headers=headers or {},
                                     retry=False, **properties)
                    return
                except self._errors + (OSError,) as error:
                    if self._pub_conn is not None:
                        _close_quietly(self._pub_conn)
                    self._pub_conn = self._producer = None
                    if attempt + 1 >= attempts or self._stopping.is_set():
                        raise
                    LOG.debug('Publishing to %s failed (%s); retrying in %ss',
                              self.connection_details['uri'], masked(error, self._url),
                              delay)
                    time.sleep(delay)
                    delay = min(delay + float(self._retry_options.get('interval_step', 1)),
                                float(self._retry_options.get('interval_max', 1)))

    def queue_depth(self, topic: str) -> int | None:
        """Messages waiting in ``topic``'s queue; ``None`` when it does not exist.

        (On Redis an empty queue does not exist either: both read as "nothing
        of ours is waiting there".)
        """
        name = '%s_%s' % (self._exchange.name, topic)
        with self._publish_lock:
            self._ensure_producer()
            assert self._pub_conn is not None  # (made by _ensure_producer)
            channel = self._pub_conn.channel()
            try:
                return int(channel.queue_declare(queue=name, passive=True).message_count)
            except self._errors as error:
                if getattr(error, 'code', None) == 404 or 'NOT_FOUND' in str(error):
                    return None
                raise
            finally:
                try:
                    channel.close()
                except Exception:  # already closed by the broker (404)
                    pass

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            conn = make_connection(self._url, self._transport, self._transport_options)
            conn.connect()
            channel = conn.channel()
            self._exchange(channel).declare()
            self._pub_conn = conn
            self._producer = kombu.Producer(channel, exchange=self._exchange,
                                            auto_declare=False)
        return self._producer


def is_refusal(error: BaseException) -> bool:
    return type(error).__name__ in ('AccessRefused', 'NotAllowed', 'AuthenticationError',
                                    'AuthenticationWrongNumberOfArgsError')


def masked(error: BaseException, url: str | None) -> str:
    text = str(error)
    if url and url in text:
        text = text.replace(url, mask_url(url) or '')
    return text


def _close_quietly(conn: Any) -> None:
    try:
        conn.release()
    except Exception:  # closing a broken connection may fail in many ways
        LOG.debug('Ignoring an error while closing a connection', exc_info=True)
