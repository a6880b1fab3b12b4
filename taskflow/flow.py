"""The flow base class: a named structure of atoms and subflows.

A flow holds no state; it only says what runs and in which order.  Each
pattern (``taskflow.patterns.*``) decides the order by the links it reports
from ``iter_links()``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any

# Keys of the metadata dicts that ``iter_links()`` yields.
LINK_INVARIANT = 'invariant'   # the pattern itself imposes the link
LINK_MANUAL = 'manual'         # added by ``graph_flow.Flow.link()``
LINK_RETRY = 'retry'
LINK_REASONS = 'reasons'       # names whose production/consumption inferred it
LINK_DECIDER = 'decider'
LINK_DECIDER_DEPTH = 'decider_depth'

_PATTERNS_PREFIX = 'taskflow.patterns.'


class Flow(metaclass=abc.ABCMeta):
    """Base of every flow pattern.

    :param name: the flow's name.
    :param retry: an optional retry controller consulted when an atom inside
        this flow fails; it runs before the flow's children.  If it has no
        name it is named ``'<flow name>_retry'``.
    """

    def __init__(self, name: Any, retry: Any = None) -> None:
        self._name = str(name)
        self._retry = retry
        if retry is not None and retry.name is None:
            retry.name = self.name + '_retry'

    @property
    def name(self) -> str:
        """The flow's name."""
        return self._name

    @property
    def retry(self) -> Any:
        """The retry controller of this flow, or ``None``."""
        return self._retry

    @abc.abstractmethod
    def add(self, *items: Any) -> Flow:
        """Add atoms and/or subflows; returns the flow itself."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of direct children."""

    @abc.abstractmethod
    def iter_links(self) -> Iterator[tuple[Any, Any, dict]]:
        """Yield ``(u, v, metadata)`` for every ordering link between children."""

    @abc.abstractmethod
    def iter_nodes(self) -> Iterator[tuple[Any, dict]]:
        """Yield ``(child, metadata)`` for every direct child."""

    def __iter__(self) -> Iterator[Any]:
        for child, _meta in self.iter_nodes():
            yield child

    @property
    def provides(self) -> frozenset:
        """Every name this flow's retry or any of its children provides."""
        provided = set(self._retry.provides) if self._retry is not None else set()
        for child in self:
            provided.update(child.provides)
        return frozenset(provided)

    @property
    @abc.abstractmethod
    def requires(self) -> frozenset:
        """Names this flow needs from outside (not produced within it)."""

    def _retry_requires_and_provides(self) -> tuple[set, set]:
        if self._retry is None:
            return set(), set()
        return set(self._retry.requires), set(self._retry.provides)

    def __str__(self) -> str:
        cls = type(self)
        qualified = '%s.%s' % (cls.__module__, cls.__name__)
        if qualified.startswith(_PATTERNS_PREFIX):
            qualified = qualified[len(_PATTERNS_PREFIX):]
        return '"%s: %s(len=%d)"' % (qualified, self.name, len(self))
