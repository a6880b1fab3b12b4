"""Runners for flows with ``async def`` atoms: coroutines on an event loop.

The engine picks these runners when its compiled flow has coroutines
(``Compilation.has_coroutines``); flows without any never import asyncio.
Synchronous atoms keep running as before (inline, or on the executor); only
calls marked ``Call.coroutine`` are awaited, through :func:`run_call`.

Where the event loop is:

*its own* (``engine.run()``/``run_iter()``)
    The engine's thread owns one loop for the whole run and runs it while it
    waits for atoms (:class:`LocalSerialRunner`, :class:`LocalPoolRunner`):
    no thread hand-offs, no locks; coroutines progress whenever the engine
    waits.  (If that thread already runs a loop -- a blocking ``run()``
    called from async code -- the serial runner uses a loop thread instead.)
*the caller's* (``await engine.run_async()``, see ``_async_run``)
    The engine runs on a thread of its own, so storage I/O, listeners and
    synchronous user code never block the caller's loop; coroutines are
    handed to the caller's loop (:class:`ForeignSerialRunner`,
    :class:`ForeignPoolRunner`), and what they do that touches storage
    (progress reports) is handed back to the engine's thread.

Either way :class:`CoroutineLane` runs the coroutines: as tasks, at most
``limit`` at a time (the parallel engine's ``async_concurrency``), the rest
waiting in submission order.  A per-atom timeout cancels the coroutine: it
sees ``CancelledError`` and its ``finally`` blocks run, then the task fails
with ``AtomTimeout``.  :meth:`CoroutineLane.interrupt` cancels every running
coroutine (``run_async()`` was cancelled): they end
:data:`~._executors.INTERRUPTED`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent import futures
from typing import Any

from taskflow import exceptions as exc
from taskflow.engines.action_engine import _executors
from taskflow.engines.action_engine._call import Call, Outcome, run_task_async
from taskflow.types import failure as failure_module

LOG = logging.getLogger(__name__)

# What a coroutine call left: its outcome, or a BaseException (SystemExit,
# KeyboardInterrupt...) the engine's thread re-raises, as for threads.
Settled = Outcome | BaseException
Deliver = Callable[[Any, Settled], None]
_NOT_RUNNING = object()
ProgressSink = Callable[[Any, float, dict[str, Any]], None]


def _timed_out(call: Call, timeout: float) -> Outcome:
    return Outcome(False, failure_module.Failure.from_exception(exc.AtomTimeout(
        "Task '%s' did not finish %s within %s seconds; it was cancelled"
        % (call.atom.name, call.kind, timeout))))


def _uncancel(task: asyncio.Task[Any]) -> None:
    uncancel = getattr(task, 'uncancel', None)   # Python 3.11+
    if uncancel is not None:
        uncancel()


async def run_call(call: Call, timeout: float | None) -> Outcome:
    """Await a coroutine call; past ``timeout`` seconds, cancel it.

    The coroutine sees ``CancelledError`` where it awaits (its ``finally``
    blocks and ``post_execute`` run) and the outcome is an ``AtomTimeout``
    failure -- also when it swallowed the cancellation and returned.  A
    cancellation from anywhere else propagates.
    """
    if timeout is None:
        return await run_task_async(call)
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        outcome = await run_task_async(call)
    except asyncio.CancelledError:
        if not expired:
            raise
        _uncancel(task)
        return _timed_out(call, timeout)
    finally:
        timer.cancel()
    if expired:
        _uncancel(task)
        LOG.warning("Task '%s' ignored its cancellation after %s seconds; its outcome is"
                    " dropped", call.atom.name, timeout)
        return _timed_out(call, timeout)
    return outcome


class CoroutineLane:
    """Runs coroutine calls as tasks on ``loop``, at most ``limit`` at once.

    ``deliver(token, settled)`` is called on the loop for every call, once.
    With ``threadsafe`` the lane may be fed from other threads (the loop
    runs elsewhere); otherwise only from the loop's own thread.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int, deliver: Deliver,
                 threadsafe: bool) -> None:
        self.loop = loop
        self._limit = limit
        self._deliver = deliver
        self._threadsafe = threadsafe
        self._backlog: deque[tuple[Any, Call, float | None]] = deque()
        self._tasks: dict[asyncio.Task[None], Any] = {}   # running task -> its token
        self._lock = threading.Lock()
        self._drain_scheduled = False
        self._interrupted = False

    def submit(self, token: Any, call: Call, timeout: float | None) -> None:
        self._backlog.append((token, call, timeout))
        if not self._threadsafe:
            self._drain()
            return
        # One hand-over to the loop for a burst of submissions, not one each.
        with self._lock:
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        self.loop.call_soon_threadsafe(self._drain)

    def interrupt(self) -> None:
        """Cancel running calls, and calls not started yet (thread safe)."""
        self._interrupted = True
        try:
            self.loop.call_soon_threadsafe(self._cancel_all)
        except RuntimeError:   # the loop is closed: nothing runs on it any more
            pass

    def _cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()
            # A task cancelled before its first step never runs _run().
            task.add_done_callback(self._settle_unstarted)
        self._drain()

    def _settle_unstarted(self, task: asyncio.Task[None]) -> None:
        token = self._tasks.pop(task, _NOT_RUNNING)
        if token is not _NOT_RUNNING:
            self._deliver(token, _executors.INTERRUPTED)

    def _drain(self) -> None:
        if self._threadsafe:
            with self._lock:
                self._drain_scheduled = False
        backlog, tasks = self._backlog, self._tasks
        while backlog and (len(tasks) < self._limit or self._interrupted):
            token, call, timeout = backlog.popleft()
            if self._interrupted:
                self._deliver(token, _executors.INTERRUPTED)
                continue
            tasks[self.loop.create_task(self._run(token, call, timeout))] = token

    async def _run(self, token: Any, call: Call, timeout: float | None) -> None:
        settled: Settled
        try:
            if timeout is None:
                settled = await run_task_async(call)
            else:
                settled = await run_call(call, timeout)
        except asyncio.CancelledError:
            settled = _executors.INTERRUPTED
        except BaseException as error:   # re-raised in the engine's thread
            settled = error
        # Done here rather than in a done callback: one loop pass less per call.
        self._tasks.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
        self._deliver(token, settled)
        if self._backlog:
            self._drain()


def _outcome(settled: Settled) -> Outcome:
    if isinstance(settled, BaseException):
        raise settled
    return settled


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what still runs on ``loop`` (letting it unwind), then close it."""
    if loop.is_closed():
        return
    try:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


class LoopThread:
    """An event loop running on a daemon thread of its own (one per run)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name='taskflow-event-loop')
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            close_loop(self.loop)

    def run(self, coroutine: Coroutine[Any, Any, Outcome]) -> Outcome:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:   # already closed
            return
        self._thread.join()


# -- the engine's own loop, in the engine's thread --------------------------------------


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class LocalSerialRunner(_executors.SerialRunner):
    """The serial engine: coroutines run one at a time on a loop the engine's
    thread runs (created on first use, one for the whole run)."""

    def __init__(self) -> None:
        super().__init__()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _run(self, coroutine: Coroutine[Any, Any, Outcome]) -> Outcome:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.new_event_loop()
        task = loop.create_task(coroutine)
        # One pass of the loop finishes a coroutine that never really waits
        # (half the cost of run_until_complete); the others get the loop
        # until they are done.
        loop.stop()
        loop.run_forever()
        if not task.done():
            loop.run_until_complete(task)
        return task.result()

    def submit(self, token: Any, call: Call, timeout: float | None) -> None:
        if not call.coroutine:
            super().submit(token, call, timeout)
            return
        self._finished.append((token, self._run(
            run_task_async(call) if timeout is None else run_call(call, timeout))))

    def run_coroutine(self, fn: Callable[..., Any], *args: Any) -> Outcome:
        result: Outcome = self._run(fn(*args))
        return result

    def stop(self) -> None:
        if self._loop is not None:
            close_loop(self._loop)


class LocalPoolRunner(_executors.PoolRunner):
    """The parallel engine: coroutines run concurrently on a loop the engine's
    thread runs while it waits; synchronous calls go to the executor, whose
    completions wake the loop up."""

    def __init__(self, executor: futures.Executor, owned: bool, limit: int) -> None:
        super().__init__(executor, owned)
        self._loop = asyncio.new_event_loop()
        self._lane = CoroutineLane(self._loop, limit, self._deliver, threadsafe=False)
        self._settled: list[tuple[Any, Settled]] = []
        self._coroutines = 0    # of the calls running, how many are coroutines
        self._waiting = False   # the loop runs inside wait(): a completion ends that

    def submit(self, token: Any, call: Call, timeout: float | None) -> None:
        if not call.coroutine:
            super().submit(token, call, timeout)
            return
        self._running += 1
        self._coroutines += 1
        self._lane.submit(token, call, timeout)

    def _deliver(self, token: Any, settled: Settled) -> None:
        self._settled.append((token, settled))
        if self._waiting:
            self._loop.stop()

    def _poke(self) -> None:
        if self._waiting:
            self._loop.stop()

    def _completed(self, token: Any, future: Any) -> None:
        super()._completed(token, future)
        # Read after the put: either wait() sees the item or we see it waiting.
        if self._waiting:
            self._call_soon_threadsafe(self._poke)

    def _call_soon_threadsafe(self, fn: Callable[[], None]) -> None:
        try:
            self._loop.call_soon_threadsafe(fn)
        except RuntimeError:   # closed: the run is over
            pass

    def wake(self) -> None:
        super().wake()
        self._call_soon_threadsafe(self._poke)

    def interrupt(self) -> None:
        self._lane.interrupt()

    def run_coroutine(self, fn: Callable[..., Any], *args: Any) -> Outcome:
        # Other coroutines progress meanwhile; their completions are collected.
        result: Outcome = self._loop.run_until_complete(fn(*args))
        return result

    def wait(self, timeout: float | None) -> _executors.Finished:
        if self._settled or self._local:
            self._run_loop(0.0)   # one pass: coroutines keep going
        else:
            give_up = None if timeout is None else time.monotonic() + timeout
            self._run_loop(self._block_for(give_up))
        settled, self._settled = self._settled, []
        finished = [(token, _outcome(item)) for token, item in settled]
        self._running -= len(finished)
        self._coroutines -= len(finished)
        if self._running > self._coroutines or self._local or not self._queue.empty():
            finished.extend(super().wait(0.0))   # synchronous calls, timed-out calls
        return finished

    def _run_loop(self, limit: float | None) -> None:
        loop = self._loop
        self._waiting = True
        try:
            if limit is not None and (limit <= 0 or not self._queue.empty()):
                loop.call_soon(loop.stop)
                loop.run_forever()
                return
            timer = loop.call_later(limit, loop.stop) if limit is not None else None
            try:
                loop.run_forever()
            finally:
                if timer is not None:
                    timer.cancel()
        finally:
            self._waiting = False

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            close_loop(self._loop)


# -- the caller's loop, the engine in a thread of its own --------------------------------


def _deferred(sink: ProgressSink, put: Callable[[Any], None]) -> ProgressSink:
    """``sink``, called later on the engine's thread instead of here (the
    caller's loop must not wait for storage)."""
    def progress(task: Any, value: float, details: dict[str, Any]) -> None:
        put((_executors.RUN_HERE, functools.partial(sink, task, value, details)))
    return progress


class _Finished:
    """A settled coroutine call, shaped like the finished futures
    :meth:`PoolRunner.wait` reads (``result()``)."""

    __slots__ = ('_settled',)

    def __init__(self, settled: Settled) -> None:
        self._settled = settled

    def result(self) -> Outcome:
        return _outcome(self._settled)


class ForeignSerialRunner(_executors.SerialRunner):
    """The serial engine under ``run_async()``: each coroutine runs on the
    caller's loop while the engine's thread waits for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 loop_thread: LoopThread | None = None) -> None:
        super().__init__()
        self._inbox: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
        self._lane = CoroutineLane(loop, 1, lambda token, settled:
                                   self._inbox.put((token, settled)), threadsafe=True)
        self._loop_thread = loop_thread

    def submit(self, token: Any, call: Call, timeout: float | None) -> None:
        if not call.coroutine:
            super().submit(token, call, timeout)
            return
        sink = call.atom._progress_sink
        if sink is not None:
            call.atom._progress_sink = _deferred(sink, self._inbox.put)
        self._lane.submit(token, call, timeout)
        while True:
            tag, item = self._inbox.get()
            if tag is _executors.RUN_HERE:
                item()
            else:
                self._finished.append((token, _outcome(item)))
                return

    def run_coroutine(self, fn: Callable[..., Any], *args: Any) -> Outcome:
        future = asyncio.run_coroutine_threadsafe(fn(*args), self._lane.loop)
        result: Outcome = future.result()
        return result

    def interrupt(self) -> None:
        self._lane.interrupt()

    def stop(self) -> None:
        if self._loop_thread is not None:
            self._loop_thread.stop()


class ForeignPoolRunner(_executors.PoolRunner):
    """The parallel engine under ``run_async()``: coroutines run concurrently
    on the caller's loop, synchronous calls on the executor."""

    def __init__(self, executor: futures.Executor, owned: bool,
                 loop: asyncio.AbstractEventLoop, limit: int,
                 loop_thread: LoopThread | None = None) -> None:
        super().__init__(executor, owned)
        self._lane = CoroutineLane(loop, limit, self._deliver, threadsafe=True)
        self._loop_thread = loop_thread

    def _deliver(self, token: Any, settled: Settled) -> None:
        self._queue.put((token, _Finished(settled)))

    def submit(self, token: Any, call: Call, timeout: float | None) -> None:
        if not call.coroutine:
            super().submit(token, call, timeout)
            return
        sink = call.atom._progress_sink
        if sink is not None:
            call.atom._progress_sink = _deferred(sink, self._queue.put)
        self._running += 1
        self._lane.submit(token, call, timeout)

    def run_coroutine(self, fn: Callable[..., Any], *args: Any) -> Outcome:
        future = asyncio.run_coroutine_threadsafe(fn(*args), self._lane.loop)
        result: Outcome = future.result()
        return result

    def interrupt(self) -> None:
        self._lane.interrupt()

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            if self._loop_thread is not None:
                self._loop_thread.stop()


def serial_runner(caller_loop: asyncio.AbstractEventLoop | None) -> _executors.Runner:
    """The serial engine's runner for a flow with coroutines.

    ``caller_loop``: the loop of ``run_async()``'s caller, if any.
    """
    if caller_loop is not None:
        return ForeignSerialRunner(caller_loop)
    if _loop_running_here():
        # A blocking run() from code a loop runs: this thread's loop is
        # busy (and blocked by us), so ours runs next to it.
        thread = LoopThread()
        return ForeignSerialRunner(thread.loop, thread)
    return LocalSerialRunner()


def pool_runner(executor: Any, max_workers: int | None, limit: int,
                caller_loop: asyncio.AbstractEventLoop | None) -> _executors.Runner:
    """The parallel engine's runner for a flow with coroutines."""
    pool, owned = _executors.make_executor(executor, max_workers)
    if caller_loop is not None:
        return ForeignPoolRunner(pool, owned, caller_loop, limit)
    if _loop_running_here():
        thread = LoopThread()
        return ForeignPoolRunner(pool, owned, thread.loop, limit, thread)
    return LocalPoolRunner(pool, owned, limit)
