"""``taskflow.types.graph``: ``frozen`` from the start, overlap detectors checked."""

from __future__ import annotations

import networkx as nx
import pytest

from taskflow.types import graph

GRAPH_TYPES = [graph.Graph, graph.DiGraph, graph.OrderedGraph, graph.OrderedDiGraph]


@pytest.mark.parametrize('cls', GRAPH_TYPES)
def test_frozen_is_false_until_freeze(cls):
    g = cls()
    assert g.frozen is False and not nx.is_frozen(g)
    assert g.freeze() is g
    assert g.frozen is True and nx.is_frozen(g)
    with pytest.raises(nx.NetworkXError, match="^Frozen graph can't be modified$"):
        g.add_node('b')
    copy = g.copy()
    assert copy.frozen is False
    copy.add_node('b')
    assert g.subgraph([]).frozen is True


@pytest.mark.parametrize('detector', ['b', 1, False, object()])
def test_merge_refuses_a_detector_that_is_not_callable(detector):
    one, two = graph.DiGraph([('a', 'b')]), graph.DiGraph([('c', 'd')])
    for graphs in ((one, two), (one,)):
        with pytest.raises(ValueError, match='^Overlap detection callback expected to be'
                                             ' callable$'):
            graph.merge_graphs(*graphs, overlap_detector=detector)
    with pytest.raises(ValueError, match='^Overlap detection'):
        graph.merge_graphs(one, two, overlap_detector=detector, allow_overlaps=True)


def test_merge_without_a_detector_counts_shared_nodes():
    one, two = graph.DiGraph([('a', 'b')]), graph.DiGraph([('c', 'd')])
    assert sorted(graph.merge_graphs(one, two, overlap_detector=None).nodes) == [
        'a', 'b', 'c', 'd']
    with pytest.raises(ValueError, match='since there are 1 overlapping nodes'):
        graph.merge_graphs(one, graph.DiGraph([('b', 'e')]))
