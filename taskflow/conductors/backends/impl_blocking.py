"""A conductor that runs one job at a time, in the thread that calls
``run()``."""

from __future__ import annotations

from concurrent import futures
from typing import Any

from taskflow.conductors import _executors
from taskflow.conductors.backends import impl_executor

__all__ = ['BlockingConductor']


class BlockingConductor(impl_executor.ExecutorConductor):
    """Claims a job, runs it to its end, then claims the next."""

    MAX_SIMULTANEOUS_JOBS = 1

    def __init__(self, name: str, jobboard: Any, persistence: Any = None,
                 engine: str | None = None, engine_options: dict | None = None,
                 wait_timeout: float | None = None, log: Any = None,
                 max_simultaneous_jobs: int = MAX_SIMULTANEOUS_JOBS,
                 **kwargs: Any) -> None:
        super().__init__(name, jobboard, persistence=persistence, engine=engine,
                         engine_options=engine_options, wait_timeout=wait_timeout,
                         log=log, max_simultaneous_jobs=max_simultaneous_jobs,
                         **kwargs)

    def _executor_factory(self) -> futures.Executor:
        return _executors.SynchronousExecutor()
