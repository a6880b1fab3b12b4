"""Running an engine from inside an event loop: ``await engine.run_async()``.

The run itself -- the engine's one ``run_iter()`` generator: the plan,
storage writes, notifications, retries, the serial engine's synchronous
atoms -- happens on an *engine thread*, one per run, so nothing it does
(a SQL write, a slow listener) blocks the caller's loop.  Its coroutines run
on the caller's loop (``_async.Foreign*Runner``); synchronous atoms of the
parallel engine on its executor.

Cancelling the caller (``task.cancel()``, a timeout around ``run_async()``)
suspends the run and cancels the coroutines still running: they see
``CancelledError``, stay stored ``RUNNING`` (or ``REVERTING``) and run again
when the flow is resumed, as after a crash.  Synchronous atoms already
running finish and are recorded.  ``run_async()`` waits for all that (the
flow is ``SUSPENDED`` in storage when it returns), then raises
``CancelledError``.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from taskflow import _gc
from taskflow import exceptions as exc
from taskflow.engines.action_engine import _loop

if TYPE_CHECKING:
    from taskflow.engines.action_engine.engine import ActionEngine

_DONE = object()   # the run's generator is exhausted


class _EngineThread:
    """A daemon thread that calls what it is handed, one call at a time, and
    settles an asyncio future on the caller's loop with each call's result."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self._loop = loop
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=name)
        self._thread.start()

    def call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        future = self._loop.create_future()
        self._inbox.put((future, fn, args))
        return future

    def stop(self) -> None:
        self._inbox.put(None)

    def _serve(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            future, fn, args = item
            try:
                result = fn(*args)
            except BaseException as error:
                self._settle(future, None, error)
            else:
                self._settle(future, result, None)
            del future, item   # (a result must not outlive its call in this frame)

    def _settle(self, future: asyncio.Future[Any], result: Any,
                error: BaseException | None) -> None:
        def settle() -> None:
            if future.cancelled():
                return
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        try:
            self._loop.call_soon_threadsafe(settle)
        except RuntimeError:   # the caller's loop is closed: nobody waits any more
            pass


async def _settled(future: asyncio.Future[Any], on_cancel: Callable[[], None]) -> Any:
    """The engine thread's result; when the caller is cancelled meanwhile,
    ``on_cancel()``, wait until the engine thread is done anyway, then
    re-raise the cancellation."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        on_cancel()
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue   # cancelled again: the run still has to stop cleanly
            except BaseException:
                break
        raise


class _Cancellation:
    """The caller was cancelled: the engine suspends and cancels its coroutines."""

    def __init__(self, engine: ActionEngine) -> None:
        self._engine = engine
        self._requested = threading.Event()
        self._announced = False

    def request(self) -> None:
        """On the caller's loop: no I/O here, only flags and a wake-up."""
        self._requested.set()
        self._engine._suspension.interrupt()

    def apply(self, state: str) -> None:
        """On the engine thread, between states: suspend (stored) once.  Also
        catches a request that came before the run had a runner."""
        if (self._requested.is_set() and not self._announced
                and state not in _loop.FINAL_STATES):
            self._announced = True
            self._engine._interrupt()


def _thread_name(engine: ActionEngine) -> str:
    return 'taskflow-engine-%s' % engine.storage.flow_uuid[:8]


async def run(engine: ActionEngine, timeout: float | None) -> None:
    """``engine.run()`` on an engine thread, coroutines on the running loop."""
    loop = asyncio.get_running_loop()
    if not engine._engine_lock.acquire(blocking=False):
        raise exc.ExecutionFailure('Engine currently locked, please try again later')
    cancellation = _Cancellation(engine)
    thread = _EngineThread(loop, _thread_name(engine))

    def drive() -> None:
        with _gc.run_threshold():   # on the engine thread; see taskflow/_gc.py
            for state in engine.run_iter(timeout=timeout):
                cancellation.apply(state)

    engine._caller_loop = loop
    try:
        await _settled(thread.call(drive), cancellation.request)
    finally:
        engine._caller_loop = None
        thread.stop()
        engine._engine_lock.release()


async def run_iter(engine: ActionEngine, timeout: float | None) -> AsyncIterator[str]:
    """``engine.run_iter()`` stepped on an engine thread, one state per step."""
    loop = asyncio.get_running_loop()
    cancellation = _Cancellation(engine)
    thread = _EngineThread(loop, _thread_name(engine))
    states = engine.run_iter(timeout=timeout)

    def step(sent: Any, error: BaseException | None = None) -> Any:
        try:
            state = states.send(sent) if error is None else states.throw(error)
        except StopIteration:
            return _DONE
        cancellation.apply(state)
        return state

    engine._caller_loop = loop
    try:
        state = await _settled(thread.call(step, None), cancellation.request)
        while state is not _DONE:
            try:
                sent = yield state
            except GeneratorExit:
                raise
            except BaseException as error:   # athrow(): as run_iter().throw()
                state = await _settled(thread.call(step, None, error), cancellation.request)
                continue
            state = await _settled(thread.call(step, sent), cancellation.request)
    finally:
        try:
            # Closed early (break, aclose(), cancelled): the run suspends and
            # finishes quietly, as when run_iter() is closed.
            await _settled(thread.call(states.close), cancellation.request)
        finally:
            engine._caller_loop = None
            thread.stop()
