"""The plan driven by hand on literal flows: which steps are ready, when.

Each test compiles a small flow, builds a ``Plan`` from stored states and
intentions, then plays the run loop's part (``set_state``, ``set_intention``,
``reset``...) and checks the exact steps ``take_ready()`` hands out.
"""

from __future__ import annotations

import pytest

from taskflow import deciders
from taskflow import retry
from taskflow import states as st
from taskflow import task
from taskflow.engines.action_engine import _compile
from taskflow.engines.action_engine import _plan
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf

EXECUTE, REVERT, RETRY, DECIDE = _plan.EXECUTE, _plan.REVERT, _plan.RETRY, _plan.DECIDE


class T(task.Task):
    def execute(self):
        pass


class Runner:
    """Plays the run loop against a plan, by atom name."""

    def __init__(self, flow, states=None, intentions=None):
        self.compilation = _compile.Compilation(flow)
        self.plan = _plan.Plan(self.compilation, dict(states or {}), dict(intentions or {}))

    def node(self, name):
        return self.compilation.by_name[name]

    def ready(self):
        """The steps handed out now, as ``(kind, label)``, in hand-out order."""
        return [(kind, _label(node)) for kind, node in self.plan.take_ready()]

    def state(self, name, *new_states):
        for new_state in new_states:
            self.plan.set_state(self.node(name), new_state)

    def run(self, name):
        self.state(name, st.RUNNING, st.SUCCESS)

    def fail(self, name):
        self.state(name, st.RUNNING, st.FAILURE)

    def revert(self, name):
        self.state(name, st.REVERTING, st.REVERTED)

    def intend(self, intention, *names):
        for name in names:
            self.plan.set_intention(self.node(name), intention)


def _label(node):
    if node.kind != _compile.JOIN:
        return node.name
    return ('<' if node is node.scope.start else '>') + node.scope.flow.name


class Uses(task.Task):
    def __init__(self, name, *needs, **kwargs):
        super().__init__(name=name, requires=list(needs), **kwargs)

    def execute(self, **kwargs):
        pass


def diamond():
    """top -> left, right -> bottom (inferred from requires/provides)."""
    return gf.Flow('diamond').add(T('top', provides='t'), Uses('left', 't', provides='l'),
                                  Uses('right', 't', provides='r'), Uses('bottom', 'l', 'r'))


# -- executing ------------------------------------------------------------------------


def test_linear_flow_hands_out_one_atom_at_a_time():
    r = Runner(lf.Flow('f').add(T('a'), T('b'), T('c')))
    assert r.ready() == [(EXECUTE, 'a')]
    assert r.ready() == []  # handed out once
    r.state('a', st.RUNNING)
    assert r.ready() == []
    r.state('a', st.SUCCESS)
    assert r.ready() == [(EXECUTE, 'b')]
    r.run('b')
    assert r.ready() == [(EXECUTE, 'c')]
    r.run('c')
    assert r.ready() == []


def test_unordered_children_are_ready_together():
    r = Runner(uf.Flow('u').add(T('a'), T('b'), T('c')))
    assert sorted(r.ready()) == [(EXECUTE, 'a'), (EXECUTE, 'b'), (EXECUTE, 'c')]


def test_ready_steps_come_highest_priority_first():
    low, high, mid = T('low'), T('high'), T('mid')
    low.priority, high.priority, mid.priority = 1, 9, 5
    r = Runner(uf.Flow('u').add(low, high, mid))
    assert r.ready() == [(EXECUTE, 'high'), (EXECUTE, 'mid'), (EXECUTE, 'low')]


def test_diamond_executes_the_join_only_after_both_branches():
    r = Runner(diamond())
    assert r.ready() == [(EXECUTE, 'top')]
    r.run('top')
    assert sorted(r.ready()) == [(EXECUTE, 'left'), (EXECUTE, 'right')]
    r.run('left')
    assert r.ready() == []
    r.run('right')
    assert r.ready() == [(EXECUTE, 'bottom')]


def test_a_subflow_starts_after_its_linear_predecessor_and_blocks_the_next():
    r = Runner(lf.Flow('root').add(T('a'), uf.Flow('u').add(T('b'), T('c')), T('d')))
    assert r.ready() == [(EXECUTE, 'a')]
    r.run('a')
    assert sorted(r.ready()) == [(EXECUTE, 'b'), (EXECUTE, 'c')]
    r.run('c')
    assert r.ready() == []
    r.run('b')
    assert r.ready() == [(EXECUTE, 'd')]


def test_an_ignored_atom_counts_as_finished_for_its_successors():
    r = Runner(lf.Flow('f').add(T('a'), T('b'), T('c')))
    r.run('a')
    assert r.ready() == [(EXECUTE, 'b')]
    r.intend(st.IGNORE, 'b')
    r.state('b', st.IGNORE)
    assert r.ready() == [(EXECUTE, 'c')]


def test_empty_flows_do_not_block():
    r = Runner(lf.Flow('root').add(uf.Flow('empty'), T('a')))
    assert r.ready() == [(EXECUTE, 'a')]


# -- reverting -------------------------------------------------------------------------


def test_linear_revert_goes_backwards_from_the_failed_atom():
    r = Runner(lf.Flow('f').add(T('a'), T('b'), T('c'), T('d')))
    for name in 'ab':
        r.ready()
        r.run(name)
    r.ready()
    r.fail('c')
    assert r.ready() == []  # nothing new while the failure is unresolved
    r.intend(st.REVERT, 'a', 'b', 'c', 'd')
    assert r.ready() == [(REVERT, 'c')]  # 'd' never ran: nothing to undo
    r.state('c', st.REVERTING)
    assert r.ready() == []
    r.state('c', st.REVERTED)
    assert r.ready() == [(REVERT, 'b')]
    r.revert('b')
    assert r.ready() == [(REVERT, 'a')]
    r.revert('a')
    assert r.ready() == []


def test_diamond_reverts_the_top_only_after_both_branches():
    r = Runner(diamond())
    for name in ('top', 'left', 'right'):
        r.run(name)
    r.fail('bottom')
    r.intend(st.REVERT, 'top', 'left', 'right', 'bottom')
    assert r.ready() == [(REVERT, 'bottom')]
    r.revert('bottom')
    assert sorted(r.ready()) == [(REVERT, 'left'), (REVERT, 'right')]
    r.revert('left')
    assert r.ready() == []
    r.revert('right')
    assert r.ready() == [(REVERT, 'top')]


def test_a_running_successor_blocks_the_revert_of_its_predecessor():
    r = Runner(lf.Flow('root').add(T('a'), uf.Flow('u').add(T('ok'), T('bad'))))
    r.run('a')
    r.state('ok', st.RUNNING)
    r.fail('bad')
    r.intend(st.REVERT, 'a', 'ok', 'bad')
    assert r.ready() == [(REVERT, 'bad')]
    r.revert('bad')
    assert r.ready() == []  # 'ok' is still running
    r.state('ok', st.SUCCESS)
    assert r.ready() == [(REVERT, 'ok')]
    r.revert('ok')
    assert r.ready() == [(REVERT, 'a')]


def test_ignored_atoms_pass_revert_readiness_through():
    r = Runner(lf.Flow('f').add(T('a'), T('skipped'), T('c')))
    r.run('a')
    r.intend(st.IGNORE, 'skipped')
    r.state('skipped', st.IGNORE)
    r.fail('c')
    r.intend(st.REVERT, 'a', 'c')
    assert r.ready() == [(REVERT, 'c')]
    r.revert('c')
    assert r.ready() == [(REVERT, 'a')]


def test_a_halted_plan_hands_out_nothing():
    r = Runner(uf.Flow('u').add(T('a'), T('b')))
    r.plan.halted = True
    assert r.ready() == []


# -- retrying --------------------------------------------------------------------------


def test_retry_reverts_its_subflow_then_runs_it_again():
    r = Runner(lf.Flow('f', retry=retry.Times(3, name='r')).add(T('a'), T('b')))
    assert r.ready() == [(EXECUTE, 'r')]
    r.run('r')
    assert r.ready() == [(EXECUTE, 'a')]
    r.run('a')
    assert r.ready() == [(EXECUTE, 'b')]
    r.fail('b')
    # The loop asked the retry, which said RETRY:
    r.intend(st.REVERT, 'a', 'b')
    r.intend(st.RETRY, 'r')
    assert r.ready() == [(REVERT, 'b')]
    r.revert('b')
    assert r.ready() == [(REVERT, 'a')]
    r.revert('a')
    assert r.ready() == [(RETRY, 'r')]
    # The loop resets the subflow and lets the retry run again.
    r.state('r', st.RETRYING)
    for node in r.compilation.subflow(r.node('r')):
        r.plan.reset(node)
    r.intend(st.EXECUTE, 'r')
    assert r.ready() == [(EXECUTE, 'r')]
    r.run('r')
    assert r.ready() == [(EXECUTE, 'a')]


def test_retry_waits_for_atoms_of_its_subflow_still_running():
    r = Runner(uf.Flow('u', retry=retry.Times(3, name='r')).add(T('a'), T('b')))
    r.run('r')
    assert sorted(r.ready()) == [(EXECUTE, 'a'), (EXECUTE, 'b')]
    r.state('a', st.RUNNING)
    r.fail('b')
    r.intend(st.REVERT, 'a', 'b')
    r.intend(st.RETRY, 'r')
    assert r.ready() == [(REVERT, 'b')]
    r.revert('b')
    assert r.ready() == []
    r.state('a', st.SUCCESS)
    assert r.ready() == [(REVERT, 'a')]
    r.revert('a')
    assert r.ready() == [(RETRY, 'r')]


def test_a_held_node_is_not_handed_out_until_released():
    r = Runner(lf.Flow('f').add(T('a'), T('b')))
    r.plan.hold(r.node('a'))
    assert r.ready() == []
    r.plan.release(r.node('a'))
    assert r.ready() == [(EXECUTE, 'a')]


# -- resuming from stored states --------------------------------------------------------


def test_an_atom_stored_running_is_pending_again():
    r = Runner(lf.Flow('f').add(T('a'), T('b'), T('c')),
               states={'a': st.SUCCESS, 'b': st.RUNNING})
    assert r.plan.state[r.node('b').index] == st.PENDING
    assert r.ready() == [(EXECUTE, 'b')]


def test_an_atom_stored_reverting_reverts_again():
    flow = lf.Flow('f').add(T('a'), T('b'), T('c'))
    r = Runner(flow, states={'a': st.SUCCESS, 'b': st.REVERTING, 'c': st.REVERTED},
               intentions=dict.fromkeys('abc', st.REVERT))
    assert r.ready() == [(REVERT, 'b')]
    r.state('b', st.REVERTING, st.REVERTED)
    assert r.ready() == [(REVERT, 'a')]


def test_finished_atoms_are_not_handed_out_again():
    r = Runner(uf.Flow('u').add(T('a'), T('b'), T('c')),
               states={'a': st.SUCCESS, 'c': st.SUCCESS})
    assert r.ready() == [(EXECUTE, 'b')]


def test_a_retry_stored_retrying_resumes_its_retry():
    flow = lf.Flow('f', retry=retry.Times(3, name='r')).add(T('a'))
    r = Runner(flow, states={'r': st.RETRYING, 'a': st.REVERTED},
               intentions={'r': st.RETRY, 'a': st.REVERT})
    assert r.ready() == [(RETRY, 'r')]


def test_everything_done_means_nothing_ready():
    r = Runner(lf.Flow('f').add(T('a'), T('b')), states={'a': st.SUCCESS, 'b': st.SUCCESS})
    assert r.ready() == []
    assert not r.plan.has_ready()


# -- deciders -------------------------------------------------------------------------


def _decided_flow():
    a, b, c = T('a'), T('b'), T('c')
    flow = gf.Flow('g').add(a, b, c)
    flow.link(a, b, decider=bool)
    flow.link(b, c)
    return flow


def test_an_atom_with_deciders_first_asks_for_a_decision():
    r = Runner(_decided_flow())
    assert r.ready() == [(EXECUTE, 'a')]
    r.run('a')
    assert r.ready() == [(DECIDE, 'b')]
    r.plan.set_decided(r.node('b'))
    assert r.ready() == [(EXECUTE, 'b')]


def test_a_decider_into_a_subflow_is_asked_at_the_subflow_start():
    a, sub = T('a'), lf.Flow('sub').add(T('x'), T('y'))
    flow = gf.Flow('g').add(a, sub)
    flow.link(a, sub, decider=bool)
    r = Runner(flow)
    r.ready()
    r.run('a')
    assert r.ready() == [(DECIDE, '<sub')]
    start = r.node('x').preds[0]
    r.plan.set_decided(start)
    assert r.ready() == [(EXECUTE, 'x')]


def test_reset_asks_deciders_again():
    r = Runner(_decided_flow())
    r.run('a')
    r.ready()
    r.plan.set_decided(r.node('b'))
    r.plan.reset(r.node('b'))
    assert r.ready() == [(DECIDE, 'b')]


def _depth_flow():
    """src -> a -> b -> c;  a -> sub(x, y);  src -> sib."""
    src, a, b, c, sib = T('src'), T('a'), T('b'), T('c'), T('sib')
    sub = lf.Flow('sub').add(T('x'), T('y'))
    flow = gf.Flow('g').add(src, a, b, c, sub, sib)
    flow.link(src, a, decider=bool)
    flow.link(a, b)
    flow.link(b, c)
    flow.link(a, sub)
    flow.link(src, sib)
    return flow


@pytest.mark.parametrize('depth, ignored', [
    (deciders.Depth.ALL, ['a', 'b', 'c', 'x', 'y']),
    (deciders.Depth.FLOW, ['a', 'b', 'c']),
    (deciders.Depth.NEIGHBORS, ['a', 'b']),
    (deciders.Depth.ATOM, ['a']),
])
def test_ignore_targets_by_depth(depth, ignored):
    r = Runner(_depth_flow())
    targets = r.plan.ignore_targets(r.node('a'), depth)
    assert sorted(n.name for n in targets) == ignored


@pytest.mark.parametrize('depth, ignored', [
    (deciders.Depth.ALL, ['after', 'x', 'y', 'z']),
    (deciders.Depth.FLOW, ['x', 'y']),
    (deciders.Depth.ATOM, ['x']),
])
def test_ignore_targets_of_a_subflow_decision(depth, ignored):
    src, after = T('src'), T('after')
    sub = lf.Flow('sub').add(T('x'), T('y'), uf.Flow('deeper').add(T('z')))
    flow = gf.Flow('g').add(src, sub, after)
    flow.link(src, sub, decider=bool)
    flow.link(sub, after)
    r = Runner(flow)
    start = r.node('x').preds[0]
    assert sorted(n.name for n in r.plan.ignore_targets(start, depth)) == ignored


# -- decisions: what a failure reverts, what a resume fixes, how a run ends ------------


def _names(nodes):
    return [_label(node) for node in nodes]


def retried_subflow_with_dependant():
    """'a' needs x from 'b' inside a subflow retried by 'r'."""
    return gf.Flow('top').add(
        Uses('a', 'x'),
        lf.Flow('sub', retry=retry.Times(2, name='r')).add(T('b', provides='x'), T('c')))


def test_a_retry_reverts_only_its_subflow_when_nothing_after_it_ran():
    r = Runner(retried_subflow_with_dependant(), states={'r': st.SUCCESS, 'b': st.SUCCESS,
                                                         'c': st.FAILURE})
    retry_node = r.node('r')
    assert _names(r.plan.retry_targets(retry_node)) == ['b', 'c', '>sub']
    assert _names(r.plan.retry_resets(retry_node)) == ['b', 'c', '>sub']


def test_a_retry_also_reverts_atoms_after_its_subflow_that_already_ran():
    r = Runner(retried_subflow_with_dependant(), states={'r': st.SUCCESS, 'b': st.SUCCESS,
                                                         'c': st.FAILURE, 'a': st.SUCCESS})
    retry_node = r.node('r')
    assert _names(r.plan.retry_targets(retry_node)) == ['b', 'c', '>sub', 'a']
    r.intend(st.REVERT, 'a', 'b', 'c')
    r.intend(st.RETRY, 'r')
    assert r.ready() == [(REVERT, 'a')]
    r.revert('a')
    assert r.ready() == [(REVERT, 'c')]
    r.revert('c')
    assert r.ready() == [(REVERT, 'b')]
    r.revert('b')
    assert r.ready() == [(RETRY, 'r')]
    # What it reverted is run again with the subflow.
    assert _names(r.plan.retry_resets(retry_node)) == ['b', 'c', '>sub', 'a']


def test_a_resumed_retry_finds_what_it_reverted_by_intention():
    stored = {'r': st.RETRYING, 'b': st.REVERTED, 'c': st.REVERTED, 'a': st.REVERTED}
    intentions = {'r': st.EXECUTE, 'b': st.EXECUTE, 'c': st.EXECUTE, 'a': st.REVERT}
    r = Runner(retried_subflow_with_dependant(), stored, intentions)
    assert _names(r.plan.unfinished_retries()) == ['r']
    assert _names(r.plan.retry_resets(r.node('r'))) == ['b', 'c', '>sub', 'a']


def test_a_retry_stored_retrying_with_its_retry_intention_is_not_unfinished():
    r = Runner(retried_subflow_with_dependant(), {'r': st.RETRYING}, {'r': st.RETRY})
    assert r.plan.unfinished_retries() == []


def test_atoms_interrupted_while_the_flow_reverts_revert_too():
    flow = uf.Flow('u').add(T('a'), T('b'), T('c'))
    stored = {'a': st.FAILURE, 'b': st.RUNNING, 'c': st.RUNNING}
    r = Runner(flow, stored, {'a': st.REVERT, 'b': st.REVERT, 'c': st.EXECUTE})
    r.plan.revert_interrupted(stored)
    assert r.plan.state[r.node('b').index] == st.FAILURE     # may have done some work
    assert r.plan.state[r.node('c').index] == st.PENDING     # runs again
    assert sorted(r.ready()) == [(EXECUTE, 'c'), (REVERT, 'a'), (REVERT, 'b')]


@pytest.mark.parametrize('states, suspending, timers, expected', [
    ({'a': st.SUCCESS, 'b': st.SUCCESS}, False, False, st.SUCCESS),
    ({'a': st.SUCCESS, 'b': st.IGNORE}, False, False, st.SUCCESS),
    ({'a': st.REVERTED, 'b': st.PENDING}, False, False, st.REVERTED),
    ({'a': st.FAILURE, 'b': st.SUCCESS}, False, False, st.REVERTED),
    ({'a': st.SUCCESS, 'b': st.PENDING}, True, False, st.SUSPENDED),
    ({'a': st.SUCCESS, 'b': st.SUCCESS}, True, False, st.SUCCESS),
    ({'a': st.SUCCESS, 'b': st.SUCCESS}, True, True, st.SUSPENDED),
    ({'a': st.SUCCESS, 'b': st.PENDING}, False, False, None),   # stuck
])
def test_the_final_state_of_a_run(states, suspending, timers, expected):
    r = Runner(uf.Flow('u').add(T('a'), T('b')), states)
    r.ready()  # nothing queued is left behind
    assert r.plan.final_state(suspending, timers) == expected


def test_links_from_ignored_atoms_do_not_vote():
    yes, no = (lambda history: True), (lambda history: False)
    a, b, c = T('a'), T('b'), T('c')
    flow = gf.Flow('g').add(a, b, c)
    flow.link(a, c, decider=yes)
    flow.link(b, c, decider=no)
    r = Runner(flow, {'a': st.SUCCESS, 'b': st.IGNORE})
    voters = r.plan.voters(r.node('c'))
    assert [(source.name, decider) for source, decider, _depth in voters] == [('a', yes)]
    assert not r.plan.decided_earlier(r.node('c'))
    r.state('c', st.IGNORE)
    assert r.plan.decided_earlier(r.node('c'))
