"""Flows the operator-control tests run, importable by name (for resumes).

Every task appends ``exec NAME`` / ``revert NAME`` to the file named by the
flow input ``log`` (so a test, or another process, sees exactly what ran),
fails while the file ``<log>.fail-NAME`` exists, and sleeps ``delay``
seconds first (for tests that watch a flow run).
"""

from __future__ import annotations

import os
import pathlib
import time

from taskflow import retry
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf


def record(log: str, line: str) -> None:
    with open(log, 'a', encoding='utf-8') as handle:
        handle.write(line + '\n')


def ran(log: str) -> list[str]:
    """The lines written so far (``['exec a', 'revert a', ...]``)."""
    path = pathlib.Path(log)
    return path.read_text(encoding='utf-8').splitlines() if path.exists() else []


def break_task(log: str, name: str, broken: bool = True) -> None:
    """Make task ``name`` fail (or work again) from now on."""
    path = pathlib.Path('%s.fail-%s' % (log, name))
    if broken:
        path.touch()
    elif path.exists():
        path.unlink()


class Step(task.Task):
    """Returns ``'<NAME>'``; requires the previous step's output when given one."""

    def __init__(self, name: str, needs: str | None = None, **kwargs):
        requires = ['log', 'delay'] + ([needs] if needs else [])
        super().__init__(name=name, provides=name + '_out', requires=requires, **kwargs)

    def execute(self, log, delay, **inputs):
        record(log, 'exec ' + self.name)
        if delay:
            time.sleep(delay)
        if os.path.exists('%s.fail-%s' % (log, self.name)):
            raise RuntimeError('%s is broken' % self.name)
        return self.name.upper()

    def revert(self, log, delay, **inputs):
        record(log, 'revert ' + self.name)


def make_linear():
    """a -> b -> c -> d, each needing the previous one's output."""
    return lf.Flow('linear').add(Step('a'), Step('b', needs='a_out'),
                                 Step('c', needs='b_out'), Step('d', needs='c_out'))


def make_independent():
    """a -> b -> c -> d where nobody needs anybody's output."""
    return lf.Flow('independent').add(Step('a'), Step('b'), Step('c'), Step('d'))


def make_orders():
    """The main job's shape: a retried payment beside packing, then shipping.

    ``payment`` retries its charge twice, then reverts (only) itself and what
    follows, so ``validate``, ``reserve`` and ``pack`` keep their results.
    """
    payment = lf.Flow('payment', retry=retry.Times(2, name='payment-retry',
                                                   provides='attempt'))
    payment.add(Step('charge'))
    return lf.Flow('orders').add(
        Step('validate'), Step('reserve'),
        uf.Flow('prepare').add(payment, Step('pack')),
        Step('ship', needs='pack_out'), Step('receipt'))
