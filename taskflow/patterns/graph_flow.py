"""Graph flow: children ordered by the links between them.

Links come from two sources: inferred ones (a child that requires a name runs
after the one child that provides it) and manual ones (``link(u, v)``), which
may carry a decider.  Every change is atomic: when ``add`` or ``link`` raises,
the flow is as it was before the call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from taskflow import _gc
from taskflow import deciders as deciders_module
from taskflow import exceptions as exc
from taskflow import flow

_CYCLE_MESSAGE = ('No path through the node(s) in the graph produces an ordering that will'
                  ' allow for logical edge traversal')


class Flow(flow.Flow):
    """A flow whose children run in a topological order of their links."""

    def __init__(self, name: Any, retry: Any = None) -> None:
        super().__init__(name, retry)
        self._order: dict[Any, int] = {}               # node -> insertion index
        self._succ: dict[Any, dict[Any, dict]] = {}    # u -> {v: metadata}
        self._pred: dict[Any, dict[Any, dict]] = {}    # v -> {u: same metadata}
        self._providers: dict[str, list] = {}          # name -> nodes providing it
        self._unsatisfied: dict[str, list] = {}        # name -> nodes still needing it
        self._topo_cache: list | None = None

    # -- building -------------------------------------------------------------

    def add(self, *nodes: Any, resolve_requires: bool = True,
            resolve_existing: bool = True) -> Flow:
        """Add children, inferring links from what they require and provide.

        :param resolve_requires: link each new node after the single existing
            provider of each name it requires.
        :param resolve_existing: link each new node before existing nodes that
            still need a name it provides.
        :raises AmbiguousDependency: a required name has several providers.
        :raises DependencyFailure: the links would form a cycle.
        """
        undo: list[Callable[[], None]] = []
        unresolved = []
        try:
            with _gc.paused():
                for node in nodes:
                    if node in self._order:
                        continue
                    self._add_node(node, undo)
                    if resolve_requires:
                        self._link_to_providers(node, undo)
                    else:
                        unresolved.append(node)
                    self._index(self._providers, node.provides, node, undo)
                    if resolve_existing:
                        self._link_to_requirees(node, undo)
                # Providers added by later calls may still satisfy these (as
                # in the original; providers of this same call do not).
                for node in unresolved:
                    self._index(self._unsatisfied, self._own_requires(node), node, undo)
        except BaseException:
            for action in reversed(undo):
                action()
            raise
        finally:
            self._topo_cache = None
        return self

    def link(self, u: Any, v: Any, decider: Callable[..., bool] | None = None,
             decider_depth: Any = None) -> Flow:
        """Make ``v`` run after ``u`` (and revert before it).

        :param decider: called as ``decider(history=...)`` before ``v`` runs;
            a falsy answer skips ``v`` (and more, see ``decider_depth``).
        :param decider_depth: what a negative decider skips (a
            :class:`taskflow.deciders.Depth` or its name); default ``ALL``.
        """
        if u not in self._order:
            raise ValueError("Node '%s' not found to link from" % (u,))
        if v not in self._order:
            raise ValueError("Node '%s' not found to link to" % (v,))
        if decider is not None and not callable(decider):
            raise ValueError('Decider boolean callback must be callable')
        if decider_depth is not None:
            if decider is None:
                raise ValueError('Decider depth requires a decider to be provided along with it')
            decider_depth = deciders_module.Depth.translate(decider_depth)
        if u is v or self._reaches(v, u):
            raise exc.DependencyFailure(_CYCLE_MESSAGE)
        meta = self._succ[u].get(v)
        if meta is None:
            meta = {}
            self._succ[u][v] = meta
            self._pred[v][u] = meta
        if decider is not None:
            # Like the original: a new decider replaces the old one, and an
            # earlier depth stays unless a new one is given.
            meta[flow.LINK_DECIDER] = decider
            if decider_depth is not None:
                meta[flow.LINK_DECIDER_DEPTH] = decider_depth
        # Last, as the original (programs print these dicts).
        meta[flow.LINK_MANUAL] = True
        self._topo_cache = None
        return self

    def _add_node(self, node: Any, undo: list) -> None:
        self._order[node] = len(self._order)
        self._succ[node] = {}
        self._pred[node] = {}

        def forget() -> None:
            del self._order[node], self._succ[node], self._pred[node]
        undo.append(forget)

    def _own_requires(self, node: Any) -> list[str]:
        """What ``node`` requires, less what this flow's retry provides."""
        retry_provides = self._retry.provides if self._retry is not None else ()
        return [name for name in node.requires if name not in retry_provides]

    def _link_to_providers(self, node: Any, undo: list) -> None:
        for name in self._own_requires(node):
            providers = [p for p in self._providers.get(name, ()) if p is not node]
            if len(providers) > 1:
                raise exc.AmbiguousDependency(
                    "Resolution error detected when adding '%s', multiple providers %s"
                    " found for required symbol '%s'"
                    % (node.name, sorted(p.name for p in providers), name))
            if providers:
                self._add_inferred_edge(providers[0], node, name, undo)
            else:
                self._index(self._unsatisfied, (name,), node, undo)

    def _link_to_requirees(self, node: Any, undo: list) -> None:
        linked = False
        for name in node.provides:
            requirees = self._unsatisfied.get(name)
            if not requirees:
                continue
            for requiree in list(requirees):
                if requiree is node:
                    continue
                self._add_inferred_edge(node, requiree, name, undo)
                linked = True
                requirees.remove(requiree)
                undo.append(lambda r=requiree, rs=requirees: rs.append(r))
        # The node is new, so a cycle must pass through it: one search, and
        # only when it has links on both sides.
        if linked and self._pred[node] and self._reaches(node, node):
            raise exc.DependencyFailure(_CYCLE_MESSAGE)

    def _add_inferred_edge(self, u: Any, v: Any, reason: str, undo: list) -> None:
        meta = self._succ[u].get(v)
        if meta is None:
            meta = {flow.LINK_REASONS: {reason}}
            self._succ[u][v] = meta
            self._pred[v][u] = meta

            def unlink() -> None:
                del self._succ[u][v], self._pred[v][u]
            undo.append(unlink)
            return
        reasons = meta.setdefault(flow.LINK_REASONS, set())
        if reason not in reasons:
            reasons.add(reason)
            undo.append(lambda: reasons.discard(reason))

    @staticmethod
    def _index(index: dict[str, list], names: Iterable[str], node: Any, undo: list) -> None:
        for name in names:
            index.setdefault(name, []).append(node)
            undo.append(lambda bucket=index[name]: bucket.pop())

    def _reaches(self, start: Any, goal: Any) -> bool:
        """Whether ``goal`` can be reached from ``start`` along (at least one) link."""
        seen = {start}
        stack = [start]
        succ = self._succ
        while stack:
            for nxt in succ[stack.pop()]:
                if nxt is goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    # -- reading --------------------------------------------------------------

    def _visible_nodes(self) -> Iterable[Any]:
        """The nodes this flow shows (all of them; targeted flows show fewer)."""
        return self._order

    def _topological_order(self) -> list:
        """Children in the original's order: generation by generation.

        First every child nothing leads to (in the order they were added),
        then the children those release, in the order they are released
        (as ``networkx.topological_sort``, which the original uses).
        """
        if self._topo_cache is None:
            visible = self._visible_nodes()
            waiting = {n: sum(1 for p in self._pred[n] if p in visible)
                       for n in self._order if n in visible}
            generation = [n for n, count in waiting.items() if count == 0]
            result = []
            while generation:
                released = []
                for node in generation:
                    for nxt in self._succ[node]:
                        if nxt in waiting:
                            waiting[nxt] -= 1
                            if waiting[nxt] == 0:
                                released.append(nxt)
                result.extend(generation)
                generation = released
            self._topo_cache = result
        return self._topo_cache

    def __len__(self) -> int:
        return len(self._topological_order())

    def iter_nodes(self) -> Iterator[tuple[Any, dict]]:
        for node in self._topological_order():
            yield node, {}

    def iter_links(self) -> Iterator[tuple[Any, Any, dict]]:
        visible = self._visible_nodes()
        for u in self._order:
            if u in visible:
                for v, meta in self._succ[u].items():
                    if v in visible:
                        yield u, v, meta

    @property
    def requires(self) -> frozenset:
        required, retry_provided = self._retry_requires_and_provides()
        for node in self._topological_order():
            for name in node.requires:
                if name not in retry_provided and not self._provided_before(node, name):
                    required.add(name)
        return frozenset(required)

    def _provided_before(self, node: Any, name: str) -> bool:
        """Whether a predecessor (direct or transitive) of ``node`` provides ``name``."""
        providers = [p for p in self._providers.get(name, ()) if p is not node]
        if not providers:
            return False
        preds = self._pred[node]
        if any(p in preds for p in providers):  # the usual, inferred case
            return True
        return any(self._reaches(p, node) for p in providers)


class TargetedFlow(Flow):
    """A graph flow that can be narrowed to one node and everything it depends on."""

    def __init__(self, name: Any, retry: Any = None) -> None:
        super().__init__(name, retry)
        self._target: Any = None
        self._target_view: set | None = None

    def set_target(self, target_node: Any) -> None:
        """Restrict the flow to ``target_node`` and its transitive predecessors."""
        if target_node not in self._order:
            raise ValueError("Node '%s' not found" % (target_node,))
        self._target = target_node
        self._invalidate()

    def reset_target(self) -> None:
        """Show the whole flow again."""
        self._target = None
        self._invalidate()

    def _invalidate(self) -> None:
        self._target_view = None
        self._topo_cache = None

    def add(self, *nodes: Any, resolve_requires: bool = True,
            resolve_existing: bool = True) -> TargetedFlow:
        super().add(*nodes, resolve_requires=resolve_requires,
                    resolve_existing=resolve_existing)
        self._invalidate()
        return self

    def link(self, u: Any, v: Any, decider: Callable[..., bool] | None = None,
             decider_depth: Any = None) -> TargetedFlow:
        super().link(u, v, decider=decider, decider_depth=decider_depth)
        self._invalidate()
        return self

    def _visible_nodes(self) -> Iterable[Any]:
        if self._target is None:
            return self._order
        if self._target_view is None:
            view = {self._target}
            stack = [self._target]
            while stack:
                for p in self._pred[stack.pop()]:
                    if p not in view:
                        view.add(p)
                        stack.append(p)
            self._target_view = view
        return self._target_view
