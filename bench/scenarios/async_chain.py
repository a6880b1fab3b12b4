"""``async_chain``: the ``linear`` chain with ``async def`` tasks.

Task ``i + 1`` awaits nothing and returns ``x + 1`` of task ``i``'s result.
Timed: ``engines.load(flow)`` + running it on the serial engine, with
``engine.run()`` (``drive='run'``: the engine's own loop) or
``asyncio.run(engine.run_async())`` (``drive='run_async'``: the engine on its
own thread, coroutines on the caller's loop). Compared per atom with the
plain chain (the ``linear`` scenario).
"""

import asyncio

from taskflow import engines
from taskflow import task

from scenarios import _flows


class AsyncHead(task.Task):
    async def execute(self):
        return 0


class AsyncLink(task.Task):
    async def execute(self, x):
        return x + 1


def build_chain(size):
    flow = _flows.build_chain(size, link=AsyncLink)
    return flow


def run_once(size, drive):
    flow = _flows.linear_flow.Flow('chain')
    flow.add(AsyncHead('t_0', provides=_flows.chain_name(0)))
    for i in range(1, size):
        flow.add(AsyncLink('t_%d' % i, provides=_flows.chain_name(i),
                           rebind={'x': _flows.chain_name(i - 1)}))

    def load_and_run():
        engine = engines.load(flow)
        if drive == 'run_async':
            asyncio.run(engine.run_async())
        else:
            engine.run()
        return engine

    seconds, engine = _flows.timed(load_and_run)
    last = engine.storage.fetch(_flows.chain_name(size - 1))
    if last != size - 1:
        raise AssertionError('last result is %r, expected %r' % (last, size - 1))
    return seconds


def measure(size, drive='run'):
    run_once(_flows.WARM_UP_SIZE, drive)
    return {'seconds': run_once(size, drive)}
