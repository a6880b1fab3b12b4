"""Unordered flow: children have no order between them and may run in parallel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from taskflow.patterns import _children


class Flow(_children.ChildListFlow):
    """Children run in any order (concurrently on a parallel engine).

    Siblings cannot see each other's results: nothing orders them.
    """

    def iter_links(self) -> Iterator[tuple[Any, Any, dict]]:
        return iter(())

    @property
    def requires(self) -> frozenset:
        required, provided = self._retry_requires_and_provides()
        for child in self._children:
            required.update(name for name in child.requires if name not in provided)
        return frozenset(required)
