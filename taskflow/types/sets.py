"""An immutable, hashable, insertion-ordered set."""

from __future__ import annotations

import itertools
from collections import abc
from collections.abc import Hashable, Iterable, Iterator
from typing import Any


def _as_lookup(values: Iterable[Any]) -> abc.Container:
    # Set semantics for arbitrary iterables (a str is iterated, not searched
    # for substrings); fall back to a list for unhashable items.
    if isinstance(values, (abc.Set, abc.Mapping)):
        return values
    values = list(values)
    try:
        return set(values)
    except TypeError:
        return values


class OrderedSet(abc.Set, abc.Hashable):
    """A read-only set that remembers the order items were first added.

    Operators (``| & - ^``) and the named methods return ``OrderedSet``.
    """

    __slots__ = ['_data']

    def __init__(self, iterable: Iterable[Hashable] | None = None) -> None:
        # dict keys: O(1) membership and insertion order in one structure.
        self._data: dict[Any, None] = (
            dict.fromkeys(iterable) if iterable is not None else {})

    def __contains__(self, value: object) -> bool:
        return value in self._data

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return self._hash()

    def __getstate__(self) -> list:
        return list(self._data)

    def __setstate__(self, items: list) -> None:
        self._data = dict.fromkeys(items)

    def __repr__(self) -> str:
        return '%s(%r)' % (type(self).__name__, list(self._data))

    def copy(self) -> OrderedSet:
        """A new ``OrderedSet`` with the same items."""
        return self._from_iterable(self)

    def intersection(self, *sets: Iterable[Any]) -> OrderedSet:
        """Items (in this set's order) that are in every one of ``sets``."""
        lookups = [_as_lookup(s) for s in sets]
        return self._from_iterable(
            v for v in self if all(v in lookup for lookup in lookups))

    def issuperset(self, other: Iterable[Any]) -> bool:
        """Whether every item of ``other`` is in this set."""
        return all(value in self for value in other)

    def issubset(self, other: Iterable[Any]) -> bool:
        """Whether every item of this set is in ``other``."""
        lookup = _as_lookup(other)
        return all(value in lookup for value in self)

    def difference(self, *sets: Iterable[Any]) -> OrderedSet:
        """Items (in this set's order) that are in none of ``sets``."""
        lookups = [_as_lookup(s) for s in sets]
        return self._from_iterable(
            v for v in self if not any(v in lookup for lookup in lookups))

    def union(self, *sets: Iterable[Any]) -> OrderedSet:
        """Items of this set followed by the new items of ``sets``."""
        return self._from_iterable(itertools.chain(self, *sets))
