"""``taskflow.deciders``: Depth and pick_widest, as the original 6.5.0."""

from __future__ import annotations

import pytest

from taskflow import deciders
from taskflow.deciders import Depth
from taskflow.utils import misc


def test_depth_is_a_str_enum():
    assert isinstance(Depth.ALL, misc.StrEnum)  # enum.StrEnum on 3.11+
    assert isinstance(Depth.ALL, str) and Depth.ALL == 'ALL'
    assert (str(Depth.FLOW), '%s' % Depth.ATOM) == ('FLOW', 'ATOM')
    assert repr(Depth.NEIGHBORS) == "<Depth.NEIGHBORS: 'NEIGHBORS'>"
    assert Depth('ALL') is Depth.ALL
    with pytest.raises(ValueError, match="^'all' is not a valid Depth$"):
        Depth('all')
    assert list(Depth) == [Depth.ALL, Depth.FLOW, Depth.NEIGHBORS,
                           Depth.ATOM]


@pytest.mark.parametrize('name, depth', [
    ('ALL', Depth.ALL), ('aLl', Depth.ALL), ('Flow', Depth.FLOW),
    ('neighbors', Depth.NEIGHBORS), (Depth.ATOM, Depth.ATOM)])
def test_translate(name, depth):
    assert Depth.translate(name) is depth


def test_translate_errors():
    with pytest.raises(ValueError, match=r"^Unexpected decider depth value,"
                       r" one of \['ALL', 'ATOM', 'FLOW', 'NEIGHBORS'\]"
                       r" \(case-insensitive\) is expected and not ' all'$"):
        Depth.translate(' all')
    with pytest.raises(TypeError, match="^Unexpected desired depth type,"
                       " string type expected, not <class 'bytes'>$"):
        Depth.translate(b'all')


def test_pick_widest():
    assert deciders.pick_widest([Depth.ATOM, Depth.FLOW]) is Depth.FLOW
    assert deciders.pick_widest(iter([Depth.NEIGHBORS])) is Depth.NEIGHBORS
    assert deciders.pick_widest(['ATOM', Depth.ALL]) is Depth.ALL
    assert deciders.pick_widest(['FLOW', 'ATOM']) is Depth.FLOW


def test_pick_widest_errors():
    # The original's messages (it finds the minimum of positions).
    with pytest.raises(ValueError, match=r'^min\(\) arg is an empty'
                       r' sequence$'):
        deciders.pick_widest([])
    with pytest.raises(ValueError, match=r'^tuple.index\(x\): x not in'
                       r' tuple$'):
        deciders.pick_widest(['flow', 'atom'])
