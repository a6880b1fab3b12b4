"""Compile a flow tree into a flat, frozen execution graph.

The graph has one node per atom plus two *join* nodes per flow (its start and
its end).  Joins keep the edge count linear: linking a subflow of ``n`` atoms
after one of ``m`` atoms costs ``n + m`` edges instead of ``n * m``.  They are
bookkeeping only; the plan completes them without running anything.

Nodes are numbered depth first (``start, retry, children..., end``), so every
flow owns a contiguous range of node indices.  That makes "the subflow of a
retry" a slice, and "which of two providers is nearer" a comparison of
indices (see ``Compilation.providers_for``).
"""

from __future__ import annotations

import bisect
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from taskflow import atom as atom_module
from taskflow import deciders as deciders_module
from taskflow import exceptions as exc
from taskflow import flow as flow_module
from taskflow import retry as retry_module
from taskflow import task as task_module
from taskflow.engines.action_engine import compiler

TASK = 'task'
RETRY = 'retry'
JOIN = 'join'

_NO_COROUTINES: frozenset[str] = frozenset()

# How to fetch an atom's arguments: per argument, (argument name, storage
# name, optional, names of the providers it may be read from, nearest first).
ArgumentPlan = tuple[tuple[str, str, bool, tuple[str, ...]], ...]


class FlowScope:
    """One flow of the tree: where its nodes are and how its children are ordered."""

    __slots__ = ('flow', 'parent', 'depth', 'retry', 'start', 'end', 'child_starts',
                 'is_chain', 'child_preds')

    def __init__(self, flow: Any, parent: FlowScope | None) -> None:
        self.flow = flow                  # the Flow (None for a bare task)
        self.parent = parent
        self.depth: int = 0 if parent is None else parent.depth + 1
        self.retry: Node | None = None    # this flow's retry atom, if any
        self.start: Node                  # join before everything in the flow
        self.end: Node                    # join after everything in the flow
        self.child_starts: list[int] = []  # per child position: its first node index
        self.is_chain = False             # children linked one after another, in order
        # Child position -> positions linked right before it (only when not a chain).
        self.child_preds: dict[int, list[int]] = {}

    def contains(self, index: int) -> bool:
        return self.start.index <= index <= self.end.index

    def child_position(self, index: int) -> int:
        """Position of the direct child whose node range holds ``index``."""
        # Children own consecutive, ascending index ranges (depth-first numbering).
        return bisect.bisect_right(self.child_starts, index) - 1

    def precedes(self, a: int, b: int) -> bool:
        """Whether child position ``a`` is ordered (transitively) before ``b``."""
        if self.is_chain:
            return a < b
        preds = self.child_preds
        seen = {b}
        stack = [b]
        while stack:
            for p in preds.get(stack.pop(), ()):
                if p == a:
                    return True
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        return False


class Node:
    """A vertex of the execution graph: an atom or a join."""

    __slots__ = ('index', 'kind', 'atom', 'name', 'scope', 'preds', 'succs', 'retry',
                 'deciders', 'priority', 'coroutines')

    def __init__(self, index: int, kind: str, atom: Any, scope: FlowScope) -> None:
        self.index = index
        self.kind = kind
        self.atom = atom
        self.name: str = atom.name if atom is not None else ''   # '' for joins
        self.scope = scope                 # innermost flow holding the node
        self.preds: list[Node] = []
        self.succs: list[Node] = []
        self.retry: Node | None = None     # the retry consulted when this node fails
        # (source node, decider, depth) for every decider on a link into this node.
        self.deciders: list[tuple[Node, Any, deciders_module.Depth]] | None = None
        self.priority = getattr(atom, 'priority', 0) if atom is not None else 0
        # Which of the atom's methods are ``async def`` (found once, here).
        self.coroutines = coroutine_methods(atom) if atom is not None else _NO_COROUTINES

    def __repr__(self) -> str:
        label = self.name if self.kind != JOIN else 'join'
        return '<Node %d %s %s>' % (self.index, self.kind, label)


class Compilation:
    """The compiled execution graph of one flow (immutable once built)."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.nodes: list[Node] = []
        # Task and retry nodes in the original's registration order: depth
        # first, a flow's retry after the flow's children.  Storage creates
        # atom details (and lists results) in this order.
        self.atoms: list[Node] = []
        self.by_name: dict[str, Node] = {}
        self.root_scope: FlowScope
        self.hierarchy: list[FlowScope] = []   # every flow, outermost first
        self._providers: dict[str, list[Node]] = {}
        self._visible: dict[tuple[int, str], tuple[str, ...]] = {}  # provider_names() memo
        self._arguments: dict[tuple[int, bool], ArgumentPlan] = {}  # argument_plan() memo
        self._seen: set[int] = set()
        self.has_coroutines = False   # some atom has an ``async def`` method
        if isinstance(root, flow_module.Flow):
            self.root_scope = self._compile_flow(root, None)[0]
        elif isinstance(root, task_module.Task):
            self.root_scope = self._compile_bare_task(root)
        else:
            self._unknown(root)
        self._check_names()
        self._check_order()
        del self._seen

    # -- building -------------------------------------------------------------

    @staticmethod
    def _unknown(item: Any) -> None:
        raise TypeError("Unknown object '%s' (%s) requested to compile" % (item, type(item)))

    def _claim(self, item: Any) -> None:
        if id(item) in self._seen:
            raise ValueError("Already compiled item '%s' (%s), duplicate and/or recursive"
                             " compiling is not supported" % (item, type(item)))
        self._seen.add(id(item))

    def _new_node(self, kind: str, atom: Any, scope: FlowScope) -> Node:
        node = Node(len(self.nodes), kind, atom, scope)
        self.nodes.append(node)
        if atom is not None:
            if node.coroutines:
                self.has_coroutines = True
            if kind == TASK:
                self.atoms.append(node)
            for name in atom.provides:
                self._providers.setdefault(name, []).append(node)
        return node

    @staticmethod
    def _link(u: Node, v: Node) -> None:
        u.succs.append(v)
        v.preds.append(u)

    def _compile_bare_task(self, task: Any) -> FlowScope:
        self._claim(task)
        scope = FlowScope(None, None)
        self.hierarchy.append(scope)
        scope.start = self._new_node(JOIN, None, scope)
        node = self._new_node(TASK, task, scope)
        scope.end = self._new_node(JOIN, None, scope)
        scope.child_starts = [node.index]
        scope.is_chain = True
        self._link(scope.start, node)
        self._link(node, scope.end)
        node.retry = None
        return scope

    def _compile_flow(self, flow: Any, parent: FlowScope | None) -> tuple[FlowScope, Node, Node]:
        self._claim(flow)
        scope = FlowScope(flow, parent)
        self.hierarchy.append(scope)
        scope.start = self._new_node(JOIN, None, scope)
        inherited_retry = parent_retry(parent)
        head = scope.start
        if flow.retry is not None:
            if not isinstance(flow.retry, retry_module.Retry):
                self._unknown(flow.retry)
            self._claim(flow.retry)
            scope.retry = self._new_node(RETRY, flow.retry, scope)
            scope.retry.retry = inherited_retry
            self._link(scope.start, scope.retry)
            head = scope.retry
        own_retry = scope.retry or inherited_retry

        children = [child for child, _meta in flow.iter_nodes()]
        entries: list[Node] = []
        exits: list[Node] = []
        positions: dict[int, int] = {}
        for pos, child in enumerate(children):
            positions[id(child)] = pos
            if isinstance(child, flow_module.Flow):
                _sub, entry, exit_ = self._compile_flow(child, scope)
            elif isinstance(child, task_module.Task):
                self._claim(child)
                entry = exit_ = self._new_node(TASK, child, scope)
                entry.retry = own_retry
            else:
                self._unknown(child)
            scope.child_starts.append(entry.index)
            entries.append(entry)
            exits.append(exit_)
        scope.end = self._new_node(JOIN, None, scope)
        if scope.retry is not None:
            self.atoms.append(scope.retry)

        has_pred = [False] * len(children)
        has_succ = [False] * len(children)
        links = []
        for u, v, meta in flow.iter_links():
            pu, pv = positions[id(u)], positions[id(v)]
            links.append((pu, pv))
            has_pred[pv] = has_succ[pu] = True
            self._link(exits[pu], entries[pv])
            decider = meta.get(flow_module.LINK_DECIDER)
            if decider is not None:
                depth = meta.get(flow_module.LINK_DECIDER_DEPTH) or deciders_module.Depth.ALL
                target = entries[pv]
                if target.deciders is None:
                    target.deciders = []
                target.deciders.append((exits[pu], decider, deciders_module.Depth.translate(depth)))
        scope.is_chain = (len(links) == max(len(children) - 1, 0)
                          and all(pv == pu + 1 for pu, pv in links))
        if not scope.is_chain:
            for pu, pv in links:
                scope.child_preds.setdefault(pv, []).append(pu)
        for pos in range(len(children)):
            if not has_pred[pos]:
                self._link(head, entries[pos])
            if not has_succ[pos]:
                self._link(exits[pos], scope.end)
        if not children:
            self._link(head, scope.end)
        return scope, scope.start, scope.end

    def _check_names(self) -> None:
        seen: set[str] = set()
        duplicates: set[str] = set()
        for node in self.atoms:
            if node.name in seen:
                duplicates.add(node.name)
            seen.add(node.name)
            self.by_name[node.name] = node
        if duplicates:
            raise exc.Duplicate('Atoms with duplicate names found: %s' % sorted(duplicates))

    def _check_order(self) -> None:
        # The plan relies on node numbering being a topological order; that
        # holds when every pattern lists its children in an order its links
        # respect (all built-in patterns do).
        for node in self.nodes:
            for succ in node.succs:
                if succ.index <= node.index:
                    raise exc.CompilationFailure(
                        "Flow %s lists its children in an order its links contradict"
                        " (%s runs after %s)" % (node.scope.flow, succ.name or 'a subflow',
                                                 node.name or 'a subflow'))

    # -- queries --------------------------------------------------------------

    @functools.cached_property
    def public(self) -> compiler.Compilation:
        """This compilation as the original's ``engine.compilation`` shows it.

        Its graph and tree are built only when a program reads them.
        """
        return compiler.built_on_use(self.root)

    def iter_atoms(self) -> Iterator[Any]:
        """The atoms (tasks and retries), in registration order (see ``atoms``)."""
        for node in self.atoms:
            yield node.atom

    def subflow(self, retry: Node) -> list[Node]:
        """Every node a retry controls: the rest of its flow, nested flows included."""
        return self.nodes[retry.index + 1:retry.scope.end.index + 1]

    def providers_for(self, node: Node, name: str) -> list[Node]:
        """Atoms whose result ``node`` may read as ``name``, nearest first.

        Visible are the atoms guaranteed to finish before ``node``: earlier
        children of enclosing flows (with everything nested in them) and
        retries of enclosing flows; never unordered siblings.  Nearer means an
        innermost common flow first, then the latest in that flow.
        """
        found = []
        for provider in self._providers.get(name, ()):
            depth = self._visible_at(provider, node)
            if depth is not None:
                found.append((depth, provider.index, provider))
        if len(found) > 1:
            found.sort(key=lambda item: (-item[0], -item[1]))
        return [provider for _d, _i, provider in found]

    def provider_names(self, node: Node, name: str) -> tuple[str, ...]:
        """Names of :meth:`providers_for`, memoised (validation and runs share them)."""
        key = (node.index, name)
        names = self._visible.get(key)
        if names is None:
            # A tuple of strings: the garbage collector stops tracking it.
            names = self._visible[key] = tuple(p.name for p in self.providers_for(node, name))
        return names

    def argument_plan(self, node: Node, revert: bool = False) -> ArgumentPlan:
        """How to fetch an atom's ``execute`` (or ``revert``) arguments, memoised.

        One ``(argument, storage name, optional, provider names)`` tuple per
        argument of the atom's ``rebind`` (``revert_rebind``).
        """
        key = (node.index, revert)
        plan = self._arguments.get(key)
        if plan is None:
            atom = node.atom
            mapping, optional = atom.rebind, getattr(atom, '_optional_args', ())
            if revert:
                revert_mapping = atom.revert_rebind
                revert_optional = getattr(atom, '_revert_optional_args', ())
                if revert_mapping == mapping and revert_optional == optional:
                    # Most reverts take what execute takes: share the plan.
                    plan = self._arguments[key] = self.argument_plan(node, False)
                    return plan
                mapping, optional = revert_mapping, revert_optional
            # Only strings, booleans and tuples: the garbage collector stops
            # tracking it after one pass.
            plan = self._arguments[key] = tuple(
                (arg, name, arg in optional, self.provider_names(node, name))
                for arg, name in mapping.items())
        return plan

    def _visible_at(self, provider: Node, node: Node) -> int | None:
        """Depth of the flow in which ``provider`` precedes ``node``, or None."""
        if provider is node:
            return None
        scope = provider.scope
        if scope is node.scope and provider in node.preds:
            return scope.depth   # the usual case: linked right before it
        while not scope.contains(node.index):
            assert scope.parent is not None  # the root scope contains every node
            scope = scope.parent
        if scope.retry is provider:
            return scope.depth
        if scope.flow is None:
            return None
        p = scope.child_position(provider.index)
        n = scope.child_position(node.index)
        if p != n and scope.precedes(p, n):
            return scope.depth
        return None


def _is_coroutine_function(function: Callable[..., object]) -> bool:
    target = getattr(function, '__func__', function)   # bound method -> function
    code = getattr(target, '__code__', None)
    if code is not None and not hasattr(target, '_is_coroutine_marker'):
        # A plain function: its code says it (cheaper than inspect, per atom).
        return bool(code.co_flags & inspect.CO_COROUTINE)
    if inspect.iscoroutinefunction(function):
        return True
    # A callable object whose ``__call__`` is ``async def`` (not a plain function).
    call = getattr(type(function), '__call__', None)
    return (not inspect.isroutine(function) and call is not None
            and inspect.iscoroutinefunction(call))


_DEFAULT_SOURCES = atom_module.Atom._argument_sources
_BY_CLASS: dict[type, frozenset[str]] = {}   # classes whose instances inspect alike
_BY_CLASS_LIMIT = 1024


def coroutine_methods(atom: Any) -> frozenset[str]:
    """Names of the methods of ``atom`` the engine must await: ``execute``,
    ``revert`` (and, for retries, ``on_failure``) when they are ``async def``.

    What is inspected is what argument inference reads (a functor task's
    wrapped functions, not its ``execute`` that forwards to them).  Found
    once per class when instances cannot differ (the usual case: a flow of
    thousands of atoms of a few classes).
    """
    cls = type(atom)
    own = atom.__dict__
    if (cls._argument_sources is _DEFAULT_SOURCES and 'execute' not in own
            and 'revert' not in own and 'on_failure' not in own):
        found = _BY_CLASS.get(cls)
        if found is None:
            if len(_BY_CLASS) >= _BY_CLASS_LIMIT:
                _BY_CLASS.clear()   # bounded: classes made on the fly must not pile up
            found = _BY_CLASS[cls] = _inspect_methods(atom)
        return found
    return _inspect_methods(atom)


def _inspect_methods(atom: Any) -> frozenset[str]:
    execute, revert, _ignored = atom._argument_sources()
    found = [name for name, function in (('execute', execute), ('revert', revert))
             if _is_coroutine_function(function)]
    if isinstance(atom, retry_module.Retry) and _is_coroutine_function(atom.on_failure):
        found.append('on_failure')
    return frozenset(found) if found else _NO_COROUTINES


def parent_retry(scope: FlowScope | None) -> Node | None:
    """The retry of the innermost flow (from ``scope`` outwards) that has one."""
    while scope is not None:
        if scope.retry is not None:
            return scope.retry
        scope = scope.parent
    return None
