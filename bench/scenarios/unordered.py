"""``unordered``: a wide unordered flow of N independent no-op tasks (serial engine).

Timed: ``engines.load(flow)`` + ``engine.run()``.
"""

from taskflow import engines
from taskflow import states

from scenarios import _flows


def run_once(size):
    flow = _flows.build_wide(size)

    def load_and_run():
        engine = engines.load(flow)
        engine.run()
        return engine

    seconds, engine = _flows.timed(load_and_run)
    for i in (0, size // 2, size - 1):
        state = engine.storage.get_atom_state('t_%d' % i)
        if state != states.SUCCESS:
            raise AssertionError('t_%d ended in %s' % (i, state))
    return seconds


def measure(size):
    run_once(_flows.WARM_UP_SIZE)
    return {'seconds': run_once(size)}
