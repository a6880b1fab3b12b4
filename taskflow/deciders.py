"""Decider depths: how much of a flow a negative decider skips.

A decider is a callable on a graph-flow link (``flow.link(u, v, decider=...)``);
when it returns a falsy value ``v`` is not run and, depending on the depth,
neither are the atoms after it.
"""

from __future__ import annotations

from collections.abc import Iterable

from taskflow.utils import misc


class Depth(misc.StrEnum):
    """What a negative decider ignores, from widest to narrowest."""

    ALL = 'ALL'              # the atom and everything after it, nested flows included
    FLOW = 'FLOW'            # the atom and the atoms after it in the same flow
    NEIGHBORS = 'NEIGHBORS'  # the atom and the tasks right after it
    ATOM = 'ATOM'            # only the atom

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


# Widest first: the widest of several "no" votes is the one placed first here.
_ORDER = (Depth.ALL, Depth.FLOW, Depth.NEIGHBORS, Depth.ATOM)


def pick_widest(depths: Iterable[Depth | str]) -> Depth:
    """The widest of ``depths`` (``ALL`` > ``FLOW`` > ``NEIGHBORS`` > ``ATOM``).

    Upper case names work too. No depths raise ``ValueError('min() arg is an
    empty sequence')`` and an unknown one ``ValueError('tuple.index(x): x not
    in tuple')``, as in the original.
    """
    return _ORDER[min(_ORDER.index(depth) for depth in depths)]
