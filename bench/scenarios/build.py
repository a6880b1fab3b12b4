"""``build``: constructing the layered graph flow (no engine involved).

Timed: ``graph_flow.Flow(...)`` + one ``flow.add(*tasks)`` call with the N
tasks of the layered graph (the tasks themselves are created beforehand),
which infers the edges from requires/provides and checks for cycles.
``order='dependents'`` adds dependents before their providers (what the
``graph`` scenario does); ``'providers'`` adds them layer by layer.
"""

from taskflow.patterns import graph_flow

from scenarios import _flows


def run_once(size, order):
    tasks = _flows.layered_tasks(size, order)

    def build():
        flow = graph_flow.Flow('layers')
        flow.add(*tasks)
        return flow

    seconds, flow = _flows.timed(build)
    if len(flow) != size:
        raise AssertionError('flow has %d nodes, expected %d' % (len(flow), size))
    return seconds


def measure(size, order='dependents'):
    run_once(_flows.WARM_UP_SIZE, order)
    return {'seconds': run_once(size, order)}
