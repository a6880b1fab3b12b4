"""Flow patterns as structures: links, requires/provides, graph building rules."""

from __future__ import annotations

import pytest

from taskflow import deciders
from taskflow import exceptions as exc
from taskflow import retry
from taskflow import task
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf

CYCLE = ('No path through the node(s) in the graph produces an ordering that will allow'
         ' for logical edge traversal')


class T(task.Task):
    def execute(self, **kwargs):
        return 1


def test_linear_requires_and_provides():
    flow = lf.Flow('test').add(T('a', requires='x', provides=('b', 'c')),
                               T('b', requires='b', provides='d'))
    assert flow.requires == frozenset({'x'})
    assert sorted(flow.provides) == ['b', 'c', 'd']
    links = [(u.name, v.name, meta) for u, v, meta in flow.iter_links()]
    assert links == [('a', 'b', {'invariant': True})]


def test_unordered_siblings_do_not_satisfy_each_other():
    flow = uf.Flow('u').add(T('p', provides='x'), T('c', requires='x'))
    assert flow.requires == frozenset({'x'})
    assert list(flow.iter_links()) == []


def test_retry_provides_satisfy_children_and_retry_gets_a_name():
    r = retry.Times(3, provides='attempt', requires='budget')
    flow = lf.Flow('inner', retry=r).add(T('t', requires='attempt'))
    assert r.name == 'inner_retry'
    assert flow.requires == frozenset({'budget'})
    assert 'attempt' in flow.provides


def test_add_skips_existing_children_and_is_chainable():
    t = T('t')
    flow = lf.Flow('f')
    assert flow.add(t, t) is flow
    flow.add(t)
    assert len(flow) == 1


def test_string_forms():
    assert str(lf.Flow('simple')) == '"linear_flow.Flow: simple(len=0)"'
    assert str(gf.Flow('g').add(T('a'))) == '"graph_flow.Flow: g(len=1)"'

    class MyFlow(lf.Flow):
        pass
    assert str(MyFlow('m')) == '"tests.unit.test_patterns.MyFlow: m(len=0)"'
    assert lf.Flow(42).name == '42'


def test_graph_infers_links_and_order():
    final = T('final', rebind={'x': 'sum1', 'y': 'sum2'}, provides='product')
    s2 = T('s2', provides='sum2')
    s1 = T('s1', provides='sum1')
    flow = gf.Flow('calc').add(final, s2, s1)
    links = sorted((u.name, v.name, sorted(m['reasons'])) for u, v, m in flow.iter_links())
    assert links == [('s1', 'final', ['sum1']), ('s2', 'final', ['sum2'])]
    order = [n.name for n in flow]
    assert order.index('final') == 2
    assert flow.requires == frozenset()


def test_graph_ambiguous_provider_names_all_of_them():
    with pytest.raises(exc.AmbiguousDependency) as info:
        gf.Flow('amb').add(T('p1', provides='thing'), T('p2', provides='thing'),
                           T('user', requires='thing'))
    assert str(info.value) == ("Resolution error detected when adding 'user', multiple"
                               " providers ['p1', 'p2'] found for required symbol 'thing'")


def test_graph_add_is_atomic_on_errors():
    flow = gf.Flow('amb').add(T('p1', provides='thing'), T('p2', provides='thing'))
    with pytest.raises(exc.AmbiguousDependency):
        flow.add(T('ok', provides='other'), T('user', requires='thing'))
    assert sorted(n.name for n in flow) == ['p1', 'p2']
    with pytest.raises(exc.DependencyFailure) as info:
        gf.Flow('loop').add(T('x', requires='y_out', provides='x_out'),
                            T('y', requires='x_out', provides='y_out'))
    assert str(info.value) == CYCLE


def test_graph_manual_link_cycle_leaves_flow_unchanged():
    a, b, c = T('a'), T('b'), T('c')
    flow = gf.Flow('cyclic').add(a, b, c)
    flow.link(a, b).link(b, c)
    with pytest.raises(exc.DependencyFailure):
        flow.link(c, a)
    with pytest.raises(exc.DependencyFailure):
        flow.link(a, a)
    assert len(list(flow.iter_links())) == 2


def test_graph_link_errors_in_order():
    a, b = T('a'), T('b')
    flow = gf.Flow('lnk').add(a, b)
    outsider = T('outsider')
    with pytest.raises(ValueError) as info:
        flow.link(outsider, b)
    assert str(info.value) == "Node '\"outsider==1.0\"' not found to link from"
    with pytest.raises(ValueError) as info:
        flow.link(a, outsider)
    assert str(info.value) == "Node '\"outsider==1.0\"' not found to link to"
    with pytest.raises(ValueError) as info:
        flow.link(a, b, decider=5)
    assert str(info.value) == 'Decider boolean callback must be callable'
    with pytest.raises(ValueError) as info:
        flow.link(a, b, decider_depth='atom')
    assert str(info.value) == 'Decider depth requires a decider to be provided along with it'
    with pytest.raises(ValueError) as info:
        flow.link(a, b, decider=bool, decider_depth='sideways')
    assert 'not \'sideways\'' in str(info.value)


def test_graph_link_metadata_and_decider_replacement():
    a, b = T('a', provides='x'), T('b', requires='x')
    flow = gf.Flow('g').add(a, b)
    flow.link(a, b, decider=bool, decider_depth='atom')
    (_, _, meta), = flow.iter_links()
    assert meta == {'reasons': {'x'}, 'manual': True, 'decider': bool,
                    'decider_depth': deciders.Depth.ATOM}
    flow.link(a, b, decider=callable)   # the original keeps the earlier depth
    (_, _, meta), = flow.iter_links()
    assert meta['decider'] is callable and meta['decider_depth'] is deciders.Depth.ATOM


def test_graph_requires_counts_transitive_predecessors():
    a, b, c = T('A', provides='x'), T('B'), T('C', requires='x')
    flow = gf.Flow('g')
    flow.add(a, b, c, resolve_requires=False)
    assert flow.requires == frozenset({'x'})
    flow.link(a, b).link(b, c)
    assert flow.requires == frozenset()


def test_graph_resolve_existing_links_new_providers_before_requirees():
    consumer = T('consumer', requires='x')
    flow = gf.Flow('g').add(consumer)
    producer = T('producer', provides='x')
    flow.add(producer)
    assert [(u.name, v.name) for u, v, _ in flow.iter_links()] == [('producer', 'consumer')]
    assert [n.name for n in flow] == ['producer', 'consumer']


@pytest.mark.parametrize('resolve_requires, resolve_existing, same_call, later_call', [
    (True, True, True, True),
    (True, False, False, False),
    (False, True, False, True),
    (False, False, False, False),
])
def test_graph_resolve_existing_reaches_requirees_added_without_resolving(
        resolve_requires, resolve_existing, same_call, later_call):
    """Like the original: a consumer added with ``resolve_requires=False``
    is linked to a provider added by a later call, not by the same one."""
    options = {'resolve_requires': resolve_requires, 'resolve_existing': resolve_existing}
    flow = gf.Flow('g').add(T('c', requires='x'), T('p', provides='x'), **options)
    assert bool(list(flow.iter_links())) is same_call
    flow = gf.Flow('g').add(T('c', requires='x'), resolve_requires=False)
    flow.add(T('p', provides='x'), **options)
    assert bool(list(flow.iter_links())) is later_call


def test_linear_links_carry_ordered_dict_metadata():
    flow = lf.Flow('l').add(T('a'), T('b'))
    (_, _, meta), = flow.iter_links()
    assert repr(meta) == "OrderedDict([('invariant', True)])"


def test_targeted_flow_restricts_to_target_and_its_predecessors():
    a, b, c, d = T('a', provides='x'), T('b', requires='x', provides='y'), T('c'), T('d')
    flow = gf.TargetedFlow('t').add(a, b, c, d)
    flow.set_target(b)
    assert sorted(n.name for n in flow) == ['a', 'b'] and len(flow) == 2
    flow.reset_target()
    assert len(flow) == 4
    with pytest.raises(ValueError) as info:
        flow.set_target(T('zz'))
    assert str(info.value) == "Node '\"zz==1.0\"' not found"


def test_subflows_as_graph_nodes():
    inner = lf.Flow('inner').add(T('p', provides='x'))
    user = T('user', requires='x')
    flow = gf.Flow('g').add(user, inner)
    assert [(u.name, v.name) for u, v, _ in flow.iter_links()] == [('inner', 'user')]


def test_depth_translate_and_pick_widest():
    assert deciders.Depth.translate('atom') is deciders.Depth.ATOM
    assert deciders.Depth.translate(deciders.Depth.FLOW) is deciders.Depth.FLOW
    with pytest.raises(TypeError) as info:
        deciders.Depth.translate(1)
    assert str(info.value) == "Unexpected desired depth type, string type expected, not <class 'int'>"
    assert deciders.pick_widest([deciders.Depth.ATOM, deciders.Depth.FLOW]) is deciders.Depth.FLOW
    assert str(deciders.Depth.ALL) == 'ALL' and deciders.Depth.ALL == 'ALL'
