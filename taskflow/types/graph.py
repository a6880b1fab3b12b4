"""networkx graphs with the helpers taskflow uses (``DiGraph``, ``Graph``...).

Needs the optional ``networkx`` dependency (``pip install 'taskflow-ng[graph]'``).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from typing import Any

try:
    import networkx as nx
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("taskflow.types.graph needs networkx, which is not"
                      " installed: pip install 'taskflow-ng[graph]'") from e


def _common_format(g: Any, edge_notation: str) -> list[str]:
    lines = [
        'Name: %s' % g.name,
        'Type: %s' % type(g).__name__,
        'Frozen: %s' % nx.is_frozen(g),
        'Density: %0.3f' % nx.density(g),
        'Nodes: %s' % g.number_of_nodes(),
    ]
    for n, n_data in g.nodes(data=True):
        if n_data:
            lines.append('  - %s (%s)' % (n, n_data))
        else:
            lines.append('  - %s' % n)
    lines.append('Edges: %s' % g.number_of_edges())
    for u, v, e_data in g.edges(data=True):
        if e_data:
            lines.append('  %s %s %s (%s)' % (u, edge_notation, v, e_data))
        else:
            lines.append('  %s %s %s' % (u, edge_notation, v))
    return lines


def _to_dot(g: Any) -> str:
    try:
        import pydot  # noqa: F401  (networkx imports it too; fail clearly)
    except ImportError as e:
        raise ImportError('export_to_dot needs pydot, which is not'
                          ' installed: pip install pydot') from e
    from networkx.drawing import nx_pydot
    return nx_pydot.to_pydot(g).to_string()


class Graph(nx.Graph):
    """An undirected graph with some extra helpers."""

    def __init__(self, incoming_graph_data: Any = None, name: str = '') -> None:
        super().__init__(incoming_graph_data=incoming_graph_data, name=name)
        # ``freeze()`` sets it (networkx's flag); the original's graphs have it from the start.
        self.frozen = False

    def freeze(self) -> Graph:
        """Make the graph read-only (returns it)."""
        nx.freeze(self)
        return self

    def export_to_dot(self) -> str:
        """The graph in graphviz dot format (needs ``pydot``)."""
        return _to_dot(self)

    def pformat(self) -> str:
        """A multi-line description: name, type, nodes, edges."""
        return os.linesep.join(_common_format(self, '<->'))

    def add_edge(self, u: Any, v: Any, attr_dict: dict | None = None,
                 **attr: Any) -> None:
        """Add an edge; ``attr_dict`` (when given) replaces keyword attributes."""
        if attr_dict is not None:
            return super().add_edge(u, v, **attr_dict)
        return super().add_edge(u, v, **attr)

    def add_node(self, n: Any, attr_dict: dict | None = None,
                 **attr: Any) -> None:
        """Add a node; ``attr_dict`` (when given) replaces keyword attributes."""
        if attr_dict is not None:
            return super().add_node(n, **attr_dict)
        return super().add_node(n, **attr)

    def fresh_copy(self) -> Graph:
        """An empty graph of the same class."""
        return type(self)()


class DiGraph(nx.DiGraph):
    """A directed graph with some extra helpers."""

    def __init__(self, incoming_graph_data: Any = None, name: str = '') -> None:
        super().__init__(incoming_graph_data=incoming_graph_data, name=name)
        # ``freeze()`` sets it (networkx's flag); the original's graphs have it from the start.
        self.frozen = False

    def freeze(self) -> DiGraph:
        """Make the graph read-only (returns it)."""
        nx.freeze(self)
        return self

    def get_edge_data(self, u: Any, v: Any, default: Any = None) -> Any:
        """The attribute dict of edge ``u -> v`` (or ``default``)."""
        return super().get_edge_data(u, v, default=default)

    def topological_sort(self) -> Iterator[Any]:
        """Nodes in a topological order (a generator)."""
        return nx.topological_sort(self)

    def pformat(self) -> str:
        """A multi-line description: name, type, nodes, edges and cycles."""
        lines = _common_format(self, '->')
        # Unlike simple_cycles, this does not depend on hash order, so the
        # output is the same on every run.
        cycles = nx.recursive_simple_cycles(self)
        lines.append('Cycles: %s' % len(cycles))
        for cycle in cycles:
            lines.append('  %s' % ' --> '.join(
                str(n) for n in list(cycle) + [cycle[0]]))
        return os.linesep.join(lines)

    def export_to_dot(self) -> str:
        """The graph in graphviz dot format (needs ``pydot``)."""
        return _to_dot(self)

    def is_directed_acyclic(self) -> bool:
        """Whether the graph has no cycle."""
        return nx.is_directed_acyclic_graph(self)

    def no_successors_iter(self) -> Iterator[Any]:
        """Yield the nodes that have no successors."""
        for n in self.nodes:
            if not self._succ[n]:
                yield n

    def no_predecessors_iter(self) -> Iterator[Any]:
        """Yield the nodes that have no predecessors."""
        for n in self.nodes:
            if not self._pred[n]:
                yield n

    def bfs_predecessors_iter(self, n: Any) -> Iterator[Any]:
        """Yield the (transitive) predecessors of ``n``, nearest first."""
        visited = set()
        queue = collections.deque([n])
        while queue:
            node = queue.popleft()
            for pred in self.predecessors(node):
                if pred not in visited:
                    visited.add(pred)
                    yield pred
                    queue.append(pred)

    def add_edge(self, u: Any, v: Any, attr_dict: dict | None = None,
                 **attr: Any) -> None:
        """Add an edge; ``attr_dict`` (when given) replaces keyword attributes."""
        if attr_dict is not None:
            return super().add_edge(u, v, **attr_dict)
        return super().add_edge(u, v, **attr)

    def add_node(self, n: Any, attr_dict: dict | None = None,
                 **attr: Any) -> None:
        """Add a node; ``attr_dict`` (when given) replaces keyword attributes."""
        if attr_dict is not None:
            return super().add_node(n, **attr_dict)
        return super().add_node(n, **attr)

    def fresh_copy(self) -> DiGraph:
        """An empty graph of the same class."""
        return type(self)()


class OrderedDiGraph(DiGraph):
    """A directed graph that keeps nodes and edges in insertion order."""

    node_dict_factory = collections.OrderedDict
    adjlist_outer_dict_factory = collections.OrderedDict
    adjlist_inner_dict_factory = collections.OrderedDict
    edge_attr_dict_factory = collections.OrderedDict

    def fresh_copy(self) -> OrderedDiGraph:
        """An empty graph of the same class."""
        return type(self)()


class OrderedGraph(Graph):
    """An undirected graph that keeps nodes and edges in insertion order."""

    node_dict_factory = collections.OrderedDict
    adjlist_outer_dict_factory = collections.OrderedDict
    adjlist_inner_dict_factory = collections.OrderedDict
    edge_attr_dict_factory = collections.OrderedDict

    def fresh_copy(self) -> OrderedGraph:
        """An empty graph of the same class."""
        return type(self)()


def _count_overlaps(g1: Any, g2: Any) -> int:
    return sum(1 for n in g2 if n in g1)


def merge_graphs(graph: Any, *graphs: Any, **kwargs: Any) -> Any:
    """Merge ``graphs`` into a copy of ``graph`` (``graph`` itself if none).

    :param overlap_detector: ``f(graph, other) -> count`` of shared nodes
        (default: count the shared nodes).
    :param allow_overlaps: when true, shared nodes are merged.
    :raises ValueError: when graphs share nodes and overlaps are not allowed,
        or when ``overlap_detector`` is given but not callable.
    """
    overlap_detector = kwargs.get('overlap_detector')
    if overlap_detector is None:
        overlap_detector = _count_overlaps
    elif not callable(overlap_detector):
        raise ValueError('Overlap detection callback expected to be callable')
    if not graphs:
        return graph
    allow_overlaps = kwargs.get('allow_overlaps', False)
    merged = graph.copy()
    for g in graphs:
        if not allow_overlaps:
            overlaps = overlap_detector(merged, g)
            if overlaps:
                raise ValueError("Can not merge graph %s into %s since there"
                                 " are %s overlapping nodes (and we do not"
                                 " support merging nodes)"
                                 % (g, merged, overlaps))
        merged.add_nodes_from(g.nodes(data=True))
        merged.add_edges_from(g.edges(data=True))
    return merged
