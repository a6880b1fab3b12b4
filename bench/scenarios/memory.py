"""``memory``: the tracemalloc peak of building and running a chain of N tasks.

(The max RSS of the 1,000 chain comes from the ``linear`` runs: every worker
reports its process's ``ru_maxrss``.) Tracing starts after the warm-up, so
what imports allocate is not counted; tracemalloc slows the run down, so the
time of this scenario means little.
"""

import tracemalloc

from taskflow import engines

from scenarios import _flows

MB = 1024 * 1024


def run_once(size):
    def build_load_and_run():
        flow = _flows.build_chain(size)
        engine = engines.load(flow)
        engine.run()
        return engine

    seconds, engine = _flows.timed(build_load_and_run)
    if engine.storage.fetch(_flows.chain_name(size - 1)) != size - 1:
        raise AssertionError('wrong last result')
    return seconds


def measure(size, trace=True):
    run_once(_flows.WARM_UP_SIZE)
    if not trace:
        return {'seconds': run_once(size)}
    tracemalloc.start()
    seconds = run_once(size)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {'seconds': seconds, 'tracemalloc_peak_mb': peak / MB}
