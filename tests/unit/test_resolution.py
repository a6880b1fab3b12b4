"""Failure resolution on its own: which retry decides and what it means."""

from __future__ import annotations

import pytest

from taskflow import retry
from taskflow import task
from taskflow.engines.action_engine import _compile
from taskflow.engines.action_engine import _resolution
from taskflow.patterns import linear_flow as lf


class T(task.Task):
    def execute(self):
        pass


def _nested():
    flow = lf.Flow('top').add(
        T('pre'),
        lf.Flow('outer', retry=retry.Times(2, name='outer_r')).add(
            T('o1'),
            lf.Flow('inner', retry=retry.Times(2, name='inner_r')).add(T('bad'))),
        T('post'))
    return _compile.Compilation(flow)


def _asker(answers):
    asked = []

    def ask(retry_node, failed_name):
        asked.append((retry_node.name, failed_name))
        return answers[retry_node.name]
    return ask, asked


def test_no_retry_reverts_everything():
    c = _compile.Compilation(lf.Flow('f').add(T('a')))
    assert _resolution.resolve('a', None, _asker({})[0]) == (retry.REVERT_ALL, None)


def test_retry_decision_retries_the_innermost_retry():
    c = _nested()
    ask, asked = _asker({'inner_r': retry.RETRY})
    bad = c.by_name['bad']
    assert _resolution.resolve('bad', bad.retry, ask) == (retry.RETRY, c.by_name['inner_r'])
    assert asked == [('inner_r', 'bad')]


@pytest.mark.parametrize('outer, defer, expected', [
    (retry.RETRY, False, (retry.RETRY, 'outer_r')),
    (retry.REVERT, False, (retry.REVERT, 'inner_r')),   # only the inner subflow reverts
    (retry.REVERT_ALL, False, (retry.REVERT_ALL, None)),
    (retry.REVERT, True, (retry.REVERT_ALL, None)),     # deferred up to "no retry"
    (retry.RETRY, True, (retry.RETRY, 'outer_r')),
])
def test_revert_defers_to_the_parent(outer, defer, expected):
    c = _nested()
    ask, asked = _asker({'inner_r': retry.REVERT, 'outer_r': outer})
    action, node = _resolution.resolve('bad', c.by_name['bad'].retry, ask, defer)
    assert (action, node.name if node else None) == expected
    # The parent hears about the failure as a failure of the inner retry.
    assert asked == [('inner_r', 'bad'), ('outer_r', 'inner_r')]


def test_unknown_decisions_are_refused():
    c = _nested()
    ask, _ = _asker({'inner_r': 'PERHAPS'})
    with pytest.raises(_resolution.UnknownDecision) as info:
        _resolution.resolve('bad', c.by_name['bad'].retry, ask)
    assert str(info.value) == "Unknown atom failure resolution action/strategy 'PERHAPS'"


def test_downstream_lists_a_node_and_everything_after_it_in_order():
    c = _nested()
    names = [n.name for n in _resolution.downstream(c.by_name['inner_r']) if n.name]
    assert names == ['inner_r', 'bad', 'post']
