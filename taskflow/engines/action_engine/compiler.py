"""``engine.compilation``: a compiled flow as the original shows it.

The engine runs on its own compact graph (``_compile``: join nodes, integer
indices).  Programs written for the original print or walk what
``engine.compilation`` offers there instead:

* ``execution_graph``: a frozen :class:`taskflow.types.graph.DiGraph` named
  after the flow.  Its nodes are the atoms, each flow (its start) and a
  :class:`Terminator` per flow (its end); node data says the ``kind``
  (:data:`TASK`, :data:`RETRY`, :data:`FLOW`, :data:`FLOW_END`), ``noop`` for
  flows and terminators, and the ``retry`` controlling the node (when there
  is one).  Edges carry the pattern's link metadata (``invariant``,
  ``reasons``, ``manual``, ``decider``...), ``retry`` for a retry's edges to
  the atoms it runs before.
* ``hierarchy``: a :class:`taskflow.types.tree.Node` tree, flow -> its retry
  (first) and children, with ``kind`` (and ``noop``) as metadata.

Both are built on first access, so compiling (and running) stays as cheap as
if nobody looked.  Node and edge order follow the original's: depth first, a
flow's start, its children, its retry, then its terminator.
"""

from __future__ import annotations

from typing import Any

from taskflow import flow as flow_module
from taskflow import retry as retry_module
from taskflow import task as task_module

TASK = 'task'
RETRY = 'retry'
FLOW = 'flow'
FLOW_END = 'flow_end'
ATOMS = (TASK, RETRY)
FLOWS = (FLOW, FLOW_END)

LINK_INVARIANT = flow_module.LINK_INVARIANT
LINK_RETRY = flow_module.LINK_RETRY

_INVARIANT = {LINK_INVARIANT: True}
_RETRY_EDGE = {LINK_INVARIANT: True, LINK_RETRY: True}


class Terminator:
    """The node ending a flow in the execution graph (named ``'<flow name>[$]'``)."""

    def __init__(self, flow: Any) -> None:
        self._flow = flow
        self._name = '%s[$]' % (flow.name,)

    @property
    def flow(self) -> Any:
        """The flow this node ends."""
        return self._flow

    @property
    def name(self) -> str:
        """``'<flow name>[$]'``."""
        return self._name

    def __str__(self) -> str:
        # Inside the flow's quotes: '"linear_flow.Flow: f(len=2)[$]"'.
        return '"%s[$]"' % (str(self._flow).strip('"'),)


class Compilation:
    """A compiled flow: its ``execution_graph`` and its ``hierarchy`` tree."""

    TASK = TASK
    RETRY = RETRY
    FLOW = FLOW
    FLOW_END = FLOW_END

    def __init__(self, execution_graph: Any, hierarchy: Any) -> None:
        self._execution_graph = execution_graph
        self._hierarchy = hierarchy
        self._root: Any = None

    @property
    def execution_graph(self) -> Any:
        """The flow as a frozen directed graph of atoms, flows and terminators."""
        if self._execution_graph is None and self._root is not None:
            self._execution_graph = _GraphBuilder(self._root).build()
        return self._execution_graph

    @property
    def hierarchy(self) -> Any:
        """The flow as a tree: each flow over its retry and its children."""
        if self._hierarchy is None and self._root is not None:
            self._hierarchy = _tree_of(self._root, freeze=True)
        return self._hierarchy


class PatternCompiler:
    """Compiles a flow (or a task) into a :class:`Compilation`, as the original's.

    The engine does not use it (it compiles with ``_compile``); programs that
    draw or inspect flows do.  ``compile()`` builds the graph and the tree at
    once and returns the same compilation on every call.
    """

    def __init__(self, root: Any, freeze: bool = True) -> None:
        self._root = root
        self._freeze = freeze
        self._compilation: Compilation | None = None

    def compile(self) -> Compilation:
        """The compilation of the root (built on the first call)."""
        if self._compilation is None:
            root = self._root
            if not isinstance(root, (flow_module.Flow, task_module.Task)):
                raise TypeError("Unknown object '%s' (%s) requested to compile"
                                % (root, type(root)))
            self._compilation = Compilation(_GraphBuilder(root, freeze=self._freeze).build(),
                                            _tree_of(root, freeze=self._freeze))
        return self._compilation


def built_on_use(root: Any) -> Compilation:
    """The compilation of ``root`` (a flow or a task), built on first access."""
    compilation = Compilation(None, None)
    compilation._root = root
    return compilation


def _tree_of(item: Any, freeze: bool = False) -> Any:
    from taskflow.types import tree

    if not isinstance(item, flow_module.Flow):
        node = tree.Node(item, kind=RETRY if isinstance(item, retry_module.Retry) else TASK)
    else:
        node = tree.Node(item, kind=FLOW, noop=True)
        if item.retry is not None:
            node.add(tree.Node(item.retry, kind=RETRY))
        for child, _meta in item.iter_nodes():
            node.add(_tree_of(child))
    if freeze:
        node.freeze()
    return node


class _GraphBuilder:
    """Builds the execution graph of one flow (or of a lone task)."""

    def __init__(self, root: Any, freeze: bool = True) -> None:
        from taskflow.types import graph

        self._root = root
        self._freeze = freeze
        self._graph: Any = graph.DiGraph(name=root.name)   # (networkx: untyped)

    def build(self) -> Any:
        if isinstance(self._root, flow_module.Flow):
            self._add_flow(self._root, None)
        else:
            self._graph.add_node(self._root, kind=TASK)
        return self._graph.freeze() if self._freeze else self._graph

    def _add_node(self, item: Any, kind: str, retry: Any, noop: bool = False) -> None:
        data: dict[str, Any] = {'kind': kind}
        if noop:
            data['noop'] = True
        if retry is not None:
            data['retry'] = retry
        self._graph.add_node(item, **data)

    def _add_flow(self, flow: Any, outer_retry: Any) -> tuple[Any, Any]:
        """Add ``flow`` (nodes first, then edges); returns its (start, end) nodes."""
        graph = self._graph
        own_retry = flow.retry if flow.retry is not None else outer_retry
        self._add_node(flow, FLOW, outer_retry, noop=True)
        entries: dict[int, Any] = {}
        exits: dict[int, Any] = {}
        children = []
        for child, _meta in flow.iter_nodes():
            children.append(child)
            if isinstance(child, flow_module.Flow):
                entries[id(child)], exits[id(child)] = self._add_flow(child, own_retry)
            else:
                self._add_node(child, TASK, own_retry)
                entries[id(child)] = exits[id(child)] = child
        if flow.retry is not None:
            self._add_node(flow.retry, RETRY, outer_retry)
        end = Terminator(flow)
        self._add_node(end, FLOW_END, outer_retry, noop=True)

        has_pred, has_succ = set(), set()
        for u, v, meta in flow.iter_links():
            graph.add_edge(exits[id(u)], entries[id(v)], **meta)
            has_succ.add(id(u))
            has_pred.add(id(v))
        if flow.retry is not None:
            graph.add_edge(flow, flow.retry, **_INVARIANT)
            head, head_edge = flow.retry, _RETRY_EDGE
        else:
            head, head_edge = flow, _INVARIANT
        for child in children:
            if id(child) not in has_pred:
                graph.add_edge(head, entries[id(child)], **head_edge)
            if id(child) not in has_succ:
                graph.add_edge(exits[id(child)], end, **_INVARIANT)
        if not children:
            graph.add_edge(head, end, **_INVARIANT)
        return flow, end
