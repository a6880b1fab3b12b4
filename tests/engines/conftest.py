"""One behaviour suite, every engine kind.

Every test in ``tests/engines`` that asks for the ``kind`` fixture runs once
per engine kind:

``serial``
    ``engine='serial'``: atoms run one at a time in the calling thread.
``parallel``
    ``engine='parallel'``: the engine creates (and shuts down) its own thread
    pool for each run.
``parallel-executor``
    ``engine='parallel'`` with ``executor=`` a ``ThreadPoolExecutor`` the user
    owns.  The same pool is shared by every test of the session; after each
    test we check it still accepts work (the engine must never shut it down).

Tests load engines through ``kind.load(flow, **kw)`` / ``kind.run(flow, **kw)``
so the right ``engine=``/``executor=`` options are always passed.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import pytest

import taskflow.engines

KINDS = ('serial', 'parallel', 'parallel-executor')
PARALLEL_KINDS = ('parallel', 'parallel-executor')
# Wide enough for the widest barrier a test uses (see test_parallel.py).
SHARED_POOL_WORKERS = 8


class EngineKind:
    """How to load an engine of one kind."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.options = options

    @property
    def parallel(self) -> bool:
        return self.name in PARALLEL_KINDS

    def load(self, flow: Any, **kwargs: Any) -> Any:
        """``taskflow.engines.load`` with this kind's options (``kwargs`` win)."""
        return taskflow.engines.load(flow, **{**self.options, **kwargs})

    def run(self, flow: Any, **kwargs: Any) -> dict:
        """``taskflow.engines.run`` with this kind's options (``kwargs`` win)."""
        return taskflow.engines.run(flow, **{**self.options, **kwargs})

    def __repr__(self) -> str:
        return '<EngineKind %s>' % self.name


@pytest.fixture(scope='session')
def shared_executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """A user-owned pool handed to many engines; only the session shuts it down."""
    executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=SHARED_POOL_WORKERS, thread_name_prefix='user-pool')
    yield executor
    executor.shutdown(wait=True)


def _assert_usable(executor: concurrent.futures.Executor) -> None:
    assert executor.submit(sum, (20, 22)).result(timeout=10) == 42


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest,
         shared_executor: concurrent.futures.ThreadPoolExecutor) -> Iterator[EngineKind]:
    name = request.param
    if name == 'serial':
        yield EngineKind(name, {'engine': 'serial'})
    elif name == 'parallel':
        yield EngineKind(name, {'engine': 'parallel'})
    else:
        yield EngineKind(name, {'engine': 'parallel', 'executor': shared_executor})
        # Whatever the test did, the user's pool must still accept work.
        _assert_usable(shared_executor)


@pytest.fixture(params=PARALLEL_KINDS)
def parallel_kind(request: pytest.FixtureRequest,
                  shared_executor: concurrent.futures.ThreadPoolExecutor
                  ) -> Iterator[EngineKind]:
    """Only the parallel kinds (for tests that need atoms to overlap)."""
    if request.param == 'parallel':
        yield EngineKind('parallel', {'engine': 'parallel'})
    else:
        yield EngineKind('parallel-executor',
                         {'engine': 'parallel', 'executor': shared_executor})
        _assert_usable(shared_executor)
