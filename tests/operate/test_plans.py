"""What each action plans to change, on literal flow details (no I/O)."""

from __future__ import annotations

import pytest

from taskflow import states as st
from taskflow.engines.action_engine import _compile
from taskflow.operate import _apply
from taskflow.operate import _errors
from taskflow.operate import _plans
from taskflow.persistence import models
from taskflow.types import failure as failure_module
from tests.operate import flows


def detail(flow, flow_state, **atoms):
    """A flow detail with ``name=(state, intention)`` atom details."""
    flow_detail = models.FlowDetail(flow.name, 'fd-uuid')
    flow_detail.state = flow_state
    compilation = _compile.Compilation(flow)
    for node in compilation.atoms:
        cls = models.RetryDetail if node.kind == _compile.RETRY else models.TaskDetail
        ad = cls(node.name, 'ad-' + node.name)
        ad.state, ad.intention = atoms.get(node.name, (st.PENDING, st.EXECUTE))
        flow_detail.add(ad)
    return flow_detail, compilation


def changes(plan):
    return {c.name: c.after for c in plan.changes}


def boom():
    try:
        raise RuntimeError('boom')
    except RuntimeError:
        return failure_module.Failure()


def test_retry_of_a_flow_suspended_while_reverting():
    flow_detail, compilation = detail(
        flows.make_independent(), st.SUSPENDED,
        a=(st.SUCCESS, st.REVERT), b=(st.REVERTED, st.REVERT), c=(st.FAILURE, st.REVERT),
        d=(st.PENDING, st.REVERT))
    plan = _plans.plan_retry(flow_detail, compilation)
    reset = {'state': st.PENDING, 'intention': st.EXECUTE, 'results': None, 'failure': None,
             'revert_results': None, 'revert_failure': None}
    assert changes(plan) == {'a': {'intention': st.EXECUTE}, 'b': reset, 'c': reset,
                             'd': {'intention': st.EXECUTE}}
    assert plan.flow_state == (st.SUSPENDED, st.SUSPENDED)
    assert plan.notes['rerun'] == ['b', 'c']


def test_retry_resets_the_retry_in_charge_with_a_fresh_history():
    flow_detail, compilation = detail(
        flows.make_orders(), st.SUSPENDED, validate=(st.SUCCESS, st.EXECUTE),
        reserve=(st.SUCCESS, st.EXECUTE), pack=(st.SUCCESS, st.EXECUTE),
        charge=(st.FAILURE, st.REVERT), **{'payment-retry': (st.SUCCESS, st.REVERT)})
    retry_detail = next(ad for ad in flow_detail if ad.name == 'payment-retry')
    retry_detail.results = [(1, {'charge': boom()}), (2, {'charge': boom()})]
    plan = _plans.plan_retry(flow_detail, compilation)
    assert changes(plan)['payment-retry']['results'] == []
    assert changes(plan)['payment-retry']['state'] == st.PENDING
    assert set(changes(plan)) == {'payment-retry', 'charge'}


def test_ignored_atoms_stay_ignored():
    flow_detail, compilation = detail(flows.make_independent(), st.REVERTED,
                                      a=(st.REVERTED, st.REVERT), b=(st.IGNORE, st.IGNORE),
                                      c=(st.REVERTED, st.REVERT))
    assert 'b' not in changes(_plans.plan_retry(flow_detail, compilation))


def test_revert_marks_everything_and_rewinds_odd_states():
    flow_detail, compilation = detail(
        flows.make_orders(), st.FAILURE, validate=(st.SUCCESS, st.EXECUTE),
        reserve=(st.REVERT_FAILURE, st.REVERT), charge=(st.REVERT_FAILURE, st.REVERT),
        **{'payment-retry': (st.RETRYING, st.RETRY)})
    charge = next(ad for ad in flow_detail if ad.name == 'charge')
    charge.failure = boom()
    plan = _plans.plan_revert(flow_detail, compilation)
    after = changes(plan)
    assert all(change['intention'] == st.REVERT for change in after.values())
    assert after['reserve']['state'] == st.SUCCESS      # it had executed fine
    assert after['charge']['state'] == st.FAILURE       # it had failed executing
    assert after['payment-retry']['state'] == st.SUCCESS
    assert after['reserve']['revert_failure'] is None
    assert plan.notes['revert'] == ['validate', 'reserve', 'charge', 'payment-retry']


def test_a_crashed_run_counts_as_suspended():
    flow_detail, compilation = detail(flows.make_independent(), st.RUNNING,
                                      a=(st.SUCCESS, st.EXECUTE), b=(st.RUNNING, st.EXECUTE))
    assert _plans.effective_state(flow_detail) == st.SUSPENDED
    plan = _plans.plan_retry(flow_detail, compilation)
    assert plan.flow_state == (st.RUNNING, st.SUSPENDED)
    assert changes(plan)['b']['state'] == st.PENDING


@pytest.mark.parametrize('action, state, reason', [
    ('retry', st.PENDING, 'it never ran; use resume to run it'),
    ('revert', st.PENDING, 'it never ran, there is nothing to revert'),
    ('skip', st.SUCCESS, 'it finished successfully, there is nothing to skip'),
])
def test_refusals_say_why(action, state, reason):
    flow_detail, _compilation = detail(flows.make_independent(), state)
    with pytest.raises(_errors.ActionRefused) as caught:
        _plans.check_accepts(action, flow_detail)
    assert str(caught.value) == "cannot %s flow 'independent' (fd-uuid): %s" % (action, reason)


def _journal_for(flow_detail, compilation):
    plan = _plans.plan_retry(flow_detail, compilation)
    record = _apply.make_record(plan, 'me', 'why')
    flow_detail.meta[_apply.META_PENDING] = {
        'record': record, 'flow_state': list(plan.flow_state),
        'changes': [{'name': c.name, 'before': list(c.before), 'after': c.after}
                    for c in plan.changes]}
    return plan


def test_readers_see_an_interrupted_action_completed():
    flow_detail, compilation = detail(flows.make_independent(), st.REVERTED,
                                      a=(st.REVERTED, st.REVERT), b=(st.REVERTED, st.REVERT),
                                      c=(st.REVERTED, st.REVERT))
    _journal_for(flow_detail, compilation)
    # Half applied: the crash came after 'a' was written.
    written = next(ad for ad in flow_detail if ad.name == 'a')
    written.state, written.intention = st.PENDING, st.EXECUTE
    seen = _apply.effective(flow_detail)
    assert {ad.name: ad.state for ad in seen} == dict.fromkeys('abcd', st.PENDING)
    assert seen.state == st.SUSPENDED
    assert [r['action'] for r in seen.meta['operator_actions']] == ['retry']
    assert _apply.META_PENDING not in seen.meta
    assert flow_detail.state == st.REVERTED            # the stored one is untouched


def test_a_stale_journal_is_shown_abandoned():
    flow_detail, compilation = detail(flows.make_independent(), st.REVERTED,
                                      a=(st.REVERTED, st.REVERT), b=(st.REVERTED, st.REVERT),
                                      c=(st.REVERTED, st.REVERT))
    _journal_for(flow_detail, compilation)
    # Someone ran the flow meanwhile without finishing the action.
    flow_detail.state = st.SUCCESS
    for ad in flow_detail:
        ad.state, ad.intention = st.SUCCESS, st.EXECUTE
    seen = _apply.effective(flow_detail)
    assert {ad.state for ad in seen} == {st.SUCCESS}
    (record,) = seen.meta['operator_actions']
    assert record['abandoned'] is True
