"""Shared storage of direct children for the list-based patterns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from taskflow import flow


class ChildListFlow(flow.Flow):
    """A flow whose children are kept in insertion order, without duplicates."""

    def __init__(self, name: Any, retry: Any = None) -> None:
        super().__init__(name, retry)
        self._children: list = []
        self._ids: set[int] = set()  # identity, not equality: atoms are not values

    def add(self, *items: Any) -> ChildListFlow:
        """Add children (atoms or flows); ones already here are ignored."""
        for item in items:
            if id(item) not in self._ids:
                self._ids.add(id(item))
                self._children.append(item)
        return self

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._children)

    def iter_nodes(self) -> Iterator[tuple[Any, dict]]:
        for child in self._children:
            yield child, {}
