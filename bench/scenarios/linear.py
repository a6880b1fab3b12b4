"""``linear``: a chain of N tasks, each requiring the previous task's result.

Timed: ``engines.load(flow)`` + ``engine.run()`` on the serial engine with
in-memory storage (what a user pays once the flow is built).
"""

from taskflow import engines

from scenarios import _flows


def run_once(size):
    flow = _flows.build_chain(size)

    def load_and_run():
        engine = engines.load(flow)
        engine.run()
        return engine

    seconds, engine = _flows.timed(load_and_run)
    last = engine.storage.fetch(_flows.chain_name(size - 1))
    if last != size - 1:
        raise AssertionError('last result is %r, expected %r' % (last, size - 1))
    return seconds


def measure(size):
    run_once(_flows.WARM_UP_SIZE)
    return {'seconds': run_once(size)}
