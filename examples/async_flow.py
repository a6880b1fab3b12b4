"""An async flow: coroutines calling a (local) HTTP service, with a revert.

What it shows:

1. ``async def`` tasks: they ``await`` an HTTP service (a tiny one started by
   this program on 127.0.0.1, asyncio streams only) and plain tasks mix in.
2. ``await engine.run_async()`` from inside a running event loop: the loop
   keeps serving the HTTP service while the flow runs.
3. The parallel engine runs the three reservations at the same time, on the
   loop (no thread each).
4. A failing charge reverts the flow: once the later steps are reverted, the
   coroutines' ``revert`` release what was reserved.
5. A per-task timeout really cancels: the slow carrier call sees
   ``CancelledError`` and its ``finally`` runs.

Run it with ``python examples/async_flow.py``.
"""

from __future__ import annotations

import asyncio
import json

from taskflow import engines
from taskflow import exceptions
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf


# -- a stand-in inventory/payment service (HTTP/1.0 over asyncio streams) ----------------

class Service:
    """``POST /reserve/<item>``, ``POST /release/<item>``, ``POST /charge/<amount>``,
    ``GET /slow`` (never answers)."""

    def __init__(self) -> None:
        self.reserved: list[str] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, '127.0.0.1', 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        method, path, _ = (await reader.readline()).decode().split(' ', 2)
        while (await reader.readline()).strip():
            pass   # headers
        _, action, argument = (path.split('/') + [''])[:3]
        status, body = 200, {'ok': True}
        if action == 'reserve':
            self.reserved.append(argument)
        elif action == 'release':
            self.reserved.remove(argument)
        elif action == 'charge' and int(argument) > 100:
            status, body = 402, {'ok': False, 'error': 'card declined'}
        elif action == 'slow':
            await reader.read()   # answers never: until the client hangs up
            writer.close()
            return
        writer.write(b'HTTP/1.0 %d X\r\nContent-Type: application/json\r\n\r\n%s'
                     % (status, json.dumps(body).encode()))
        await writer.drain()
        writer.close()


async def call(port: int, method: str, path: str) -> tuple[int, dict]:
    """One HTTP request to the service: ``(status, json body)``."""
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    try:
        writer.write(('%s %s HTTP/1.0\r\n\r\n' % (method, path)).encode())
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        while (await reader.readline()).strip():
            pass
        return status, json.loads(await reader.read())
    finally:
        writer.close()


# -- the tasks ----------------------------------------------------------------------------

class Reserve(task.Task):
    """Reserves one item; its revert releases it again."""

    async def execute(self, port: int) -> str:
        status, _ = await call(port, 'POST', '/reserve/%s' % self.name)
        print('  reserved %s (HTTP %d)' % (self.name, status))
        return self.name

    async def revert(self, port: int, result: object, **kwargs: object) -> None:
        if isinstance(result, str):   # reserved: give it back
            await call(port, 'POST', '/release/%s' % result)
            print('  released %s' % result)


class Total(task.Task):
    """A plain task among coroutines: prices are local, no I/O."""

    PRICES = {'book': 12, 'lamp': 40, 'desk': 80}

    def execute(self, items: list[str]) -> int:
        return sum(self.PRICES[item] for item in items)


class Charge(task.Task):
    async def execute(self, port: int, total: int) -> str:
        status, body = await call(port, 'POST', '/charge/%d' % total)
        if status != 200:
            raise RuntimeError('charging %d failed: %s' % (total, body['error']))
        return 'charged %d' % total


class BookCarrier(task.Task):
    """A carrier API that never answers in time."""

    async def execute(self, port: int) -> None:
        try:
            await call(port, 'GET', '/slow')
        except asyncio.CancelledError:
            print('  carrier call cancelled after %s s' % self.timeout)
            raise
        finally:
            print('  carrier connection closed (finally ran)')


def order(items: list[str], with_carrier: bool = False) -> lf.Flow:
    flow = lf.Flow('order').add(
        uf.Flow('reserve-all').add(*(Reserve(item, provides='r-%s' % item)
                                     for item in items)),
        Total('total', provides='total', rebind={'items': 'items'}),
        Charge('charge', provides='receipt'))
    if with_carrier:
        flow.add(BookCarrier('carrier', timeout=0.5))
    return flow


async def main() -> None:
    service = Service()
    await service.start()
    try:
        print('1. An order of two items (parallel engine, await run_async()):')
        engine = engines.load(order(['book', 'lamp']), engine='parallel',
                              store={'port': service.port, 'items': ['book', 'lamp']})
        await engine.run_async()
        print('  ->', engine.storage.get_flow_state(), engine.storage.fetch('receipt'),
              '| reserved now:', sorted(service.reserved))
        service.reserved.clear()

        print('2. An order the card declines: everything reserved is released:')
        engine = engines.load(order(['book', 'lamp', 'desk']), engine='parallel',
                              store={'port': service.port,
                                     'items': ['book', 'lamp', 'desk']})
        try:
            await engine.run_async()
        except RuntimeError as error:
            print('  -> %s: %s | reserved now: %s'
                  % (engine.storage.get_flow_state(), error, sorted(service.reserved)))

        print('3. A carrier call that overruns its 0.5 s timeout is cancelled:')
        engine = engines.load(order(['book'], with_carrier=True), engine='serial',
                              store={'port': service.port, 'items': ['book']})
        try:
            await engine.run_async()
        except exceptions.AtomTimeout as error:
            print('  -> %s: %s' % (engine.storage.get_flow_state(), error))
            print('  reserved now: %s' % sorted(service.reserved))
    finally:
        await service.stop()


if __name__ == '__main__':
    asyncio.run(main())
