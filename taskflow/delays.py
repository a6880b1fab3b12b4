"""Delay policies: how long a retry waits before running its subflow again.

A taskflow-ng extension.  Give one to any retry controller with the
keyword-only ``delay=`` argument::

    from taskflow import delays, retry
    retry.Times(5, delay=delays.exponential(0.5, maximum=30) + delays.uniform(0, 0.5))

While a retry waits, the engine keeps running every other branch of the flow,
and ``engine.suspend()`` ends the wait at once (the remaining delay is kept
and honoured when the flow is resumed).  Policies are small callables, in the
spirit of tenacity's ``wait_*`` objects: ``policy(retry_number)`` returns
seconds, where ``retry_number`` is 1 before the first re-run, 2 before the
second, and so on.  ``+`` adds policies; ``.capped(maximum)`` bounds one.
"""

from __future__ import annotations

import abc
import math
import random as random_module
from collections.abc import Sequence

_DEFAULT_RNG = random_module.Random()


class Delay(metaclass=abc.ABCMeta):
    """Base class of delay policies."""

    @abc.abstractmethod
    def __call__(self, retry_number: int) -> float:
        """Seconds to wait before re-run number ``retry_number`` (1-based)."""

    def __add__(self, other: Delay) -> Delay:
        if not isinstance(other, Delay):
            return NotImplemented
        return _Sum(self, other)

    def __radd__(self, other: object) -> Delay:
        if other == 0:  # lets ``sum(policies)`` work
            return self
        return NotImplemented

    def capped(self, maximum: float) -> Delay:
        """This policy, never waiting more than ``maximum`` seconds."""
        return _Capped(self, maximum)


def _seconds(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError('%s must be a number of seconds, not %r' % (what, value))
    if value < 0 or math.isnan(value):
        raise ValueError('%s must be >= 0 seconds, not %r' % (what, value))
    return float(value)


class none(Delay):  # noqa: N801 - named like the other policies
    """Do not wait (the default)."""

    def __call__(self, retry_number: int) -> float:
        return 0.0

    def __repr__(self) -> str:
        return 'delays.none()'


class fixed(Delay):  # noqa: N801
    """Always wait ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = _seconds(seconds, 'fixed delay')

    def __call__(self, retry_number: int) -> float:
        return self.seconds

    def __repr__(self) -> str:
        return 'delays.fixed(%r)' % self.seconds


class exponential(Delay):  # noqa: N801
    """Wait ``multiplier * base ** (retry_number - 1)``, within ``[minimum, maximum]``."""

    def __init__(self, multiplier: float = 1.0, base: float = 2.0, maximum: float = math.inf,
                 minimum: float = 0.0) -> None:
        self.multiplier = _seconds(multiplier, 'exponential delay multiplier')
        if isinstance(base, bool) or not isinstance(base, (int, float)) or base < 1:
            raise ValueError('exponential delay base must be a number >= 1, not %r' % (base,))
        self.base = float(base)
        self.maximum = _seconds(maximum, 'exponential delay maximum')
        self.minimum = _seconds(minimum, 'exponential delay minimum')
        if self.minimum > self.maximum:
            raise ValueError('exponential delay minimum (%r) exceeds its maximum (%r)'
                             % (minimum, maximum))

    def __call__(self, retry_number: int) -> float:
        try:
            value = self.multiplier * self.base ** max(retry_number - 1, 0)
        except OverflowError:
            value = math.inf
        return min(max(value, self.minimum), self.maximum)

    def __repr__(self) -> str:
        return 'delays.exponential(%r, base=%r, maximum=%r, minimum=%r)' % (
            self.multiplier, self.base, self.maximum, self.minimum)


class uniform(Delay):  # noqa: N801
    """Wait a random time between ``low`` and ``high`` seconds (jitter)."""

    def __init__(self, low: float, high: float,
                 rng: random_module.Random | None = None) -> None:
        self.low = _seconds(low, 'uniform delay low bound')
        self.high = _seconds(high, 'uniform delay high bound')
        if self.low > self.high:
            raise ValueError('uniform delay low bound (%r) exceeds its high bound (%r)'
                             % (low, high))
        self._rng = rng or _DEFAULT_RNG

    def __call__(self, retry_number: int) -> float:
        return self._rng.uniform(self.low, self.high)

    def __repr__(self) -> str:
        return 'delays.uniform(%r, %r)' % (self.low, self.high)


class chain(Delay):  # noqa: N801
    """Use each policy for one re-run in turn; the last one for all later re-runs."""

    def __init__(self, *policies: Delay) -> None:
        if not policies:
            raise ValueError('chain needs at least one delay policy')
        for policy in policies:
            if not isinstance(policy, Delay):
                raise TypeError('chain expects delay policies, not %r' % (policy,))
        self.policies: Sequence[Delay] = policies

    def __call__(self, retry_number: int) -> float:
        index = min(max(retry_number, 1), len(self.policies)) - 1
        return self.policies[index](retry_number)

    def __repr__(self) -> str:
        return 'delays.chain(%s)' % ', '.join(map(repr, self.policies))


class _Sum(Delay):
    def __init__(self, *policies: Delay) -> None:
        self.policies = policies

    def __call__(self, retry_number: int) -> float:
        return sum(policy(retry_number) for policy in self.policies)

    def __repr__(self) -> str:
        return ' + '.join(map(repr, self.policies))


class _Capped(Delay):
    def __init__(self, policy: Delay, maximum: float) -> None:
        self.policy = policy
        self.maximum = _seconds(maximum, 'delay cap')

    def __call__(self, retry_number: int) -> float:
        return min(self.policy(retry_number), self.maximum)

    def __repr__(self) -> str:
        return '%r.capped(%r)' % (self.policy, self.maximum)
