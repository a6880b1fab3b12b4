"""The order a graph flow lists its children in (as the original: by generations).

Programs print ``iter_nodes()``, and the engine's compilation, hierarchy and
atom details follow it.
"""

from __future__ import annotations

from taskflow import task
from taskflow.patterns import graph_flow as gf


class N(task.Task):
    def execute(self, **kwargs):
        pass


def names(flow):
    return [node.name for node, _meta in flow.iter_nodes()]


def test_children_nothing_leads_to_come_first_in_the_order_added():
    a, b, c = N('a'), N('b'), N('c')
    flow = gf.Flow('g').add(a, b, c)
    flow.link(a, b)
    assert names(flow) == ['a', 'c', 'b']


def test_each_generation_follows_the_order_its_members_were_released():
    a, b, c, d, e = (N(x) for x in 'abcde')
    flow = gf.Flow('g').add(e, d, c, b, a)
    flow.link(a, d)
    flow.link(b, c)
    flow.link(a, c)
    flow.link(c, e)
    # First generation: b and a (added in that order, nothing leads to them);
    # b releases nothing alone, a releases d then c; c releases e.
    assert names(flow) == ['b', 'a', 'd', 'c', 'e']


def test_inferred_links_order_the_same_way():
    producer = N('producer', provides='x')
    consumer = N('consumer', requires=['x'])
    other = N('other')
    flow = gf.Flow('g').add(consumer, other, producer)
    assert names(flow) == ['other', 'producer', 'consumer']
    assert [(u.name, v.name, m) for u, v, m in flow.iter_links()] == [
        ('producer', 'consumer', {'reasons': {'x'}})]
