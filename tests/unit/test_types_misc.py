"""taskflow.types: entity, latch, timing, tree and graph (observed on the reference)."""

import threading
import time

import pytest

from taskflow.types import entity, graph, latch, timing, tree


# -- entity -----------------------------------------------------------------

def test_entity():
    e = entity.Entity('kind', 'name', {'m': 1})
    assert (e.kind, e.name, e.metadata) == ('kind', 'name', {'m': 1})
    assert e.to_dict() == {'kind': 'kind', 'name': 'name', 'metadata': {'m': 1}}
    assert e != entity.Entity('kind', 'name', {'m': 1})  # identity equality


# -- latch ------------------------------------------------------------------

def test_latch_counts_down():
    la = latch.Latch(2)
    assert la.needed == 2 and la.wait(0.01) is False
    la.countdown()
    assert la.needed == 1
    la.countdown()
    assert la.needed == 0 and la.wait() is True
    la.countdown()
    assert la.needed == 0


@pytest.mark.parametrize('count', [0, -1])
def test_latch_needs_positive_count(count):
    with pytest.raises(ValueError) as info:
        latch.Latch(count)
    assert str(info.value) == 'Count must be greater than zero'


def test_latch_wakes_waiters():
    la = latch.Latch(1)
    t = threading.Timer(0.05, la.countdown)
    t.start()
    assert la.wait(5) is True
    t.join()


# -- timing -----------------------------------------------------------------

def test_timeout():
    t = timing.Timeout(0.01)
    assert t.value == 0.01 and not t.is_stopped()
    assert t.wait() is None
    t.interrupt()
    assert t.is_stopped()
    t.reset()
    assert not t.is_stopped()


def test_timeout_wait_returns_when_interrupted():
    t = timing.Timeout(30)
    threading.Timer(0.05, t.interrupt).start()
    start = time.monotonic()
    t.wait()
    assert time.monotonic() - start < 10


def test_timeout_value_checks():
    with pytest.raises(ValueError) as info:
        timing.Timeout(-1)
    assert str(info.value) == ("Timeout value must be greater or equal to"
                               " zero and not '-1'")


def test_convert_to_timeout():
    t = timing.convert_to_timeout(5)
    assert type(t) is timing.Timeout and t.value == 5.0
    assert timing.convert_to_timeout(t) is t
    assert timing.convert_to_timeout(None, 3).value == 3.0
    assert timing.convert_to_timeout('2').value == 2.0
    for bad in (None, [1]):
        with pytest.raises(ValueError) as info:
            timing.convert_to_timeout(bad)
        assert str(info.value) == "Invalid timeout literal '%s'" % (bad,)


def test_stopwatch_errors_before_start():
    messages = {
        'elapsed': 'Can not get the elapsed time of a stopwatch if it has not'
                   ' been started/stopped',
        'stop': 'Can not stop a stopwatch that has not been started',
        'split': 'Can not create a split time of a stopwatch if it has not'
                 ' been started or if it has been stopped',
        'resume': 'Can not resume a stopwatch that has not been stopped',
        'leftover': 'Can not get the leftover time of a stopwatch that has not'
                    ' been started',
        'expired': 'Can not check if a stopwatch has expired if it has not'
                   ' been started/stopped',
    }
    for method, message in messages.items():
        with pytest.raises(RuntimeError) as info:
            getattr(timing.StopWatch(), method)()
        assert str(info.value) == message


def test_stopwatch_lifecycle():
    w = timing.StopWatch()
    assert not w.has_started() and not w.has_stopped()
    assert w.start() is w and w.has_started()
    time.sleep(0.01)
    assert w.elapsed() >= 0.009
    assert w.stop() is w and w.has_stopped() and not w.has_started()
    frozen = w.elapsed()
    time.sleep(0.01)
    assert w.elapsed() == frozen
    assert w.stop() is None  # already stopped
    w.resume()
    assert w.has_started() and w.elapsed() > frozen
    w.restart()
    assert w.elapsed() < 0.01
    assert w.elapsed(maximum=0.0) == 0.0


def test_stopwatch_duration():
    with pytest.raises(ValueError) as info:
        timing.StopWatch(-1)
    assert str(info.value) == 'Duration must be greater or equal to zero and not -1'
    w = timing.StopWatch()
    w.start()
    assert w.expired() is False and w.leftover(return_none=True) is None
    with pytest.raises(RuntimeError) as info:
        w.leftover()
    assert str(info.value) == ('Can not get the leftover time of a watch that'
                               ' has no duration')
    w = timing.StopWatch(duration=0.01).start()
    time.sleep(0.02)
    assert w.leftover() == 0.0 and w.expired() is True
    assert timing.StopWatch(5).start().leftover() <= 5
    assert timing.StopWatch(0).start().expired() is True


def test_stopwatch_splits_and_context_manager():
    w = timing.StopWatch().start()
    s1 = w.split()
    s2 = w.split()
    assert repr(s1).startswith('Split(elapsed=')
    assert w.splits == (s1, s2)
    assert s2.length == pytest.approx(s2.elapsed - s1.elapsed)
    w.start()
    assert w.splits == (s1, s2)  # kept, as the reference does
    with timing.StopWatch() as sw:
        assert sw.has_started()
    assert sw.has_stopped()


# -- tree -------------------------------------------------------------------

def _sample_tree():
    root = tree.Node('root', a=1)
    c1, c2 = tree.Node('c1'), tree.Node('c2')
    root.add(c1)
    root.add(c2)
    c1.add(tree.Node('g1'))
    return root


def test_tree_structure_and_lookup():
    r = _sample_tree()
    assert r.item == 'root' and r.metadata == {'a': 1} and r.parent is None
    assert r[0].parent is r
    assert [n.item for n in r] == ['c1', 'c2']
    assert r[-1].item == 'c2'
    assert 'g1' in r and 'root' in r and 'zz' not in r
    assert r.index('c2') == 1
    assert r.child_count() == 2 and r.child_count(only_direct=False) == 3
    assert r.find('g1').item == 'g1'
    assert r.find('g1', only_direct=True) is None
    assert r.find('root', include_self=False) is None
    assert r.find_first_match(lambda n: n.item.startswith('c')).item == 'c1'
    assert not r.empty() and r.find('g1').empty()
    with pytest.raises(ValueError) as info:
        r.index('zz')
    assert str(info.value) == 'zz is not contained in any child'


def test_tree_iteration_orders():
    r = _sample_tree()
    assert [n.item for n in r.dfs_iter()] == ['c1', 'g1', 'c2']
    assert [n.item for n in r.dfs_iter(include_self=True, right_to_left=False)] \
        == ['root', 'c2', 'c1', 'g1']
    assert [n.item for n in r.bfs_iter()] == ['c2', 'c1', 'g1']
    assert [n.item for n in r.bfs_iter(include_self=True, right_to_left=True)] \
        == ['root', 'c1', 'c2', 'g1']
    g1 = r.find('g1')
    assert [n.item for n in g1.path_iter()] == ['g1', 'c1', 'root']
    assert [n.item for n in g1.path_iter(include_self=False)] == ['c1', 'root']
    assert [n.item for n in r.reverse_iter()] == ['c2', 'c1']


def test_tree_pformat():
    a = tree.Node('a')
    b, e = tree.Node('b'), tree.Node('e')
    a.add(b)
    c = tree.Node('c')
    b.add(c)
    c.add(tree.Node('d'))
    a.add(e)
    e.add(tree.Node('f'))
    assert a.pformat() == ('a\n|__b\n|  |__c\n|     |__d\n|__e\n   |__f')
    assert _sample_tree().pformat(stringify_node=lambda n: n.item.upper()) == (
        'ROOT\n|__C1\n|  |__G1\n|__C2')
    assert tree.Node(5).pformat() == '5'


def test_tree_remove_and_disassociate():
    r = _sample_tree()
    removed = r.remove('c2')
    assert removed.item == 'c2' and removed.parent is None
    assert [n.item for n in r] == ['c1']
    with pytest.raises(ValueError) as info:
        r.remove('zz')
    assert str(info.value) == "Item 'zz' not found to remove"
    g1 = r.find('g1')
    assert g1.disassociate() == 1 and g1.parent is None
    assert g1.disassociate() == 0
    assert r[0].empty()


def test_tree_freeze():
    r = _sample_tree()
    r.freeze()
    for action in (lambda: r.add(tree.Node('x')),
                   lambda: r[0].add(tree.Node('x')),
                   lambda: r[0].disassociate(),
                   lambda: r.remove('c1')):
        with pytest.raises(tree.FrozenNode) as info:
            action()
        assert str(info.value) == "Frozen node(s) can't be modified"


def test_tree_to_digraph():
    g = _sample_tree().to_digraph()
    assert type(g) is graph.OrderedDiGraph
    assert list(g.nodes()) == ['root', 'c1', 'c2', 'g1']
    assert list(g.edges()) == [('root', 'c1'), ('root', 'c2'), ('c1', 'g1')]
    assert g.nodes['root'] == {'a': 1}


# -- graph ------------------------------------------------------------------

def _sample_graph():
    g = graph.DiGraph(name='gg')
    g.add_node('a', attr_dict={'x': 1}, y=2)
    g.add_node('b')
    g.add_node('c')
    g.add_edge('a', 'b', attr_dict={'r': 1}, w=3)
    g.add_edge('b', 'c')
    return g


def test_digraph_helpers():
    g = _sample_graph()
    assert str(g) == "DiGraph named 'gg' with 3 nodes and 2 edges"
    assert dict(g.nodes['a']) == {'x': 1}  # attr_dict replaces keywords
    assert g.get_edge_data('a', 'b') == {'r': 1}
    assert g.get_edge_data('x', 'y', default='D') == 'D'
    assert list(g.topological_sort()) == ['a', 'b', 'c']
    assert g.is_directed_acyclic()
    assert list(g.no_predecessors_iter()) == ['a']
    assert list(g.no_successors_iter()) == ['c']
    assert list(g.bfs_predecessors_iter('c')) == ['b', 'a']
    assert type(g.fresh_copy()) is graph.DiGraph and len(g.fresh_copy()) == 0
    plain = graph.DiGraph()
    plain.add_node('n', y=2)
    plain.add_node('n', attr_dict={'q': 1})
    assert dict(plain.nodes['n']) == {'y': 2, 'q': 1}


def test_digraph_pformat():
    assert _sample_graph().pformat() == '\n'.join([
        'Name: gg', 'Type: DiGraph', 'Frozen: False', 'Density: 0.333',
        'Nodes: 3', "  - a ({'x': 1})", '  - b', '  - c',
        'Edges: 2', "  a -> b ({'r': 1})", '  b -> c', 'Cycles: 0'])
    cyclic = graph.DiGraph([('a', 'b'), ('b', 'c'), ('c', 'a'), ('a', 'a')])
    assert not cyclic.is_directed_acyclic()
    assert cyclic.pformat().split('\n')[-3:] == [
        'Cycles: 2', '  a --> a', '  a --> b --> c --> a']
    assert graph.DiGraph().pformat() == ('Name: \nType: DiGraph\nFrozen: False'
                                         '\nDensity: 0.000\nNodes: 0\nEdges: 0'
                                         '\nCycles: 0')


def test_undirected_and_ordered_graphs():
    u = graph.Graph([('a', 'b')])
    assert u.pformat().split('\n')[-2:] == ['Edges: 1', '  a <-> b']
    assert type(u.fresh_copy()) is graph.Graph
    o = graph.OrderedDiGraph()
    for n in 'zyx':
        o.add_node(n)
    o.add_edge('z', 'x')
    o.add_edge('z', 'y')
    assert list(o.nodes()) == ['z', 'y', 'x']
    assert list(o.successors('z')) == ['x', 'y']
    assert type(o.fresh_copy()) is graph.OrderedDiGraph
    assert graph.OrderedGraph([('q', 'p')]).pformat().split('\n')[1] == (
        'Type: OrderedGraph')


def test_freeze():
    g = _sample_graph()
    assert g.freeze() is g
    assert g.pformat().split('\n')[2] == 'Frozen: True'
    with pytest.raises(Exception) as info:
        g.add_node('z')
    assert str(info.value) == "Frozen graph can't be modified"


def test_merge_graphs():
    base = graph.DiGraph([('a', 'b')])
    assert graph.merge_graphs(base) is base
    merged = graph.merge_graphs(base, graph.DiGraph([('c', 'd')]),
                                graph.DiGraph([('x', 'y')]))
    assert merged is not base and sorted(base.edges()) == [('a', 'b')]
    assert sorted(merged.edges()) == [('a', 'b'), ('c', 'd'), ('x', 'y')]
    with pytest.raises(ValueError) as info:
        graph.merge_graphs(base, graph.DiGraph([('a', 'c'), ('c', 'd')]))
    assert str(info.value) == (
        'Can not merge graph DiGraph with 3 nodes and 2 edges into DiGraph'
        ' with 2 nodes and 1 edges since there are 1 overlapping nodes (and'
        ' we do not support merging nodes)')
    allowed = graph.merge_graphs(base, graph.DiGraph([('a', 'd')]),
                                 allow_overlaps=True)
    assert sorted(allowed.edges()) == [('a', 'b'), ('a', 'd')]
    ignored = graph.merge_graphs(base, graph.DiGraph([('q', 'a')]),
                                 overlap_detector=lambda g1, g2: 0)
    assert sorted(ignored.edges()) == [('a', 'b'), ('q', 'a')]
