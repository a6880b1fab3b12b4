"""The worker side: a request message in, the task run, responses out.

One consuming thread (the :class:`~.proxy.Proxy`) hands each valid request
to the executor; the thread running it publishes ``RUNNING``, progress
events and the result itself, then asks the consumer to acknowledge the
message.  Acknowledging only *after* the result is published is what makes
delivery at-least-once: a worker that dies mid-task never acknowledged the
request, so the broker gives it to another worker.

Nothing from the wire is trusted: bodies must be JSON (whatever their
content type claims), pass ``protocol.request_problem``, stay under the
size limit and name a task class this worker was *given*; nothing is ever
imported because a message asked for it.  A bad request is answered with a
failure when it says where to answer, else logged and dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from concurrent import futures
from typing import Any

from taskflow import exceptions as exc
from taskflow.engines.action_engine import _call
from taskflow.engines.worker_based import protocol
from taskflow.engines.worker_based import proxy as proxy_module
from taskflow.types import failure as failure_module

LOG = logging.getLogger(__name__)

_HEARTBEAT_TICK = 0.25   # how often the heartbeat thread looks for work


class _Job:
    """One request this worker holds (queued on the executor or running)."""

    __slots__ = ('message', 'generation', 'reply_to', 'correlation_id', 'request_id',
                 'heartbeat')

    def __init__(self, message: Any, generation: int, reply_to: str, correlation_id: str,
                 request_id: str | None, heartbeat: float | None) -> None:
        self.message = message
        self.generation = generation
        self.reply_to = reply_to
        self.correlation_id = correlation_id
        self.request_id = request_id
        self.heartbeat = heartbeat


class Server:
    """Serves requests for ``endpoints`` ({class name: task class}) on one topic."""

    def __init__(self, topic: str, exchange: str, executor: futures.Executor,
                 endpoints: dict[str, type], url: str | None = None,
                 transport: str | None = None, transport_options: dict[str, Any] | None = None,
                 retry_options: dict[str, Any] | None = None, *, worker_id: str,
                 max_message_size: int | None = protocol.MAX_MESSAGE_SIZE,
                 prefetch_count: int | None = None) -> None:
        self._topic = topic
        self._executor = executor
        self._endpoints = dict(endpoints)
        self._worker_id = worker_id
        self._max_size = max_message_size
        self._proxy = proxy_module.Proxy(
            topic, exchange,
            type_handlers={protocol.NOTIFY: self._on_notify,
                           protocol.REQUEST: self._on_request},
            url=url, transport=transport, transport_options=transport_options,
            retry_options=retry_options, prefetch_count=prefetch_count,
            on_reconnect=self._on_reconnect)
        self._jobs: dict[int, _Job] = {}
        self._jobs_lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeats: threading.Thread | None = None

    @property
    def proxy(self) -> proxy_module.Proxy:
        return self._proxy

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Serve until :meth:`stop` (blocks)."""
        self._stop.clear()
        self._heartbeats = threading.Thread(target=self._beat, daemon=True,
                                            name='taskflow-worker-heartbeat')
        self._heartbeats.start()
        self._proxy.start()

    def wait(self, timeout: float | None = None) -> bool:
        return self._proxy.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._proxy.stop()

    def _on_reconnect(self) -> None:
        # Messages of the old channel were put back by the broker (and may
        # come to us again); their tasks still run, but can no longer be
        # acknowledged.  Their results are still published.
        LOG.info('Worker %s reconnected; serving topic %r again', self._worker_id,
                 self._topic)

    # -- handlers (consumer thread) -------------------------------------------

    def _on_notify(self, message: Any) -> None:
        reply_to = protocol.string_property(message, 'reply_to')
        self._proxy.ack_now(message)
        if reply_to is None:
            LOG.warning('Dropping a NOTIFY without reply_to')
            return
        body = {'topic': self._topic, 'tasks': sorted(self._endpoints)}
        try:
            self._proxy.publish(protocol.dumps(body, None, 'notify reply'), reply_to,
                                protocol.NOTIFY, headers={protocol.H_WORKER: self._worker_id})
        except Exception as error:
            LOG.warning('Could not answer a NOTIFY from %s: %s', reply_to, error)

    def _on_request(self, message: Any) -> None:
        reply_to = protocol.string_property(message, 'reply_to')
        correlation_id = protocol.string_property(message, 'correlation_id')
        if reply_to is None or correlation_id is None:
            LOG.warning('Dropping a request without reply_to/correlation_id')
            self._proxy.ack_now(message)
            return
        request_id = protocol.header(message, protocol.H_REQUEST)
        if not isinstance(request_id, str):
            request_id = None
        heartbeat = protocol.header(message, protocol.H_HEARTBEAT)
        if isinstance(heartbeat, bool) or not isinstance(heartbeat, (int, float)) \
                or not 0.05 <= heartbeat <= 3600:
            heartbeat = None
        job = _Job(message, self._proxy.generation, reply_to, correlation_id, request_id,
                   heartbeat)
        body, problem = protocol.loads(message.body, self._max_size)
        if problem is None:
            problem = protocol.request_problem(body)
        if problem is None and body['task_cls'] not in self._endpoints:
            problem = ("task class %r is not served by this worker (it serves %s)"
                       % (body['task_cls'], sorted(self._endpoints)))
        if problem is not None:
            LOG.warning('Refusing request %s: %s', correlation_id, problem)
            self._finish(job, False, failure_module.Failure.from_exception(
                exc.InvalidFormat('Refused request: %s' % problem)))
            return
        with self._jobs_lock:
            self._jobs[id(job)] = job
        try:
            self._executor.submit(self._run, job, body)
        except RuntimeError:  # shut down: leave the message unacknowledged
            with self._jobs_lock:
                self._jobs.pop(id(job), None)
            LOG.info('Not running request %s: the worker is stopping', correlation_id)

    # -- running (executor threads) -------------------------------------------

    def _run(self, job: _Job, body: dict[str, Any]) -> None:
        try:
            try:
                ok, value = self._execute(job, body)
            except Exception:  # decoding the request broke: still answer it
                LOG.exception('Request %s could not be run', job.correlation_id)
                ok, value = False, failure_module.Failure()
            self._finish(job, ok, value)
        finally:
            with self._jobs_lock:
                self._jobs.pop(id(job), None)

    def _execute(self, job: _Job, body: dict[str, Any]) -> _call.Outcome:
        task_cls = self._endpoints[body['task_cls']]
        try:
            task = task_cls(name=body['task_name'])
        except Exception:
            return _call.Outcome(False, failure_module.Failure())
        action = body['action']
        arguments = body['arguments']
        result: Any = None
        failures: dict[str, failure_module.Failure] | None = None
        if action == protocol.REVERT:
            result = body.get('result')   # checked: None or [kind, value]
            if result is None:
                pass
            elif result[0] == 'failure':
                result = failure_module.Failure.from_dict(result[1])
            else:
                result = result[1]
            failures = {name: failure_module.Failure.from_dict(data)
                        for name, data in (body.get('failures') or {}).items()}
        self._respond(job, protocol.RUNNING, {})
        task._progress_sink = lambda _task, progress, details: self._event(
            job, progress, details)
        kind = _call.EXECUTE if action == protocol.EXECUTE else _call.REVERT
        method = task.execute if kind == _call.EXECUTE else task.revert
        call = _call.Call(kind, task, arguments, result, failures,
                          coroutine=inspect.iscoroutinefunction(method))
        if call.coroutine:   # an async def task: on an event loop of its own
            return asyncio.run(_call.run_task_async(call))
        return _call.run_task(call)

    def _event(self, job: _Job, progress: float, details: dict[str, Any]) -> None:
        data = {'event_type': 'update_progress',
                'details': dict(details, progress=progress)}
        try:
            self._respond(job, protocol.EVENT, data)
        except Exception as error:  # progress is best effort; the result is not
            LOG.warning('Could not relay progress of request %s: %s', job.correlation_id,
                        error)

    def _finish(self, job: _Job, ok: bool, value: Any) -> None:
        """Publish the outcome, then acknowledge the request (at-least-once)."""
        what = 'the result of request %s' % job.correlation_id
        if ok:
            state, data = protocol.SUCCESS, {'result': value}
            try:
                text = protocol.dumps({'state': state, 'data': data}, self._max_size, what)
            except ValueError as error:   # not JSON, or too large: fail the task
                ok, value = False, failure_module.Failure.from_exception(error)
        if not ok:
            data = {'result': protocol.failure_to_dict(value)}
            text = protocol.dumps({'state': protocol.FAILURE, 'data': data}, None, what)
        try:
            self._publish(job, text)
        except Exception as error:
            # Left unacknowledged: the broker hands it out again when our
            # connection is replaced.
            LOG.error('Could not send %s (%s); it will be redelivered', what, error)
            return
        self._proxy.ack_later(job.message, job.generation)

    def _respond(self, job: _Job, state: str, data: dict[str, Any]) -> None:
        self._publish(job, protocol.dumps({'state': state, 'data': data}, self._max_size,
                                          'a %s response' % state))

    def _publish(self, job: _Job, text: str) -> None:
        headers = {protocol.H_WORKER: self._worker_id}
        if job.request_id is not None:
            headers[protocol.H_REQUEST] = job.request_id
        self._proxy.publish(text, job.reply_to, protocol.RESPONSE,
                            correlation_id=job.correlation_id, headers=headers)

    # -- heartbeats -------------------------------------------------------------

    def _beat(self) -> None:
        """Tell engines which of their requests this worker holds, now and then."""
        last_sent: dict[str, float] = {}
        while not self._stop.wait(_HEARTBEAT_TICK):
            due: dict[str, list[str]] = {}
            now = time.monotonic()
            with self._jobs_lock:
                jobs = list(self._jobs.values())
            for job in jobs:
                if job.heartbeat is None or job.request_id is None:
                    continue   # the original's engines neither ask nor understand
                if now - last_sent.get(job.reply_to, 0.0) >= job.heartbeat:
                    due.setdefault(job.reply_to, []).append(job.request_id)
            for reply_to, request_ids in due.items():
                body = {'worker': self._worker_id, 'requests': request_ids}
                try:
                    self._proxy.publish(protocol.dumps(body, None, 'a heartbeat'), reply_to,
                                        protocol.HEARTBEAT,
                                        headers={protocol.H_WORKER: self._worker_id})
                    last_sent[reply_to] = now
                except Exception as error:
                    LOG.debug('Heartbeat to %s failed: %s', reply_to, error)
            for reply_to in list(last_sent):
                if reply_to not in due and now - last_sent[reply_to] > 3600:
                    del last_sent[reply_to]
