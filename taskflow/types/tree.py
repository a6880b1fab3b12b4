"""A simple n-ary tree of :class:`Node` objects (each holding an ``item``)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import Any


class FrozenNode(Exception):
    """Raised when a frozen node is modified."""

    def __init__(self) -> None:
        super().__init__("Frozen node(s) can't be modified")


class Node:
    """A tree node holding ``item``; extra keyword arguments become ``metadata``."""

    #: Default strings used by :meth:`pformat`.
    STARTING_PREFIX = ''
    EMPTY_SPACE_SEP = ' '
    HORIZONTAL_CONN = '__'
    VERTICAL_CONN = '|'
    LINE_SEP = '\n'

    def __init__(self, item: Any, **kwargs: Any) -> None:
        self.item = item
        self.parent: Node | None = None
        self.metadata = dict(kwargs)
        self.frozen = False
        self._children: list[Node] = []

    def _check_not_frozen(self) -> None:
        if self.frozen:
            raise FrozenNode()

    def add(self, child: Node) -> None:
        """Add ``child`` as the last child of this node."""
        self._check_not_frozen()
        child.parent = self
        self._children.append(child)

    def empty(self) -> bool:
        """Whether this node has no children."""
        return not self._children

    def path_iter(self, include_self: bool = True) -> Iterator[Node]:
        """Yield this node (optionally), its parent, grandparent... to the root."""
        node = self if include_self else self.parent
        while node is not None:
            yield node
            node = node.parent

    def find_first_match(self, matcher: Callable[[Node], Any],
                         only_direct: bool = False,
                         include_self: bool = True) -> Node | None:
        """The first node (depth first, left to right) ``matcher`` accepts."""
        if only_direct:
            candidates: Any = iter(self._children)
            if include_self:
                candidates = _chain_one(self, candidates)
        else:
            candidates = self.dfs_iter(include_self=include_self)
        for node in candidates:
            if matcher(node):
                return node
        return None

    def find(self, item: Any, only_direct: bool = False,
             include_self: bool = True) -> Node | None:
        """The first node whose item equals ``item`` (or ``None``)."""
        return self.find_first_match(lambda n: n.item == item,
                                     only_direct=only_direct,
                                     include_self=include_self)

    def disassociate(self) -> int:
        """Detach this node from its parent; returns how many links were removed."""
        self._check_not_frozen()
        parent = self.parent
        if parent is None:
            return 0
        parent._check_not_frozen()
        before = len(parent._children)
        parent._children = [c for c in parent._children if c is not self]
        self.parent = None
        return before - len(parent._children)

    def remove(self, item: Any, only_direct: bool = False,
               include_self: bool = True) -> Node:
        """Detach and return the first node holding ``item``."""
        self._check_not_frozen()
        node = self.find(item, only_direct=only_direct,
                         include_self=include_self)
        if node is None:
            raise ValueError("Item '%s' not found to remove" % (item,))
        node.disassociate()
        return node

    def freeze(self) -> None:
        """Make this node and all its descendants read-only."""
        for node in self.dfs_iter(include_self=True):
            node.frozen = True

    def __contains__(self, item: Any) -> bool:
        """Whether this node or a descendant holds ``item``."""
        return self.find(item) is not None

    def __getitem__(self, index: int) -> Node:
        return self._children[index]

    def __iter__(self) -> Iterator[Node]:
        """Iterate over the direct children."""
        return iter(list(self._children))

    def reverse_iter(self) -> Iterator[Node]:
        """Iterate over the direct children, last first."""
        return iter(self._children[::-1])

    def index(self, item: Any) -> int:
        """Index of the first direct child holding ``item``."""
        for i, child in enumerate(self._children):
            if child.item == item:
                return i
        raise ValueError("%s is not contained in any child" % (item,))

    def child_count(self, only_direct: bool = True) -> int:
        """Number of children (or of all descendants)."""
        if only_direct:
            return len(self._children)
        return sum(1 for _ in self.dfs_iter())

    def dfs_iter(self, include_self: bool = False,
                 right_to_left: bool = True) -> Iterator[Node]:
        """Depth-first (pre-order) iteration.

        Quirk kept from the reference: the default ``right_to_left=True``
        visits the leftmost child first; ``False`` visits the rightmost first.
        """
        stack = [self]
        while stack:
            node = stack.pop()
            if node is not self or include_self:
                yield node
            if right_to_left:
                stack.extend(reversed(node._children))
            else:
                stack.extend(node._children)

    def bfs_iter(self, include_self: bool = False,
                 right_to_left: bool = False) -> Iterator[Node]:
        """Breadth-first iteration.

        Quirk kept from the reference: ``right_to_left=True`` visits each
        level left to right; the default ``False`` right to left.
        """
        queue = collections.deque([self])
        while queue:
            node = queue.popleft()
            if node is not self or include_self:
                yield node
            if right_to_left:
                queue.extend(node._children)
            else:
                queue.extend(reversed(node._children))

    def pformat(self, stringify_node: Callable[[Node], str] | None = None,
                linesep: str = LINE_SEP, vertical_conn: str = VERTICAL_CONN,
                horizontal_conn: str = HORIZONTAL_CONN,
                empty_space: str = EMPTY_SPACE_SEP,
                starting_prefix: str = STARTING_PREFIX) -> str:
        """Draw the tree, one node per line::

            root
            |__child
            |  |__grandchild
            |__child
        """
        if stringify_node is None:
            stringify_node = _stringify
        lines = [stringify_node(self)]
        # Children's prefix: a vertical bar continues below a child that has
        # later siblings, blank space below the last one.
        continued = vertical_conn + empty_space * len(horizontal_conn)
        finished = empty_space * (len(vertical_conn) + len(horizontal_conn))
        stack = [(child, starting_prefix, i == len(self._children) - 1)
                 for i, child in enumerate(self._children)][::-1]
        while stack:
            node, prefix, is_last = stack.pop()
            lines.append(prefix + vertical_conn + horizontal_conn
                         + stringify_node(node))
            child_prefix = prefix + (finished if is_last else continued)
            last = len(node._children) - 1
            stack.extend((child, child_prefix, i == last) for i, child
                         in reversed(list(enumerate(node._children))))
        return linesep.join(lines)

    def to_digraph(self) -> Any:
        """This tree as a ``types.graph.OrderedDiGraph`` (edges parent -> child)."""
        from taskflow.types import graph  # needs networkx; only load it here

        g = graph.OrderedDiGraph()
        for node in self.bfs_iter(include_self=True, right_to_left=True):
            g.add_node(node.item, **node.metadata)
            if node is not self:
                g.add_edge(node.parent.item, node.item)
        return g


def _stringify(node: Node) -> str:
    return str(node.item)


def _chain_one(first: Node, rest: Iterator[Node]) -> Iterator[Node]:
    yield first
    yield from rest

