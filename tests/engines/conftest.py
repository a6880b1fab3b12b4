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

Each kind also comes in two asyncio flavours (ids ending ``-async`` and
``-run_async``): the suite's helper atoms (``Step``, ``Echo``, ``Const`` and
subclasses that keep their ``execute``/``revert``) are ``async def`` (see
``helpers.FLAVOUR``), and for ``-run_async`` every ``engine.run()`` and
``run_iter()`` goes through ``await engine.run_async()`` /
``engine.run_iter_async()`` on an event loop (:class:`AsyncDriven`).

Tests load engines through ``kind.load(flow, **kw)`` / ``kind.run(flow, **kw)``
so the right ``engine=``/``executor=`` options are always passed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Generator, Iterator
from typing import Any

import pytest

import taskflow.engines
from tests.engines import helpers

KINDS = ('serial', 'parallel', 'parallel-executor')
PARALLEL_KINDS = ('parallel', 'parallel-executor')
SYNC, ASYNC_ATOMS, RUN_ASYNC = '', 'async', 'run_async'
FLAVOURS = (SYNC, ASYNC_ATOMS, RUN_ASYNC)
# Wide enough for the widest barrier a test uses (see test_parallel.py).
SHARED_POOL_WORKERS = 8


class AsyncDriven:
    """An engine whose ``run()`` and ``run_iter()`` go through ``run_async()``
    and ``run_iter_async()``, each on an event loop of its own."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    @property
    def wrapped_engine(self) -> Any:
        return self._engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def run(self, timeout: float | None = None) -> None:
        asyncio.run(self._engine.run_async(timeout=timeout))

    def run_iter(self, timeout: float | None = None) -> Generator[str, Any, None]:
        loop = asyncio.new_event_loop()
        states = self._engine.run_iter_async(timeout=timeout)
        try:
            state = loop.run_until_complete(states.__anext__())
            while True:
                try:
                    sent = yield state
                except GeneratorExit:
                    loop.run_until_complete(states.aclose())
                    raise
                except BaseException as error:
                    state = loop.run_until_complete(states.athrow(error))
                    continue
                state = loop.run_until_complete(states.asend(sent))
        except StopAsyncIteration:
            return
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


class EngineKind:
    """How to load an engine of one kind (and flavour)."""

    def __init__(self, name: str, options: dict[str, Any], flavour: str = SYNC) -> None:
        self.name = name
        self.options = options
        self.flavour = flavour

    @property
    def parallel(self) -> bool:
        return self.name in PARALLEL_KINDS

    @property
    def coroutines(self) -> bool:
        """Whether the helper atoms are ``async def``."""
        return self.flavour != SYNC

    @property
    def run_async(self) -> bool:
        """Whether runs go through ``run_async()`` (the engine runs on its own thread)."""
        return self.flavour == RUN_ASYNC

    def load(self, flow: Any, **kwargs: Any) -> Any:
        """``taskflow.engines.load`` with this kind's options (``kwargs`` win)."""
        engine = taskflow.engines.load(flow, **{**self.options, **kwargs})
        return AsyncDriven(engine) if self.run_async else engine

    def run(self, flow: Any, **kwargs: Any) -> dict:
        """``taskflow.engines.run`` with this kind's options (``kwargs`` win)."""
        if not self.run_async:
            return taskflow.engines.run(flow, **{**self.options, **kwargs})
        engine = self.load(flow, **kwargs)
        engine.run()
        results: dict = engine.storage.fetch_all()
        return results

    def __repr__(self) -> str:
        return '<EngineKind %s%s>' % (self.name, '-' + self.flavour if self.flavour else '')


@pytest.fixture(scope='session')
def shared_executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """A user-owned pool handed to many engines; only the session shuts it down."""
    executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=SHARED_POOL_WORKERS, thread_name_prefix='user-pool')
    yield executor
    executor.shutdown(wait=True)


def _assert_usable(executor: concurrent.futures.Executor) -> None:
    assert executor.submit(sum, (20, 22)).result(timeout=10) == 42


def _params(kinds: tuple[str, ...]) -> list[Any]:
    return [pytest.param((name, flavour), id='%s-%s' % (name, flavour) if flavour else name)
            for flavour in FLAVOURS for name in kinds]


def _engine_kind(name: str, flavour: str,
                 shared_executor: concurrent.futures.ThreadPoolExecutor) -> EngineKind:
    if name == 'serial':
        return EngineKind(name, {'engine': 'serial'}, flavour)
    if name == 'parallel':
        return EngineKind(name, {'engine': 'parallel'}, flavour)
    return EngineKind(name, {'engine': 'parallel', 'executor': shared_executor}, flavour)


def _use(name: str, flavour: str,
         shared_executor: concurrent.futures.ThreadPoolExecutor) -> Iterator[EngineKind]:
    helpers.FLAVOUR.coroutines = flavour != SYNC
    try:
        yield _engine_kind(name, flavour, shared_executor)
    finally:
        helpers.FLAVOUR.coroutines = False
    if name == 'parallel-executor':
        # Whatever the test did, the user's pool must still accept work.
        _assert_usable(shared_executor)


@pytest.fixture(params=_params(KINDS))
def kind(request: pytest.FixtureRequest,
         shared_executor: concurrent.futures.ThreadPoolExecutor) -> Iterator[EngineKind]:
    yield from _use(*request.param, shared_executor)


@pytest.fixture(params=_params(PARALLEL_KINDS))
def parallel_kind(request: pytest.FixtureRequest,
                  shared_executor: concurrent.futures.ThreadPoolExecutor
                  ) -> Iterator[EngineKind]:
    """Only the parallel kinds (for tests that need atoms to overlap)."""
    yield from _use(*request.param, shared_executor)
