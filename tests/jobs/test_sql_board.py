"""The SQL jobboard on real databases: what it adds to the board contract
(``test_board_contract.py``): configuration, its tables, row locks, claim
tokens, faults, LISTEN/NOTIFY and throughput."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from taskflow import exceptions as exc
from taskflow.jobs import backends
from taskflow.jobs.backends import impl_sql
from taskflow.persistence import backends as persistence_backends
from tests import _services
from tests.jobs.kinds import _sql

SERVERS = ['postgresql', 'mysql']
ALL = ['sqlite'] + SERVERS


def _board(kind, namespace=None, **conf):
    board = _sql.make_board(kind, namespace or uuid.uuid4().hex, **conf)
    board.connect()
    return board


@pytest.fixture
def boards():
    """``make(kind, namespace=None, **conf)``: connected boards, cleaned up."""
    made = []

    def make(kind, namespace=None, **conf):
        board = _board(kind, namespace, **conf)
        made.append(board)
        return board

    yield make
    for board in made:
        with contextlib.suppress(Exception):
            _sql.cleanup(board)
        board.close()


@pytest.fixture
def fresh_database(request):
    """``make(kind)``: the URL of a new, empty database (dropped after)."""
    urls = []

    def make(kind):
        url = _services.scratch_database(kind)
        urls.append(url)
        return url

    yield make
    for url in urls:
        _services.drop_scratch_database(url)


def _tables(url):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            version = None
            if 'taskflow_ng_alembic_version' in names:
                version = conn.exec_driver_sql(
                    'SELECT version_num FROM taskflow_ng_alembic_version'
                ).scalar()
        return names, version
    finally:
        engine.dispose()


# -- configuration ------------------------------------------------------------

def test_uri_and_dict_configurations_reach_the_same_board(tmp_path):
    path = tmp_path / 'jobs.db'
    by_uri = backends.fetch('a', 'sqlite:///%s?namespace=orders' % path)
    assert isinstance(by_uri, impl_sql.SQLJobBoard)
    assert by_uri.namespace == 'orders'
    with backends.backend('a', by_uri._conf) as poster:
        job = poster.post('j')
    conf = {'board': 'sql', 'connection': 'sqlite:///%s' % path,
            'namespace': 'orders'}
    with backends.backend('b', conf) as reader:
        assert [j.uuid for j in reader.iterjobs()] == [job.uuid]
    with backends.backend('c', dict(conf, namespace='other')) as other:
        assert other.job_count == 0


@pytest.mark.parametrize('kind', SERVERS)
@pytest.mark.parametrize('bare', [False, True], ids=['driver', 'no-driver'])
def test_server_uris_pick_the_sql_board(kind, bare):
    url = _sql.database_url(kind)
    if bare:  # 'postgresql://...': the installed driver is used
        url = kind + '://' + url.split('://', 1)[1]
    with backends.backend('b', url + '?namespace=' + uuid.uuid4().hex) as board:
        assert isinstance(board, impl_sql.SQLJobBoard)
        job = board.post('j')
        board.claim(job, 'w')
        board.consume(job, 'w')
        assert board.job_count == 0


def test_without_a_url_the_board_shares_the_persistence_engine(tmp_path):
    persistence = persistence_backends.fetch('sqlite:///%s' % (tmp_path / 'p.db'))
    board = impl_sql.SQLJobBoard('b', {'board': 'sql'}, persistence=persistence)
    board.connect()
    try:
        job = board.post('j')
        assert board._backend is persistence
        assert job.state == 'UNCLAIMED'
    finally:
        board.close()
        persistence.close()
    with pytest.raises(ValueError, match="Jobboard 'x' needs a connection"):
        impl_sql.SQLJobBoard('x', {'board': 'sql'}).connect()


def test_in_memory_sqlite_works_from_threads():
    board = impl_sql.SQLJobBoard('m', {'connection': 'sqlite://'})
    board.connect()
    try:
        jobs = [board.post('j%d' % i) for i in range(10)]
        claimed = []

        def claim_all(who):
            for job in jobs:
                with contextlib.suppress(exc.UnclaimableJob):
                    board.claim(job, who)
                    claimed.append(job.uuid)

        threads = [threading.Thread(target=claim_all, args=('w%d' % i,))
                   for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(claimed) == sorted(j.uuid for j in jobs)
    finally:
        board.close()


def test_bad_arguments_are_refused_with_clear_errors(boards):
    board = boards('sqlite')
    job = board.post('j')
    with pytest.raises(ValueError, match='expiry of job %s must be > 0' % job.uuid):
        board.claim(job, 'w', expiry=0)
    with pytest.raises(ValueError, match='finite'):
        board.claim(job, 'w', expiry=float('inf'))
    with pytest.raises(exc.JobFailure, match='not JSON serializable'):
        board.post('bad', details={'x': object()})
    unconnected = impl_sql.SQLJobBoard('idle', {'connection': 'sqlite://'})
    with pytest.raises(exc.JobFailure, match="Jobboard 'idle' is not connected"):
        unconnected.post('j')
    with pytest.raises(ValueError, match='synchronous_commit of jobboard'):
        impl_sql.SQLJobBoard('b', {'connection': 'sqlite://',
                                   'synchronous_commit': 'maybe'})
    with pytest.raises(ValueError, match='poll_interval'):
        impl_sql.SQLJobBoard('b', {'connection': 'sqlite://', 'poll_interval': 0})


# -- tables -------------------------------------------------------------------

@pytest.mark.parametrize('kind', SERVERS)
def test_persistence_upgrade_creates_the_board_tables(kind, fresh_database):
    url = fresh_database(kind)
    persistence = persistence_backends.fetch(url)
    with contextlib.closing(persistence.get_connection()) as conn:
        conn.upgrade()
    names, version = _tables(url)
    assert {'taskflow_ng_jobs', 'taskflow_ng_job_attempts'} <= names
    assert version == 'ng0002'
    board = impl_sql.SQLJobBoard('b', {}, persistence=persistence)
    board.connect()
    try:
        board.claim(board.post('j'), 'w')
    finally:
        board.close()
        persistence.close()


@pytest.mark.parametrize('kind', SERVERS)
def test_connect_creates_the_tables_of_an_empty_database(kind, fresh_database):
    url = fresh_database(kind)
    boards = [impl_sql.SQLJobBoard('b%d' % i, {'connection': url})
              for i in range(2)]
    threads = [threading.Thread(target=b.connect) for b in boards]
    for t in threads:  # at once: the second must not fail on the first's DDL
        t.start()
    for t in threads:
        t.join()
    try:
        assert all(b.connected for b in boards)
        names, version = _tables(url)
        assert {'taskflow_ng_jobs', 'taskflow_ng_job_attempts'} <= names
        assert version == 'ng0002'
    finally:
        for b in boards:
            b.close()


# -- ordering, tokens, dead-letter ---------------------------------------------

@pytest.mark.parametrize('kind', ALL)
def test_listing_is_by_priority_then_posting_order(kind, boards):
    board = boards(kind)
    posted = [board.post(n, priority=p) for n, p in (
        ('low', 'LOW'), ('high1', 'HIGH'), ('normal', 'NORMAL'),
        ('high2', 'HIGH'), ('top', 'VERY_HIGH'))]
    assert [j.name for j in board.iterjobs()] == [
        'top', 'high1', 'high2', 'normal', 'low']
    assert sorted(posted, reverse=True)[0].name == 'top'


@pytest.mark.parametrize('kind', ALL)
def test_claim_tokens_increase_across_boards(kind, boards):
    namespace = uuid.uuid4().hex
    one, two = boards(kind, namespace), boards(kind, namespace)
    job = one.post('j')
    tokens = []
    for i in range(6):
        board = (one, two)[i % 2]
        copy = next(j for j in board.iterjobs() if j.uuid == job.uuid)
        board.claim(copy, 'w%d' % i)
        tokens.append(copy.claim_token)
        board.abandon(copy, 'w%d' % i)
    assert tokens == sorted(set(tokens)) and len(tokens) == 6
    assert [a.token for a in one.history(job)] == tokens
    assert all(a.outcome == 'abandoned' for a in two.history(job))


@pytest.mark.parametrize('kind', ALL)
def test_a_claim_that_moved_on_fences_its_old_holder(kind, boards):
    namespace = uuid.uuid4().hex
    one, two = boards(kind, namespace), boards(kind, namespace)
    old = one.post('j')
    one.claim(old, 'alice', expiry=0.3)
    time.sleep(0.5)
    new = next(two.iterjobs(only_unclaimed=True))
    two.claim(new, 'alice')  # the same name, a newer claim
    assert new.claim_token > old.claim_token
    for action in (one.consume, one.abandon, one.trash):
        with pytest.raises(exc.JobFailure, match='moved on'):
            action(old, 'alice')
    with pytest.raises(exc.JobFailure, match='moved on'):
        one.renew_claim(old, 'alice')
    two.consume(new, 'alice')


@pytest.mark.parametrize('kind', ['sqlite', 'postgresql'])
def test_an_expired_claim_says_so(kind, boards):
    board = boards(kind)
    job = board.post('j')
    board.claim(job, 'alice', expiry=0.2)
    time.sleep(0.4)
    with pytest.raises(exc.JobFailure, match="the claim of 'alice' expired"):
        board.renew_claim(job, 'alice')
    with pytest.raises(exc.JobFailure, match='it is not claimed'):
        board.consume(job, 'bob')
    assert job.state == 'UNCLAIMED'


@pytest.mark.parametrize('kind', ALL)
def test_a_trashed_job_is_complete_and_cannot_be_claimed(kind, boards):
    board = boards(kind)
    job = board.post('poison')
    board.claim(job, 'w')
    board.trash(job, 'w', reason='bad')
    assert job.state == 'COMPLETE'
    assert board.job_count == 0
    with pytest.raises(exc.NotFound):
        board.claim(job, 'w')
    assert board.find_owner(job) is None
    (trashed,) = board.iter_trashed()
    assert [(a.outcome, a.reason) for a in board.history(trashed)] == [
        ('trashed', 'bad')]


@pytest.mark.parametrize('kind', ALL)
def test_any_text_is_kept_and_owner_names_are_exact(kind, boards):
    board = boards(kind)
    job = board.post('café ☕ 工作', details={'note': 'naïve ☃'})
    (listed,) = board.iterjobs()
    assert (listed.name, listed.details) == ('café ☕ 工作', {'note': 'naïve ☃'})
    board.claim(job, 'Alice')
    with pytest.raises(exc.UnclaimableJob, match="'Alice'"):
        board.claim(listed, 'alice')
    with pytest.raises(exc.JobFailure, match="claimed by 'Alice', not 'alice'"):
        board.consume(listed, 'alice')
    board.consume(job, 'Alice')


# -- concurrency --------------------------------------------------------------

@pytest.mark.parametrize('kind', ALL)
def test_two_engines_racing_from_threads_claim_each_of_50_jobs_once(kind, boards):
    namespace = uuid.uuid4().hex
    one, two = boards(kind, namespace), boards(kind, namespace)
    jobs = [one.post('j%d' % i) for i in range(50)]
    won = {j.uuid: [] for j in jobs}
    lock = threading.Lock()

    def claim_all(board, who):
        for job in board.iterjobs(only_unclaimed=True):
            try:
                board.claim(job, who)
            except (exc.UnclaimableJob, exc.NotFound):
                continue
            with lock:
                won[job.uuid].append(who)

    threads = [threading.Thread(target=claim_all, args=(b, '%s-%d' % (n, i)))
               for i in range(2) for b, n in ((one, 'one'), (two, 'two'))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(w) == 1 for w in won.values()), won
    for job in jobs:
        assert len(one.history(job)) == 1


@pytest.mark.parametrize('kind', SERVERS)
def test_a_claimer_never_waits_on_a_locked_row(kind, boards):
    board = boards(kind)
    job = board.post('j')
    engine = sa.create_engine(_sql.database_url(kind))
    try:
        with engine.begin() as conn:  # another claimer, mid-transaction
            conn.execute(sa.text('SELECT uuid FROM taskflow_ng_jobs WHERE uuid'
                                 ' = :u FOR UPDATE'), {'u': job.uuid})
            started = time.monotonic()
            with pytest.raises(exc.UnclaimableJob, match='being claimed'):
                board.claim(job, 'w')
            assert time.monotonic() - started < 1.0
        board.claim(job, 'w')
        assert board.find_owner(job) == 'w'
    finally:
        engine.dispose()


_CLAIMER = """
import sys, time
from taskflow.jobs.backends import impl_sql
board = impl_sql.SQLJobBoard('killed', {'connection': sys.argv[1],
                                        'namespace': sys.argv[2]})
board.connect()
job = next(board.iterjobs())
board.claim(job, 'doomed', expiry=float(sys.argv[3]))
print(job.claim_token, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize('kind', ['sqlite', 'postgresql'])
def test_the_job_of_a_killed_claimer_is_claimable_within_its_lease(kind, boards):
    board = boards(kind)
    job = board.post('j')
    lease = 1.0
    proc = subprocess.Popen(
        [sys.executable, '-c', _CLAIMER, _sql.database_url(kind),
         board.namespace, str(lease)], stdout=subprocess.PIPE, text=True,
        cwd=str(_services.REPO_ROOT))
    try:
        first = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
    finally:
        proc.kill()
        proc.wait()
    assert board.find_owner(job) == 'doomed'
    while True:
        try:
            board.claim(job, 'heir')
            break
        except exc.UnclaimableJob:
            assert time.monotonic() - killed < lease + 2
            time.sleep(0.05)
    assert job.claim_token > first
    assert [(a.who, a.outcome) for a in board.history(job)] == [
        ('doomed', 'lost'), ('heir', None)]


# -- faults -------------------------------------------------------------------

def _terminate_other_backends(url):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            return conn.execute(sa.text(
                'SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity'
                ' WHERE datname = current_database() AND pid <>'
                ' pg_backend_pid()')).scalar()
    finally:
        engine.dispose()


def test_terminated_postgresql_connections_never_double_claim(boards):
    namespace = uuid.uuid4().hex
    one, two = boards('postgresql', namespace), boards('postgresql', namespace)
    jobs = [one.post('j%d' % i) for i in range(4)]
    one.claim(jobs[0], 'one')
    list(one.wait(timeout=1))  # open its listener connection too
    assert _terminate_other_backends(_sql.database_url('postgresql')) >= 2
    one.consume(jobs[0], 'one')      # retried on a new connection
    one.claim(jobs[1], 'one')
    with pytest.raises(exc.UnclaimableJob, match="'one'"):
        two.claim(jobs[1], 'two')
    assert _terminate_other_backends(_sql.database_url('postgresql')) >= 2
    # The listener comes back as well: a post still wakes the waiter.
    timer = threading.Timer(0.3, lambda: two.post('late'))
    timer.start()
    try:
        woken = {j.name for j in one.wait(timeout=5)}
    finally:
        timer.join()
    assert 'j2' in woken
    assert [len(one.history(j)) for j in jobs[1:]] == [1, 0, 0]


def test_killed_mariadb_connections_are_replaced(boards):
    namespace = uuid.uuid4().hex
    one, two = boards('mysql', namespace), boards('mysql', namespace)
    jobs = [one.post('j%d' % i) for i in range(3)]
    one.claim(jobs[0], 'one')
    engine = sa.create_engine(_sql.database_url('mysql'))
    try:
        with engine.begin() as conn:
            ids = conn.execute(sa.text(
                'SELECT id FROM information_schema.processlist WHERE db ='
                ' DATABASE() AND id <> CONNECTION_ID()')).scalars().all()
            for pid in ids:
                conn.execute(sa.text('KILL CONNECTION %d' % pid))
    finally:
        engine.dispose()
    assert ids
    one.consume(jobs[0], 'one')
    one.claim(jobs[1], 'one')
    with pytest.raises(exc.UnclaimableJob, match="'one'"):
        two.claim(jobs[1], 'two')
    assert [len(one.history(j)) for j in jobs[1:]] == [1, 0]


def test_racing_claimers_under_terminated_connections_claim_once(boards):
    namespace = uuid.uuid4().hex
    one = boards('postgresql', namespace, retry_backoff=0.01)
    two = boards('postgresql', namespace, retry_backoff=0.01)
    jobs = [one.post('j%d' % i) for i in range(50)]
    won = {j.uuid: [] for j in jobs}
    failures = []
    lock = threading.Lock()
    racing = threading.Event()

    def claim_all(board, who):
        for job in jobs:
            try:
                board.claim(job, who)
            except (exc.UnclaimableJob, exc.NotFound):
                continue
            except exc.JobFailure as e:  # gave up on the database: fine
                failures.append(e)
                continue
            with lock:
                won[job.uuid].append(who)

    killed = []

    def terminate():
        while racing.is_set():
            killed.append(_terminate_other_backends(_sql.database_url('postgresql')))
            time.sleep(0.02)

    threads = [threading.Thread(target=claim_all, args=(b, '%s-%d' % (n, i)))
               for i in range(2) for b, n in ((one, 'one'), (two, 'two'))]
    killer = threading.Thread(target=terminate)
    racing.set()
    killer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    racing.clear()
    killer.join()
    assert all(len(w) <= 1 for w in won.values()), won
    for job in jobs:
        attempts = one.history(job)
        assert len(attempts) <= 1
        if won[job.uuid]:
            assert one.find_owner(job) == won[job.uuid][0]
            assert attempts[0].who == won[job.uuid][0]
    assert sum(killed) > 0
    assert sum(len(w) for w in won.values()) >= 25, (won, failures)


@pytest.mark.parametrize('url', [
    'postgresql+psycopg://postgres@127.0.0.1:1/nodb',
    'mysql+pymysql://root@127.0.0.1:1/nodb',
    'sqlite:////nonexistent-dir/x/jobs.db'])
def test_an_unreachable_database_is_a_job_failure(url):
    board = impl_sql.SQLJobBoard('lost', {'connection': url, 'max_retries': 0,
                                          'connect_timeout': 2})
    with pytest.raises(exc.JobFailure, match="Jobboard 'lost': connecting"
                       " failed") as caught:
        board.connect()
    assert isinstance(caught.value.cause, sa.exc.SQLAlchemyError)
    assert not board.connected


# -- waiting ------------------------------------------------------------------

def test_wait_is_woken_by_notify_on_postgresql(boards):
    namespace = uuid.uuid4().hex
    # Polling every 30 s could not explain a quick wake-up.
    waiter = boards('postgresql', namespace, poll_interval=30)
    poster = boards('postgresql', namespace)
    latencies = []
    for _ in range(5):
        posted = []

        def post():
            posted.append(time.monotonic())
            poster.post('j')

        timer = threading.Timer(0.1, post)
        timer.start()
        jobs = list(waiter.wait(timeout=5))
        latencies.append(time.monotonic() - posted[0])
        timer.join()
        for job in jobs:
            waiter.claim(job, 'w')
            waiter.consume(job, 'w')
    assert waiter._listener is not None and waiter._listener.listening
    assert sorted(latencies)[2] < 0.3, latencies


@pytest.mark.parametrize('kind', ['sqlite', 'mysql'])
def test_wait_polls_elsewhere(kind, boards):
    namespace = uuid.uuid4().hex
    waiter = boards(kind, namespace, poll_interval=0.05)
    poster = boards(kind, namespace)
    timer = threading.Timer(0.2, lambda: poster.post('j'))
    timer.start()
    started = time.monotonic()
    try:
        assert [j.name for j in waiter.wait(timeout=5)] == ['j']
    finally:
        timer.join()
    assert time.monotonic() - started < 1.5
    assert waiter._listener is None   # no LISTEN here: polling


def _terminate_listeners(url):
    """``pg_terminate_backend`` of the database's LISTEN connections."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            return conn.execute(sa.text(
                'SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity'
                " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
                ' AND pid <> pg_backend_pid()')).scalar()
    finally:
        engine.dispose()


def _until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_notifier_announces_posts_of_every_board_on_postgresql(boards):
    import queue
    from taskflow.jobs import base
    namespace = uuid.uuid4().hex
    watcher, poster = boards('postgresql', namespace), boards('postgresql', namespace)
    events: queue.Queue = queue.Queue()
    watcher.notifier.register(base.POSTED, lambda event_type, details: events.put(
        (details['job'].name, details['job'].uuid, details['job'].details)))
    big = {'blob': 'x' * 10000}   # too big for a NOTIFY payload: read back
    posted = [poster.post('a', details={'n': 1}), watcher.post('b'),
              poster.post('big', details=big)]
    seen = [events.get(timeout=5) for _ in posted]
    # Its own posts too, each announced once (by the listener only).
    assert seen == [('a', posted[0].uuid, {'n': 1}), ('b', posted[1].uuid, {}),
                    ('big', posted[2].uuid, big)]
    time.sleep(0.2)
    assert events.empty()
    watcher.close()  # stops its listener thread
    assert not any(t.name == 'sql-jobboard-listener-%s' % watcher.name
                   for t in threading.enumerate())


def test_an_idle_conductor_claims_a_post_at_once_on_postgresql(boards, tmp_path):
    # The conductor idles 60 s between listings: only the LISTEN thread
    # feeding the board's notifier explains a claim within a second; after
    # pg_terminate_backend of that connection, posts still wake it.
    from taskflow.conductors import backends as conductor_backends
    from tests.conductors import _support
    from tests.conductors import flows
    persistence = _support.make_persistence(_support.sqlite_url(tmp_path))
    namespace = uuid.uuid4().hex
    board = boards('postgresql', namespace, persistence=persistence)
    poster = boards('postgresql', namespace, persistence=persistence)
    conductor = conductor_backends.fetch('blocking', 'idle', board,
                                         persistence=persistence, engine='serial',
                                         wait_timeout=60)
    started = {}
    conductor.notifier.register('running_start', lambda event, details: started.setdefault(
        details['job'].name, time.monotonic()))
    runner = threading.Thread(target=conductor.run, daemon=True)
    runner.start()

    def post(name):
        posted = time.monotonic()
        _support.post_job(poster, persistence, flows.steps,
                          {'ledger': str(tmp_path / 'ledger')}, name=name)
        return posted

    try:
        time.sleep(0.5)  # idle now
        for name in ('first', 'second'):
            posted = post(name)
            assert _until(lambda: name in started, 5), name
            assert started[name] - posted < 1.0, started[name] - posted
        assert _terminate_listeners(_sql.database_url('postgresql')) >= 1
        during = post('during')   # maybe unheard: announced on reconnection
        assert _until(lambda: 'during' in started, 5)
        assert started['during'] - during < 2.0
        assert _until(lambda: board._listener.listening, 5)
        posted = post('after')
        assert _until(lambda: 'after' in started, 5)
        assert started['after'] - posted < 1.0
    finally:
        conductor.stop()
        assert conductor.wait(30)
    assert board._listener.listening


def test_the_listener_backs_off_while_the_database_is_away():
    from taskflow.jobs.backends import _sql_notify
    engine = sa.create_engine('postgresql+psycopg://postgres@127.0.0.1:1/nodb',
                              connect_args={'connect_timeout': 2})
    attempts = []
    sa.event.listen(engine, 'do_connect', lambda *args: attempts.append(time.monotonic()))
    listener = _sql_notify.Listener(engine, 'taskflow_jobs_x', 'away',
                                    lambda uuids: None, lambda: None)
    try:
        assert listener.start(timeout=2) is False
        time.sleep(1.5)
        # 0.1 s doubling: a handful of attempts, never a spin.
        assert 2 <= len(attempts) <= 6, attempts
        assert not listener.wait_for_notification(listener.generation, 0.05)
    finally:
        started = time.monotonic()
        listener.close()
        assert time.monotonic() - started < 1.0
        engine.dispose()
    assert not any(t.name == 'sql-jobboard-listener-away'
                   for t in threading.enumerate())


# -- throughput ---------------------------------------------------------------

@pytest.mark.parametrize('conf', [{}, {'synchronous_commit': 'off'}],
                         ids=['durable', 'async-commit'])
def test_post_claim_consume_throughput_on_postgresql(boards, conf, capsys):
    board = boards('postgresql', **conf)
    count = 100
    started = time.perf_counter()
    for i in range(count):
        board.post('j%d' % i)
    done = 0
    while done < count:
        for job in board.iterjobs(only_unclaimed=True):
            board.claim(job, 'w')
            board.consume(job, 'w')
            done += 1
    rate = count / (time.perf_counter() - started)
    with capsys.disabled():
        print('\nSQL board on PostgreSQL (%s): %.0f jobs/s post->claim->consume'
              % (conf or 'durable', rate))
    assert rate > 20  # a sanity floor on a shared machine; see docs/jobboards.md
