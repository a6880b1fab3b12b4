"""taskflow.types.sets.OrderedSet (reprs and orders observed on the reference)."""

import copy
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow.types.sets import OrderedSet


def test_repr_and_order():
    s = OrderedSet(['b', 'a', 'b', 'c'])
    assert repr(s) == str(s) == "OrderedSet(['b', 'a', 'c'])"
    assert repr(OrderedSet()) == repr(OrderedSet([])) == 'OrderedSet([])'
    assert list(s) == ['b', 'a', 'c'] and len(s) == 3
    assert 'a' in s and 'z' not in s
    assert list(OrderedSet('hello')) == ['h', 'e', 'l', 'o']
    assert not OrderedSet() and OrderedSet(None) == OrderedSet()


def test_operators_keep_order():
    a, b = OrderedSet(['b', 'a', 'c']), OrderedSet(['c', 'd'])
    assert list(a | b) == ['b', 'a', 'c', 'd']
    assert list(a & b) == ['c']
    assert list(a - b) == ['b', 'a']
    assert list(a ^ b) == ['b', 'a', 'd']
    assert list(b ^ a) == ['d', 'b', 'a']
    # & follows the right operand's order (collections.abc behaviour).
    assert list(OrderedSet('abc') & ['c', 'b']) == ['c', 'b']
    assert list({'z'} | a) == ['b', 'a', 'c', 'z']
    assert type({'z'} | a) is OrderedSet
    assert list(a | ['x']) == ['b', 'a', 'c', 'x']
    with pytest.raises(TypeError):
        a | 5


def test_named_methods():
    a, b = OrderedSet(['b', 'a', 'c']), OrderedSet(['c', 'd'])
    assert list(a.union(b, ['e'])) == ['b', 'a', 'c', 'd', 'e']
    assert list(a.intersection(b, ['c'])) == ['c']
    assert list(a.intersection(['c', 'b'])) == ['b', 'c']
    assert list(a.difference(b, ['a'])) == ['b']
    assert a.union() == a.intersection() == a.difference() == a
    assert list(OrderedSet('abc').difference('a', 'b')) == ['c']
    assert list(OrderedSet('abc').intersection('ab', 'bc')) == ['b']
    assert not a.issubset(b) and OrderedSet(['a']).issubset(a)
    assert a.issuperset(['a']) and a.issubset(iter('abcd'))
    assert not a.isdisjoint(b) and a.isdisjoint(['z'])
    for result in (a.union(b), a.intersection(b), a.difference(b), a.copy()):
        assert type(result) is OrderedSet


def test_immutable_hashable_and_comparisons():
    a = OrderedSet(['b', 'a', 'c'])
    assert not hasattr(a, 'add') and not hasattr(a, '__dict__')
    assert a == OrderedSet(['a', 'b', 'c']) and a == {'a', 'b', 'c'}
    assert a != ['b', 'a', 'c']
    assert hash(a) == hash(OrderedSet('cba')) == hash(frozenset('abc'))
    assert a <= OrderedSet('abcd') and not a < a and a > OrderedSet('a')
    with pytest.raises(TypeError):
        OrderedSet([[1]])


def test_copy_and_pickle():
    a = OrderedSet(['b', 'a', 'c'])
    c = a.copy()
    assert c == a and c is not a and list(c) == list(a)
    for clone in (pickle.loads(pickle.dumps(a)), copy.deepcopy(a)):
        assert list(clone) == ['b', 'a', 'c']


items = st.lists(st.integers(-5, 5), max_size=12)


def _ordered_unique(values):
    return list(dict.fromkeys(values))


@given(items, items)
def test_property_algebra_matches_python_sets(xs, ys):
    a, b = OrderedSet(xs), OrderedSet(ys)
    sa, sb = set(xs), set(ys)
    assert list(a) == _ordered_unique(xs)
    assert set(a | b) == sa | sb
    assert set(a & b) == sa & sb
    assert set(a - b) == sa - sb
    assert set(a ^ b) == sa ^ sb
    assert list(a.union(ys)) == _ordered_unique(xs + ys)
    assert list(a.intersection(ys)) == [x for x in _ordered_unique(xs) if x in sb]
    assert list(a.difference(ys)) == [x for x in _ordered_unique(xs)
                                      if x not in sb]
    assert a.issubset(b) == (sa <= sb)
    assert a.issuperset(b) == (sa >= sb)
    assert a.isdisjoint(b) == sa.isdisjoint(sb)
    assert (a == b) == (sa == sb)
    if a == b:
        assert hash(a) == hash(b)
