"""Delay policies for retries (a taskflow-ng extension)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskflow import delays
from taskflow import retry


def test_fixed_and_none():
    assert [delays.fixed(2)(n) for n in (1, 2, 5)] == [2.0, 2.0, 2.0]
    assert delays.none()(3) == 0.0


def test_exponential_grows_and_is_capped():
    policy = delays.exponential(0.5, maximum=3)
    assert [policy(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert delays.exponential(1, base=3, minimum=2)(1) == 2.0
    assert delays.exponential(1, maximum=10)(10_000) == 10.0   # no overflow


def test_uniform_jitter_stays_in_bounds_and_is_seedable():
    first = delays.uniform(0, 1, rng=random.Random(7))
    second = delays.uniform(0, 1, rng=random.Random(7))
    values = [first(n) for n in range(1, 20)]
    assert values == [second(n) for n in range(1, 20)]
    assert all(0 <= v <= 1 for v in values)


def test_composition():
    policy = delays.fixed(1) + delays.exponential(1, maximum=4)
    assert [policy(n) for n in (1, 2, 3, 4)] == [2.0, 3.0, 5.0, 5.0]
    assert sum([delays.fixed(1), delays.fixed(2)])(1) == 3.0
    assert delays.exponential(1).capped(5)(10) == 5.0
    chained = delays.chain(delays.fixed(1), delays.fixed(5))
    assert [chained(n) for n in (1, 2, 3)] == [1.0, 5.0, 5.0]


@given(st.floats(min_value=0, max_value=100), st.floats(min_value=1, max_value=4),
       st.floats(min_value=0, max_value=1000), st.integers(min_value=1, max_value=200))
def test_exponential_is_monotonic_and_within_bounds(multiplier, base, maximum, n):
    policy = delays.exponential(multiplier, base=base, maximum=maximum)
    assert 0 <= policy(n) <= maximum
    assert policy(n) <= policy(n + 1)


@pytest.mark.parametrize('make, error, text', [
    (lambda: delays.fixed(-1), ValueError, 'fixed delay must be >= 0 seconds, not -1'),
    (lambda: delays.fixed('2'), TypeError, "fixed delay must be a number of seconds, not '2'"),
    (lambda: delays.exponential(1, base=0.5), ValueError,
     'exponential delay base must be a number >= 1, not 0.5'),
    (lambda: delays.exponential(1, maximum=1, minimum=2), ValueError,
     'exponential delay minimum (2) exceeds its maximum (1)'),
    (lambda: delays.uniform(2, 1), ValueError,
     'uniform delay low bound (2) exceeds its high bound (1)'),
    (lambda: delays.chain(), ValueError, 'chain needs at least one delay policy'),
    (lambda: delays.fixed(math.nan), ValueError, 'fixed delay must be >= 0 seconds, not nan'),
])
def test_bad_policies_are_refused_with_a_clear_message(make, error, text):
    with pytest.raises(error) as info:
        make()
    assert str(info.value) == text


def test_retries_use_the_policy_with_the_coming_rerun_number():
    history = retry.History([(1, {}), (2, {})])
    assert retry.Times(5, delay=delays.exponential(1)).delay_for(history) == 2.0
    assert retry.Times(5).delay_for(history) == 0.0
    assert retry.ForEach([1, 2], delay=delays.fixed(3)).delay_for(history) == 3.0
