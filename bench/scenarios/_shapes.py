"""The shapes the scenarios run, as plain data (no taskflow import).

The taskflow flows (``_flows``) and the graphlib floor (``floor``) are both
built from these definitions, so they always describe the same graph.
"""

import gc
import time

GRAPH_WIDTH = 10   # tasks per layer of the layered graph
GRAPH_FAN_IN = (0, 1, 3)   # a node (l, j) reads nodes j+k (mod width) of layer l-1


def chain_name(i):
    return 'r_%d' % i


def layer_name(layer, j):
    return 'g_%d_%d' % (layer, j)


def layers_of(n, width=GRAPH_WIDTH):
    if n % width:
        raise ValueError('graph size %d is not a multiple of the width %d' % (n, width))
    return n // width


def layer_inputs(layer, j, width=GRAPH_WIDTH):
    """Names of the previous-layer outputs node ``(layer, j)`` requires."""
    if layer == 0:
        return []
    return [layer_name(layer - 1, (j + k) % width) for k in GRAPH_FAN_IN]


def linear_predecessors(n):
    return {chain_name(i): [chain_name(i - 1)] if i else [] for i in range(n)}


def layered_predecessors(n, width=GRAPH_WIDTH):
    return {layer_name(layer, j): layer_inputs(layer, j, width)
            for layer in range(layers_of(n, width)) for j in range(width)}


SHAPES = {'linear': linear_predecessors, 'layered': layered_predecessors}


WARM_UP_SIZE = 20   # every scenario first runs itself at this size, untimed


def timed(fn):
    """Run ``fn()`` once after a full collection; return ``(seconds, result)``."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result
