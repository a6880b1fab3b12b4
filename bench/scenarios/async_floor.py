"""``async_sleep``'s floor: the same waits with bare asyncio, no taskflow.

``asyncio.run`` of C worker coroutines taking N ``asyncio.sleep(sleep)``
calls off one iterator (a bounded ``gather``): what the event loop itself
costs for the work, the lower bound of any engine on top of it.
"""

import asyncio
import math

from scenarios import _shapes

NEEDS_TASKFLOW = False


async def _gather(size, sleep, concurrency):
    jobs = iter(range(size))
    done = []

    async def worker():
        for job in jobs:
            await asyncio.sleep(sleep)
            done.append(job)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, size))))
    return done


def measure(size, sleep=0.01, concurrency=1000):
    asyncio.run(_gather(_shapes.WARM_UP_SIZE, sleep, concurrency))
    seconds, done = _shapes.timed(lambda: asyncio.run(_gather(size, sleep, concurrency)))
    if len(done) != size:
        raise AssertionError('%d waits done, expected %d' % (len(done), size))
    ideal = math.ceil(size / concurrency) * sleep
    return {'seconds': seconds, 'ideal_seconds': ideal, 'efficiency': ideal / seconds}
