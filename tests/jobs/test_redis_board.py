"""The Redis jobboard: its layout, configuration, expiries and faults, on a
real Redis server (the shared one, or one started here for outages)."""

from __future__ import annotations

import contextlib
import datetime
import socket
import subprocess
import time
import uuid

import pytest

from taskflow import exceptions as exc
from taskflow.jobs import backends
from taskflow.jobs import base
from taskflow.jobs.backends import _redis_codec as codec
from taskflow.jobs.backends import impl_redis
from taskflow.utils import redis_utils
from tests import _services
from tests.jobs.kinds import redis as kind


@pytest.fixture
def make():
    """``make(**conf)`` -> a connected board in this test's own namespace."""
    host, port = _services.require_endpoint('redis')
    namespace = 'tf-test-redis-%s' % uuid.uuid4().hex[:8]
    made = []

    def _make(**conf):
        conf = {'host': host, 'port': port, 'namespace': namespace, **conf}
        board = impl_redis.RedisJobBoard('board-%s' % namespace, conf)
        board.connect()
        made.append(board)
        return board

    yield _make
    for board in made:
        with contextlib.suppress(Exception):
            kind.cleanup(board)
        board.close()


@pytest.fixture
def board(make):
    return make()


@pytest.fixture
def raw():
    """A plain client on the shared server, to look at what boards write."""
    import redis
    host, port = _services.require_endpoint('redis')
    client = redis.Redis(host=host, port=port)
    yield client
    client.close()


def test_keys_are_the_originals(board, raw):
    job = board.post('j', details={'a': 1}, priority='HIGH')
    ns = board.namespace
    assert board.listings_key == ns + b':listings'
    assert job.owner_key == ns + b':' + job.uuid.encode() + b'.owned'
    posting = codec.loads(raw.hget(board.listings_key, job.uuid))
    assert list(posting) == ['uuid', 'name', 'priority', 'created_on',
                             'details', 'sequence']
    assert posting['priority'] == 'HIGH' and posting['details'] == {'a': 1}
    assert posting['sequence'] == job.sequence == int(raw.get(board.sequence_key))
    assert isinstance(posting['created_on'], datetime.datetime)
    board.claim(job, 'alice', expiry=20)
    assert raw.get(job.owner_key) == b'alice'
    assert 0 < raw.pttl(job.owner_key) <= 20000
    assert isinstance(codec.loads(raw.get(job.last_modified_key)),
                      datetime.datetime)


def test_claims_expire_by_default(board, raw):
    job = board.post('j')
    board.claim(job, 'alice')
    expires_in = job.expires_in()
    assert base.DEFAULT_CLAIM_EXPIRY - 2 < expires_in <= base.DEFAULT_CLAIM_EXPIRY


def test_expires_in_and_extend_expiry(board):
    job = board.post('j')
    assert job.expires_in() == redis_utils.KEY_NOT_FOUND
    assert job.extend_expiry(10) is False
    board.claim(job, 'alice', expiry=5)
    assert 4 < job.expires_in() <= 5
    assert job.extend_expiry(100) is True
    assert 99 < job.expires_in() <= 100


@pytest.mark.parametrize('expiry', [0, 0.0001, -1])
def test_an_expiry_below_one_millisecond_is_refused(board, expiry):
    job = board.post('j')
    with pytest.raises(ValueError, match='must be greater than zero'):
        board.claim(job, 'alice', expiry=expiry)
    assert board.find_owner(job) is None


def test_errors_name_the_job_and_the_owner(board):
    job = board.post('j')
    with pytest.raises(exc.NotFound, match=job.uuid):
        board.consume(job, 'alice')  # also a JobFailure: nobody owns it
    board.claim(job, 'alice')
    with pytest.raises(exc.UnclaimableJob,
                       match='Job %s already claimed by alice' % job.uuid):
        board.claim(job, 'bob')
    with pytest.raises(exc.JobFailure, match='not owned by bob .it is'
                       ' actively owned by alice'):
        board.trash(job, 'bob')
    board.consume(job, 'alice')
    with pytest.raises(exc.NotFound,
                       match='Job %s not found to be claimed' % job.uuid):
        board.claim(job, 'alice')


def test_tokens_increase_across_boards(make):
    first, second = make(), make()
    job = first.post('j')
    tokens = []
    for board, who in ((first, 'a'), (second, 'b'), (first, 'c')):
        found = [j for j in board.iterjobs() if j.uuid == job.uuid][0]
        board.claim(found, who)
        tokens.append(found.claim_token)
        board.abandon(found, who)
    assert tokens == sorted(tokens) and len(set(tokens)) == 3


def test_renew_by_a_superseded_claim_of_the_same_name_fails(make):
    first, second = make(), make()
    job = first.post('j')
    first.claim(job, 'alice', expiry=0.2)
    time.sleep(0.3)
    again = [j for j in second.iterjobs() if j.uuid == job.uuid][0]
    second.claim(again, 'alice')
    with pytest.raises(exc.JobFailure, match=job.uuid):
        first.renew_claim(job, 'alice')  # its token is the older one
    second.renew_claim(again, 'alice')


def test_iterjobs_lists_highest_priority_and_newest_first(board):
    low = board.post('low', priority='LOW')
    old = board.post('old')
    new = board.post('new')
    high = board.post('high', priority='VERY_HIGH')
    board.claim(new, 'x')
    assert [j.name for j in board.iterjobs()] == ['high', 'new', 'old', 'low']
    assert [j.uuid for j in board.iterjobs(only_unclaimed=True)] == [
        high.uuid, old.uuid, low.uuid]



def test_a_consumer_that_loses_a_race_skips_what_rivals_took(make):
    mine, rival = make(), make()
    mine.post('low', priority='LOW')
    jobs = [mine.post('j%d' % i) for i in range(10)]
    listing = mine.iterjobs(only_unclaimed=True)
    first = next(listing)
    assert first.name == 'j9'  # newest first
    # Meanwhile a rival works through the same listing: five claimed, one
    # of them already consumed.
    taken = jobs[5:]
    for job in taken:
        rival.claim(job, 'rival')
    rival.consume(taken[0], 'rival')
    with pytest.raises(exc.UnclaimableJob):
        mine.claim(first, 'me')
    rest = [job.name for job in listing]
    assert sorted(rest[:-1]) == ['j0', 'j1', 'j2', 'j3', 'j4']
    assert rest[-1] == 'low'  # priorities keep their order

def test_a_bad_configuration_value_names_the_key():
    board = impl_redis.RedisJobBoard('bad', {'port': 'six'})
    with pytest.raises(ValueError, match="Jobboard 'bad': invalid port 'six'"):
        board.connect()


def test_uri_and_dict_configurations(board):
    host, port = _services.require_endpoint('redis')
    namespace = board.namespace.decode()
    uri = backends.fetch('u', 'redis://%s:%s/?namespace=%s&socket_timeout=5'
                         % (host, port, namespace))
    assert isinstance(uri, impl_redis.RedisJobBoard)
    with contextlib.closing(uri):
        uri.connect()
        job = board.post('j')
        assert [j.uuid for j in uri.iterjobs()] == [job.uuid]
    default = backends.fetch('d', {'board': 'redis', 'host': host,
                                   'port': port})
    assert default.namespace == b'taskflow'
    assert default.listings_key == b'taskflow:listings'


def test_wait_wakes_at_once_for_a_taskflow_ng_post(make):
    import threading
    waiter, poster = make(), make()
    waiter.WAIT_POLL = 60  # so only the pub/sub message can wake it in time
    timer = threading.Timer(0.2, poster.post, args=('wake',))
    timer.start()
    started = time.monotonic()
    jobs = list(waiter.wait(timeout=120))
    waited = time.monotonic() - started
    timer.join()
    assert [j.name for j in jobs] == ['wake']
    assert waited < 10


def test_a_closed_board_refuses_with_a_clear_error(make):
    board = make()
    board.close()
    assert not board.connected
    with pytest.raises(exc.JobFailure, match='is not connected'):
        board.post('j')


def test_connecting_to_nothing_is_a_job_failure_with_the_cause():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]  # free, nothing listens
    board = impl_redis.RedisJobBoard('nowhere', {'host': '127.0.0.1',
                                                 'port': port})
    with pytest.raises(exc.JobFailure, match="'nowhere' failed to connect"
                       ) as caught:
        board.connect()
    import redis
    assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)


def test_killed_connections_are_recovered_on_the_next_call(board, raw):
    job = board.post('j')
    board.claim(job, 'alice', expiry=20)
    mine = [c for c in raw.client_list()
            if c['name'] == 'taskflow-jobboard:%s' % board.name]
    assert mine  # the board's connections are named after it
    for connection in mine:  # a real CLIENT KILL of each of them
        assert raw.client_kill_filter(_id=connection['id']) == 1
    # The next calls reconnect (the first may instead fail with JobFailure).
    for call in (lambda: board.find_owner(job),
                 lambda: board.renew_claim(job, 'alice', expiry=20)):
        try:
            call()
        except exc.JobFailure as e:
            import redis
            assert isinstance(e.__cause__, redis.exceptions.ConnectionError)
            call()
    assert board.find_owner(job) == 'alice'
    now = {c['id'] for c in raw.client_list()
           if c['name'] == 'taskflow-jobboard:%s' % board.name}
    assert now and not now & {c['id'] for c in mine}
    board.consume(job, 'alice')


# -- a server of our own, to stop and restart -------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _start_redis(program: str, port: int, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([program, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _services._port_open('127.0.0.1', port, timeout=0.2):
        assert proc.poll() is None, 'redis-server exited (%s)' % proc.returncode
        assert time.monotonic() < deadline, 'redis-server did not start'
        time.sleep(0.02)
    return proc


@pytest.fixture
def own_server(tmp_path):
    """``(port, start, stop)`` of a redis-server only this test uses."""
    program = _services.require_program('redis-server')
    port = _free_port()
    procs = []

    def start():
        procs.append(_start_redis(
            program, port, '--port', str(port), '--bind', '127.0.0.1',
            '--save', '', '--appendonly', 'no', '--dir', str(tmp_path)))

    def stop():
        proc = procs.pop()
        proc.terminate()
        proc.wait(10)

    start()
    yield port, start, stop
    for proc in procs:
        proc.kill()
        proc.wait(10)


def test_a_board_finds_its_server_through_sentinel(own_server, tmp_path):
    port = own_server[0]
    sentinel_port = _free_port()
    config = tmp_path / 'sentinel.conf'  # sentinel rewrites its config
    config.write_text('port %d\nbind 127.0.0.1\ndir %s\n'
                      'sentinel monitor tf-master 127.0.0.1 %d 1\n'
                      % (sentinel_port, tmp_path, port))
    sentinel = _start_redis(_services.require_program('redis-server'),
                            sentinel_port, str(config), '--sentinel')
    try:
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            dead = s.getsockname()[1]
        board = backends.fetch('via-sentinel', {
            # the first sentinel is down: the fallback answers
            'board': 'redis', 'host': '127.0.0.1', 'port': dead,
            'sentinel': 'tf-master', 'namespace': 'tf-sentinel',
            'sentinel_fallbacks': ['127.0.0.1:%d' % sentinel_port],
            'sentinel_kwargs': {'socket_timeout': 1}})
        board.connect()
        with contextlib.closing(board):
            job = board.post('j')
            board.claim(job, 'alice')
            import redis
            direct = redis.Redis(port=port)
            assert direct.get(job.owner_key) == b'alice'  # on the master
            direct.close()
            assert board._client.connection_pool.get_master_address() == (
                '127.0.0.1', port)
    finally:
        sentinel.terminate()
        sentinel.wait(10)


def test_a_server_outage_is_a_job_failure_and_the_board_picks_up_after(
        own_server):
    port, start, stop = own_server
    board = impl_redis.RedisJobBoard('outage', {
        'host': '127.0.0.1', 'port': port, 'socket_timeout': 1,
        'socket_connect_timeout': 1})
    board.connect()
    with contextlib.closing(board):
        board.post('before')
        stop()
        started = time.monotonic()
        with pytest.raises(exc.JobFailure, match="'outage' failed to") as e:
            board.post('during')
        assert e.value.__cause__ is not None
        assert time.monotonic() - started < 15  # bounded, no hang
        start()  # an empty server (nothing saved): the board works again
        job = board.post('after')
        board.claim(job, 'alice')
        assert [j.name for j in board.iterjobs()] == ['after']


def test_a_retried_call_whose_reply_was_lost_succeeds_once(board):
    # What the client does when the connection drops after a script ran:
    # it sends the same script with the same arguments again.
    job = board.post('j')
    keys = [board.listings_key, *board._keys(job)]
    args = [job.uuid, b'alice', 10000, '1.0', b'', 'nonce-1']
    first = board._runner('claim', keys, args)
    again = board._runner('claim', keys, args)
    assert first == again == [b'ok', 1]
    end_args = [job.uuid, b'alice', 'consumed', '2.0', '', b'', 60, 'nonce-2',
                board._removed_channel]
    keys.append(board.trash_key)
    assert board._runner('end', keys, end_args) == [b'ok']
    assert board._runner('end', keys, end_args) == [b'ok']
    assert [(a.who, a.outcome) for a in board.history(job)] == [
        ('alice', 'consumed')]
    with pytest.raises(exc.NotFound):
        board.consume(job, 'alice')  # a new call is not a retry
    # A retried post of that (consumed) job does not bring it back.
    post_keys = [board.sequence_key, board.listings_key, keys[3]]
    assert board._runner('post', post_keys, [job.uuid, b'\x81', b'c']) == -1
    assert board.job_count == 0


def test_a_given_client_is_used_and_left_open(raw):
    namespace = 'tf-test-client-%s' % uuid.uuid4().hex[:8]
    board = backends.fetch('given', {'board': 'redis',
                                     'namespace': namespace}, client=raw)
    board.connect()
    try:
        job = board.post('j')
        board.claim(job, 'alice')
        assert raw.get(job.owner_key) == b'alice'
    finally:
        kind.cleanup(board)
        board.close()
    assert raw.ping()  # still usable: the board did not close it
    board.connect()  # and a closed board connects again
    assert board.job_count == 0
    board.close()


def test_the_job_of_a_killed_claimer_is_claimable_within_its_lease(board):
    import os
    import signal
    import sys
    job = board.post('j')
    host, port = _services.endpoint('redis')
    holder = subprocess.Popen([sys.executable, '-c', '''
import sys, time
from taskflow.jobs.backends import impl_redis
board = impl_redis.RedisJobBoard('holder', {'host': sys.argv[1],
    'port': int(sys.argv[2]), 'namespace': sys.argv[3]})
board.connect()
job = [j for j in board.iterjobs() if j.uuid == sys.argv[4]][0]
board.claim(job, 'holder', expiry=1)
print('claimed', flush=True)
while True:  # renews until killed
    time.sleep(0.3)
    board.renew_claim(job, 'holder', expiry=1)
''', host, str(port), board.namespace.decode(), job.uuid],
        stdout=subprocess.PIPE, text=True, cwd=str(_services.REPO_ROOT))
    try:
        assert holder.stdout.readline().strip() == 'claimed'
        time.sleep(1.2)  # past one lease: the renewals keep it held
        assert board.find_owner(job) == 'holder'
        os.kill(holder.pid, signal.SIGKILL)
        killed = time.monotonic()
    finally:
        holder.kill()
        holder.wait(10)
    while True:
        try:
            board.claim(job, 'taker')
            break
        except exc.UnclaimableJob:
            assert time.monotonic() - killed < 1 + 2, 'not taken over in time'
            time.sleep(0.05)
    assert [(a.who, a.outcome) for a in board.history(job)] == [
        ('holder', 'lost'), ('taker', None)]


def test_an_unreadable_posting_is_skipped_and_logged_once(board, raw, caplog):
    good = board.post('good')
    raw.hset(board.listings_key, 'garbage', b'\xc1 not msgpack')
    with caplog.at_level('WARNING'):
        for _ in range(3):
            assert [j.uuid for j in board.iterjobs()] == [good.uuid]
    assert sum('unreadable posting' in r.getMessage()
               for r in caplog.records) == 1


def test_threads_sharing_one_board_claim_each_job_once(board):
    import threading
    jobs = [board.post('j%d' % i) for i in range(40)]
    won: dict[str, list[str]] = {j.uuid: [] for j in jobs}

    def claim_all(who):
        for job in board.iterjobs(only_unclaimed=True):
            try:
                board.claim(job, who)
            except (exc.UnclaimableJob, exc.NotFound):
                continue
            won[job.uuid].append(who)
            board.consume(job, who)

    threads = [threading.Thread(target=claim_all, args=('t%d' % i,))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(w) == 1 for w in won.values()), won
    assert board.job_count == 0


def test_the_notifier_announces_posted_and_removed_jobs(make):
    import queue
    watcher, worker = make(), make()
    events: queue.Queue = queue.Queue()
    for event in (base.POSTED, base.REMOVAL):
        watcher.notifier.register(
            event, lambda event_type, details: events.put(
                (event_type, details['job'].uuid)))
    assert watcher._listener.subscribed.wait(10)
    kept = worker.post('kept')
    gone = worker.post('gone')
    worker.claim(gone, 'w')
    worker.consume(gone, 'w')
    seen = [events.get(timeout=5) for _ in range(3)]
    assert seen == [(base.POSTED, kept.uuid), (base.POSTED, gone.uuid),
                    (base.REMOVAL, gone.uuid)]
    watcher.close()  # stops its listener thread
    assert not any(t.name.startswith('redis-jobboard-events-%s'
                                     % watcher.name)
                   for t in __import__('threading').enumerate())


def test_scripts_the_server_does_not_know_are_loaded_and_errors_raised(raw):
    # The runner reads replies itself: a NOSCRIPT answer loads the script
    # and runs it again; a script's error is raised and the connection
    # stays usable.
    from redis import exceptions as redis_exceptions
    from taskflow.jobs.backends import _redis_runner
    tag = uuid.uuid4().hex
    runner = _redis_runner.ScriptRunner(raw, {
        'echo': "return {'%s', tonumber(ARGV[1]) + 1, ARGV[2]}" % tag,
        'fail': "return redis.error_reply('BOOM %s')" % tag})
    try:
        assert runner('echo', [], [41, 'x' * 100000]) == [
            tag.encode(), 42, b'x' * 100000]
        with pytest.raises(redis_exceptions.ResponseError, match='BOOM'):
            runner('fail', [], [])
        assert runner('echo', [], [1, b'']) == [tag.encode(), 2, b'']
    finally:
        runner.close()
