"""The few test helpers that user programs (and examples) import from the original."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from taskflow import exceptions
from taskflow import task
from taskflow.types import failure


@contextlib.contextmanager
def wrap_all_failures() -> Iterator[None]:
    """Re-raise any exception from the block as ``WrappedFailure([Failure()])``."""
    try:
        yield
    except Exception:
        raise exceptions.WrappedFailure([failure.Failure()])


class TaskOneArgOneReturn(task.Task):
    """Requires ``x``; returns 1."""

    def execute(self, x, **kwargs):
        return 1

    def revert(self, x, **kwargs):
        pass


class TaskMultiArgOneReturn(task.Task):
    """Requires ``x``, ``y`` and ``z``; returns their sum."""

    def execute(self, x, y, z, **kwargs):
        return x + y + z

    def revert(self, x, y, z, **kwargs):
        pass
