"""A conductor that runs several jobs at once on a thread pool."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent import futures
from typing import Any

from taskflow.conductors.backends import impl_executor

__all__ = ['NonBlockingConductor']


class NonBlockingConductor(impl_executor.ExecutorConductor):
    """Runs up to ``max_simultaneous_jobs`` jobs at once on a thread pool
    (or on the executor ``executor_factory`` makes: called with the
    conductor when it takes one argument, else with none, as the
    original)."""

    MAX_SIMULTANEOUS_JOBS = (os.cpu_count() or 1) + 1

    def __init__(self, name: str, jobboard: Any, persistence: Any = None,
                 engine: str | None = None, engine_options: dict | None = None,
                 wait_timeout: float | None = None, log: Any = None,
                 max_simultaneous_jobs: int = MAX_SIMULTANEOUS_JOBS,
                 executor_factory: Callable[..., futures.Executor] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name, jobboard, persistence=persistence, engine=engine,
                         engine_options=engine_options, wait_timeout=wait_timeout,
                         log=log, max_simultaneous_jobs=max_simultaneous_jobs,
                         **kwargs)
        if executor_factory is None:
            self._executor_factory = self._default_executor_factory  # type: ignore[method-assign]
        else:
            if not callable(executor_factory):
                raise ValueError("Provided keyword argument 'executor_factory'"
                                 " must be callable")
            if impl_executor.accepts_argument(executor_factory):
                factory = executor_factory
                self._executor_factory = lambda: factory(self)  # type: ignore[method-assign]
            else:
                self._executor_factory = executor_factory  # type: ignore[method-assign]

    def _default_executor_factory(self) -> futures.Executor:
        workers = self._max_simultaneous_jobs
        if workers <= 0:
            workers = self.MAX_SIMULTANEOUS_JOBS
        return futures.ThreadPoolExecutor(max_workers=workers,
                                          thread_name_prefix='conductor-%s' % self._name)
