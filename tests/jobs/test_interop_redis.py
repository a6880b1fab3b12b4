"""taskflow-ng's Redis board and the original's share one namespace: each
lists, claims, consumes, abandons and trashes the other's jobs, and sees the
other's claims as owners. The original runs as a black box through the
oracle tool; the programs print JSON that the tests check."""

from __future__ import annotations

import contextlib
import datetime
import json
import textwrap
import time
import uuid

import pytest

from taskflow import exceptions as exc
from taskflow.jobs.backends import impl_redis
from taskflow.persistence import models
from tests import _services
from tests.jobs.kinds import redis as kind

pytestmark = pytest.mark.oracle

# Runs on the original: connect to the namespace given as argv[1], run the
# body, print the dict ``out`` as JSON.
_PROLOGUE = """
import json, sys, time
from taskflow import exceptions as exc
from taskflow.jobs import backends
from taskflow.persistence import models
host, port, ns = sys.argv[1], int(sys.argv[2]), sys.argv[3]
board = backends.fetch('original', {'board': 'redis', 'host': host,
                                    'port': port, 'namespace': ns})
board.connect()
out = {}
def by_name():
    return {j.name: j for j in board.iterjobs()}
def owner(job):
    # The original's find_owner fails on an unclaimed job: ask only
    # about claimed ones.
    return board.find_owner(job) if job.state == 'CLAIMED' else None
"""
_EPILOGUE = """
board.close()
print(json.dumps(out, default=str))
"""


@pytest.fixture
def namespace():
    host, port = _services.require_endpoint('redis')
    _services.require_oracle()
    name = 'interop-%s' % uuid.uuid4().hex[:8]
    board = kind.make_board(name)
    board.connect()
    yield board
    with contextlib.suppress(Exception):
        kind.cleanup(board)
    board.close()


def run_original(board: impl_redis.RedisJobBoard, body: str) -> dict:
    host, port = _services.endpoint('redis')
    program = _PROLOGUE + textwrap.dedent(body) + _EPILOGUE
    proc = _services.run_oracle(program, host, str(port),
                                board.namespace.decode(), timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def by_name(board: impl_redis.RedisJobBoard) -> dict:
    return {j.name: j for j in board.iterjobs()}


def test_jobs_the_original_posts_are_worked_by_taskflow_ng(namespace):
    board = namespace
    posted = run_original(board, """
        book = models.LogBook('the-book')
        jobs = [board.post('consume-me', book=book,
                           details={'store': {'cups': 2}}, priority='HIGH'),
                board.post('abandon-me'), board.post('trash-me'),
                board.post('held-by-original'), board.post('left-to-expire')]
        board.claim(jobs[3], 'original-owner')
        board.claim(jobs[4], 'original-gone', expiry=1)
        out = {j.name: j.uuid for j in jobs}
        out['book'] = book.uuid
    """)
    jobs = by_name(board)
    assert {name: j.uuid for name, j in jobs.items()} == {
        k: v for k, v in posted.items() if k != 'book'}
    first = jobs['consume-me']
    assert first.details == {'store': {'cups': 2}}
    assert first.priority.value == 'HIGH'
    assert (first.book_uuid, first.book_name) == (posted['book'], 'the-book')
    assert isinstance(first.created_on, datetime.datetime)

    # The original's claims are owners here.
    held = jobs['held-by-original']
    assert held.state == 'CLAIMED'
    assert board.find_owner(held) == 'original-owner'
    with pytest.raises(exc.UnclaimableJob, match='original-owner'):
        board.claim(held, 'ng')
    with pytest.raises(exc.JobFailure, match='original-owner'):
        board.consume(held, 'ng')

    # Its job whose holder went away is claimable once the claim expired.
    gone = jobs['left-to-expire']
    deadline = time.monotonic() + 10
    while board.find_owner(gone) is not None:
        assert time.monotonic() < deadline, 'the claim never expired'
        time.sleep(0.1)
    board.claim(gone, 'ng')

    for name in ('consume-me', 'abandon-me', 'trash-me'):
        board.claim(jobs[name], 'ng')
    board.consume(jobs['consume-me'], 'ng')
    board.abandon(jobs['abandon-me'], 'ng', reason='handing back')
    board.trash(jobs['trash-me'], 'ng', reason='broken')

    seen = run_original(board, """
        jobs = by_name()
        out['listed'] = sorted(jobs)
        out['states'] = {n: j.state for n, j in jobs.items()}
        out['owners'] = {n: owner(j) for n, j in jobs.items()}
        try:
            board.claim(jobs['left-to-expire'], 'original')
        except exc.UnclaimableJob as e:
            out['unclaimable'] = str(e)
        board.claim(jobs['abandon-me'], 'original')
        board.consume(jobs['abandon-me'], 'original')
        out['after'] = sorted(by_name())
    """)
    assert seen['listed'] == ['abandon-me', 'held-by-original',
                              'left-to-expire']
    assert seen['states'] == {'abandon-me': 'UNCLAIMED',
                              'held-by-original': 'CLAIMED',
                              'left-to-expire': 'CLAIMED'}
    assert seen['owners']['left-to-expire'] == 'ng'
    assert 'already claimed by ng' in seen['unclaimable']
    assert seen['after'] == ['held-by-original', 'left-to-expire']
    assert [j.name for j in board.iter_trashed()] == ['trash-me']
    assert [(a.who, a.outcome, a.reason)
            for a in board.history(jobs['trash-me'])] == [
        ('ng', 'trashed', 'broken')]


def test_jobs_taskflow_ng_posts_are_worked_by_the_original(namespace):
    board = namespace
    book = models.LogBook('ng-book')
    when = datetime.datetime(2021, 5, 6, 7, 8, 9, 10,
                             tzinfo=datetime.timezone.utc)
    consume = board.post('consume-me', book=book,
                         details={'store': {'n': 1}, 'when': when},
                         priority='VERY_LOW')
    board.post('abandon-me')
    board.post('trash-me')
    held = board.post('held-by-ng')
    board.claim(held, 'ng-owner', expiry=60)

    seen = run_original(board, """
        jobs = by_name()
        out['listed'] = sorted(jobs)
        first = jobs['consume-me']
        out['first'] = {'uuid': first.uuid, 'details': first.details,
                        'priority': first.priority.value,
                        'book': [first.book_uuid, first.book_name],
                        'sequence': first.sequence,
                        'created_on': type(first.created_on).__name__}
        held = jobs['held-by-ng']
        out['held'] = [held.state, owner(held), held.expires_in()]
        try:
            board.claim(held, 'original')
        except exc.UnclaimableJob as e:
            out['unclaimable'] = str(e)
        try:
            board.consume(held, 'original')
        except exc.JobFailure as e:
            out['not_owner'] = str(e)
        for name in ('consume-me', 'abandon-me', 'trash-me'):
            board.claim(jobs[name], 'original')
        board.consume(jobs['consume-me'], 'original')
        board.abandon(jobs['abandon-me'], 'original')
        board.trash(jobs['trash-me'], 'original')
        board.claim(jobs['abandon-me'], 'original-again')
    """)
    assert seen['listed'] == ['abandon-me', 'consume-me', 'held-by-ng',
                              'trash-me']
    assert seen['first'] == {
        'uuid': consume.uuid,
        'details': {'store': {'n': 1}, 'when': str(when)},
        'priority': 'VERY_LOW', 'book': [book.uuid, 'ng-book'],
        'sequence': consume.sequence, 'created_on': 'datetime'}
    state, owner, expires_in = seen['held']
    assert (state, owner) == ('CLAIMED', 'ng-owner')
    assert 50 < expires_in <= 60
    assert 'already claimed by ng-owner' in seen['unclaimable']
    assert 'actively owned by ng-owner' in seen['not_owner']

    jobs = by_name(board)
    assert sorted(jobs) == ['abandon-me', 'held-by-ng']
    assert board.find_owner(jobs['abandon-me']) == 'original-again'
    with pytest.raises(exc.UnclaimableJob, match='original-again'):
        board.claim(jobs['abandon-me'], 'ng')
    assert [j.name for j in board.iter_trashed()] == ['trash-me']
    assert consume.state == 'COMPLETE'
    board.consume(held, 'ng-owner')


def test_both_sides_racing_for_the_same_jobs_take_each_once(namespace):
    import subprocess
    import threading

    board = namespace
    run_original(board, """
        for i in range(25):
            board.post('original-%d' % i)
    """)
    for i in range(25):
        board.post('ng-%d' % i)
    everything = {j.uuid for j in board.iterjobs()}
    host, port = _services.endpoint('redis')
    racer = _PROLOGUE + textwrap.dedent("""
        print('ready', flush=True)
        taken = []
        while board.job_count:
            for job in board.iterjobs(only_unclaimed=True):
                try:
                    board.claim(job, 'original')
                except (exc.UnclaimableJob, exc.NotFound):
                    continue
                board.consume(job, 'original')
                taken.append(job.uuid)
        out['taken'] = taken
    """) + _EPILOGUE
    proc = subprocess.Popen([_services.require_oracle(), '-c', racer, host,
                             str(port), board.namespace.decode()],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'ready'
    taken: list[str] = []

    def race():
        while board.job_count:
            for job in board.iterjobs(only_unclaimed=True):
                try:
                    board.claim(job, 'ng')
                except (exc.UnclaimableJob, exc.NotFound):
                    continue
                board.consume(job, 'ng')
                taken.append(job.uuid)

    thread = threading.Thread(target=race)
    thread.start()
    thread.join(60)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    theirs = json.loads(out.strip().splitlines()[-1])['taken']
    assert len(everything) == 50
    assert sorted(taken + theirs) == sorted(everything)  # each exactly once
    print('taken: taskflow-ng %d, original %d' % (len(taken), len(theirs)))
    assert board.job_count == 0
