"""The engine side: send task requests to workers and collect their outcomes.

Two threads share the work.  The *consumer* thread (a :class:`~.proxy.Proxy`
on the engine's own queue ``<exchange>_<uuid>``) answers for discovery: it
keeps the table of known workers and publishes ``NOTIFY`` now and then; every
other message (responses, heartbeats) it decodes and hands over through
``_inbox``.  The *engine loop* thread owns every request: it publishes them
(:meth:`WorkerTaskExecutor.submit`) and, in :meth:`WorkerTaskExecutor.wait`,
applies what came in and enforces the deadlines.  So request state needs no
lock, and a result reaches the loop without any polling delay.

A request's life::

    WAITING --published--> PENDING --RUNNING response--> RUNNING --> SUCCESS/FAILURE
      ^  (no worker known)     |  (worker has it)            |
      +----- worker lost: re-dispatch (or fail with WorkerLost) +

* ``transition_timeout`` bounds WAITING/PENDING, as in the original (a
  request a live worker reports holding, in its heartbeats, is not expired:
  it is queued behind the worker's other work).
* taskflow-ng: a worker running requests for us sends a heartbeat every
  ``heartbeat_interval`` seconds; one silent for ``worker_lost_after``
  seconds is *lost* and its requests are re-dispatched to live workers (at
  most ``max_redispatches`` times each) or failed with
  :class:`~taskflow.exceptions.WorkerLost`, per ``on_worker_lost``.  Original
  workers send no heartbeats: a request running on one is lost when no
  worker on its topic has answered discovery for ``worker_expiry`` seconds.
* The broker may also redeliver a dead worker's unacknowledged request to a
  live worker; that worker's ``RUNNING`` simply takes the request over.
  Each dispatch has its own id (``x-taskflow-request``), so answers to an
  abandoned dispatch are recognised and dropped: one outcome per request.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import uuid as uuid_module
from typing import Any

from taskflow import exceptions as exc
from taskflow.engines.worker_based import protocol
from taskflow.engines.worker_based import proxy as proxy_module
from taskflow.types import failure as failure_module

LOG = logging.getLogger(__name__)

TIMED_OUT = object()        # outcome of a request that overran its task timeout
REDISPATCH = 'redispatch'
FAIL = 'fail'
_CHECK_EVERY = 0.25         # seconds between deadline checks while requests are out
CONNECT_TIMEOUT = 10.0      # seconds start() waits for the broker
_FAST_NOTIFY = 1.0          # discovery period while requests wait for a worker
_WORKERS_CHANGED = ('workers', None)
_RECONNECTED = ('reconnected', None)
_WAKE = ('wake', None)


class _Request:
    """One task execution or reversion we are waiting for."""

    __slots__ = ('token', 'action', 'task', 'task_cls', 'correlation_id', 'text', 'body',
                 'state', 'sent_at',
                 'request_id', 'created', 'topic', 'worker', 'last_seen', 'redispatches',
                 'deadline', 'fresh_after')

    def __init__(self, token: Any, action: str, task: Any, task_cls: str,
                 correlation_id: str, text: str, body: dict[str, Any],
                 deadline: float | None) -> None:
        self.token = token
        self.body = body
        self.action = action
        self.task = task
        self.task_cls = task_cls
        self.correlation_id = correlation_id
        self.text = text
        self.state = protocol.WAITING
        self.sent_at = 0.0
        self.request_id = ''
        self.created = time.monotonic()
        self.topic: str | None = None
        self.worker: str | None = None     # who holds it (taskflow-ng workers say so)
        self.last_seen = 0.0               # when that worker last spoke
        self.redispatches = 0
        self.deadline = deadline           # task timeout (monotonic), if any
        self.fresh_after = 0.0             # only dispatch to topics heard from since

    def __repr__(self) -> str:
        # As the original's (RequestTimeout messages show it).
        return '<Request object at %#x with contents %s>' % (id(self), self.body)


class WorkerTaskExecutor:
    """Sends task requests to workers over ``exchange`` and gathers the outcomes.

    Args:
        uuid: identity of the engine's reply queue (the flow detail uuid).
        exchange, topics: where workers listen (topics are asked at start).
        transition_timeout: seconds a request may wait for a worker to
            take it (``None``: forever).
        worker_expiry: seconds after which a silent worker is forgotten.
        heartbeat_interval, worker_lost_after, on_worker_lost,
        max_redispatches, max_message_size: taskflow-ng, see the module doc.
    """

    def __init__(self, uuid: str, exchange: str, topics: list[str],
                 transition_timeout: float | None = protocol.REQUEST_TIMEOUT,
                 url: str | None = None, transport: str | None = None,
                 transport_options: dict[str, Any] | None = None, retry_options: dict[str, Any] | None = None,
                 worker_expiry: float = protocol.EXPIRES_AFTER, *,
                 heartbeat_interval: float = protocol.HEARTBEAT_INTERVAL,
                 worker_lost_after: float = protocol.WORKER_LOST_AFTER,
                 on_worker_lost: str = REDISPATCH, max_redispatches: int = 3,
                 max_message_size: int | None = protocol.MAX_MESSAGE_SIZE) -> None:
        if on_worker_lost not in (REDISPATCH, FAIL):
            raise ValueError("on_worker_lost must be %r or %r, not %r"
                             % (REDISPATCH, FAIL, on_worker_lost))
        self._uuid = uuid
        self._topics = list(topics)
        self._transition_timeout = transition_timeout
        self._worker_expiry = worker_expiry
        self._heartbeat_interval = heartbeat_interval
        self._worker_lost_after = worker_lost_after
        self._on_worker_lost = on_worker_lost
        self._max_redispatches = max_redispatches
        self._max_size = max_message_size
        self._url = url
        self._retry_options = dict(proxy_module.Proxy.DEFAULT_RETRY_OPTIONS)
        self._retry_options.update(retry_options or {})
        self._proxy = proxy_module.Proxy(
            uuid, exchange,
            type_handlers={protocol.NOTIFY: self._on_notify_reply,
                           protocol.RESPONSE: self._on_message,
                           protocol.HEARTBEAT: self._on_message},
            on_wait=self._on_consumer_wait, url=url, transport=transport,
            transport_options=transport_options, retry_options=retry_options,
            on_reconnect=lambda: self._inbox.put(_RECONNECTED))
        # Consumer thread -> loop thread.
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Known workers: topic -> (task class names, monotonic time last heard).
        self._workers: dict[str, tuple[frozenset[str], float]] = {}
        self._workers_lock = threading.Condition()
        self._last_notify = 0.0
        self._want_workers = threading.Event()   # set while requests wait for one
        self._thread: threading.Thread | None = None
        # Loop thread only.
        self._requests: dict[str, _Request] = {}        # dispatch id -> request
        self._by_correlation: dict[str, _Request] = {}  # atom uuid -> its request
        self._round_robin = itertools.count()
        self._next_check = 0.0
        self._next_orphan_check = 0.0
        # Topics where a worker without heartbeats (the original's) answered.
        self._original_topics: set[str] = set()

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Start listening for replies and ask the topics who is there."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._consume, daemon=True,
                                        name='taskflow-wbe-%s' % self._uuid[:8])
        self._thread.start()
        if not self._proxy.wait(CONNECT_TIMEOUT):
            self.stop()
            error = self._proxy.fatal_error
            if error is None:
                why = 'no connection within %s seconds' % CONNECT_TIMEOUT
            elif proxy_module.is_refusal(error):
                why = 'it refused us (%s)' % type(error).__name__
            else:
                why = '%s: %s' % (type(error).__name__, proxy_module.masked(error, self._url))
            raise exc.ExecutionFailure('Could not connect to the broker at %s: %s'
                                       % (self._proxy.connection_details['uri'], why))
        self._notify_topics()

    def _consume(self) -> None:
        attempts = int(self._retry_options.get('max_retries') or 0) + 1
        try:
            self._proxy.start(first_connect_attempts=attempts)
        except Exception:  # kept in fatal_error; start() reports it
            pass

    def stop(self) -> None:
        """Stop listening; requests still out are failed (see :meth:`fail_outstanding`)."""
        self._proxy.stop()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    @property
    def started(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_for_workers(self, workers: int = 1, timeout: float | None = None) -> int:
        """Wait until ``workers`` worker topics are known; returns how many are missing."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._workers_lock:
            while True:
                missing = max(workers - len(self._workers), 0)
                if not missing:
                    return 0
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return missing
                self._workers_lock.wait(left if left is None else min(left, 1.0))

    # -- consumer thread ------------------------------------------------------

    def _notify_topics(self) -> None:
        self._last_notify = time.monotonic()
        for topic in self._topics:
            try:
                self._proxy.publish('{}', topic, protocol.NOTIFY, reply_to=self._uuid)
            except Exception as error:  # discovery is retried on the next period
                LOG.warning('Could not ask topic %r for workers: %s', topic, error)

    def _on_notify_reply(self, message: Any) -> None:
        self._proxy.ack_now(message)
        body, problem = protocol.loads(message.body, self._max_size)
        if problem is None:
            problem = protocol.notify_reply_problem(body)
        if problem is not None:
            LOG.warning('Dropping a malformed worker notification: %s', problem)
            return
        if not isinstance(protocol.header(message, protocol.H_WORKER), str):
            self._original_topics.add(body['topic'])
        with self._workers_lock:
            known = self._workers.get(body['topic'])
            tasks = frozenset(body['tasks'])
            self._workers[body['topic']] = (tasks, time.monotonic())
            self._workers_lock.notify_all()
        if known is None or known[0] != tasks or self._want_workers.is_set():
            self._inbox.put(_WORKERS_CHANGED)

    def _on_message(self, message: Any) -> None:
        self._proxy.ack_now(message)
        self._inbox.put(('message', message))

    def _on_consumer_wait(self) -> None:
        now = time.monotonic()
        period = _FAST_NOTIFY if self._want_workers.is_set() else protocol.NOTIFY_PERIOD
        if now - self._last_notify >= period:
            self._notify_topics()
        expired = []
        with self._workers_lock:
            for topic, (_tasks, heard) in list(self._workers.items()):
                if self._worker_expiry is not None and now - heard > self._worker_expiry:
                    expired.append(topic)
                    del self._workers[topic]
        if expired:
            LOG.info('Forgetting workers on topics %s: silent for over %ss', expired,
                     self._worker_expiry)
            self._inbox.put(_WORKERS_CHANGED)

    # -- loop thread: submitting ----------------------------------------------

    def submit(self, token: Any, action: str, task: Any, task_uuid: str, arguments: dict[str, Any],
               result: Any = None, flow_failures: dict[str, Any] | None = None,
               timeout: float | None = None) -> tuple[Any, ...] | None:
        """Send one request; returns an immediate outcome if it cannot be sent.

        ``(False, Failure)`` comes back at once for arguments that are not
        JSON or are over ``max_message_size`` (the error names the task).
        """
        task_cls = '%s.%s' % (type(task).__module__, type(task).__qualname__)
        body = protocol.request_body(task_cls, task.name, protocol.version_of(task), action,
                                     arguments, result, flow_failures,
                                     with_result=action == protocol.REVERT)
        what = "The %s request of task '%s'" % (action, task.name)
        try:
            text = protocol.dumps(body, self._max_size, what)
        except ValueError as error:
            return False, failure_module.Failure.from_exception(error)
        deadline = None if timeout is None else time.monotonic() + timeout
        request = _Request(token, action, task, task_cls, task_uuid, text, body, deadline)
        stale = self._by_correlation.get(task_uuid)
        if stale is not None:   # an abandoned (timed out) dispatch of this atom
            self._requests.pop(stale.request_id, None)
        self._by_correlation[task_uuid] = request
        self._dispatch(request)
        return None

    def _dispatch(self, request: _Request) -> None:
        topic = self._pick_topic(request)
        self._requests.pop(request.request_id, None)
        request.request_id = uuid_module.uuid4().hex
        self._requests[request.request_id] = request
        request.worker = None
        if topic is None:
            request.state = protocol.WAITING
            self._want_workers.set()
            return
        headers = {protocol.H_REQUEST: request.request_id,
                   protocol.H_HEARTBEAT: self._heartbeat_interval}
        try:
            self._proxy.publish(request.text, topic, protocol.REQUEST, reply_to=self._uuid,
                                correlation_id=request.correlation_id, headers=headers)
        except Exception as error:
            LOG.warning('Could not send %r to topic %r (%s); it waits for the broker',
                        request, topic, error)
            request.state = protocol.WAITING
            request.fresh_after = time.monotonic()
            self._want_workers.set()
            return
        request.state = protocol.PENDING
        request.topic = topic
        request.sent_at = time.monotonic()

    def _pick_topic(self, request: _Request) -> str | None:
        with self._workers_lock:
            topics = [topic for topic, (tasks, heard) in self._workers.items()
                      if request.task_cls in tasks and heard >= request.fresh_after]
        if not topics:
            return None
        return topics[next(self._round_robin) % len(topics)] if len(topics) > 1 else topics[0]

    # -- loop thread: waiting -------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._by_correlation)

    def wake(self) -> None:
        self._inbox.put(_WAKE)

    def wait(self, timeout: float | None) -> list[Any]:
        """Outcomes ``(token, (ok, value) | TIMED_OUT)`` that arrived, waiting up to ``timeout``.

        Returns as soon as something finished (or on :meth:`wake`).
        """
        finished: list[Any] = []
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if now >= self._next_check:
                self._check(now, finished)
                self._next_check = now + _CHECK_EVERY
            if finished:
                block_for = 0.0
            else:
                block_for = self._next_check - now
                if end is not None:
                    block_for = min(block_for, end - now)
            try:
                kind, item = (self._inbox.get(timeout=block_for) if block_for > 0
                              else self._inbox.get_nowait())
            except queue.Empty:
                if finished or (end is not None and time.monotonic() >= end):
                    return finished
                continue
            if kind == 'message':
                self._apply(item, finished)
            elif kind == 'workers':
                self._dispatch_waiting()
            elif kind == 'reconnected':
                self._resend_all()
            elif kind == 'wake':
                return finished

    def _apply(self, message: Any, finished: list[Any]) -> None:
        kind = message.properties.get('type')
        body, problem = protocol.loads(message.body, self._max_size)
        if kind == protocol.HEARTBEAT:
            problem = problem or protocol.heartbeat_problem(body)
            if problem is not None:
                LOG.warning('Dropping a malformed heartbeat: %s', problem)
                return
            now = time.monotonic()
            for request_id in body['requests']:
                request = self._requests.get(request_id)
                if request is not None:
                    request.worker = body['worker']
                    request.last_seen = now
            return
        correlation_id = protocol.string_property(message, 'correlation_id')
        request = self._by_correlation.get(correlation_id) if correlation_id else None
        request_id = protocol.header(message, protocol.H_REQUEST)
        if request is None or (request_id is not None and request_id != request.request_id):
            LOG.debug('Dropping a response to an unknown or abandoned request %s',
                      correlation_id)
            return
        problem = problem or protocol.response_problem(body)
        if problem is not None:
            LOG.warning('Dropping a malformed response for %r: %s', request, problem)
            return
        state, data = body['state'], body.get('data', {})
        worker = protocol.header(message, protocol.H_WORKER)
        request.last_seen = time.monotonic()
        if isinstance(worker, str):
            request.worker = worker
        if state == protocol.RUNNING:
            request.state = protocol.RUNNING
        elif state == protocol.EVENT:
            self._relay(request, data)
        else:
            self._forget(request)
            if state == protocol.SUCCESS:
                finished.append((request.token, (True, data['result'])))
            else:
                failure = failure_module.Failure.from_dict(data['result'])
                finished.append((request.token, (False, failure)))

    def _relay(self, request: _Request, data: dict[str, Any]) -> None:
        """Re-emit a worker's task event on the local task (listeners, storage)."""
        if data['event_type'] != 'update_progress':
            LOG.debug('Ignoring event %r of %r', data['event_type'], request)
            return
        details = dict(data.get('details') or {})
        details['progress'] = min(max(float(details.get('progress', 0.0)), 0.0), 1.0)
        request.task.notifier.notify('update_progress', details)

    def _forget(self, request: _Request) -> None:
        self._requests.pop(request.request_id, None)
        if self._by_correlation.get(request.correlation_id) is request:
            del self._by_correlation[request.correlation_id]
        if self._want_workers.is_set() and not any(
                r.state == protocol.WAITING for r in self._by_correlation.values()):
            self._want_workers.clear()

    # -- loop thread: deadlines -----------------------------------------------

    def _check(self, now: float, finished: list[Any]) -> None:
        with self._workers_lock:
            live_topics = set(self._workers)
        for request in list(self._by_correlation.values()):
            if request.deadline is not None and now >= request.deadline:
                self._forget(request)
                finished.append((request.token, TIMED_OUT))
            elif request.worker is not None:
                silent = now - request.last_seen
                if silent <= self._worker_lost_after:
                    continue
                if request.state == protocol.PENDING:
                    # Held but never started: the broker may have put it back
                    # in the queue for another worker; the orphan check below
                    # re-dispatches it only if the queue no longer holds it.
                    request.worker = None
                    request.sent_at = now - self._worker_lost_after - 1.0
                    self._next_orphan_check = 0.0
                else:
                    self._lost(request, 'worker %s sent no heartbeat for %.1f seconds'
                               % (request.worker, silent), finished)
            elif (request.state == protocol.RUNNING and request.topic is not None
                  and request.topic not in live_topics):
                self._lost(request, 'no worker on topic %r answered for over %s seconds'
                           % (request.topic, self._worker_expiry), finished)
            elif (request.state in protocol.WAITING_STATES
                  and self._transition_timeout is not None
                  and now - request.created > self._transition_timeout):
                self._forget(request)
                finished.append((request.token, (False, failure_module.Failure.from_exception(
                    exc.RequestTimeout(
                        "Request '%s' has expired after waiting for %0.2f seconds for it to"
                        " transition out of (%s) states"
                        % (request, now - request.created,
                           ', '.join(protocol.WAITING_STATES)))))))
        if now >= self._next_orphan_check:
            self._next_orphan_check = now + 1.0
            self._find_orphans(now, finished)

    def _find_orphans(self, now: float, finished: list[Any]) -> None:
        """Re-dispatch requests whose queue was lost with the worker behind it.

        An auto-delete queue vanishes with its last consumer, taking along
        requests no worker had taken yet.  A request still untaken after
        ``worker_lost_after`` (our workers mention every request they hold in
        their heartbeats) whose queue is now missing or empty is such an
        orphan.  Not done on topics served by original workers: they take
        requests without saying so.
        """
        by_topic: dict[str, list[_Request]] = {}
        for request in self._by_correlation.values():
            if (request.state == protocol.PENDING and request.worker is None
                    and request.topic is not None
                    and request.topic not in self._original_topics
                    and now - request.sent_at > self._worker_lost_after):
                by_topic.setdefault(request.topic, []).append(request)
        for topic, orphans in by_topic.items():
            try:
                depth = self._proxy.queue_depth(topic)
            except Exception as error:  # the broker is away: look again later
                LOG.debug('Could not look at the queue of topic %r: %s', topic, error)
                continue
            if depth:
                continue   # still queued behind other work
            for request in orphans:
                # Never started, so safe to send again whatever the policy.
                self._lost(request, 'the queue of topic %r no longer holds it' % topic,
                           finished, never_started=True)

    def _lost(self, request: _Request, why: str, finished: list[Any],
              never_started: bool = False) -> None:
        policy = REDISPATCH if never_started else self._on_worker_lost
        if policy == REDISPATCH and request.redispatches < self._max_redispatches:
            request.redispatches += 1
            LOG.warning("Re-dispatching the %s of task '%s' (attempt %d): %s",
                        request.action, request.task.name, request.redispatches + 1, why)
            request.created = time.monotonic()
            request.fresh_after = request.created   # a worker alive *now*, please
            self._dispatch(request)
            return
        self._forget(request)
        reason = ('it was re-dispatched %d times already' % request.redispatches
                  if policy == REDISPATCH else "on_worker_lost='fail'")
        finished.append((request.token, (False, failure_module.Failure.from_exception(
            exc.WorkerLost("The worker running the %s of task '%s' was lost (%s); %s"
                           % (request.action, request.task.name, why, reason))))))

    def _dispatch_waiting(self) -> None:
        still_waiting = False
        for request in list(self._by_correlation.values()):
            if request.state == protocol.WAITING:
                self._dispatch(request)
                still_waiting = still_waiting or request.state == protocol.WAITING
        if not still_waiting:
            self._want_workers.clear()

    def _resend_all(self) -> None:
        """Our queue was re-made: answers sent meanwhile are gone.

        A request a heartbeat-sending worker holds is left to it: the worker
        reconnects too and keeps announcing it (or falls silent and is
        lost, which re-dispatches it).  Every other one -- waiting, untaken
        (its queue may have gone with its consumers), or running on an
        original worker (whose answer may be lost) -- is sent again, to a
        worker that answers discovery *after* this reconnect.
        """
        now = time.monotonic()
        resend = []
        for request in self._by_correlation.values():
            if request.worker is not None:
                request.last_seen = max(request.last_seen, now)
                continue
            resend.append(request)
            request.state = protocol.WAITING
            request.fresh_after = now
            request.created = now
        if resend:
            LOG.warning('Reconnected to the broker: re-sending %d request(s)', len(resend))
            self._want_workers.set()
        self._notify_topics_soon()

    def _notify_topics_soon(self) -> None:
        self._last_notify = 0.0

    def fail_outstanding(self, why: str) -> list[Any]:
        """Fail every request still out (the engine is stopping)."""
        finished = []
        for request in list(self._by_correlation.values()):
            self._forget(request)
            finished.append((request.token, (False, failure_module.Failure.from_exception(
                exc.RequestTimeout("Request '%s' was abandoned: %s" % (request, why))))))
        return finished
