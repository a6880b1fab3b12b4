"""Where atoms run: inline (serial engine) or on a ``concurrent.futures.Executor``.

A *runner* is the run loop's only seam to execution.  ``submit`` starts a
call, ``submit_timed`` starts one that may not take longer than a timeout,
``run_local`` runs one in the loop's thread (retries, which must not leave
it), and ``wait`` returns finished ``(token, outcome)`` pairs.  A timed call
that overruns is reported with the outcome ``TIMED_OUT`` and *abandoned*:
Python cannot stop a thread, so the call keeps running, but nobody waits for
it and its eventual result is dropped (and logged).
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent import futures
from typing import Any

from taskflow import logging
from taskflow.types import failure as failure_module

LOG = logging.getLogger(__name__)

TIMED_OUT = object()   # outcome of a timed call that overran its timeout
_WAKE = object()       # queue item that only interrupts a wait

THREAD_EXECUTOR_NAMES = ('thread', 'threads', 'threaded')
GREEN_EXECUTOR_NAMES = ('greenthread', 'greenthreads', 'greenthreaded')
_GREEN_DEFAULT_WORKERS = 1000


class SerialRunner:
    """Runs every call right away, in the calling thread."""

    def __init__(self) -> None:
        self._finished: deque = deque()
        self._wakeup = threading.Event()

    def submit(self, token: Any, fn: Callable, *args: Any) -> None:
        self._finished.append((token, fn(*args)))

    run_local = submit

    def submit_timed(self, token: Any, timeout: float, label: str, fn: Callable,
                     *args: Any) -> None:
        # The loop's thread cannot be interrupted, so a timed call runs on a
        # daemon thread of its own while the loop waits for it (at most timeout).
        box: list = []
        worker = threading.Thread(target=lambda: box.append(fn(*args)), daemon=True,
                                  name='taskflow-timed-call')
        worker.start()
        worker.join(timeout)
        if box:
            self._finished.append((token, box[0]))
        else:
            LOG.warning('Abandoning %s: still running after %s seconds', label, timeout)
            self._finished.append((token, TIMED_OUT))

    @property
    def pending(self) -> int:
        return len(self._finished)

    def wait(self, timeout: float | None) -> list:
        if not self._finished and timeout:
            # Nothing runs: the loop is only waiting for a timer (or a wake-up).
            self._wakeup.wait(timeout)
        self._wakeup.clear()
        finished = list(self._finished)
        self._finished.clear()
        return finished

    def wake(self) -> None:
        """Interrupt a ``wait`` (e.g. the engine is being suspended)."""
        self._wakeup.set()

    def stop(self) -> None:
        pass


class PoolRunner:
    """Runs calls on an executor; finished calls are handed back through a queue."""

    def __init__(self, executor: futures.Executor, owned: bool) -> None:
        self._executor = executor
        self._owned = owned
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._local: deque = deque()
        self._running = 0
        self._deadlines: list = []   # heap of (deadline, sequence, token, future, label)
        self._sequence = 0
        self._abandoned: dict[futures.Future, str] = {}  # overrunning call -> label

    def submit(self, token: Any, fn: Callable, *args: Any) -> futures.Future:
        future = self._executor.submit(fn, *args)
        self._running += 1
        future.add_done_callback(lambda f: self._queue.put((token, f)))
        return future

    def submit_timed(self, token: Any, timeout: float, label: str, fn: Callable,
                     *args: Any) -> None:
        future = self.submit(token, fn, *args)
        self._sequence += 1
        heapq.heappush(self._deadlines,
                       (time.monotonic() + timeout, self._sequence, token, future, label))

    def run_local(self, token: Any, fn: Callable, *args: Any) -> None:
        self._local.append((token, fn(*args)))

    def wake(self) -> None:
        """Interrupt a ``wait`` (e.g. the engine is being suspended)."""
        self._queue.put((_WAKE, None))

    @property
    def pending(self) -> int:
        return self._running + len(self._local)

    def wait(self, timeout: float | None) -> list:
        finished = list(self._local)
        self._local.clear()
        block = not finished
        while True:
            wait_for = self._until_next_deadline(timeout) if block else None
            try:
                item = self._queue.get(block=block, timeout=wait_for)
            except queue.Empty:
                break
            block = False
            token, payload = item
            if token is _WAKE:
                continue
            if payload in self._abandoned:
                LOG.warning('%s finished after its timeout; its outcome is dropped',
                            self._abandoned.pop(payload))
                continue
            self._running -= 1
            finished.append((token, _outcome_of(payload)))
        finished.extend(self._expire())
        return finished

    def _until_next_deadline(self, timeout: float | None) -> float | None:
        if not self._deadlines:
            return timeout
        left = max(self._deadlines[0][0] - time.monotonic(), 0.0)
        return left if timeout is None else min(left, timeout)

    def _expire(self) -> list:
        """Abandon timed calls whose deadline passed while they were still running."""
        expired = []
        now = time.monotonic()
        while self._deadlines and (self._deadlines[0][0] <= now
                                   or self._deadlines[0][3].done()):
            _deadline, _seq, token, future, label = heapq.heappop(self._deadlines)
            if future.done():
                continue  # finished in time; its outcome comes through the queue
            LOG.warning('Abandoning %s: still running after its timeout', label)
            self._abandoned[future] = label
            self._running -= 1
            expired.append((token, TIMED_OUT))
        return expired

    def stop(self) -> None:
        if self._owned:
            # Never wait for abandoned (overrunning) calls: they may not end.
            self._executor.shutdown(wait=not self._abandoned)


def _outcome_of(future: futures.Future) -> tuple:
    try:
        return future.result()
    except Exception as error:  # a broken or cancelled executor, not the atom
        return False, failure_module.Failure.from_exception(error)
    # SystemExit, KeyboardInterrupt... raised by an atom propagate, as they
    # do on the serial engine.


def validate_executor_option(value: Any) -> None:
    """Check the parallel engine's ``executor`` option when the engine is loaded."""
    if value is None or isinstance(value, futures.Executor):
        return
    if isinstance(value, str):
        if value.lower() in THREAD_EXECUTOR_NAMES + GREEN_EXECUTOR_NAMES:
            return
        known = list(THREAD_EXECUTOR_NAMES + GREEN_EXECUTOR_NAMES)
        raise ValueError("Unknown executor string '%s' expected one of %s (or mixed case"
                         " equivalent)" % (value, known))
    raise TypeError("Unknown executor '%s' (%s) expected an instance of %s"
                    % (value, type(value), [futures.ThreadPoolExecutor, futures.Executor]))


def make_pool_runner(executor: Any, max_workers: int | None) -> PoolRunner:
    """A runner for the parallel engine's ``executor``/``max_workers`` options."""
    if isinstance(executor, futures.Executor):
        return PoolRunner(executor, owned=False)
    if isinstance(executor, str) and executor.lower() in GREEN_EXECUTOR_NAMES:
        return PoolRunner(_GreenExecutor(max_workers or _GREEN_DEFAULT_WORKERS), owned=True)
    return PoolRunner(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                 thread_name_prefix='taskflow'), owned=True)


class _GreenExecutor(futures.Executor):
    """A minimal executor over an eventlet green pool (needs eventlet installed)."""

    def __init__(self, max_workers: int) -> None:
        from taskflow.utils import eventlet_utils
        eventlet_utils.check_for_eventlet(
            RuntimeError('Eventlet is needed to use a green executor'))
        import eventlet
        self._pool = eventlet.GreenPool(max_workers)

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> futures.Future:
        future: futures.Future = futures.Future()

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
