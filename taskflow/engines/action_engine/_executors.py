"""Where atoms run: inline (serial engine) or on a ``concurrent.futures.Executor``.

A *runner* is the run loop's only seam to execution.  ``submit`` starts a
call, ``run_local`` runs one in the loop's thread (retries, which must not
leave it), and ``wait`` returns finished ``(token, outcome)`` pairs.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable
from concurrent import futures
from typing import Any

from taskflow.types import failure as failure_module

THREAD_EXECUTOR_NAMES = ('thread', 'threads', 'threaded')
GREEN_EXECUTOR_NAMES = ('greenthread', 'greenthreads', 'greenthreaded')
_GREEN_DEFAULT_WORKERS = 1000


class SerialRunner:
    """Runs every call right away, in the calling thread."""

    def __init__(self) -> None:
        self._finished: deque = deque()

    def submit(self, token: Any, fn: Callable, *args: Any) -> None:
        self._finished.append((token, fn(*args)))

    run_local = submit

    @property
    def pending(self) -> int:
        return len(self._finished)

    def wait(self, timeout: float | None) -> list:
        finished = list(self._finished)
        self._finished.clear()
        return finished

    def post(self, message: Any) -> None:
        # Called from the loop's own thread only: apply right away.
        self._finished.append(message)

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

    def submit(self, token: Any, fn: Callable, *args: Any) -> None:
        future = self._executor.submit(fn, *args)
        self._running += 1
        future.add_done_callback(lambda f: self._queue.put((token, f)))

    def run_local(self, token: Any, fn: Callable, *args: Any) -> None:
        self._local.append((token, fn(*args)))

    def post(self, message: Any) -> None:
        """Hand a message (e.g. progress from a worker thread) to the loop."""
        self._queue.put(message)

    @property
    def pending(self) -> int:
        return self._running + len(self._local)

    def wait(self, timeout: float | None) -> list:
        finished = list(self._local)
        self._local.clear()
        block = not finished and self._running > 0
        while True:
            try:
                item = self._queue.get(block=block, timeout=timeout if block else None)
            except queue.Empty:
                return finished
            block = False
            token, payload = item
            if isinstance(payload, futures.Future):
                self._running -= 1
                finished.append((token, _outcome_of(payload)))
            else:
                finished.append(item)

    def stop(self) -> None:
        if self._owned:
            self._executor.shutdown(wait=True)


def _outcome_of(future: futures.Future) -> tuple:
    try:
        return future.result()
    except BaseException as error:  # a broken or cancelled executor, not the atom
        return False, failure_module.Failure.from_exception(error)


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
                    % (value, type(value), futures.Executor))


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
        eventlet_utils.check_for_eventlet()
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
