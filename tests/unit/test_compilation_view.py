"""``engine.compilation``: the execution graph and hierarchy programs print or walk."""

from __future__ import annotations

import pytest

import taskflow.engines
from taskflow import retry
from taskflow import task
from taskflow.engines.action_engine import compiler
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.types import graph
from taskflow.types import tree


class Noop(task.Task):
    def execute(self):
        pass


class Needs(task.Task):
    def execute(self, x):
        pass


def compiled(flow):
    engine = taskflow.engines.load(flow)
    engine.compile()
    return engine.compilation


def name_of(node):
    return node.name


def nodes(g):
    return [(name_of(n), {k: (name_of(v) if k == 'retry' else v) for k, v in d.items()})
            for n, d in g.nodes(data=True)]


def edges(g):
    return [(name_of(u), name_of(v), d) for u, v, d in g.edges(data=True)]


def test_nothing_before_compile_and_the_same_object_after():
    engine = taskflow.engines.load(lf.Flow('f').add(Noop('a')))
    assert engine.compilation is None
    engine.compile()
    first = engine.compilation
    engine.run()
    assert engine.compilation is first


def test_public_surface_and_kind_constants():
    c = compiled(lf.Flow('f').add(Noop('a')))
    assert type(c) is compiler.Compilation
    assert sorted(a for a in dir(c) if not a.startswith('_')) == [
        'FLOW', 'FLOW_END', 'RETRY', 'TASK', 'execution_graph', 'hierarchy']
    assert (c.TASK, c.RETRY, c.FLOW, c.FLOW_END) == ('task', 'retry', 'flow', 'flow_end')
    assert c.execution_graph is c.execution_graph and c.hierarchy is c.hierarchy


def test_nested_flows_with_retries():
    r0, r1 = retry.Times(2, name='r0'), retry.Times(2, name='r1')
    flow = lf.Flow('o', retry=r0).add(
        Noop('a'), gf.Flow('g', retry=r1).add(Noop('b'), lf.Flow('in').add(Noop('c'))))
    c = compiled(flow)
    g = c.execution_graph
    assert type(g) is graph.DiGraph and g.frozen and g.name == 'o'
    invariant, retry_edge = {'invariant': True}, {'invariant': True, 'retry': True}
    flow_data = {'kind': 'flow', 'noop': True}
    end_data = {'kind': 'flow_end', 'noop': True}
    assert nodes(g) == [
        ('o', flow_data),
        ('a', {'kind': 'task', 'retry': 'r0'}),
        ('g', dict(flow_data, retry='r0')),
        ('b', {'kind': 'task', 'retry': 'r1'}),
        ('in', dict(flow_data, retry='r1')),
        ('c', {'kind': 'task', 'retry': 'r1'}),
        ('in[$]', dict(end_data, retry='r1')),
        ('r1', {'kind': 'retry', 'retry': 'r0'}),
        ('g[$]', dict(end_data, retry='r0')),
        ('r0', {'kind': 'retry'}),
        ('o[$]', end_data),
    ]
    assert edges(g) == [
        ('o', 'r0', invariant),
        ('a', 'g', invariant),
        ('g', 'r1', invariant),
        ('b', 'g[$]', invariant),
        ('in', 'c', invariant),
        ('c', 'in[$]', invariant),
        ('in[$]', 'g[$]', invariant),
        ('r1', 'b', retry_edge),
        ('r1', 'in', retry_edge),
        ('g[$]', 'o[$]', invariant),
        ('r0', 'a', retry_edge),
    ]
    assert c.hierarchy.pformat() == '\n'.join([
        '"linear_flow.Flow: o(len=2)"',
        '|__"r0==1.0"',
        '|__"a==1.0"',
        '|__"graph_flow.Flow: g(len=2)"',
        '   |__"r1==1.0"',
        '   |__"b==1.0"',
        '   |__"linear_flow.Flow: in(len=1)"',
        '      |__"c==1.0"'])


def test_graph_flow_links_keep_their_metadata():
    def decider(history):
        return True

    a, b, c = Needs('a', provides='y'), Needs('b'), Noop('c', provides='x')
    flow = gf.Flow('gg').add(a, b, c)
    flow.link(a, b, decider=decider, decider_depth='FLOW')
    g = compiled(flow).execution_graph
    links = {(u, v): d for u, v, d in edges(g)}
    assert links[('c', 'a')] == {'reasons': {'x'}}
    assert list(links[('a', 'b')]) == ['decider', 'decider_depth', 'manual']
    assert links[('a', 'b')]['decider'] is decider
    assert links[('gg', 'c')] == {'invariant': True}
    assert links[('b', 'gg[$]')] == {'invariant': True}
    assert [name_of(n) for n in g] == ['gg', 'c', 'a', 'b', 'gg[$]']


def test_terminators_name_their_flow():
    flow = uf.Flow('u').add(Noop('a'))
    g = compiled(flow).execution_graph
    end = [n for n, d in g.nodes(data=True) if d['kind'] == compiler.FLOW_END][0]
    assert isinstance(end, compiler.Terminator)
    assert (end.name, str(end), end.flow) == ('u[$]', '"unordered_flow.Flow: u(len=1)[$]"',
                                              flow)
    assert g.pformat().splitlines()[:5] == [
        'Name: u', 'Type: DiGraph', 'Frozen: True', 'Density: 0.333', 'Nodes: 3']


def test_empty_flows_and_lone_tasks():
    g = compiled(lf.Flow('e', retry=retry.AlwaysRevert('r'))).execution_graph
    assert edges(g) == [('e', 'r', {'invariant': True}), ('r', 'e[$]', {'invariant': True})]
    solo = Noop('solo')
    c = compiled(solo)
    assert nodes(c.execution_graph) == [('solo', {'kind': 'task'})]
    assert list(c.execution_graph.edges) == [] and c.execution_graph.name == 'solo'
    assert isinstance(c.hierarchy, tree.Node)
    assert (c.hierarchy.item, c.hierarchy.metadata) == (solo, {'kind': 'task'})


def test_the_graph_and_the_tree_are_read_only():
    c = compiled(lf.Flow('f').add(Noop('a'), lf.Flow('s').add(Noop('b'))))
    with pytest.raises(Exception, match="^Frozen graph can't be modified$"):
        c.execution_graph.add_node('z')
    assert [n.frozen for n in c.hierarchy.dfs_iter(include_self=True)] == [True] * 4
    with pytest.raises(tree.FrozenNode):
        c.hierarchy.add(tree.Node('z'))


@pytest.mark.parametrize('freeze', [True, False])
def test_pattern_compiler(freeze):
    flow = lf.Flow('pc', retry=retry.Times(2, name='pr')).add(Noop('x'))
    pattern_compiler = compiler.PatternCompiler(flow, freeze=freeze)
    c = pattern_compiler.compile()
    assert pattern_compiler.compile() is c
    assert (c.execution_graph.frozen, c.hierarchy.frozen) == (freeze, freeze)
    assert [str(n) for n in c.execution_graph] == [
        '"linear_flow.Flow: pc(len=1)"', '"x==1.0"', '"pr==1.0"',
        '"linear_flow.Flow: pc(len=1)[$]"']
    with pytest.raises(TypeError, match="^Unknown object '1' \\(<class 'int'>\\) requested"
                                        " to compile$"):
        compiler.PatternCompiler(1).compile()
    assert (compiler.ATOMS, compiler.FLOWS) == (('task', 'retry'), ('flow', 'flow_end'))
