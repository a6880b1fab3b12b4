"""Taskflow flows and tasks shared by the scenarios (public taskflow API only).

Tasks do (almost) nothing: a chain link returns ``x + 1`` so a scenario can
check the last result after the timed run, and a layered-graph node returns
``max(inputs) + 1`` so the last layer holds ``layers - 1``. Shapes and names
come from ``_shapes`` (shared with the graphlib floor).
"""

from taskflow import task
from taskflow.patterns import graph_flow
from taskflow.patterns import linear_flow
from taskflow.patterns import unordered_flow

from scenarios._shapes import (  # noqa: F401
    WARM_UP_SIZE, chain_name, layer_name, layered_predecessors, layers_of, timed)


class Head(task.Task):
    def execute(self):
        return 0


class Link(task.Task):
    def execute(self, x):
        return x + 1


class Noop(task.Task):
    def execute(self):
        pass


class Join(task.Task):
    def execute(self, a, b, c):
        return max(a, b, c) + 1


def build_chain(n, link=Link, last=None, flow_name='chain'):
    """Task ``i`` provides ``r_i``; task ``i + 1`` requires it (rebound to ``x``).

    ``last`` is the class of the last task (defaults to ``link``).
    """
    flow = linear_flow.Flow(flow_name)
    flow.add(Head('t_0', provides=chain_name(0)))
    for i in range(1, n):
        cls = last if (last is not None and i == n - 1) else link
        flow.add(cls('t_%d' % i, provides=chain_name(i),
                     rebind={'x': chain_name(i - 1)}))
    return flow


def build_wide(n, cls=Noop, **task_kwargs):
    """An unordered flow of ``n`` independent tasks."""
    flow = unordered_flow.Flow('wide')
    flow.add(*[cls('t_%d' % i, **task_kwargs) for i in range(n)])
    return flow


def layered_tasks(n, order='dependents'):
    """The tasks of the layered graph (see ``_shapes``), in the given order.

    ``order='dependents'``: dependents before their providers, so execution
    order can only come from the edges a graph flow infers; ``'providers'``:
    layer by layer, providers first (the natural order).
    """
    tasks = []
    for name, inputs in layered_predecessors(n).items():
        if inputs:
            tasks.append(Join(name, provides=name, rebind=dict(zip('abc', inputs))))
        else:
            tasks.append(Head(name, provides=name))
    if order == 'dependents':
        tasks.reverse()
    return tasks


def build_layers(n, order='dependents'):
    """A graph flow of the layered graph, added in one ``add()`` call; edges are inferred."""
    flow = graph_flow.Flow('layers')
    flow.add(*layered_tasks(n, order))
    return flow
