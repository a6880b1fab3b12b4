"""Where atoms run: inline (serial engine) or on a ``concurrent.futures.Executor``.

A *runner* (the :class:`Runner` protocol) is the run loop's only seam to
execution: ``submit`` starts a task's :class:`~._call.Call` (optionally
with a timeout), ``run_local`` runs a call in the loop's own thread
(retries, which must not leave it), and ``wait`` returns finished
``(token, outcome)`` pairs.

A timed call that overruns is reported with the outcome :data:`TIMED_OUT`
and *abandoned*: Python cannot stop a thread, so the call keeps running, but
nobody waits for it and its eventual result is dropped (and logged).  Its
clock starts when the call starts running, not when it is queued, and the
engine's own pool (:class:`DaemonPool`) replaces the thread an abandoned call
holds, so timed-out calls never use up the pool or keep the process from
exiting.

Flows with ``async def`` atoms get the runners of ``_async`` (built on
these), which run coroutines on an event loop; the runners here never touch
asyncio.
"""

from __future__ import annotations

import heapq
import itertools
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent import futures
from typing import Any, Protocol

from taskflow import logging
from taskflow.engines.action_engine._call import Call, Outcome, run_task
from taskflow.types import failure as failure_module

LOG = logging.getLogger(__name__)

TIMED_OUT = Outcome(False, None)   # outcome of a timed call that overran its timeout
# Outcome of a call cancelled before it finished (the caller of run_async()
# was cancelled): not a result, not a failure; the atom runs again on resume.
INTERRUPTED = Outcome(False, None)
_WAKE = object()                   # queue item that only interrupts a wait
# Queue item whose payload (a function) the waiting loop thread calls, then
# keeps waiting: work handed over to the loop's thread (see ``_async``).
RUN_HERE = object()
# How often a wait looks at timed calls queued in an executor, to start
# their clocks when they start running.
_START_POLL = 0.05

THREAD_EXECUTOR_NAMES = ('thread', 'threads', 'threaded')
GREEN_EXECUTOR_NAMES = ('greenthread', 'greenthreads', 'greenthreaded')
_GREEN_DEFAULT_WORKERS = 1000

Finished = list[tuple[Any, Outcome]]


class Runner(Protocol):
    """What the run loop needs from whatever runs its atoms."""

    @property
    def pending(self) -> int:
        """Calls started and not yet returned by :meth:`wait`."""

    def submit(self, token: Any, call: Call, timeout: float | None) -> None:
        """Start ``call``; its outcome comes back from :meth:`wait` with ``token``."""

    def run_local(self, token: Any, fn: Callable[..., Outcome], *args: Any) -> None:
        """Run ``fn(*args)`` in this thread now; its outcome comes back from :meth:`wait`."""

    def wait(self, timeout: float | None) -> Finished:
        """Finished ``(token, outcome)`` pairs; blocks up to ``timeout`` if none yet."""

    def wake(self) -> None:
        """Interrupt a :meth:`wait` (thread safe)."""

    def run_coroutine(self, fn: Callable[..., Any], *args: Any) -> Outcome:
        """Await ``fn(*args)`` (an ``async def`` from ``_call``) to its outcome, now."""

    def interrupt(self) -> None:
        """Cancel running coroutines (thread safe); they finish as :data:`INTERRUPTED`."""

    def stop(self) -> None:
        """The run is over: release what the runner owns."""


def _no_event_loop(fn: Callable[..., Any], *args: Any) -> Outcome:
    # The engine picks an asyncio runner for any flow with coroutines.
    raise TypeError('%s needs an event loop; this runner has none' % fn.__name__)


class SerialRunner:
    """Runs every call right away, in the calling thread."""

    def __init__(self) -> None:
        self._finished: deque[tuple[Any, Outcome]] = deque()
        self._wakeup = threading.Event()

    def submit(self, token: Any, call: Call, timeout: float | None) -> None:
        if timeout is None:
            self._finished.append((token, run_task(call)))
            return
        # The loop's thread cannot be interrupted, so a timed call runs on a
        # daemon thread of its own while the loop waits for it (at most timeout).
        box: list[Outcome] = []
        worker = threading.Thread(target=lambda: box.append(run_task(call)), daemon=True,
                                  name='taskflow-timed-call')
        worker.start()
        worker.join(timeout)
        if box:
            self._finished.append((token, box[0]))
        else:
            LOG.warning('Abandoning %s: still running after %s seconds', _label(call), timeout)
            self._finished.append((token, TIMED_OUT))

    def run_local(self, token: Any, fn: Callable[..., Outcome], *args: Any) -> None:
        self._finished.append((token, fn(*args)))

    @property
    def pending(self) -> int:
        return len(self._finished)

    def wait(self, timeout: float | None) -> Finished:
        if not self._finished and timeout:
            # Nothing runs: the loop is only waiting for a timer (or a wake-up).
            self._wakeup.wait(timeout)
        self._wakeup.clear()
        finished = list(self._finished)
        self._finished.clear()
        return finished

    def wake(self) -> None:
        self._wakeup.set()

    run_coroutine = staticmethod(_no_event_loop)

    def interrupt(self) -> None:
        pass   # a running thread cannot be interrupted

    def stop(self) -> None:
        pass


class _Timed:
    """A timed call in flight: its clock starts when its future starts running."""

    __slots__ = ('token', 'future', 'timeout', 'label')

    def __init__(self, token: Any, future: futures.Future[Outcome], timeout: float,
                 label: str) -> None:
        self.token = token
        self.future = future
        self.timeout = timeout
        self.label = label


class PoolRunner:
    """Runs calls on an executor; finished calls are handed back through a queue."""

    def __init__(self, executor: futures.Executor, owned: bool) -> None:
        self._executor = executor
        self._owned = owned
        self._queue: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
        self._local: deque[tuple[Any, Outcome]] = deque()
        self._running = 0
        self._unstarted: list[_Timed] = []      # timed calls still queued in the executor
        self._deadlines: list[tuple[float, int, _Timed]] = []  # heap, started timed calls
        self._sequence = itertools.count()
        self._abandoned: dict[futures.Future[Outcome], str] = {}  # overrunning call -> label

    def submit(self, token: Any, call: Call, timeout: float | None) -> None:
        future = self._executor.submit(run_task, call)
        self._running += 1
        future.add_done_callback(lambda f: self._completed(token, f))
        if timeout is not None:
            self._unstarted.append(_Timed(token, future, timeout, _label(call)))

    def _completed(self, token: Any, future: Any) -> None:
        """A call finished (on whatever thread finished it): hand it to :meth:`wait`."""
        self._queue.put((token, future))

    def run_local(self, token: Any, fn: Callable[..., Outcome], *args: Any) -> None:
        self._local.append((token, fn(*args)))

    def wake(self) -> None:
        self._queue.put((_WAKE, None))

    run_coroutine = staticmethod(_no_event_loop)

    def interrupt(self) -> None:
        pass

    @property
    def pending(self) -> int:
        return self._running + len(self._local)

    def wait(self, timeout: float | None) -> Finished:
        finished: Finished = list(self._local)
        self._local.clear()
        give_up = None if timeout is None else time.monotonic() + timeout
        woken = False
        while True:
            block = not finished and not woken
            try:
                token, payload = self._queue.get(
                    block=block, timeout=self._block_for(give_up) if block else None)
            except queue.Empty:
                finished.extend(self._expire())
                if (finished or not block
                        or (give_up is not None and time.monotonic() >= give_up)):
                    return finished
                continue  # woke up to start clocks or expire calls: keep waiting
            if token is _WAKE:
                woken = True
            elif token is RUN_HERE:
                payload()
            elif payload in self._abandoned:
                LOG.warning('%s finished after its timeout; its outcome is dropped',
                            self._abandoned.pop(payload))
            else:
                self._running -= 1
                finished.append((token, _outcome_of(payload)))

    def _start_clocks(self) -> None:
        """Start the clock of every timed call that has started running."""
        now = time.monotonic()
        still_queued = []
        for timed in self._unstarted:
            if timed.future.done():
                continue  # its outcome comes through the queue
            if timed.future.running():
                heapq.heappush(self._deadlines,
                               (now + timed.timeout, next(self._sequence), timed))
            else:
                still_queued.append(timed)
        self._unstarted = still_queued

    def _block_for(self, give_up: float | None) -> float | None:
        """How long a blocking wait may sleep: until ``give_up``, the next
        deadline, or the next look at queued timed calls, whichever is first."""
        self._start_clocks()
        now = time.monotonic()
        limit = None if give_up is None else max(give_up - now, 0.0)
        if self._unstarted:
            limit = _START_POLL if limit is None else min(limit, _START_POLL)
        if self._deadlines:
            left = max(self._deadlines[0][0] - now, 0.0)
            limit = left if limit is None else min(left, limit)
        return limit

    def _expire(self) -> Finished:
        """Abandon timed calls whose deadline passed while they were still running."""
        expired: Finished = []
        now = time.monotonic()
        deadlines = self._deadlines
        while deadlines and (deadlines[0][0] <= now or deadlines[0][2].future.done()):
            timed = heapq.heappop(deadlines)[2]
            if timed.future.done():
                continue  # finished in time; its outcome comes through the queue
            LOG.warning('Abandoning %s: still running after %s seconds', timed.label,
                        timed.timeout)
            self._abandoned[timed.future] = timed.label
            abandon = getattr(self._executor, 'abandon', None)
            if abandon is not None:
                abandon(timed.future)
            self._running -= 1
            expired.append((timed.token, TIMED_OUT))
        return expired

    def stop(self) -> None:
        if self._owned:
            self._executor.shutdown(wait=True)


def _label(call: Call) -> str:
    return "task '%s' (%s)" % (call.atom.name, call.kind)


def _outcome_of(future: futures.Future[Outcome]) -> Outcome:
    try:
        return future.result()
    except Exception as error:  # a broken or cancelled executor, not the atom
        return Outcome(False, failure_module.Failure.from_exception(error))
    # SystemExit, KeyboardInterrupt... raised by an atom propagate, as they
    # do on the serial engine.


class DaemonPool(futures.Executor):
    """A thread pool of daemon threads that survives abandoned calls.

    Like ``ThreadPoolExecutor`` (threads start on demand, up to
    ``max_workers``), except that :meth:`abandon` gives up on a running call:
    its thread stops counting against ``max_workers`` (a new one starts when
    work needs it) and exits once the call returns.  Daemon threads, and
    ``shutdown()`` never joining abandoned ones, let the process exit while
    an abandoned call still runs.
    """

    def __init__(self, max_workers: int | None = None, name: str = 'taskflow') -> None:
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)
        if max_workers <= 0:
            raise ValueError('max_workers must be greater than 0')
        self._max_workers = max_workers
        self._name = name
        self._work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: dict[threading.Thread, futures.Future[Any] | None] = {}
        self._abandoned: set[futures.Future[Any]] = set()
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> futures.Future[Any]:
        future: futures.Future[Any] = futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError('cannot schedule new futures after shutdown')
            self._work.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False):
                self._grow()
        return future

    def _grow(self) -> None:
        working = len(self._threads) - sum(1 for f in self._threads.values()
                                           if f in self._abandoned)
        if working < self._max_workers:
            thread = threading.Thread(target=self._serve, daemon=True,
                                      name='%s-%d' % (self._name, len(self._threads)))
            self._threads[thread] = None
            thread.start()

    def abandon(self, future: futures.Future[Any]) -> None:
        """Stop counting the thread that runs ``future`` (it overran a timeout)."""
        with self._lock:
            if not future.done() and future in self._threads.values():
                self._abandoned.add(future)
                if not self._work.empty():
                    self._grow()

    def _serve(self) -> None:
        me = threading.current_thread()
        while True:
            item = self._work.get()
            if item is None:
                self._work.put(None)  # let the other threads see it too
                with self._lock:
                    self._threads.pop(me, None)
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                with self._lock:
                    self._threads[me] = future
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:
                    future.set_exception(error)
                else:
                    future.set_result(result)
                del future  # (a result must not outlive its call in this frame)
                with self._lock:
                    running = self._threads[me]
                    self._threads[me] = None
                    if running in self._abandoned:
                        self._abandoned.discard(running)
                        self._threads.pop(me)
                        return  # a replacement thread took our place
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._work.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            self._work.put(None)
            threads = [t for t, f in self._threads.items() if f not in self._abandoned]
        if wait:
            for thread in threads:
                thread.join()


def validate_executor_option(value: Any) -> None:
    """Check the parallel engine's ``executor`` option when the engine is loaded."""
    if value is None or isinstance(value, futures.Executor) or _stands_for_a_pool(value):
        return
    if isinstance(value, str):
        if value.lower() in THREAD_EXECUTOR_NAMES + GREEN_EXECUTOR_NAMES:
            return
        known = list(THREAD_EXECUTOR_NAMES + GREEN_EXECUTOR_NAMES)
        raise ValueError("Unknown executor string '%s' expected one of %s (or mixed case"
                         " equivalent)" % (value, known))
    raise TypeError("Unknown executor '%s' (%s) expected an instance of %s"
                    % (value, type(value), [futures.ThreadPoolExecutor, futures.Executor]))


def make_executor(executor: Any, max_workers: int | None) -> tuple[futures.Executor, bool]:
    """The executor for the parallel engine's ``executor``/``max_workers``
    options, and whether the engine owns it (shuts it down after the run)."""
    if isinstance(executor, futures.Executor):
        return executor, False
    pool = _task_executor(executor, max_workers)
    if pool is not None:
        return pool
    if isinstance(executor, str) and executor.lower() in GREEN_EXECUTOR_NAMES:
        return _GreenExecutor(max_workers or _GREEN_DEFAULT_WORKERS), True
    return DaemonPool(max_workers), True


def _stands_for_a_pool(value: Any) -> bool:
    """Whether ``value`` is one of ``executor``'s task executor classes that
    the engine can run atoms with (taskflow-ng accepts them as the
    ``executor`` option; the original refuses them)."""
    from taskflow.engines.action_engine import executor as task_executors

    return (isinstance(value, task_executors.TaskExecutor)
            and type(value)._pool_for_engine
            is not task_executors.TaskExecutor._pool_for_engine)


def _task_executor(value: Any, max_workers: int | None
                   ) -> tuple[futures.Executor, bool] | None:
    """The pool (and whether the engine owns it) behind a task executor given
    as the ``executor`` option; ``None`` when ``value`` is not one."""
    return value._pool_for_engine(max_workers) if _stands_for_a_pool(value) else None


def make_pool_runner(executor: Any, max_workers: int | None) -> PoolRunner:
    """A runner for the parallel engine's ``executor``/``max_workers`` options."""
    return PoolRunner(*make_executor(executor, max_workers))


class _GreenExecutor(futures.Executor):
    """A minimal executor over an eventlet green pool (needs eventlet installed)."""

    def __init__(self, max_workers: int) -> None:
        from taskflow.utils import eventlet_utils
        eventlet_utils.check_for_eventlet(
            RuntimeError('Eventlet is needed to use a green executor'))
        import eventlet
        self._pool = eventlet.GreenPool(max_workers)

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> futures.Future[Any]:
        future: futures.Future[Any] = futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)
        self._pool.spawn_n(run)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if wait:
            self._pool.waitall()
