"""The etcd board beyond the contract: its key layout, configuration,
leases and what it does while etcd is down (real etcd servers only)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest

from taskflow import exceptions as exc
from taskflow.jobs import backends
from taskflow.jobs.backends import impl_etcd
from tests import _services
from tests.jobs.kinds import etcd as etcd_kind


@pytest.fixture
def make():
    """``make(**conf)`` -> a connected board on the shared etcd (one path
    per test; boards of one test share it)."""
    name = 'board-%s' % uuid.uuid4().hex[:8]
    made = []

    def _make(**conf):
        board = etcd_kind.make_board(name)
        if conf:
            board = impl_etcd.EtcdJobBoard(name, {**board._conf, **conf})
        board.connect()
        made.append(board)
        return board

    yield _make
    for board in made:
        with contextlib.suppress(Exception):
            etcd_kind.cleanup(board)
        board.close()


def raw_keys(board):
    """``{key: (value, has_lease)}`` under the board's three prefixes."""
    import etcd3gw

    host, port = _services.endpoint('etcd')
    client = etcd3gw.client(host=host, port=port, timeout=10)
    found = {}
    for section in ('jobs', '.trash', '.history'):
        for value, meta in client.get_prefix('/taskflow/%s/%s/'
                                             % (section, board.path)):
            found[meta['key'].decode()] = (value.decode(),
                                           int(meta.get('lease', 0)) != 0)
    client.session.close()
    return found


def test_keys_follow_the_originals_layout(make):
    board = make()
    job = board.post('j', details={'a': 1}, priority='HIGH')
    root = '/taskflow/jobs/%s' % board.path
    keys = raw_keys(board)
    assert sorted(keys) == [root + '/job1.data', root + '/sequence']
    data = json.loads(keys[root + '/job1.data'][0])
    assert data == {'uuid': job.uuid, 'name': 'j', 'priority': 'HIGH',
                    'created_on': data['created_on'], 'details': {'a': 1},
                    'sequence': 1}
    assert keys[root + '/sequence'][0] == '1'
    board.claim(job, 'alice', expiry=30)
    keys = raw_keys(board)
    lock, leased = keys[root + '/job1.lock']
    assert leased and json.loads(lock)['owner'] == 'alice'
    assert root + '/job1.last_modified' in keys
    assert job.last_modified is not None and 0 < job.expires_in() <= 30
    history = [k for k in keys if k.startswith('/taskflow/.history/')]
    assert len(history) == 1
    board.trash(job, 'alice', reason='bad')
    keys = raw_keys(board)
    assert json.loads(keys['/taskflow/.trash/%s/job1' % board.path][0]
                      )['uuid'] == job.uuid
    assert not [k for k in keys if k.startswith(root + '/job')]


def test_a_consumed_job_leaves_no_keys_but_the_sequence(make):
    board = make()
    job = board.post('j')
    board.claim(job, 'alice')
    board.consume(job, 'alice')
    assert sorted(raw_keys(board)) == ['/taskflow/jobs/%s/sequence'
                                       % board.path]


def test_fetch_from_a_dict_or_a_uri():
    host, port = _services.require_endpoint('etcd')
    path = 'tf-test-uri-%s' % uuid.uuid4().hex[:8]
    with backends.backend('b', {'board': 'etcd', 'host': host, 'port': port,
                                'path': path}) as board:
        assert isinstance(board, impl_etcd.EtcdJobBoard)
        job = board.post('j')
    uri = 'etcd://%s:%s/?path=%s' % (host, port, path)
    with backends.backend('b', uri) as board:
        assert board.root == '/taskflow/jobs/' + path
        assert [j.uuid for j in board.iterjobs()] == [job.uuid]
        etcd_kind.cleanup(board)
    default = impl_etcd.EtcdJobBoard('b', {})
    assert default.root == '/taskflow/jobs/jobboard'
    assert impl_etcd.EtcdJobBoard('b', {'path': '/x/y/'}).root == \
        '/taskflow/jobs/x/y'


def test_claim_expiry_must_be_a_positive_number(make):
    board = make()
    job = board.post('j')
    with pytest.raises(ValueError, match='greater than zero'):
        board.claim(job, 'alice', expiry=0)
    with pytest.raises(TypeError, match='number of seconds'):
        board.claim(job, 'alice', expiry='soon')
    assert board.find_owner(job) is None


def test_claims_expire_by_default_with_the_ttl_option(make):
    board = make(ttl=2)
    job = board.post('j')
    board.claim(job, 'alice')
    assert 0 < job.expires_in() <= 2
    deadline = time.monotonic() + 2 + 3
    while board.find_owner(job) is not None:
        assert time.monotonic() < deadline, 'the lease did not free the job'
        time.sleep(0.1)
    other = make()
    stale_token = job.claim_token
    other.claim(job, 'bob')
    assert job.claim_token > stale_token


def test_renewing_with_a_longer_expiry_keeps_the_token(make):
    board = make()
    job = board.post('j')
    board.claim(job, 'alice', expiry=2)
    token = job.claim_token
    board.renew_claim(job, 'alice', expiry=60)
    assert job.expires_in() > 30
    assert job.claim_token == token
    board.consume(job, 'alice')


def test_a_burst_of_one_owners_claims_shares_a_lease_not_other_owners(make):
    board = make()
    a, b, c = (board.post(n) for n in 'abc')
    board.claim(a, 'alice', expiry=30)
    board.claim(b, 'alice', expiry=30)
    board.claim(c, 'bob', expiry=30)
    assert a.lease == b.lease != c.lease
    # Renewing one claim of the shared lease keeps both alive, and moving
    # one claim to a longer lease leaves the other on the shared one.
    board.renew_claim(a, 'alice', expiry=60)
    assert a.lease != b.lease and b.expires_in() > 0
    assert board.find_owner(b) == 'alice'
    for job, who in ((a, 'alice'), (b, 'alice'), (c, 'bob')):
        board.consume(job, who)


def test_claims_later_than_the_sharing_window_get_a_new_lease(make):
    board = make()
    a, b = board.post('a'), board.post('b')
    board.claim(a, 'alice', expiry=30)
    time.sleep(impl_etcd._SHARED_LEASE_AGE + 0.05)
    board.claim(b, 'alice', expiry=30)
    assert a.lease != b.lease


def test_a_shared_lease_that_ended_early_does_not_fail_the_next_claim(make):
    board = make()
    a, b = board.post('a'), board.post('b')
    board.claim(a, 'alice', expiry=30)
    lease = a.lease
    board._api('/kv/lease/revoke', {'ID': lease}, 'revoke')  # as if expired
    board.claim(b, 'alice', expiry=30)
    assert b.lease not in (None, lease) and board.find_owner(b) == 'alice'
    assert board.find_owner(a) is None
    board.consume(b, 'alice')


def test_listings_follow_postings_added_replaced_and_removed(make):
    board, other = make(), make()
    a, b = board.post('a'), board.post('b')
    assert [j.uuid for j in board.iterjobs()] == [a.uuid, b.uuid]
    other.claim(a, 'bob')
    other.consume(a, 'bob')
    c = other.post('c')
    # A posting rewritten under b's key (a board reset elsewhere) and an
    # unreadable one: the listing decodes both again, skips the bad one.
    import etcd3gw

    host, port = _services.endpoint('etcd')
    client = etcd3gw.client(host=host, port=port, timeout=10)
    replaced = dict(json.loads(raw_keys(board)[b.key + '.data'][0]),
                    uuid=str(uuid.uuid4()), name='b2')
    client.put(b.key + '.data', json.dumps(replaced))
    client.put('%s/job99.data' % board.root, '{not json')
    client.session.close()
    listed = [(j.uuid, j.name) for j in board.iterjobs()]
    assert listed == [(replaced['uuid'], 'b2'), (c.uuid, 'c')]
    assert [j.uuid for j in board.iterjobs(only_unclaimed=True)] == [
        replaced['uuid'], c.uuid]
    other.claim(c, 'bob')
    assert [j.name for j in board.iterjobs(only_unclaimed=True)] == ['b2']
    assert board.job_count == 2


def test_the_notifier_announces_posts_and_removals_from_any_board(make):
    import threading

    from taskflow.jobs import base

    board, other = make(), make()
    seen, arrived = [], threading.Condition()

    def on_event(event, details):
        with arrived:
            seen.append((event, details['job'].uuid))
            arrived.notify_all()

    board.notifier.register(base.POSTED, on_event)
    board.notifier.register(base.REMOVAL, on_event)
    assert board._watcher.watching.wait(10)
    a = other.post('a')
    time.sleep(1.5)  # outlives one watch request: the next one resumes
    b = other.post('b')
    other.claim(a, 'bob')
    other.abandon(a, 'bob')  # not a removal
    other.claim(a, 'bob')
    other.consume(a, 'bob')
    other.claim(b, 'bob')
    other.trash(b, 'bob')
    want = [(base.POSTED, a.uuid), (base.POSTED, b.uuid),
            (base.REMOVAL, a.uuid), (base.REMOVAL, b.uuid)]
    with arrived:
        assert arrived.wait_for(lambda: len(seen) >= len(want), timeout=10)
    time.sleep(0.2)
    assert seen == want
    board.close()  # stops the watch
    assert board._watcher is None


def test_a_stale_claimer_cannot_end_the_new_claim(make):
    board, other = make(), make()
    job = board.post('j')
    board.claim(job, 'alice', expiry=1)  # then alice pauses past its lease
    deadline = time.monotonic() + 5
    while board.find_owner(job) is not None:
        assert time.monotonic() < deadline, 'the lease did not free the job'
        time.sleep(0.1)
    mine = next(iter(other.iterjobs()))
    other.claim(mine, 'alice', expiry=30)  # restarted under the same name
    with pytest.raises(exc.JobFailure, match='was lost'):
        board.consume(job, 'alice')
    with pytest.raises(exc.JobFailure, match='was lost'):
        board.renew_claim(job, 'alice')
    assert mine.state == 'CLAIMED'
    other.consume(mine, 'alice')


def test_given_clients_are_not_closed():
    import etcd3gw

    host, port = _services.require_endpoint('etcd')
    client = etcd3gw.client(host=host, port=port)
    board = impl_etcd.EtcdJobBoard('b', {'path': 'tf-test-client-%s'
                                         % uuid.uuid4().hex[:8]},
                                   client=client)
    board.connect()
    board.close()
    assert client.status()  # still usable
    client.session.close()


def test_operations_before_connect_or_on_a_dead_port_fail_clearly():
    board = impl_etcd.EtcdJobBoard('lonely', {'port': free_port()})
    with pytest.raises(exc.JobFailure, match="'lonely' is not connected"):
        list(board.iterjobs())
    with pytest.raises(exc.JobFailure, match="Jobboard 'lonely'.*connect"):
        board.connect()
    assert not board.connected


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class PrivateEtcd:
    """An etcd server of this test's own (so it can be stopped)."""

    def __init__(self, data_dir) -> None:
        self.program = _services.require_program('etcd')
        self.data_dir = str(data_dir)
        self.port, self.peer = free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        peer = 'http://127.0.0.1:%d' % self.peer
        client = 'http://127.0.0.1:%d' % self.port
        self.proc = subprocess.Popen(
            [self.program, '--name', 'n', '--data-dir', self.data_dir,
             '--listen-client-urls', client, '--advertise-client-urls', client,
             '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
             '--initial-cluster', 'n=' + peer],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import etcd3gw

        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(Exception):
                c = etcd3gw.client(port=self.port, host='127.0.0.1', timeout=1)
                c.status()
                c.session.close()
                return
            assert self.proc.poll() is None, 'etcd exited at start'
            assert time.monotonic() < deadline, 'etcd did not start'
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def private_etcd(tmp_path):
    server = PrivateEtcd(tmp_path / 'etcd')
    server.start()
    yield server
    server.stop()


def test_an_etcd_restart_fails_operations_then_recovers(private_etcd):
    board = impl_etcd.EtcdJobBoard('restarted', {
        'host': '127.0.0.1', 'port': private_etcd.port, 'path': 'r',
        'timeout': 2})
    board.connect()
    job = board.post('survivor')
    private_etcd.stop()
    started = time.monotonic()
    for operation in (lambda: list(board.iterjobs()),
                      lambda: board.post('lost'),
                      lambda: board.claim(job, 'alice'),
                      lambda: board.find_owner(job),
                      lambda: list(board.wait(timeout=1))):
        with pytest.raises(exc.JobFailure,
                           match="Jobboard 'restarted'") as info:
            operation()
        assert info.value.cause is not None
    assert time.monotonic() - started < 10  # failures are prompt, no hang
    private_etcd.start()
    assert [j.uuid for j in board.iterjobs()] == [job.uuid]
    board.claim(job, 'alice', expiry=5)
    assert board.find_owner(job) == 'alice'
    board.consume(job, 'alice')
    assert board.job_count == 0
    board.close()


def test_a_frozen_etcd_fails_operations_within_the_timeout(private_etcd):
    board = impl_etcd.EtcdJobBoard('frozen', {
        'host': '127.0.0.1', 'port': private_etcd.port, 'path': 'f',
        'timeout': 1})
    board.connect()
    job = board.post('j')
    board.claim(job, 'alice', expiry=30)
    os.kill(private_etcd.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(exc.JobFailure, match="Jobboard 'frozen'"):
            board.renew_claim(job, 'alice')
        assert time.monotonic() - started < 5
    finally:
        os.kill(private_etcd.proc.pid, signal.SIGCONT)
    # The claim (and its lease) outlived the pause.
    board.renew_claim(job, 'alice')
    assert board.find_owner(job) == 'alice'
    board.consume(job, 'alice')
    board.close()


def test_a_claim_survives_an_etcd_restart(private_etcd):
    board = impl_etcd.EtcdJobBoard('kept', {
        'host': '127.0.0.1', 'port': private_etcd.port, 'path': 'k'})
    board.connect()
    job = board.post('j')
    board.claim(job, 'alice', expiry=30)
    token = job.claim_token
    private_etcd.stop()
    private_etcd.start()
    assert board.find_owner(job) == 'alice'
    board.renew_claim(job, 'alice')
    assert job.claim_token == token
    board.consume(job, 'alice')
    board.close()


def test_boards_posting_at_once_never_share_a_sequence(make):
    import threading

    boards = [make(), make(), make()]
    posted: list = []

    def post_many(board):
        posted.extend(board.post('j').uuid for _ in range(15))

    threads = [threading.Thread(target=post_many, args=(b,)) for b in boards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listed = list(boards[0].iterjobs())
    assert sorted(j.uuid for j in listed) == sorted(posted)
    assert sorted(j.sequence for j in listed) == list(range(1, 46))


def test_a_reset_sequence_never_overwrites_a_job(make):
    import etcd3gw

    board = make()
    first = board.post('first')
    host, port = _services.endpoint('etcd')
    client = etcd3gw.client(host=host, port=port, timeout=10)
    client.delete('/taskflow/jobs/%s/sequence' % board.path)
    client.session.close()
    second = make().post('second')  # a board that never posted here
    assert second.sequence == 2
    assert sorted(j.name for j in board.iterjobs()) == ['first', 'second']
    assert first.state == 'UNCLAIMED'


HOLDER = r'''
import sys, time
from taskflow.jobs.backends import impl_etcd
host, port, path, job_uuid = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
board = impl_etcd.EtcdJobBoard('holder', {'host': host, 'port': port, 'path': path})
board.connect()
job = [j for j in board.iterjobs() if j.uuid == job_uuid][0]
board.claim(job, 'holder', expiry=2)
print(job.claim_token, flush=True)
time.sleep(60)
'''


def test_the_job_of_a_killed_claimer_is_taken_over_within_lease_plus_2s(make):
    import sys

    board = make()
    host, port = _services.endpoint('etcd')
    for _ in range(2):
        job = board.post('j')
        holder = subprocess.Popen(
            [sys.executable, '-c', HOLDER, host, str(port), board.path,
             job.uuid], stdout=subprocess.PIPE, text=True,
            cwd=_services.REPO_ROOT)
        try:
            token = int(holder.stdout.readline())
            assert board.find_owner(job) == 'holder'
            holder.kill()
            killed = time.monotonic()
            while True:
                try:
                    board.claim(job, 'taker', expiry=30)
                    break
                except exc.UnclaimableJob:
                    assert time.monotonic() - killed < 2 + 2, 'no takeover'
                    time.sleep(0.05)
        finally:
            holder.kill()
            holder.wait()
        assert job.claim_token > token
        assert [(a.who, a.outcome) for a in board.history(job)] == [
            ('holder', 'lost'), ('taker', None)]
        board.consume(job, 'taker')
