"""Decider depths: how much of a flow a negative decider skips.

A decider is a callable on a graph-flow link (``flow.link(u, v, decider=...)``);
when it returns a falsy value ``v`` is not run and, depending on the depth,
neither are the atoms after it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Depth(str, enum.Enum):
    """What a negative decider ignores, from widest to narrowest."""

    ALL = 'ALL'              # the atom and everything after it, nested flows included
    FLOW = 'FLOW'            # the atom and the atoms after it in the same flow
    NEIGHBORS = 'NEIGHBORS'  # the atom and the tasks right after it
    ATOM = 'ATOM'            # only the atom

    def __str__(self) -> str:
        return self.value

    @classmethod
    def translate(cls, desired_depth: Depth | str) -> Depth:
        """Turn a (case-insensitive) depth name into a :class:`Depth`."""
        if isinstance(desired_depth, cls):
            return desired_depth
        if not isinstance(desired_depth, str):
            raise TypeError('Unexpected desired depth type, string type expected, not %s'
                            % type(desired_depth))
        try:
            return cls(desired_depth.upper())
        except ValueError:
            pretty = sorted(member.value for member in cls)
            raise ValueError("Unexpected decider depth value, one of %s (case-insensitive)"
                             " is expected and not '%s'" % (pretty, desired_depth)) from None


# Widest first: picking the widest of several "no" votes is a scan of this order.
_ORDER = (Depth.ALL, Depth.FLOW, Depth.NEIGHBORS, Depth.ATOM)


def pick_widest(depths: Iterable[Depth]) -> Depth:
    """The widest of ``depths`` (``ALL`` > ``FLOW`` > ``NEIGHBORS`` > ``ATOM``)."""
    present = set(depths)
    for depth in _ORDER:
        if depth in present:
            return depth
    raise ValueError('No depths were provided')
