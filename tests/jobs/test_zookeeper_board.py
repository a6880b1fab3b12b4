"""The ZooKeeper board beyond the contract: its configuration, layout,
notifications, claim tokens, and faults (session expiry, server away).

The shared behaviour of every board is in ``test_board_contract.py``; the
original TaskFlow on the same server in ``test_interop_zookeeper.py``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid

import pytest

from taskflow import exceptions as exc
from taskflow.jobs import backends, base
from taskflow.jobs.backends import impl_zookeeper
from taskflow.types import entity
from tests import _services

kazoo_client = pytest.importorskip('kazoo.client')


@pytest.fixture
def hosts():
    host, port = _services.require_endpoint('zookeeper')
    return '%s:%s' % (host, port)


@pytest.fixture
def root(hosts):
    """A fresh top-level path, removed afterwards."""
    path = '/taskflow-zk-test-%s' % uuid.uuid4().hex[:10]
    yield path
    client = kazoo_client.KazooClient(hosts)
    client.start(timeout=10)
    try:
        client.delete(path, recursive=True)
    except Exception:
        pass
    finally:
        client.stop()
        client.close()


@pytest.fixture
def make(hosts, root):
    """``make(**conf)`` -> a connected board on ``<root>/jobs``."""
    boards = []

    def _make(**conf):
        conf = dict({'hosts': hosts, 'path': root + '/jobs'}, **conf)
        board = impl_zookeeper.ZookeeperJobBoard('b%d' % len(boards), conf)
        board.connect()
        boards.append(board)
        return board

    yield _make
    for board in boards:
        with contextlib.suppress(Exception):
            board.close()


@pytest.fixture
def raw(hosts):
    """A plain kazoo client, to look at what the board wrote."""
    client = kazoo_client.KazooClient(hosts)
    client.start(timeout=10)
    yield client
    client.stop()
    client.close()


# -- configuration -----------------------------------------------------------

def test_the_path_must_be_absolute_and_non_empty():
    with pytest.raises(ValueError, match='Empty zookeeper path is disallowed'):
        impl_zookeeper.ZookeeperJobBoard('b', {'path': ''})
    with pytest.raises(ValueError, match='Zookeeper path must be absolute'):
        impl_zookeeper.ZookeeperJobBoard('b', {'path': 'taskflow/jobs'})
    board = impl_zookeeper.ZookeeperJobBoard('b', {})
    assert board.path == '/taskflow/jobs'
    assert board.trash_path == '/taskflow/.trash'
    assert not board.connected


def test_fetch_by_dict_and_by_uri(hosts, root):
    board = backends.fetch('b', {'board': 'zookeeper', 'hosts': hosts,
                                 'path': root + '/jobs'})
    assert isinstance(board, impl_zookeeper.ZookeeperJobBoard)
    with backends.backend('b', 'zookeeper://%s/?path=%s/jobs&timeout=5'
                          % (hosts, root)) as board:
        assert board.connected
        job = board.post('by-uri')
        assert [j.uuid for j in board.iterjobs()] == [job.uuid]
    assert not board.connected


def test_connecting_to_nothing_fails_with_job_failure():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    board = impl_zookeeper.ZookeeperJobBoard(
        'b', {'hosts': '127.0.0.1:%s' % port, 'path': '/x/jobs'})
    start = time.monotonic()
    with pytest.raises(exc.JobFailure, match="board 'b' to 127.0.0.1:%s"
                       % port):
        board.connect(timeout=1.0)
    assert time.monotonic() - start < 5
    assert not board.connected
    with pytest.raises(exc.JobFailure, match='not connected'):
        board.post('j')


def test_bad_claim_expiries_are_refused(make):
    board = make()
    job = board.post('j')
    for bad in (0, -1, 'soon', float('inf'), float('nan')):
        with pytest.raises(ValueError, match='Claim expiry must be'):
            board.claim(job, 'alice', expiry=bad)
    assert board.find_owner(job) is None


# -- layout --------------------------------------------------------------------

def test_layout_matches_the_originals(make, raw, root):
    board = make()
    job = board.post('j', details={'a': 1}, priority='high')
    board.claim(job, 'alice', expiry=5)
    node = job.path.rsplit('/', 1)[1]
    assert node.startswith('job') and len(node) == len('job') + 10
    posting = json.loads(raw.get(job.path)[0])
    assert posting == {'uuid': job.uuid, 'name': 'j', 'priority': 'HIGH',
                       'details': {'a': 1}}
    lock, stat = raw.get(job.lock_path)
    assert stat.ephemeralOwner != 0
    lock = json.loads(lock)
    assert lock['owner'] == 'alice' and lock['token'] == job.claim_token
    # The original lists <path>'s children: only postings and locks there.
    assert sorted(raw.get_children(root + '/jobs')) == [node, node + '.lock']
    board.trash(job, 'alice')
    assert raw.get_children(root + '/.trash') == [node]
    assert json.loads(raw.get(root + '/.trash/' + node)[0]) == posting


def test_iterjobs_lists_highest_priority_first_then_oldest(make):
    board = make()
    low = board.post('low', priority='low')
    first = board.post('first')
    urgent = board.post('urgent', priority='very_high')
    second = board.post('second')
    assert [j.name for j in board.iterjobs()] == [
        'urgent', 'first', 'second', 'low']
    assert sorted([low, first, urgent, second])[-1] is urgent


def test_register_entity_makes_an_ephemeral_conductor_node(make, raw, root):
    board = make()
    conductor = entity.Entity('conductor', 'c1@host:1',
                              {'hostname': 'host', 'pid': 1})
    board.register_entity(conductor)
    board.register_entity(conductor)  # again: fine
    data, stat = raw.get(root + '/.entities/conductor/c1@host:1')
    assert json.loads(data) == conductor.to_dict()
    assert stat.ephemeralOwner != 0
    with pytest.raises(exc.NotImplementedError,
                       match="Not implemented for other entity type 'x'"):
        board.register_entity(entity.Entity('x', 'n', {}))


# -- notifications and tokens ----------------------------------------------------

def test_notifications_come_from_another_boards_changes(make):
    watcher, poster = make(), make()
    seen = []
    arrived = threading.Event()

    def on_event(event, details):
        seen.append((event, details['job'].name))
        arrived.set()

    watcher.notifier.register(base.POSTED, on_event)
    watcher.notifier.register(base.REMOVAL, on_event)
    job = poster.post('from-elsewhere')
    assert arrived.wait(10)
    arrived.clear()
    poster.claim(job, 'alice')
    poster.consume(job, 'alice')
    deadline = time.monotonic() + 10
    while (base.REMOVAL, 'from-elsewhere') not in seen:
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)
    assert seen == [(base.POSTED, 'from-elsewhere'),
                    (base.REMOVAL, 'from-elsewhere')]


def test_no_notifications_when_turned_off(hosts, root):
    board = impl_zookeeper.ZookeeperJobBoard(
        'quiet', {'hosts': hosts, 'path': root + '/jobs'},
        emit_notifications=False)
    seen = []
    board.notifier.register(base.POSTED, lambda *a: seen.append(a))
    with board:
        board.post('j')
        assert list(board.wait(timeout=5))
    assert seen == []


def test_claim_tokens_increase_across_boards(make):
    boards = [make(), make()]
    job = boards[0].post('j')
    tokens = []
    for i in range(6):
        board = boards[i % 2]
        mine = [j for j in board.iterjobs() if j.uuid == job.uuid][0]
        board.claim(mine, 'w%d' % i)
        tokens.append(mine.claim_token)
        board.abandon(mine, 'w%d' % i)
    assert tokens == sorted(set(tokens)) and len(tokens) == 6
    assert [a.token for a in boards[1].history(job)] == tokens


# -- faults ----------------------------------------------------------------------

def _expire_session(hosts, board):
    """End ``board``'s session on the server, as a partition longer than its
    timeout would: a second client joins the session and closes it."""
    session_id, password = board._client.client_id
    intruder = kazoo_client.KazooClient(hosts, client_id=(session_id,
                                                          password))
    intruder.start(timeout=10)
    intruder.stop()
    intruder.close()


def test_session_expiry_releases_the_claim(make, hosts):
    holder, other = make(), make()
    job = holder.post('j')
    holder.claim(job, 'alice', expiry=60)
    first = job.claim_token
    _expire_session(hosts, holder)
    deadline = time.monotonic() + 10
    while other.find_owner(job) is not None:
        assert time.monotonic() < deadline, 'the claim outlived its session'
        time.sleep(0.05)
    theirs = [j for j in other.iterjobs() if j.uuid == job.uuid][0]
    other.claim(theirs, 'bob')
    assert theirs.claim_token > first
    # The old holder is told (JobFailures about the lost connection and
    # session while its client gets a new one, then that alice lost it).
    deadline = time.monotonic() + 10
    while True:
        with pytest.raises(exc.JobFailure) as failure:
            holder.renew_claim(job, 'alice')
        if not any(word in str(failure.value)
                   for word in ('SessionExpired', 'ConnectionLoss')):
            assert 'not owned by alice' in str(failure.value)
            break
        assert time.monotonic() < deadline, failure.value
        time.sleep(0.05)
    with pytest.raises(exc.JobFailure):
        holder.consume(job, 'alice')
    assert [(a.who, a.outcome) for a in other.history(job)] == [
        ('alice', 'lost'), ('bob', None)]
    other.consume(theirs, 'bob')
    # The old holder's board keeps working on its new session.
    again = holder.post('again')
    holder.claim(again, 'alice')
    assert other.find_owner(again) == 'alice'



def test_a_claim_whose_session_ended_is_not_consumed_in_one_request(
        make, hosts, raw):
    # The original claims the job once the old session's lock is gone; it
    # writes a lock of the same version and leaves the history alone, so
    # only the session tells the old holder its claim is no longer its own.
    holder = make()
    job = holder.post('j')
    holder.claim(job, 'alice', expiry=60)
    _expire_session(hosts, holder)
    deadline = time.monotonic() + 10
    while raw.exists(job.lock_path) is not None:
        assert time.monotonic() < deadline, 'the claim outlived its session'
        time.sleep(0.05)
    raw.create(job.lock_path, json.dumps({'owner': 'orig'}).encode(),
               ephemeral=True)
    deadline = time.monotonic() + 10
    while True:  # JobFailures about the lost session until kazoo is back
        with pytest.raises(exc.JobFailure) as failure:
            holder.consume(job, 'alice')
        if 'not owned by alice' in str(failure.value):
            break
        assert time.monotonic() < deadline, failure.value
        time.sleep(0.05)
    assert raw.exists(job.path) is not None
    assert holder.find_owner(job) == 'orig'


def test_a_busy_boards_notifications_miss_no_change(make):
    # Under a stream of changes the watch lists less often than things
    # change: every job is still announced, posted and removed.
    watcher, poster = make(), make()
    posted, removed = set(), set()
    lock = threading.Lock()

    def on_event(event, details):
        with lock:
            (posted if event == base.POSTED else removed).add(
                details['job'].uuid)

    watcher.notifier.register(base.POSTED, on_event)
    watcher.notifier.register(base.REMOVAL, on_event)
    jobs = [poster.post('j%d' % i) for i in range(60)]
    for job in jobs[:30]:
        poster.claim(job, 'alice')
        poster.consume(job, 'alice')
    everything = {job.uuid for job in jobs}
    gone = {job.uuid for job in jobs[:30]}
    deadline = time.monotonic() + 10
    while True:
        with lock:
            # A job posted and consumed between two listings may never be
            # seen at all; one seen is seen going.
            if removed >= gone & posted and posted >= everything - gone:
                break
        assert time.monotonic() < deadline, (len(posted), len(removed))
        time.sleep(0.05)
    assert posted <= everything and removed <= posted

class _Proxy:
    """A TCP relay to the real server that can be cut and restored, so the
    board sees ZooKeeper go away without stopping the shared server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(('127.0.0.1', 0))
        self.port = self._listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._up = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._listener.listen(16)
        self._up.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                conn.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._conns += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b),
                                 daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        self._up.clear()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()


def test_server_away_gives_job_failure_then_recovers(hosts, root):
    host, port = hosts.rsplit(':', 1)
    proxy = _Proxy((host, int(port)))
    board = impl_zookeeper.ZookeeperJobBoard(
        'flaky', {'hosts': '127.0.0.1:%s' % proxy.port,
                  'path': root + '/jobs', 'timeout': 4,
                  'operation_timeout': 1})
    try:
        board.connect()
        job = board.post('j')
        proxy.cut()
        for call in (lambda: list(board.iterjobs()),
                     lambda: board.post('k'),
                     lambda: board.claim(job, 'alice')):
            start = time.monotonic()
            with pytest.raises(exc.JobFailure, match="board 'flaky'"):
                call()
            assert time.monotonic() - start < 3
        proxy.restore()
        deadline = time.monotonic() + 15
        while True:
            try:
                listed = list(board.iterjobs())
                break
            except exc.JobFailure:
                assert time.monotonic() < deadline, 'never recovered'
                time.sleep(0.2)
        assert job.uuid in {j.uuid for j in listed}
        board.claim(job, 'alice')
        board.consume(job, 'alice')
    finally:
        board.close()
        proxy.close()


def test_histories_of_jobs_gone_elsewhere_are_pruned_on_connect(make, raw,
                                                                root):
    board = make()
    gone, kept = board.post('gone'), board.post('kept')
    for job in (gone, kept):
        board.claim(job, 'alice')
        board.abandon(job, 'alice')
    # As the original consumes: the posting goes, our history node stays.
    raw.delete(gone.path)
    history_dir = root + '/.taskflow-ng/jobs'
    assert len(raw.get_children(history_dir)) == 2
    later = make()
    assert raw.get_children(history_dir) == [kept.path.rsplit('/', 1)[1]]
    assert [a.outcome for a in later.history(kept)] == ['abandoned']


def test_expiry_counts_from_the_locks_last_write_on_the_servers_clock(
        make, raw):
    board = make()
    job = board.post('j')
    # A lock as another taskflow-ng process writes it (its clock unknown to
    # us: only the server's mtime and the duration count).
    raw.create(job.lock_path, json.dumps({'owner': 'elsewhere', 'expiry': 1,
                                          'token': 1}).encode())
    assert board.find_owner(job) == 'elsewhere'
    with pytest.raises(exc.UnclaimableJob, match='elsewhere'):
        board.claim(job, 'bob')
    time.sleep(1.2)
    assert board.find_owner(job) is None
    board.claim(job, 'bob')
    assert board.find_owner(job) == 'bob'
    # A lock without an expiry (the original's) lasts for its session.
    other = board.post('k')
    raw.create(other.lock_path, json.dumps({'owner': 'orig'}).encode())
    time.sleep(1.2)
    assert board.find_owner(other) == 'orig'


def test_reconnects_after_close_and_leaves_a_given_client_running(hosts,
                                                                  root):
    conf = {'hosts': hosts, 'path': root + '/jobs'}
    board = impl_zookeeper.ZookeeperJobBoard('own', conf)
    board.connect()
    job = board.post('j')
    board.close()
    assert not board.connected
    board.connect()
    assert [j.uuid for j in board.iterjobs()] == [job.uuid]
    board.close()
    client = kazoo_client.KazooClient(hosts)
    client.start(timeout=10)
    try:
        shared = impl_zookeeper.ZookeeperJobBoard('shared', conf,
                                                  client=client)
        with shared:
            assert shared.job_count == 1
        assert client.connected
    finally:
        client.stop()
        client.close()


HOLDER = r'''
import sys, time
from taskflow.jobs.backends import impl_zookeeper
board = impl_zookeeper.ZookeeperJobBoard(
    'holder', {'hosts': sys.argv[1], 'path': sys.argv[2], 'timeout': 4})
board.connect()
job = [j for j in board.iterjobs() if j.uuid == sys.argv[3]][0]
board.claim(job, 'doomed', expiry=60)
print('claimed', flush=True)
time.sleep(120)
'''


def test_a_killed_claimers_job_comes_back_within_its_session_timeout(
        make, hosts, root):
    import signal
    import subprocess
    import sys

    board = make()
    job = board.post('j')
    proc = subprocess.Popen([sys.executable, '-c', HOLDER, hosts,
                             root + '/jobs', job.uuid],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'claimed'
        assert board.find_owner(job) == 'doomed'
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        while board.find_owner(job) is not None:
            # The session (4 s asked; the server allows 4-40 s) outlives the
            # process, not the 60 s claim; the server expires sessions on
            # its 2 s ticks, hence up to 4 + 2 s, and 2 s of slack.
            assert time.monotonic() - killed < 4 + 2 + 2, \
                'claim outlived session'
            time.sleep(0.05)
        print('takeover after %.2fs' % (time.monotonic() - killed))
        board.claim(job, 'survivor')
    finally:
        proc.kill()
        proc.wait()


def test_a_busy_board_still_offers_jobs_whose_claim_expired(make):
    board, rival = make(), make()
    first = board.post('first')
    stale = board.post('stale')
    board.claim(stale, 'alice', expiry=0.5)
    time.sleep(0.6)
    offered = board.iterjobs(only_unclaimed=True)
    assert next(offered).uuid == first.uuid
    # A rival's claim changes the board while we go through the listing.
    rival.claim([j for j in rival.iterjobs() if j.uuid == first.uuid][0],
                'bob')
    time.sleep(0.3)  # its watch event reaches us
    assert [j.uuid for j in offered] == [stale.uuid]
    board.claim(stale, 'carol')


def test_a_claim_taken_over_under_the_same_name_is_fenced(make):
    # A conductor restarted under its old name re-claims the job after the
    # old claim expired: the old process can no longer end that claim.
    old, new = make(), make()
    job = old.post('j')
    old.claim(job, 'conductor-1', expiry=0.5)
    time.sleep(0.7)
    theirs = [j for j in new.iterjobs() if j.uuid == job.uuid][0]
    new.claim(theirs, 'conductor-1')
    for end in (old.consume, old.abandon, old.trash):
        with pytest.raises(exc.JobFailure):
            end(job, 'conductor-1')
    assert new.find_owner(theirs) == 'conductor-1'
    new.consume(theirs, 'conductor-1')
