"""``floor``: the same work without taskflow, as a lower bound.

A bare ``graphlib.TopologicalSorter`` loop over the chain (``shape='linear'``)
or the layered graph (``shape='layered'``) of the same size: ``prepare()``,
``get_ready()``, call a no-op function with the results of the node's
predecessors, ``done()``. Timed: building the sorter from the edge map and
running the loop (building the edge map itself is like building the flow and
is not timed).
"""

import graphlib

from scenarios import _shapes

NEEDS_TASKFLOW = False


def noop(*inputs):
    return max(inputs, default=-1) + 1


def run(predecessors):
    results = {}
    sorter = graphlib.TopologicalSorter(predecessors)
    sorter.prepare()
    while sorter.is_active():
        for node in sorter.get_ready():
            results[node] = noop(*[results[p] for p in predecessors[node]])
            sorter.done(node)
    return results


def measure(size, shape='linear'):
    run(_shapes.SHAPES[shape](_shapes.WARM_UP_SIZE))
    predecessors = _shapes.SHAPES[shape](size)
    seconds, results = _shapes.timed(lambda: run(predecessors))
    if len(results) != size:
        raise AssertionError('%d nodes ran, expected %d' % (len(results), size))
    return {'seconds': seconds}
