"""Flow leases and fenced writes on every backend, and engines that use them.

memory, dir and SQLite always run; PostgreSQL and MariaDB run against the
real servers (skipped without them, failed under CI=true).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import states as st
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.persistence import ownership
from taskflow.utils import persistence_utils as p_utils
from tests.backends.conftest import SHARED_KINDS, kind_params, make_conf


def saved_flow(conn, name='f'):
    book = models.LogBook('book-' + name)
    fd = models.FlowDetail(name, uuid='fd-' + name)
    fd.add(models.TaskDetail('t', uuid='ad-' + name))
    book.add(fd)
    conn.save_logbook(book)
    return book, fd


def test_a_lease_is_taken_refused_renewed_and_released(conn):
    lease = conn.acquire_flow_lease('fd-1', 'a', 30)
    assert (lease.owner, lease.token, lease.claim_token) == ('a', 1, None)
    assert conn.get_flow_lease('fd-1') == lease
    with pytest.raises(exc.FlowLeased, match="owned by 'a'"):
        conn.acquire_flow_lease('fd-1', 'b', 30)
    renewed = conn.renew_flow_lease(lease, 60)
    assert renewed.token == 1 and renewed.expires_at > lease.expires_at
    conn.release_flow_lease(renewed)
    assert conn.get_flow_lease('fd-1').expires_at == 0.0
    taken = conn.acquire_flow_lease('fd-1', 'b', 30)
    assert (taken.owner, taken.token) == ('b', 2)
    assert conn.get_flow_lease('unknown') is None


def test_an_expired_lease_is_taken_over(conn):
    conn.acquire_flow_lease('fd-1', 'a', 0.05)
    time.sleep(0.15)
    assert conn.acquire_flow_lease('fd-1', 'b', 30).token == 2


def test_a_newer_claim_pre_empts_and_the_old_owner_cannot_renew(conn):
    old = conn.acquire_flow_lease('fd-1', 'a', 30, claim_token=1)
    new = conn.acquire_flow_lease('fd-1', 'b', 30, claim_token=2)
    assert (new.owner, new.token, new.claim_token) == ('b', 2, 2)
    with pytest.raises(exc.OwnershipLost, match="now owned by 'b' with token 2"):
        conn.renew_flow_lease(old, 30)
    conn.release_flow_lease(old)          # a stale release changes nothing
    assert conn.get_flow_lease('fd-1') == new


@pytest.mark.parametrize('write', ['update_atom_details', 'update_flow_details',
                                   'save_logbook'])
def test_writes_under_a_stale_lease_are_refused_and_store_nothing(kind, make_backend, write):
    backend = make_backend(kind)
    with contextlib.closing(backend.get_connection()) as stale, \
            contextlib.closing(backend.get_connection()) as current:
        book, fd = saved_flow(stale)
        stale.fence = stale.acquire_flow_lease(fd.uuid, 'a', 30, claim_token=1)
        current.fence = current.acquire_flow_lease(fd.uuid, 'b', 30, claim_token=2)
        ad = fd.find('ad-f')
        ad.state = st.SUCCESS
        ad.results = 'from the stale owner'
        target = {'update_atom_details': ad, 'update_flow_details': fd,
                  'save_logbook': book}[write]
        with pytest.raises(exc.OwnershipLost, match="no longer owned by 'a'"):
            getattr(stale, write)(target)
        stored = current.get_atom_details('ad-f')
        assert stored.results is None and stored.state != st.SUCCESS
        ad.results = 'from the owner'
        current.update_atom_details(ad)
        assert current.get_atom_details('ad-f').results == 'from the owner'


@pytest.mark.parametrize('kind', kind_params(SHARED_KINDS))
def test_only_one_of_many_racing_processes_gets_the_lease(kind, tmp_path, server_urls,
                                                          make_backend):
    make_backend(kind)   # created and upgraded once
    conf = make_conf(kind, tmp_path, server_urls)
    program = textwrap.dedent('''
        import contextlib, json, sys, time
        from taskflow import exceptions as exc
        from taskflow.persistence import backends
        backend = backends.fetch(json.loads(sys.argv[1]))
        with contextlib.closing(backend.get_connection()) as conn:
            time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
            try:
                lease = conn.acquire_flow_lease('fd-race', sys.argv[3], 30)
                print('won', lease.token)
            except exc.FlowLeased:
                print('refused')
    ''')
    start = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, '-c', program, json.dumps(conf), str(start),
                               'p%d' % i], stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    answers = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert answers == ['refused', 'refused', 'refused', 'won 1'], answers


# -- engines ------------------------------------------------------------------------------


class Gate(task.Task):
    """Waits for ``release`` (set by the test) after recording that it started."""

    def __init__(self, name, started, release, **kwargs):
        super().__init__(name=name, **kwargs)
        self._started, self._release = started, release

    def execute(self):
        self._started.set()
        assert self._release.wait(30)
        return self.name


class Noop(task.Task):
    def execute(self):
        return self.name


def test_a_second_engine_is_refused_while_the_first_runs(kind, make_backend):
    backend = make_backend(kind)
    started, release = threading.Event(), threading.Event()
    flow = lf.Flow('f').add(Gate('g', started, release), Noop('n'))
    first = taskflow.engines.load(flow, backend=backend)
    runner = threading.Thread(target=first.run)
    runner.start()
    try:
        assert started.wait(30)
        with contextlib.closing(backend.get_connection()) as conn:
            copy = conn.get_flow_details(first.storage.flow_uuid)
        second = taskflow.engines.load(lf.Flow('f').add(Noop('g'), Noop('n')),
                                       flow_detail=copy, backend=backend)
        with pytest.raises(exc.FlowLeased, match='is owned by'):
            second.run()
    finally:
        release.set()
        runner.join(30)
    assert first.storage.get_flow_state() == st.SUCCESS
    assert first.storage.lease is None               # given up when the run ended
    with contextlib.closing(backend.get_connection()) as conn:
        lease = conn.get_flow_lease(first.storage.flow_uuid)
        assert lease.expires_at == 0.0                # released, its token kept


def test_an_engine_that_lost_its_flow_stops_at_its_next_write(kind, make_backend):
    backend = make_backend(kind)
    started, release = threading.Event(), threading.Event()
    flow = lf.Flow('f').add(Gate('g', started, release), Noop('n'))
    engine = taskflow.engines.load(flow, backend=backend, claim_token=1)
    errors = []

    def run():
        try:
            engine.run()
        except BaseException as error:
            errors.append(error)

    runner = threading.Thread(target=run)
    runner.start()
    assert started.wait(30)
    flow_uuid = engine.storage.flow_uuid
    # A newer claim takes the flow over while the engine is busy.
    with contextlib.closing(backend.get_connection()) as conn:
        thief = conn.acquire_flow_lease(flow_uuid, 'new-owner', 30, claim_token=2)
    release.set()
    runner.join(30)
    assert len(errors) == 1 and isinstance(errors[0], exc.OwnershipLost)
    with contextlib.closing(backend.get_connection()) as conn:
        stored = conn.get_flow_details(flow_uuid)
        states = {ad.name: ad.state for ad in stored}
        # Nothing the engine did after losing the flow was stored.
        assert states == {'g': st.RUNNING, 'n': st.PENDING}
        assert stored.state == st.RUNNING
        assert conn.get_flow_lease(flow_uuid) == thief


@pytest.mark.parametrize('kind', kind_params(SHARED_KINDS + ['memory']))
def test_a_stale_engine_writes_nothing_after_its_run_ended(kind, make_backend):
    # The run of the first engine stops at the takeover; whatever it (or its
    # caller) writes afterwards, with its lease given up, must not land either.
    backend = make_backend(kind)
    started, release = threading.Event(), threading.Event()
    flow = lf.Flow('f').add(Gate('g', started, release), Noop('n'))
    engine = taskflow.engines.load(flow, backend=backend, claim_token=1)
    errors = []

    def run():
        try:
            engine.run()
        except BaseException as error:
            errors.append(error)

    runner = threading.Thread(target=run)
    runner.start()
    assert started.wait(30), errors
    flow_uuid = engine.storage.flow_uuid
    with contextlib.closing(backend.get_connection()) as conn:
        conn.acquire_flow_lease(flow_uuid, 'new-owner', 30, claim_token=2)
    release.set()
    runner.join(30)
    assert len(errors) == 1 and isinstance(errors[0], exc.OwnershipLost), errors
    assert engine.storage.lease is None
    with pytest.raises(exc.OwnershipLost):
        engine.storage.set_flow_state(st.SUSPENDED)
    with pytest.raises(exc.OwnershipLost):
        engine.storage.set_atom_state('n', st.FAILURE)
    with contextlib.closing(backend.get_connection()) as conn:
        stored = conn.get_flow_details(flow_uuid)
        assert stored.state == st.RUNNING
        assert {ad.name: ad.state for ad in stored} == {'g': st.RUNNING, 'n': st.PENDING}


def test_an_engine_that_gave_its_lease_up_still_writes_while_nobody_took_it(make_backend):
    backend = make_backend('sqlite-file')
    engine = taskflow.engines.load(lf.Flow('f').add(Noop('n')), backend=backend)
    engine.run()
    engine.storage.set_flow_state(st.SUSPENDED)   # nobody else owns it: allowed
    with contextlib.closing(backend.get_connection()) as conn:
        assert conn.get_flow_details(engine.storage.flow_uuid).state == st.SUSPENDED


def test_a_resumer_reloads_what_the_previous_owner_wrote(kind, make_backend):
    # Two engines load the same (fresh) flow detail; the first runs it. The
    # second, loaded before, must not create duplicate atom details nor run
    # anything again once it owns the flow.
    backend = make_backend(kind)
    ran = []

    class Record(task.Task):
        def execute(self):
            ran.append(self.name)

    def make():
        return lf.Flow('f').add(Record('a'), Record('b'))

    book = models.LogBook('b')
    fd = p_utils.create_flow_detail(make(), book=book, backend=backend)

    def fresh_copy():
        with contextlib.closing(backend.get_connection()) as conn:
            return conn.get_flow_details(fd.uuid)

    first = taskflow.engines.load(make(), flow_detail=fresh_copy(), backend=backend)
    second = taskflow.engines.load(make(), flow_detail=fresh_copy(), backend=backend)
    first.compile()
    first.prepare()
    second.compile()
    second.prepare()
    first.run()
    second.run()
    assert ran == ['a', 'b']
    stored = fresh_copy()
    assert sorted(ad.name for ad in stored) == ['a', 'b']
    assert second.storage.get_flow_state() == st.SUCCESS


def test_flows_without_a_lease_row_still_run(kind, make_backend):
    # (Rows written by the original TaskFlow have no lease.)
    backend = make_backend(kind)
    engine = taskflow.engines.load(lf.Flow('f').add(Noop('a')), backend=backend)
    with contextlib.closing(backend.get_connection()) as conn:
        assert conn.get_flow_lease(engine.storage.flow_uuid) is None
    engine.run()
    assert engine.storage.get_flow_state() == st.SUCCESS


def test_hold_refuses_a_flow_that_is_running_elsewhere(kind, make_backend):
    backend = make_backend(kind)
    with ownership.hold(backend, 'fd-x', owner='operator') as lease:
        assert lease.owner == 'operator'
        with pytest.raises(exc.FlowLeased, match="owned by 'operator'"):
            with ownership.hold(backend, 'fd-x', owner='someone else'):
                pass
    with ownership.hold(backend, 'fd-x', owner='someone else') as lease:
        assert lease.token == 2


@pytest.mark.parametrize('options, message', [
    ({'lease_ttl': 0}, 'A lease time to live must be a positive number'),
    ({'claim_token': 'x'}, "Engine option 'claim_token' must be an integer"),
])
def test_bad_ownership_options_are_refused_at_load(options, message):
    with pytest.raises(ValueError, match=message):
        taskflow.engines.load(lf.Flow('f').add(Noop('a')), **options)


def test_the_lease_is_renewed_while_a_run_lasts_longer_than_it(kind, make_backend):
    backend = make_backend(kind)
    refusals = []

    class Slow(task.Task):
        def execute(self):
            time.sleep(1.0)   # 2.5 lease lifetimes: only renewals keep it live
            with contextlib.closing(backend.get_connection()) as conn:
                try:
                    conn.acquire_flow_lease(engine.storage.flow_uuid, 'intruder', 30)
                except exc.FlowLeased as error:
                    refusals.append(str(error))

    engine = taskflow.engines.load(lf.Flow('f').add(Slow('s'), Noop('n')), backend=backend,
                                   lease_ttl=0.4)
    engine.run()
    assert engine.storage.get_flow_state() == st.SUCCESS
    assert len(refusals) == 1 and 'lease token 1' in refusals[0]


@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs POSIX signals')
def test_a_paused_owner_past_its_lease_writes_nothing_after_a_takeover(tmp_path):
    """SIGSTOP the owner past its lease; a second process takes over and
    finishes; SIGCONT: the stale owner's writes are all refused."""
    db = tmp_path / 'fence.db'
    ledger = tmp_path / 'ledger'
    program = textwrap.dedent('''
        import contextlib, os, sys, time
        import taskflow.engines
        from taskflow import exceptions as exc, task
        from taskflow.patterns import linear_flow as lf
        from taskflow.persistence import backends, models
        db, ledger, role = sys.argv[1:4]
        class Step(task.Task):
            def execute(self):
                with open(ledger, 'a') as fh:
                    fh.write('%s %s %d\\n' % (role, self.name, os.getpid()))
                if role == 'first' and self.name == 'b':
                    print('paused-point', flush=True)
                    time.sleep(3)      # the test SIGSTOPs us in here
                return role
        def make():
            return lf.Flow('f').add(Step('a'), Step('b'), Step('c'))
        backend = backends.fetch('sqlite:///' + db)
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
            books = list(conn.get_logbooks())
        if role == 'first':
            engine = taskflow.engines.load(make(), backend=backend, lease_ttl=1.0,
                                           owner='first-owner')
        else:
            fd = next(iter(books[0]))
            engine = taskflow.engines.load(make(), flow_detail=fd, backend=backend,
                                           lease_ttl=1.0, owner='second-owner')
        try:
            engine.run()
            print('done', engine.storage.get_flow_state(), flush=True)
        except exc.OwnershipLost:
            print('ownership lost', flush=True)
    ''')
    first = subprocess.Popen([sys.executable, '-c', program, str(db), str(ledger), 'first'],
                             stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == 'paused-point'
    first.send_signal(19)      # SIGSTOP
    try:
        time.sleep(1.5)        # past its lease
        second = subprocess.run([sys.executable, '-c', program, str(db), str(ledger),
                                 'second'], capture_output=True, text=True, timeout=60)
        assert second.stdout.strip() == 'done SUCCESS', second.stderr
    finally:
        first.send_signal(18)  # SIGCONT
    out, _ = first.communicate(timeout=60)
    assert out.strip() == 'ownership lost'
    backend = backends.fetch('sqlite:///%s' % db)
    with contextlib.closing(backend.get_connection()) as conn:
        fd = next(iter(next(iter(conn.get_logbooks()))))
        assert fd.state == st.SUCCESS
        assert {ad.name: (ad.state, ad.results) for ad in fd} == {
            'a': (st.SUCCESS, 'first'), 'b': (st.SUCCESS, 'second'),
            'c': (st.SUCCESS, 'second')}
    backend.close()


@pytest.mark.postgresql
def test_a_lease_released_while_the_interpreter_exits_does_not_hang_it(server_urls):
    # A hold() left open is finalised at exit: its release must not block
    # (the PostgreSQL read watchdog may not start a thread then).
    from tests.backends.conftest import server_url
    url = server_url('postgresql', server_urls)
    program = textwrap.dedent('''
        import sys
        from taskflow.persistence import backends, ownership
        backend = backends.fetch({'connection': sys.argv[1]})
        held = ownership.hold(backend, 'fd-exit', owner='leaving')
        held.__enter__()
        print('held', flush=True)
    ''')
    proc = subprocess.run([sys.executable, '-c', program, url], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == 'held\n', proc.stderr
