"""``engine='worker-based'``: the action engine, with tasks run by remote workers.

Everything but *where a task runs* is the action engine's (compiling,
storage, scheduling, retries, notifications).  Task executions and
reversions become requests to workers (:mod:`.executor`); retries, deciders
and delays run in the engine, as in the original.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from taskflow.engines.action_engine import _call
from taskflow.engines.action_engine import _executors
from taskflow.engines.action_engine import engine as action_engine
from taskflow.engines.worker_based import executor as executor_module
from taskflow.engines.worker_based import protocol


def _seconds(options: dict[str, Any], name: str, default: float) -> float:
    seconds = _optional_seconds(options, name, default)
    if seconds is None:
        raise ValueError("Engine option %r must be a positive number of seconds, not None"
                         % (name,))
    return seconds


def _optional_seconds(options: dict[str, Any], name: str, default: float | None
                      ) -> float | None:
    value = options.get(name, default)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not number > 0:
        raise ValueError("Engine option %r must be a positive number of seconds, not %r"
                         % (name, value))
    return number


class WorkerBasedActionEngine(action_engine.ActionEngine):
    """Runs tasks on workers reached through a kombu broker.

    Options (the original's): ``exchange`` (``'default'``), ``topics``,
    ``url``, ``transport``, ``transport_options``, ``retry_options``,
    ``transition_timeout`` (60 s, ``None`` = forever), ``worker_expiry``
    (60 s), ``executor`` (a ready :class:`~.executor.WorkerTaskExecutor`).

    taskflow-ng options: ``heartbeat_interval`` (2 s), ``worker_lost_after``
    (10 s), ``on_worker_lost`` (``'redispatch'`` or ``'fail'``),
    ``max_redispatches`` (3), ``max_message_size`` (8 MiB; ``None`` = no limit).
    """

    def __init__(self, flow: Any, flow_detail: Any, backend: Any,
                 options: dict[str, Any] | None) -> None:
        super().__init__(flow, flow_detail, backend, options)
        given = self._options.get('executor')
        if given is not None:
            if not isinstance(given, executor_module.WorkerTaskExecutor):
                raise TypeError("Expected an instance of type '%s' instead of type '%s' for"
                                " 'executor' option" % (executor_module.WorkerTaskExecutor,
                                                        type(given)))
            self._remote = given
        else:
            self._remote = self._make_executor()

    def _make_executor(self) -> executor_module.WorkerTaskExecutor:
        options = self._options
        topics = options.get('topics') or []
        if isinstance(topics, str):
            topics = [topics]
        size = options.get('max_message_size', protocol.MAX_MESSAGE_SIZE)
        return executor_module.WorkerTaskExecutor(
            uuid=self._flow_detail.uuid,
            exchange=options.get('exchange', 'default'),
            topics=list(topics),
            transition_timeout=_optional_seconds(options, 'transition_timeout',
                                                 protocol.REQUEST_TIMEOUT),
            url=options.get('url'),
            transport=options.get('transport'),
            transport_options=options.get('transport_options'),
            retry_options=options.get('retry_options'),
            worker_expiry=_seconds(options, 'worker_expiry', protocol.EXPIRES_AFTER),
            heartbeat_interval=_seconds(options, 'heartbeat_interval',
                                       protocol.HEARTBEAT_INTERVAL),
            worker_lost_after=_seconds(options, 'worker_lost_after',
                                      protocol.WORKER_LOST_AFTER),
            on_worker_lost=options.get('on_worker_lost', executor_module.REDISPATCH),
            max_redispatches=int(options.get('max_redispatches', 3)),
            max_message_size=None if size is None else int(size))

    def _make_runner(self) -> Any:
        self._remote.start()
        return RemoteRunner(self._remote, self.storage.get_atom_uuid)


class RemoteRunner:
    """Adapts the run loop's runner seam to a :class:`~.executor.WorkerTaskExecutor`.

    The loop's task calls (``_call.Call``) become requests; anything it runs
    locally (retries, deciders) runs here, in the loop.
    """

    def __init__(self, remote: executor_module.WorkerTaskExecutor,
                 uuid_of: Callable[[str], str]) -> None:
        self._remote = remote
        self._uuid_of = uuid_of
        self._local: deque[Any] = deque()

    def submit(self, token: Any, call: _call.Call, timeout: float | None) -> None:
        self.send_call(token, call.kind, call.atom, call.arguments, call.result,
                       call.flow_failures, timeout=timeout)

    def send_call(self, token: Any, kind: str, task: Any, arguments: dict[str, Any], result: Any,
                  flow_failures: dict[str, Any] | None, timeout: float | None = None) -> None:
        """The call the run loop wants: ``(kind, task, arguments, result, flow_failures)``."""
        refused = self._remote.submit(token, kind, task, self._uuid_of(task.name), arguments,
                                      result, flow_failures, timeout=timeout)
        if refused is not None:
            self._local.append((token, refused))

    def run_coroutine(self, fn: Callable[..., Any], *args: Any) -> _call.Outcome:
        # Async retries run in the engine: one short event loop per call.
        import asyncio

        outcome: _call.Outcome = asyncio.run(fn(*args))
        return outcome

    def interrupt(self) -> None:
        pass   # a call running on a worker cannot be interrupted from here

    def run_local(self, token: Any, fn: Callable[..., Any], *args: Any) -> None:
        self._local.append((token, fn(*args)))

    @property
    def pending(self) -> int:
        return self._remote.pending + len(self._local)

    def wait(self, timeout: float | None) -> list[Any]:
        finished = list(self._local)
        self._local.clear()
        outcomes = self._remote.wait(0 if finished else timeout)
        return finished + [(token, _executors.TIMED_OUT if outcome is executor_module.TIMED_OUT
                            else outcome) for token, outcome in outcomes]

    def wake(self) -> None:
        self._remote.wake()

    def stop(self) -> None:
        self._remote.fail_outstanding('the engine stopped')
        self._remote.stop()
