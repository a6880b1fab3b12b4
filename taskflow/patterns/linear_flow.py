"""Linear flow: children run one after another, in the order they were added."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from taskflow import flow
from taskflow.patterns import _children


class Flow(_children.ChildListFlow):
    """Runs its children in ``add()`` order and reverts them in reverse order."""

    def iter_links(self) -> Iterator[tuple[Any, Any, dict]]:
        children = self._children
        for u, v in zip(children, children[1:]):
            # An OrderedDict, as the original's (it shows in reprs).
            yield u, v, OrderedDict([(flow.LINK_INVARIANT, True)])

    @property
    def requires(self) -> frozenset:
        required, provided = self._retry_requires_and_provides()
        for child in self._children:
            required.update(name for name in child.requires if name not in provided)
            provided.update(child.provides)
        return frozenset(required)
