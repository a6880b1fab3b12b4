"""Operators racing each other, and damaged operator data in a flow's meta."""

from __future__ import annotations

import contextlib

import pytest

from taskflow import operate
from taskflow import states as st
from tests.operate import flows
from tests.operate.conftest import kinds, url_for
from tests.operate.test_crash import _reverted_orders_flow, _worker


@pytest.mark.parametrize('kind', kinds(['sqlite', 'dir']))
def test_two_operators_at_once_one_acts(open_backend, tmp_path, server_databases, kind):
    """Two processes retry the same flow at the same moment: exactly one retry happens."""
    backend = open_backend(kind)
    url = url_for(kind, tmp_path, server_databases)
    for _round in range(3):
        uuid, log = _reverted_orders_flow(backend, tmp_path)
        workers = [_worker(url, uuid, wait=True) for _ in range(2)]
        for worker in workers:
            assert worker.stdout.readline().strip() == 'ready'
        for worker in workers:          # both go as close together as we can make it
            worker.stdin.write('go\n')
            worker.stdin.flush()
        results = [worker.communicate(timeout=60) + (worker.returncode,)
                   for worker in workers]
        succeeded = [r for r in results if r[2] == 0]
        refused = [r for r in results if r[2] != 0]
        assert len(succeeded) == 1, results
        (_out, err, _code), = refused
        assert ('FlowBusy' in err and 'is running elsewhere' in err) or (
            'ActionRefused' in err and 'no atom failed' in err), err
        history = operate.find_flow(backend, uuid).flow.meta['operator_actions']
        assert [r['action'] for r in history] == ['retry']
        before = flows.ran(log)
        assert operate.resume(backend, uuid).state == st.SUCCESS
        assert flows.ran(log)[len(before):] == ['exec charge', 'exec ship', 'exec receipt']


def _damage(backend, uuid, **meta):
    flow_detail = operate.find_flow(backend, uuid).flow
    flow_detail.meta.update(meta)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.update_flow_details(flow_detail)


@pytest.mark.parametrize('damage', [
    {'operator_actions': 'not a list', 'operator_pending': 'not a journal'},
    {'operator_actions': [1, None, {'action': 'retry', 'who': 'x', 'when': 'y'}],
     'operator_pending': {'changes': 5, 'flow_state': 'x'}},
    {'operator_pending': {'record': {}, 'flow_state': ['REVERTED', 'SUSPENDED'],
                          'changes': [{'name': 'charge', 'before': ['REVERTED', 'REVERT'],
                                       'after': {'_uuid': 'evil'}}]}},
])
def test_damaged_operator_data_is_dropped_not_applied(open_backend, tmp_path, damage):
    backend = open_backend('sqlite')
    uuid, log = _reverted_orders_flow(backend, tmp_path)
    _damage(backend, uuid, **damage)
    ref = operate.find_flow(backend, uuid)
    view = operate.describe(ref.flow, ref.book)                 # still shown
    assert view.state == st.REVERTED
    assert next(a for a in view.atoms if a.name == 'charge').state == st.REVERTED
    before = flows.ran(log)
    result = operate.retry(backend, uuid, run=True)             # still actionable
    assert result.state == st.SUCCESS
    assert flows.ran(log)[len(before):] == ['exec charge', 'exec ship', 'exec receipt']
    stored = operate.find_flow(backend, uuid).flow
    assert 'operator_pending' not in stored.meta
    charge = next(ad for ad in stored if ad.name == 'charge')
    assert charge.uuid != 'evil'
    actions = [r for r in stored.meta['operator_actions'] if isinstance(r, dict)]
    assert actions[-1]['action'] == 'retry' and actions[-2].get('abandoned') is True
