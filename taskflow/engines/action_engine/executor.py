"""The original's task executors, for code that imports or uses them directly.

taskflow-ng's engines run atoms through ``_executors`` (one seam, any
``concurrent.futures.Executor``).  These classes keep the original's public
executor API for services and test suites written against it:

* :class:`SerialTaskExecutor` runs a task in the calling thread;
  :class:`ParallelThreadTaskExecutor` on a thread pool (its own, or the
  ``executor`` given); :class:`ParallelGreenThreadTaskExecutor` on an
  eventlet green pool; :class:`SerialRetryExecutor` runs retries.
* ``execute_task``/``revert_task`` (``execute_retry``/``revert_retry``)
  return a ``Future`` whose result is ``(EXECUTED, result)`` or
  ``(REVERTED, result)``; an exception raised by the atom becomes a
  :class:`~taskflow.types.failure.Failure` result.  While a task runs,
  ``progress_callback`` is registered on its notifier for
  ``update_progress`` events.

The parallel engine also takes an instance of :class:`SerialTaskExecutor`
or of a :class:`ParallelTaskExecutor` class as its ``executor=`` option
(the original 6.5.0 refuses them with a ``TypeError``): the engine then runs
atoms on the pool that executor stands for (see :meth:`TaskExecutor._pool_for_engine`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from concurrent import futures
from typing import Any

from taskflow import task as task_module
from taskflow.types import failure
from taskflow.types import notifier

# What the futures' results start with.
EXECUTED = 'executed'
REVERTED = 'reverted'


def _execute_task(task: Any, arguments: dict[str, Any], progress_callback: Callable[..., Any] | None = None
                  ) -> tuple[str, Any]:
    with notifier.register_deregister(task.notifier, task_module.EVENT_UPDATE_PROGRESS,
                                      callback=progress_callback):
        try:
            task.pre_execute()
            result = task.execute(**arguments)
        except Exception:
            result = failure.Failure()
        finally:
            # Runs even when pre_execute() raised; if it raises itself, the
            # future carries that exception (as the original's).
            task.post_execute()
    return EXECUTED, result


def _revert_task(task: Any, arguments: dict[str, Any], result: Any, failures: Any,
                 progress_callback: Callable[..., Any] | None = None) -> tuple[str, Any]:
    arguments = dict(arguments)
    arguments[task_module.REVERT_RESULT] = result
    arguments[task_module.REVERT_FLOW_FAILURES] = failures
    with notifier.register_deregister(task.notifier, task_module.EVENT_UPDATE_PROGRESS,
                                      callback=progress_callback):
        try:
            task.pre_revert()
            outcome = task.revert(**arguments)
        except Exception:
            outcome = failure.Failure()
        finally:
            task.post_revert()
    return REVERTED, outcome


def _execute_retry(retry: Any, arguments: dict[str, Any]) -> tuple[str, Any]:
    try:
        result = retry.execute(**arguments)
    except Exception:
        result = failure.Failure()
    return EXECUTED, result


def _revert_retry(retry: Any, arguments: dict[str, Any]) -> tuple[str, Any]:
    try:
        result = retry.revert(**arguments)
    except Exception:
        result = failure.Failure()
    return REVERTED, result


class _SynchronousExecutor(futures.Executor):
    """Runs each submitted call at once, in the caller's thread (until shut down)."""

    def __init__(self) -> None:
        self._shutdown = False

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True

    def restart(self) -> None:
        """Accept calls again after :meth:`shutdown`."""
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        if self._shutdown:
            raise RuntimeError('Can not schedule new futures after being shutdown')
        future: futures.Future[Any] = futures.Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


class SerialRetryExecutor:
    """Runs retries' ``execute``/``revert`` in the calling thread."""

    def __init__(self) -> None:
        self._executor = _SynchronousExecutor()

    def start(self) -> None:
        """Accept retries again (after :meth:`stop`)."""
        self._executor.restart()

    def stop(self) -> None:
        """Refuse retries until :meth:`start`."""
        self._executor.shutdown()

    def execute_retry(self, retry: Any, arguments: dict[str, Any]) -> futures.Future[Any]:
        """``retry.execute(**arguments)`` -> a future of ``(EXECUTED, result)``."""
        return self._executor.submit(_execute_retry, retry, arguments)

    def revert_retry(self, retry: Any, arguments: dict[str, Any]) -> futures.Future[Any]:
        """``retry.revert(**arguments)`` -> a future of ``(REVERTED, result)``."""
        return self._executor.submit(_revert_retry, retry, arguments)


class TaskExecutor(metaclass=abc.ABCMeta):
    """Runs tasks' ``execute``/``revert`` and returns futures of their outcomes."""

    @abc.abstractmethod
    def execute_task(self, task: Any, task_uuid: str, arguments: dict[str, Any],
                     progress_callback: Callable[..., Any] | None = None) -> futures.Future[Any]:
        """Run ``task.execute(**arguments)``; a future of ``(EXECUTED, result)``."""

    @abc.abstractmethod
    def revert_task(self, task: Any, task_uuid: str, arguments: dict[str, Any], result: Any,
                    failures: Any, progress_callback: Callable[..., Any] | None = None
                    ) -> futures.Future[Any]:
        """Run ``task.revert(...)``; a future of ``(REVERTED, result)``."""

    def _pool_for_engine(self, max_workers: int | None
                         ) -> tuple[futures.Executor, bool] | None:
        """The pool the parallel engine runs atoms on when this executor is
        its ``executor=`` option, and whether the engine owns (shuts down)
        that pool; ``None`` when this class stands for no pool.
        ``max_workers`` is the engine's option (``None`` if not given)."""
        return None

    def start(self) -> None:
        """Prepare to run tasks."""

    def stop(self) -> None:
        """Release what :meth:`start` made."""


class SerialTaskExecutor(TaskExecutor):
    """Runs each task in the calling thread (the future is done when returned)."""

    def __init__(self) -> None:
        self._executor = _SynchronousExecutor()

    def start(self) -> None:
        """Accept tasks again (after :meth:`stop`)."""
        self._executor.restart()

    def stop(self) -> None:
        """Refuse tasks until :meth:`start`."""
        self._executor.shutdown()

    def _pool_for_engine(self, max_workers: int | None
                         ) -> tuple[futures.Executor, bool]:
        # Atoms run one at a time, in the engine's thread.
        return _SynchronousExecutor(), True

    def execute_task(self, task: Any, task_uuid: str, arguments: dict[str, Any],
                     progress_callback: Callable[..., Any] | None = None) -> futures.Future[Any]:
        return self._executor.submit(_execute_task, task, arguments,
                                     progress_callback=progress_callback)

    def revert_task(self, task: Any, task_uuid: str, arguments: dict[str, Any], result: Any,
                    failures: Any, progress_callback: Callable[..., Any] | None = None
                    ) -> futures.Future[Any]:
        return self._executor.submit(_revert_task, task, arguments, result, failures,
                                     progress_callback=progress_callback)


class ParallelTaskExecutor(TaskExecutor):
    """Runs tasks on an executor: the one given, or one made by :meth:`start`.

    An executor that was given is never shut down; one made by :meth:`start`
    (``_create_executor``, sized by ``max_workers``) is shut down by :meth:`stop`.
    """

    #: How engine options are converted for the constructor (the original's).
    constructor_options = [
        ('max_workers', lambda value: value if value is None else int(value)),
    ]

    def __init__(self, executor: futures.Executor | None = None,
                 max_workers: int | None = None) -> None:
        self._executor = executor
        self._max_workers = max_workers
        self._own_executor = executor is None

    @abc.abstractmethod
    def _create_executor(self, max_workers: int | None = None) -> futures.Executor:
        """Make the executor :meth:`start` uses when none was given."""

    def _submit_task(self, func: Callable[..., Any], task: Any, *args: Any, **kwargs: Any
                     ) -> futures.Future[Any]:
        # Not started: None.submit raises the original's AttributeError.
        executor: Any = self._executor
        result: futures.Future[Any] = executor.submit(func, task, *args, **kwargs)
        return result

    def execute_task(self, task: Any, task_uuid: str, arguments: dict[str, Any],
                     progress_callback: Callable[..., Any] | None = None) -> futures.Future[Any]:
        return self._submit_task(_execute_task, task, arguments,
                                 progress_callback=progress_callback)

    def revert_task(self, task: Any, task_uuid: str, arguments: dict[str, Any], result: Any,
                    failures: Any, progress_callback: Callable[..., Any] | None = None
                    ) -> futures.Future[Any]:
        return self._submit_task(_revert_task, task, arguments, result, failures,
                                 progress_callback=progress_callback)

    def _pool_for_engine(self, max_workers: int | None
                         ) -> tuple[futures.Executor, bool]:
        if not self._own_executor:
            given = self._executor
            assert given is not None   # given to __init__ (only an owned one is dropped)
            return given, False  # given: never shut down
        return self._create_executor(max_workers=self._max_workers or max_workers), True

    def start(self) -> None:
        if self._own_executor and self._executor is None:
            self._executor = self._create_executor(max_workers=self._max_workers)

    def stop(self) -> None:
        if self._own_executor and self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class ParallelThreadTaskExecutor(ParallelTaskExecutor):
    """Runs tasks on a thread pool."""

    def _create_executor(self, max_workers: int | None = None) -> futures.Executor:
        return futures.ThreadPoolExecutor(max_workers=max_workers)

    def _pool_for_engine(self, max_workers: int | None
                         ) -> tuple[futures.Executor, bool]:
        if self._own_executor and \
                type(self)._create_executor is ParallelThreadTaskExecutor._create_executor:
            # The engine's own daemon pool: a call abandoned by its timeout
            # cannot keep the process alive after run() returns.
            from taskflow.engines.action_engine import _executors

            return _executors.DaemonPool(self._max_workers or max_workers), True
        return super()._pool_for_engine(max_workers)


class ParallelGreenThreadTaskExecutor(ParallelThreadTaskExecutor):
    """Runs tasks on an eventlet green pool (``DEFAULT_WORKERS`` green threads)."""

    DEFAULT_WORKERS = 1000

    def _create_executor(self, max_workers: int | None = None) -> futures.Executor:
        # The parallel engine's own green executor (eventlet is optional).
        from taskflow.engines.action_engine import _executors

        return _executors._GreenExecutor(max_workers or self.DEFAULT_WORKERS)
