"""The compiler on literal flows: node order, edges, retry ranges, providers."""

from __future__ import annotations

import pytest

from taskflow import deciders
from taskflow import exceptions as exc
from taskflow import retry
from taskflow import task
from taskflow.engines.action_engine import _compile
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf


class T(task.Task):
    def execute(self):
        pass


class Needs(task.Task):
    def execute(self, x):
        pass


def provides(name, value_name):
    return T(name, provides=value_name)


def label(node):
    """``'name'`` for an atom, ``'<flow'``/``'flow>'`` for a flow's start/end join."""
    if node.kind != _compile.JOIN:
        return node.name
    flow_name = node.scope.flow.name if node.scope.flow is not None else '*'
    return '<' + flow_name if node is node.scope.start else flow_name + '>'


def order(compilation):
    return [label(n) for n in compilation.nodes]


def edges(compilation):
    return sorted((label(n), label(s)) for n in compilation.nodes for s in n.succs)


def names(nodes):
    return [label(n) for n in nodes]


# -- node order and edges ---------------------------------------------------------


def test_linear_flow_is_a_chain_between_its_joins():
    c = _compile.Compilation(lf.Flow('f').add(T('a'), T('b'), T('c')))
    assert order(c) == ['<f', 'a', 'b', 'c', 'f>']
    assert edges(c) == sorted([('<f', 'a'), ('a', 'b'), ('b', 'c'), ('c', 'f>')])
    assert [n.index for n in c.nodes] == list(range(5))
    assert [n.kind for n in c.nodes] == ['join', 'task', 'task', 'task', 'join']


def test_unordered_flow_children_hang_between_the_joins():
    c = _compile.Compilation(uf.Flow('u').add(T('a'), T('b')))
    assert order(c) == ['<u', 'a', 'b', 'u>']
    assert edges(c) == sorted([('<u', 'a'), ('<u', 'b'), ('a', 'u>'), ('b', 'u>')])


def test_graph_flow_nodes_follow_the_links():
    a, b, c_ = T('a'), T('b'), T('c')
    flow = gf.Flow('g').add(a, b, c_)
    flow.link(c_, b)
    flow.link(b, a)
    c = _compile.Compilation(flow)
    assert order(c) == ['<g', 'c', 'b', 'a', 'g>']
    assert edges(c) == sorted([('<g', 'c'), ('c', 'b'), ('b', 'a'), ('a', 'g>')])


def test_graph_flow_inferred_links_become_edges():
    flow = gf.Flow('g').add(Needs('use'), provides('make', 'x'))
    c = _compile.Compilation(flow)
    assert ('make', 'use') in edges(c)
    assert c.by_name['make'].index < c.by_name['use'].index


def test_nested_flows_are_linked_through_their_joins():
    flow = lf.Flow('root').add(T('a'), uf.Flow('u').add(T('b'), T('c')), T('d'))
    c = _compile.Compilation(flow)
    assert order(c) == ['<root', 'a', '<u', 'b', 'c', 'u>', 'd', 'root>']
    assert edges(c) == sorted([
        ('<root', 'a'), ('a', '<u'), ('<u', 'b'), ('<u', 'c'), ('b', 'u>'), ('c', 'u>'),
        ('u>', 'd'), ('d', 'root>')])


def test_a_retry_sits_between_its_flow_start_and_its_children():
    flow = lf.Flow('f', retry=retry.Times(2, name='r')).add(T('a'), T('b'))
    c = _compile.Compilation(flow)
    assert order(c) == ['<f', 'r', 'a', 'b', 'f>']
    assert edges(c) == sorted([('<f', 'r'), ('r', 'a'), ('a', 'b'), ('b', 'f>')])
    assert c.by_name['r'].kind == _compile.RETRY


def test_a_retry_of_an_unordered_flow_precedes_every_child():
    flow = uf.Flow('u', retry=retry.Times(2, name='r')).add(T('a'), T('b'))
    c = _compile.Compilation(flow)
    assert edges(c) == sorted([('<u', 'r'), ('r', 'a'), ('r', 'b'), ('a', 'u>'), ('b', 'u>')])


def test_empty_flows_link_start_to_end():
    c = _compile.Compilation(lf.Flow('root').add(uf.Flow('empty')))
    assert order(c) == ['<root', '<empty', 'empty>', 'root>']
    assert edges(c) == sorted([('<root', '<empty'), ('<empty', 'empty>'),
                               ('empty>', 'root>')])
    assert c.atoms == []


def test_a_bare_task_gets_its_own_joins():
    c = _compile.Compilation(T('alone'))
    assert [n.kind for n in c.nodes] == ['join', 'task', 'join']
    assert [n.name for n in c.atoms] == ['alone']
    assert c.nodes[0].succs == [c.nodes[1]] and c.nodes[1].succs == [c.nodes[2]]


def test_index_order_is_topological():
    inner = gf.Flow('g')
    x, y, z = T('x'), T('y'), T('z')
    inner.add(z, y, x)
    inner.link(x, y)
    inner.link(x, z)
    flow = lf.Flow('root', retry=retry.Times(name='r')).add(
        uf.Flow('u').add(T('a'), lf.Flow('l').add(T('b'), T('c'))), inner, T('d'))
    c = _compile.Compilation(flow)
    for node in c.nodes:
        for succ in node.succs:
            assert node.index < succ.index
        assert node.succs == [] or all(node in s.preds for s in node.succs)


def test_atoms_are_registered_depth_first_with_retries_after_their_children():
    flow = lf.Flow('f', retry=retry.Times(name='r')).add(
        T('a'), lf.Flow('i', retry=retry.Times(name='r2')).add(T('b')), T('c'))
    c = _compile.Compilation(flow)
    assert [n.name for n in c.atoms] == ['a', 'b', 'r2', 'c', 'r']
    assert [a.name for a in c.iter_atoms()] == ['a', 'b', 'r2', 'c', 'r']
    assert sorted(c.by_name) == ['a', 'b', 'c', 'r', 'r2']


# -- retries ------------------------------------------------------------------------


def test_subflow_of_a_retry_is_the_rest_of_its_flow():
    flow = lf.Flow('root').add(
        T('before'),
        lf.Flow('f', retry=retry.Times(name='r')).add(
            T('a'), uf.Flow('u').add(T('b'), T('c'))),
        T('after'))
    c = _compile.Compilation(flow)
    assert names(c.subflow(c.by_name['r'])) == ['a', '<u', 'b', 'c', 'u>', 'f>']


def test_each_atom_knows_the_retry_that_handles_its_failure():
    flow = lf.Flow('root').add(
        T('top'),
        lf.Flow('outer', retry=retry.Times(name='r_out')).add(
            T('a'),
            uf.Flow('plain').add(T('b')),
            lf.Flow('inner', retry=retry.Times(name='r_in')).add(T('c'))))
    c = _compile.Compilation(flow)
    handler = {n.name: (n.retry.name if n.retry is not None else None) for n in c.atoms}
    assert handler == {'top': None, 'a': 'r_out', 'b': 'r_out', 'c': 'r_in',
                       'r_in': 'r_out', 'r_out': None}


# -- deciders ------------------------------------------------------------------------


def test_deciders_are_attached_to_the_link_target():
    def decide(history):
        return True

    a, b, sub = T('a'), T('b'), lf.Flow('sub').add(T('x'))
    flow = gf.Flow('g').add(a, b, sub)
    flow.link(a, b, decider=decide, decider_depth='atom')
    flow.link(a, sub, decider=decide)
    c = _compile.Compilation(flow)
    b_node = c.by_name['b']
    assert [(label(src), fn, depth) for src, fn, depth in b_node.deciders] == [
        ('a', decide, deciders.Depth.ATOM)]
    start = c.by_name['x'].preds[0]
    assert label(start) == '<sub'
    assert [(label(src), depth) for src, _fn, depth in start.deciders] == [
        ('a', deciders.Depth.ALL)]
    assert c.by_name['a'].deciders is None


# -- providers_for: scoping -------------------------------------------------------------


def _scoping_flow():
    # The example of storage-and-scoping.md ("Scope visibility").
    return lf.Flow('root').add(
        provides('g1', 'x'), Needs('s1'),
        lf.Flow('sub').add(Needs('s2'), provides('g2', 'x'), Needs('s3')),
        Needs('s4'), provides('g3', 'x'), Needs('s5'))


@pytest.mark.parametrize('reader, expected', [
    ('s1', ['g1']),
    ('s2', ['g1']),
    ('s3', ['g2', 'g1']),
    ('s4', ['g2', 'g1']),
    ('s5', ['g3', 'g2', 'g1']),
    ('g1', []),
    ('g2', ['g1']),
])
def test_providers_nearest_first(reader, expected):
    c = _compile.Compilation(_scoping_flow())
    assert names(c.providers_for(c.by_name[reader], 'x')) == expected


def test_preceding_subflow_is_searched_last_atom_first():
    flow = lf.Flow('root').add(
        lf.Flow('sub').add(provides('g1', 'x'), uf.Flow('deeper').add(provides('g2', 'x'))),
        Needs('s'))
    c = _compile.Compilation(flow)
    assert names(c.providers_for(c.by_name['s'], 'x')) == ['g2', 'g1']


def test_unordered_siblings_are_not_providers():
    flow = lf.Flow('root').add(
        provides('before', 'x'),
        uf.Flow('u').add(provides('sibling', 'x'), Needs('s'),
                         lf.Flow('l').add(Needs('deep'))))
    c = _compile.Compilation(flow)
    assert names(c.providers_for(c.by_name['s'], 'x')) == ['before']
    assert names(c.providers_for(c.by_name['deep'], 'x')) == ['before']


def test_later_atoms_are_not_providers():
    c = _compile.Compilation(lf.Flow('root').add(Needs('s'), provides('later', 'x')))
    assert c.providers_for(c.by_name['s'], 'x') == []
    assert c.provider_names(c.by_name['s'], 'x') == ()
    # The later atom does provide 'x', to whoever comes after it.
    flow = lf.Flow('root').add(Needs('s'), provides('later', 'x'), Needs('after'))
    c = _compile.Compilation(flow)
    assert c.provider_names(c.by_name['after'], 'x') == ('later',)


def test_graph_predecessors_are_providers_but_other_branches_are_not():
    g1, s1, g2, s2, other = (provides('g1', 'x'), Needs('s1'), provides('g2', 'x'),
                             Needs('s2'), provides('other', 'x'))
    flow = gf.Flow('g').add(g1, s1, g2, s2, other, resolve_requires=False)
    flow.link(g1, s1)
    flow.link(g1, g2)
    flow.link(g2, s2)
    c = _compile.Compilation(flow)
    assert names(c.providers_for(c.by_name['s1'], 'x')) == ['g1']
    assert names(c.providers_for(c.by_name['s2'], 'x')) == ['g2', 'g1']


def test_the_retry_of_an_enclosing_flow_is_a_provider():
    flow = lf.Flow('outer', retry=retry.Times(name='r', provides='x')).add(
        lf.Flow('inner').add(Needs('s')))
    c = _compile.Compilation(flow)
    assert names(c.providers_for(c.by_name['s'], 'x')) == ['r']


def test_inner_providers_come_before_outer_ones():
    flow = lf.Flow('outer', retry=retry.Times(name='r', provides='x')).add(
        provides('outer_g', 'x'),
        lf.Flow('inner', retry=retry.Times(name='r2', provides='x')).add(Needs('s')))
    c = _compile.Compilation(flow)
    assert names(c.providers_for(c.by_name['s'], 'x')) == ['r2', 'outer_g', 'r']


# -- errors ---------------------------------------------------------------------------


def test_duplicate_names():
    with pytest.raises(exc.Duplicate, match=r"^Atoms with duplicate names found: \['a'\]$"):
        _compile.Compilation(lf.Flow('f').add(T('a'), uf.Flow('u').add(T('a'))))


def test_same_object_twice():
    same = T('same')
    with pytest.raises(ValueError, match='duplicate and/or recursive compiling'):
        _compile.Compilation(lf.Flow('f').add(same, uf.Flow('u').add(same)))


@pytest.mark.parametrize('item', ['text', retry.Times(name='r'), 42])
def test_unknown_children(item):
    with pytest.raises(TypeError) as info:
        _compile.Compilation(lf.Flow('f').add(item))
    assert str(info.value) == "Unknown object '%s' (%s) requested to compile" % (
        item, type(item))


def test_unknown_root():
    with pytest.raises(TypeError, match='requested to compile'):
        _compile.Compilation('not a flow')
