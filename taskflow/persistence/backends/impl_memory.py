"""In-memory persistence: nothing survives the process.

Objects live in :class:`FakeFilesystem`, a small tree of nodes addressed by
absolute POSIX-style paths, with the path layout of ``path_based``. It is
exposed as ``MemoryBackend.memory`` so programs can inspect what was stored::

    /
    |__books
    |  |__<book uuid>
    |     |__<fd uuid> (link to /flow_details/<fd uuid>)
    |__flow_details
    ...
"""

from __future__ import annotations

import contextlib
import copy
import posixpath
import threading
from collections.abc import Iterator
from typing import Any

from taskflow import exceptions as exc
from taskflow.persistence import path_based

__all__ = ['FakeFilesystem', 'MemoryBackend']


class _Node:
    __slots__ = ('name', 'value', 'children', 'target')

    def __init__(self, name: str) -> None:
        self.name = name
        self.value: Any = None
        self.children: dict[str, _Node] = {}
        self.target: str | None = None  # set for links


class FakeFilesystem:
    """A tree of values addressed by absolute paths (``'/a/b'``).

    Values are copied on the way in and out (deeply when ``deep_copy``) so
    callers never share state with the store. A link node resolves to its
    target when read.

    ``delete('/', recursive=True)`` behaves as the original's: the root's
    children can no longer be looked up by path (and new ones may take their
    names), yet they stay listed by ``ls('/')``, ``ls_r('/')`` and
    ``pformat()``; the root keeps its value.  ``clear()`` empties everything.
    """

    root_path = '/'

    def __init__(self, deep_copy: bool = True) -> None:
        self._root = _Node(self.root_path)
        # Former children of the root, detached by delete('/', recursive=True).
        self._detached: list[_Node] = []
        self._copier = copy.deepcopy if deep_copy else copy.copy

    # -- path helpers -------------------------------------------------------

    @staticmethod
    def join(*pieces: str) -> str:
        """Join path pieces."""
        return posixpath.join(*pieces)

    @staticmethod
    def split(p: str) -> tuple[str, str]:
        """``(parent, name)`` of a path."""
        return posixpath.split(p)

    @staticmethod
    def normpath(path: str) -> str:
        """Normalise an absolute path (``ValueError`` if not absolute)."""
        if not path:
            raise ValueError('This filesystem can only normalize paths that'
                             ' are not empty')
        if not path.startswith('/'):
            raise ValueError('This filesystem can only normalize paths that'
                             ' start with /: %r is not valid' % (path,))
        # As posixpath (and the original): '//' and '//a' keep their leading
        # double slash, and such paths are never found.
        return posixpath.normpath(path)

    def _pieces(self, path: str) -> list[str]:
        path = self.normpath(path)
        return [piece for piece in path.split('/') if piece]

    def _fetch_node(self, path: str) -> _Node:
        node = self._root
        if path.startswith('//') and not path.startswith('///'):
            raise exc.NotFound("Path '%s' not found" % self.normpath(path))
        for piece in self._pieces(path):
            try:
                node = node.children[piece]
            except KeyError:
                raise exc.NotFound("Path '%s' not found"
                                   % self.normpath(path)) from None
        return node

    def _resolve(self, path: str) -> _Node:
        node = self._fetch_node(path)
        seen = set()
        while node.target is not None:
            if node.target in seen:
                raise ValueError('Link loop at %r' % (path,))
            seen.add(node.target)
            node = self._fetch_node(node.target)
        return node

    # -- reading ------------------------------------------------------------

    def __getitem__(self, path: str) -> Any:
        return self._copier(self._resolve(path).value)

    def get(self, path: str, default: Any = None) -> Any:
        """The value at ``path`` or ``default`` when there is none."""
        try:
            return self[path]
        except exc.NotFound:
            return default

    def ls(self, path: str, absolute: bool = False) -> list[str]:
        """Names (or absolute paths) of the children of ``path``."""
        node = self._fetch_node(path)
        names = [child.name for child in self._listed_children(node)]
        if absolute:
            base = self.normpath(path)
            return [self.join(base, name) for name in names]
        return names

    def ls_r(self, path: str, absolute: bool = False) -> list[str]:
        """Every path below ``path``, breadth first (relative unless
        ``absolute``)."""
        base = self.normpath(path)
        out: list[str] = []
        queue = [(self._fetch_node(base), '')]
        # Breadth first, each node's children newest first (as the original).
        while queue:
            node, rel = queue.pop(0)
            for child in reversed(self._listed_children(node)):
                child_rel = child.name if not rel else rel + '/' + child.name
                out.append(self.join(base, child_rel) if absolute
                           else child_rel)
                queue.append((child, child_rel))
        return out

    def _listed_children(self, node: _Node) -> list[_Node]:
        """The children shown for ``node`` (the root's detached ones first)."""
        if node is self._root and self._detached:
            return self._detached + list(node.children.values())
        return list(node.children.values())

    def pformat(self) -> str:
        """The tree, one node per line, with ``|__`` branches."""
        lines = [self.root_path]

        def walk(node: _Node, prefix: str) -> None:
            children = self._listed_children(node)
            for i, child in enumerate(children):
                last = i == len(children) - 1
                line = prefix + '|__' + child.name
                if child.target is not None:
                    line += ' (link to %s)' % child.target
                lines.append(line)
                walk(child, prefix + ('   ' if last else '|  '))

        walk(self._root, '')
        return '\n'.join(lines)

    # -- writing ------------------------------------------------------------

    def ensure_path(self, path: str) -> None:
        """Create ``path`` and its missing parents."""
        node = self._root
        for piece in self._pieces(path):
            node = node.children.setdefault(piece, _Node(piece))

    def _make_child(self, path: str) -> _Node:
        path = self.normpath(path)
        if path == self.root_path:
            return self._root
        parent_path, name = self.split(path)
        parent = self._fetch_node(parent_path)
        node = parent.children.get(name)
        if node is None:
            node = parent.children[name] = _Node(name)
        return node

    def __setitem__(self, path: str, value: Any) -> None:
        node = self._make_child(path)
        node.value = self._copier(value)
        node.target = None

    def symlink(self, src_path: str, dest_path: str) -> None:
        """Make ``dest_path`` a link to ``src_path``."""
        node = self._make_child(dest_path)
        node.target = self.normpath(src_path)
        node.value = None

    def delete(self, path: str, recursive: bool = False) -> None:
        """Delete ``path`` (its children too when ``recursive``)."""
        path = self.normpath(path)
        node = self._fetch_node(path)
        if path == self.root_path:
            if not recursive:
                raise ValueError("Can not delete '%s'" % path)
            # The root itself stays (with its value); see the class docstring.
            self._detached.extend(node.children.values())
            node.children = {}
            return
        if node.children and not recursive:
            raise ValueError("Can not delete '%s', it has %s children"
                             % (path, len(node.children)))
        parent_path, name = self.split(path)
        del self._fetch_node(parent_path).children[name]

    def __delitem__(self, path: str) -> None:
        self.delete(path, recursive=True)

    def clear(self) -> None:
        """Remove everything."""
        self._root = _Node(self.root_path)
        self._detached = []


class MemoryBackend(path_based.PathBasedBackend):
    """Persistence in a :class:`FakeFilesystem` (``conf['deep_copy']``,
    default ``True``, controls whether stored values are deep copied)."""

    DEFAULT_PATH = '/'

    def __init__(self, conf: dict | None = None) -> None:
        super().__init__(conf)
        self.memory = FakeFilesystem(
            deep_copy=self._conf.get('deep_copy', True))
        self.lock = threading.RLock()

    def get_connection(self) -> Connection:
        return Connection(self)

    def close(self) -> None:
        pass


class Connection(path_based.PathBasedConnection):
    """A connection to a :class:`MemoryBackend` (upgraded on creation)."""

    _backend: MemoryBackend

    def __init__(self, backend: MemoryBackend) -> None:
        super().__init__(backend)
        self.upgrade()

    @property
    def _memory(self) -> FakeFilesystem:
        return self._backend.memory

    @staticmethod
    def _join_path(*parts: str) -> str:
        return posixpath.join(*parts)

    def _get_item(self, path: str) -> Any:
        return self._memory[path]

    def _set_item(self, path: str, value: Any, transaction: Any) -> None:
        self._memory[path] = value

    def _del_tree(self, path: str, transaction: Any) -> None:
        self._memory.delete(path, recursive=True)

    def _get_children(self, path: str) -> list[str]:
        return self._memory.ls(path)

    def _ensure_path(self, path: str) -> None:
        with self._wrap_errors():
            self._memory.ensure_path(path)

    def _create_link(self, src_path: str, dest_path: str,
                     transaction: Any) -> None:
        self._memory.symlink(src_path, dest_path)

    def _exists(self, path: str) -> bool:
        try:
            self._memory._fetch_node(path)
        except exc.NotFound:
            return False
        return True

    def clear_all(self) -> None:
        # Everything goes, the three top directories too (upgrade() again).
        with self._transaction():
            self._memory.clear()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # Any failure inside (a value that cannot be copied, atom details
        # of different types to merge...) is a StorageFailure, as the
        # original's.
        with self._backend.lock, self._wrap_errors():
            yield None

    @staticmethod
    @contextlib.contextmanager
    def _wrap_errors() -> Iterator[None]:
        try:
            yield
        except exc.TaskFlowException:
            raise
        except Exception as e:
            raise exc.StorageFailure(path_based.INTERNAL_ERROR, e) from e


def holding(flow_detail: Any) -> MemoryBackend:
    """A memory backend holding ``flow_detail`` (and its atom details), in no book.

    What the original's storage uses when no backend is given (values copied
    shallowly: ``deep_copy`` is false).
    """
    backend = MemoryBackend({'deep_copy': False})
    connection = backend.get_connection()
    with connection._transaction() as transaction:
        plan: list = []
        connection._plan_flow(flow_detail, plan, ignore_missing=True)
        connection._apply(plan, transaction)
    return backend
