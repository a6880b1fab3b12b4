"""The dir backend's ``file_cache``: file contents by path, checked against the file.

Like the original's, the cache is a plain ``dict`` (unbounded) unless
``max_cache_size`` is configured, then an :class:`LRUCache` of that many
files.  Entries are ``{'data': text, 'mtime': seconds}``; an entry is only
used while the file still is the one it was read from (same inode, size
and modification time), so another process replacing a file is always seen.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator, MutableMapping
from typing import Any


def make(max_cache_size: Any) -> MutableMapping[str, Any]:
    """The cache for a ``max_cache_size`` option (``None``: unbounded)."""
    if max_cache_size is None:
        return {}
    size = int(max_cache_size)
    if size < 1:
        raise ValueError('Maximum cache size must be greater than or equal to one')
    return LRUCache(size)


class LRUCache(MutableMapping):
    """A mapping keeping the ``maxsize`` most recently used entries."""

    def __init__(self, maxsize: int) -> None:
        self._entries: collections.OrderedDict[Any, Any] = collections.OrderedDict()
        self._maxsize = maxsize

    @property
    def maxsize(self) -> int:
        """How many entries are kept at most."""
        return self._maxsize

    @property
    def currsize(self) -> int:
        """How many entries there are."""
        return len(self._entries)

    def __getitem__(self, key: Any) -> Any:
        value = self._entries[key]
        self._entries.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)

    def __delitem__(self, key: Any) -> None:
        del self._entries[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return '%s(%r, maxsize=%r, currsize=%r)' % (
            type(self).__name__, dict(self._entries), self._maxsize, self.currsize)


class CachedFile(dict):
    """A cache entry: ``{'data': ..., 'mtime': ...}``, plus what identifies the file."""

    __slots__ = ('identity',)

    def __init__(self, data: str, stat: os.stat_result) -> None:
        super().__init__(data=data, mtime=stat.st_mtime)
        self.identity = identity(stat)


def identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    """What tells two versions of a file apart (files are replaced, not rewritten)."""
    return stat.st_ino, stat.st_dev, stat.st_size, stat.st_mtime_ns
