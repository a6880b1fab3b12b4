"""Operator controls end to end: real engines, real backends, what runs afterwards."""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import subprocess
import threading
import time
import uuid as uuid_module

import pytest

from taskflow import engines
from taskflow import operate
from taskflow import states as st
from taskflow.persistence import models
from tests.operate import flows
from tests.operate.conftest import ALL_KINDS, kinds
from tests.web import _server

FLOWS = 'tests.operate.flows:'


def start(backend, tmp_path, factory='make_orders', broken=('charge',)):
    """Run a new flow with ``broken`` tasks failing; ``(uuid, log, final state)``."""
    log = str(tmp_path / ('log-%s' % uuid_module.uuid4().hex[:8]))
    for name in broken:
        flows.break_task(log, name)
    uuid, state, _error = operate.start(backend, FLOWS + factory,
                                        store={'log': log, 'delay': 0})
    return uuid, log, state


def atoms(backend, uuid):
    """``{atom name: (state, intention)}`` as stored (injector left out)."""
    ref = operate.find_flow(backend, uuid)
    return {ad.name: (ad.state, ad.intention) for ad in ref.flow
            if not ad.name.startswith('_')}


def stored(backend, uuid) -> models.FlowDetail:
    return operate.find_flow(backend, uuid).flow


def since(log, before):
    return flows.ran(log)[len(before):]


@pytest.mark.parametrize('kind', kinds(ALL_KINDS))
def test_retry_runs_only_what_failed_or_was_reverted(open_backend, tmp_path, kind):
    backend = open_backend(kind)
    uuid, log, state = start(backend, tmp_path)
    assert state == st.REVERTED
    # The payment retry gave up and reverted itself and what follows it only.
    assert atoms(backend, uuid)['validate'] == (st.SUCCESS, st.EXECUTE)
    assert atoms(backend, uuid)['charge'][0] == st.REVERTED
    flows.break_task(log, 'charge', broken=False)
    before = flows.ran(log)

    result = operate.retry(backend, uuid, who='alice', why='gateway is back', run=True)

    assert (result.state, result.error, result.ran) == (st.SUCCESS, None, True)
    assert since(log, before) == ['exec charge', 'exec ship', 'exec receipt']
    flow_detail = stored(backend, uuid)
    assert flow_detail.state == st.SUCCESS
    # The retry controller got fresh attempts: this was attempt 1 again.
    retry_detail = next(ad for ad in flow_detail if ad.name == 'payment-retry')
    assert [value for value, _failures in retry_detail.results] == [1]
    (record,) = flow_detail.meta['operator_actions']
    assert (record['action'], record['who'], record['why']) == ('retry', 'alice',
                                                                 'gateway is back')
    assert record['flow_state'] == [st.REVERTED, st.SUSPENDED]
    assert record['atoms']['charge'] == [st.REVERTED, st.PENDING]
    assert 'validate' not in record['atoms']
    assert record['failures'] == {'charge': 'RuntimeError: charge is broken'}
    when = datetime.datetime.fromisoformat(record['when'])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) < 60


def test_a_plain_engine_resume_after_retry_runs_only_what_is_needed(open_backend, tmp_path):
    backend = open_backend('sqlite')
    uuid, log, _state = start(backend, tmp_path)
    flows.break_task(log, 'charge', broken=False)
    result = operate.retry(backend, uuid)
    assert (result.state, result.ran) == (st.SUSPENDED, False)
    before = flows.ran(log)

    # What any program does to resume a flow: no operator code involved.
    flow_detail = stored(backend, uuid)
    engine = engines.load_from_detail(flow_detail, backend=backend)
    events = []
    engine.notifier.register('*', lambda state, details: events.append(state))
    engine.run()

    assert since(log, before) == ['exec charge', 'exec ship', 'exec receipt']
    assert events == [st.RUNNING, st.SUCCESS]
    assert stored(backend, uuid).state == st.SUCCESS


def test_retry_of_a_fully_reverted_flow_runs_it_again(open_backend, tmp_path):
    backend = open_backend('sqlite')
    uuid, log, state = start(backend, tmp_path, factory='make_linear', broken=('c',))
    assert state == st.REVERTED
    assert flows.ran(log)[-3:] == ['revert c', 'revert b', 'revert a']
    flows.break_task(log, 'c', broken=False)
    before = flows.ran(log)
    result = operate.retry(backend, uuid, run=True)
    assert result.state == st.SUCCESS
    # Everything was undone, so everything runs again (nothing runs twice).
    assert since(log, before) == ['exec a', 'exec b', 'exec c', 'exec d']


def test_retry_that_fails_again_reverts_as_usual(open_backend, tmp_path):
    backend = open_backend('sqlite')
    uuid, log, _state = start(backend, tmp_path)
    before = flows.ran(log)
    result = operate.retry(backend, uuid, run=True)
    assert result.state == st.REVERTED
    assert result.error == 'RuntimeError: charge is broken'
    # Two fresh attempts, each reverted; nothing that had succeeded is touched.
    assert since(log, before) == ['exec charge', 'revert charge'] * 2
    assert len(stored(backend, uuid).meta['operator_actions']) == 1


@pytest.mark.parametrize('kind', kinds(['sqlite', 'dir']))
def test_skip_with_a_result_gives_it_to_later_atoms(open_backend, tmp_path, kind):
    backend = open_backend(kind)
    uuid, log, _state = start(backend, tmp_path, factory='make_linear', broken=('c',))
    before = flows.ran(log)
    result = operate.skip(backend, uuid, 'c', 'C-BY-HAND', who='bob', why='done manually',
                          run=True)
    assert result.state == st.SUCCESS
    assert since(log, before) == ['exec a', 'exec b', 'exec d']   # c itself never again
    flow_detail = stored(backend, uuid)
    c_detail = next(ad for ad in flow_detail if ad.name == 'c')
    assert (c_detail.state, c_detail.results) == (st.SUCCESS, 'C-BY-HAND')
    record = flow_detail.meta['operator_actions'][0]
    assert (record['action'], record['atom'], record['as']) == ('skip', 'c', st.SUCCESS)


def test_skip_without_result_is_refused_when_a_later_atom_needs_it(open_backend, tmp_path):
    backend = open_backend('sqlite')
    uuid, _log, _state = start(backend, tmp_path, factory='make_linear', broken=('c',))
    before = atoms(backend, uuid)
    with pytest.raises(operate.ActionRefused,
                       match=r"^cannot skip 'c' in flow 'linear' without a result: 'd' needs"
                             r" 'c_out', which only 'c' provides"):
        operate.skip(backend, uuid, 'c')
    assert atoms(backend, uuid) == before
    assert 'operator_actions' not in stored(backend, uuid).meta


def test_skip_without_result_ignores_the_task(open_backend, tmp_path):
    backend = open_backend('sqlite')
    uuid, log, _state = start(backend, tmp_path, factory='make_independent', broken=('c',))
    before = flows.ran(log)
    result = operate.skip(backend, uuid, 'c', run=True)
    assert result.state == st.SUCCESS
    assert since(log, before) == ['exec a', 'exec b', 'exec d']
    assert atoms(backend, uuid)['c'] == (st.IGNORE, st.IGNORE)


@contextlib.contextmanager
def suspending_when(engine, atom_name, state):
    def on_atom(new_state, details):
        if new_state == state and details.get('task_name') == atom_name:
            engine.suspend()
    engine.atom_notifier.register(state, on_atom)
    yield
    engine.atom_notifier.deregister(state, on_atom)


def suspended_flow(backend, tmp_path, atom_name, state, broken=('c',)):
    """A linear flow suspended when ``atom_name`` reached ``state``."""
    log = str(tmp_path / 'log-suspended')
    for name in broken:
        flows.break_task(log, name)
    engine = engines.load_from_factory(flows.make_independent, backend=backend,
                                       book=models.LogBook('tests'),
                                       store={'log': log, 'delay': 0})
    with suspending_when(engine, atom_name, state):
        engine.run()
    return engine.storage.flow_uuid, log


def test_resume_without_reverting_cancels_a_pending_revert(open_backend, tmp_path):
    backend = open_backend('sqlite')
    uuid, log = suspended_flow(backend, tmp_path, 'c', st.REVERTED)
    # Suspended in the middle of reverting: c is undone, a and b not yet.
    assert stored(backend, uuid).state == st.SUSPENDED
    assert atoms(backend, uuid)['b'] == (st.SUCCESS, st.REVERT)
    flows.break_task(log, 'c', broken=False)
    before = flows.ran(log)
    result = operate.resume(backend, uuid, revert=False, why='keep the reservation')
    assert result.state == st.SUCCESS
    assert since(log, before) == ['exec c', 'exec d']
    assert result.record['action'] == 'resume_no_revert'


def test_resume_without_reverting_stops_instead_of_reverting(open_backend, tmp_path):
    backend = open_backend('sqlite')
    uuid, log = suspended_flow(backend, tmp_path, 'c', st.REVERTED)
    before = flows.ran(log)
    result = operate.resume(backend, uuid, revert=False)     # c is still broken
    assert result.state == st.FAILURE
    assert result.error == 'RuntimeError: c is broken'
    assert since(log, before) == ['exec c']                   # and nothing reverted
    assert atoms(backend, uuid)['a'] == (st.SUCCESS, st.EXECUTE)
    # From there the operator can retry it.
    flows.break_task(log, 'c', broken=False)
    assert operate.retry(backend, uuid, run=True).state == st.SUCCESS
    assert since(log, before) == ['exec c', 'exec c', 'exec d']


def test_force_revert_of_a_suspended_flow_undoes_what_it_did(open_backend, tmp_path):
    backend = open_backend('sqlite')
    uuid, log = suspended_flow(backend, tmp_path, 'b', st.SUCCESS, broken=())
    assert atoms(backend, uuid)['c'] == (st.PENDING, st.EXECUTE)
    before = flows.ran(log)
    result = operate.revert(backend, uuid, why='order cancelled', run=True)
    assert result.state == st.REVERTED
    assert result.error is None
    assert since(log, before) == ['revert b', 'revert a']     # newest first, nothing run
    assert {name: state for name, (state, _i) in atoms(backend, uuid).items()} == {
        'a': st.REVERTED, 'b': st.REVERTED, 'c': st.PENDING, 'd': st.PENDING}


def test_revert_without_run_is_finished_by_a_plain_resume(open_backend, tmp_path):
    backend = open_backend('sqlite')
    uuid, log = suspended_flow(backend, tmp_path, 'b', st.SUCCESS, broken=())
    operate.revert(backend, uuid)
    before = flows.ran(log)
    engine = engines.load_from_detail(stored(backend, uuid), backend=backend)
    engine.run()
    assert since(log, before) == ['revert b', 'revert a']
    assert stored(backend, uuid).state == st.REVERTED


@pytest.mark.parametrize('action, state_wanted, message', [
    ('retry', st.SUCCESS, "cannot retry flow 'independent' .*: it finished successfully,"
                          " there is nothing to retry"),
    ('revert', st.SUCCESS, "cannot revert flow .*: it finished successfully"),
    ('resume_no_revert', st.REVERTED, "cannot resume no revert flow .*: it was already"
                                      " reverted; use retry"),
    ('revert', st.REVERTED, "cannot revert flow .*: it was already reverted"),
])
def test_actions_that_make_no_sense_are_refused(open_backend, tmp_path, action,
                                                state_wanted, message):
    backend = open_backend('sqlite')
    broken = ('c',) if state_wanted == st.REVERTED else ()
    uuid, _log, state = start(backend, tmp_path, factory='make_independent', broken=broken)
    assert state == state_wanted
    before = atoms(backend, uuid)
    call = {'retry': lambda: operate.retry(backend, uuid),
            'revert': lambda: operate.revert(backend, uuid),
            'resume_no_revert': lambda: operate.resume(backend, uuid, revert=False)}[action]
    with pytest.raises(operate.ActionRefused, match=message):
        call()
    assert atoms(backend, uuid) == before
    assert 'operator_actions' not in stored(backend, uuid).meta


def test_skipping_what_cannot_be_skipped_is_refused(open_backend, tmp_path):
    backend = open_backend('sqlite')
    uuid, _log, _state = start(backend, tmp_path)
    with pytest.raises(operate.ActionRefused, match=r"has no atom 'nope' \(atoms: charge,"):
        operate.skip(backend, uuid, 'nope')
    with pytest.raises(operate.ActionRefused, match="it already succeeded"):
        operate.skip(backend, uuid, 'validate', 1)
    with pytest.raises(operate.ActionRefused, match="'payment-retry' .* only tasks"):
        operate.skip(backend, uuid, 'payment-retry', 1)


def test_unknown_and_ambiguous_flows_are_named(open_backend, tmp_path):
    backend = open_backend('sqlite')
    start(backend, tmp_path, factory='make_independent', broken=())
    start(backend, tmp_path, factory='make_independent', broken=())
    with pytest.raises(operate.FlowNotFound, match=r"^no flow 'nope' in this backend"):
        operate.retry(backend, 'nope')
    with pytest.raises(operate.FlowNotFound, match=r"^2 flows match 'independent': "):
        operate.retry(backend, 'independent')


def test_a_flow_running_elsewhere_is_refused(open_backend, tmp_path):
    backend = open_backend('sqlite')
    log = str(tmp_path / 'log-busy')
    go = threading.Event()
    engine = engines.load_from_factory(flows.make_independent, backend=backend,
                                       book=models.LogBook('tests'),
                                       store={'log': log, 'delay': 0})
    flows.break_task(log, 'c')

    def hold(state, details):
        if details.get('task_name') == 'b':
            go.wait(30)
    engine.atom_notifier.register(st.RUNNING, hold)
    runner = threading.Thread(target=lambda: pytest.raises(RuntimeError, engine.run))
    runner.start()
    try:
        uuid = engine.storage.flow_uuid
        for _ in range(500):
            if stored(backend, uuid).state == st.RUNNING:
                break
            threading.Event().wait(0.01)
        with pytest.raises(operate.FlowBusy, match=r"flow 'independent' .* is (stored as"
                                                   r" RUNNING|running elsewhere)"):
            operate.revert(backend, uuid)
        with pytest.raises(operate.FlowBusy):
            operate.resume(backend, uuid, revert=False)
    finally:
        go.set()
        runner.join(30)
    assert stored(backend, engine.storage.flow_uuid).state == st.REVERTED
    assert 'operator_actions' not in stored(backend, engine.storage.flow_uuid).meta


def test_a_run_in_another_process_holds_the_flow_until_it_dies(open_backend, tmp_path):
    """A live engine elsewhere refuses actions; once SIGKILLed its flow is free at once."""
    backend = open_backend('sqlite')
    url = 'sqlite:///%s' % (tmp_path / 'operate.db')
    log = str(tmp_path / 'log-other')
    runner = subprocess.Popen(_server.taskflow_command() + [
        'run', FLOWS + 'make_independent', '--backend', url, '--store', 'log=' + log,
        '--store', 'delay=0.4'], cwd=str(_server.REPO), env=_server.env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while flows.ran(log) != ['exec a', 'exec b', 'exec c']:
            assert time.monotonic() < deadline and runner.poll() is None
            time.sleep(0.02)
        uuid = operate.find_flow(backend, 'independent').flow.uuid
        with pytest.raises(operate.FlowBusy, match=r"^flow 'independent' .* is running"
                                                   r" elsewhere: its lease belongs to '"):
            operate.revert(backend, uuid)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert stored(backend, uuid).state == st.RUNNING
    before = flows.ran(log)
    result = operate.retry(backend, uuid, why='the worker died', run=True)
    assert result.state == st.SUCCESS
    assert since(log, before) == ['exec c', 'exec d']        # c was interrupted


def test_history_lists_every_action(open_backend, tmp_path):
    backend = open_backend('sqlite')
    uuid, log, _state = start(backend, tmp_path)
    operate.retry(backend, uuid, who='a', run=True)            # fails again
    flows.break_task(log, 'charge', broken=False)
    operate.skip(backend, uuid, 'charge', 'X', who='b', run=True)
    history = operate.history(stored(backend, uuid))
    assert [(r['action'], r['who']) for r in history] == [('retry', 'a'), ('skip', 'b')]
    assert len({r['id'] for r in history}) == 2
