"""The original TaskFlow and taskflow-ng share one ZooKeeper board.

The original (6.5.0, through ``scripts/oracle``) runs as a long-lived agent
process reading one JSON command per line and answering one JSON line, so
its claims (ephemeral nodes of its session) stay held while taskflow-ng
looks at them. Both directions are checked: each side lists the other's
postings with their fields, sees the other's claim as the owner, and
claims, consumes, abandons and trashes the other's jobs; taskflow-ng's extra
data (lock keys, history nodes) is never listed by the original.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
import uuid

import pytest

from taskflow import exceptions as exc
from taskflow.jobs import base
from taskflow.jobs.backends import impl_zookeeper
from taskflow.persistence import models
from tests import _services

pytestmark = pytest.mark.oracle

AGENT = r'''
import json, sys
from taskflow import exceptions
from taskflow.jobs import backends
from taskflow.persistence import models

board = backends.fetch('oracle', {'board': 'zookeeper', 'hosts': sys.argv[1],
                                  'path': sys.argv[2]})
board.connect()

def find(job_uuid):
    for job in board.iterjobs(ensure_fresh=True):
        if job.uuid == job_uuid:
            return job
    raise exceptions.NotFound('oracle: no job %s listed' % job_uuid)

def describe(job):
    return {'uuid': job.uuid, 'name': job.name, 'details': job.details,
            'priority': job.priority.value, 'state': job.state,
            'book_uuid': job.book_uuid, 'book_name': job.book_name,
            'owner': board.find_owner(job)}

def run(cmd):
    op = cmd['op']
    if op == 'post':
        book = None
        if cmd.get('book'):
            book = models.LogBook(cmd['book'])
        job = board.post(cmd['name'], book=book, details=cmd.get('details'),
                         priority=cmd.get('priority', 'NORMAL'))
        return describe(job)
    if op == 'list':
        return [describe(j) for j in board.iterjobs(
            only_unclaimed=cmd.get('only_unclaimed', False),
            ensure_fresh=True)]
    if op == 'count':
        board.iterjobs(ensure_fresh=True)
        return board.job_count
    if op in ('claim', 'consume', 'abandon', 'trash'):
        getattr(board, op)(find(cmd['uuid']), cmd['who'])
        return None
    if op == 'owner':
        return board.find_owner(find(cmd['uuid']))
    if op == 'drain':  # claim and consume until the board is empty
        mine = []
        while True:
            jobs = list(board.iterjobs(only_unclaimed=True, ensure_fresh=True))
            if not jobs and not list(board.iterjobs(ensure_fresh=True)):
                return mine
            for job in jobs:
                try:
                    board.claim(job, cmd['who'])
                except (exceptions.UnclaimableJob, exceptions.NotFound):
                    continue
                board.consume(job, cmd['who'])
                mine.append(job.uuid)
    raise ValueError(op)

for line in sys.stdin:
    cmd = json.loads(line)
    try:
        reply = {'ok': run(cmd)}
    except Exception as e:
        reply = {'error': type(e).__name__, 'message': str(e)}
    sys.stdout.write(json.dumps(reply) + '\n')
    sys.stdout.flush()
board.close()
'''


class Original:
    """The original's board, in an agent process driven line by line."""

    def __init__(self, hosts: str, path: str) -> None:
        tool = _services.require_oracle()
        self._proc = subprocess.Popen(
            [tool, '-c', AGENT, hosts, path], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def __call__(self, op: str, **args):
        reply = self.call(op, **args)
        if 'error' in reply:
            pytest.fail('the original failed %s %s: %s: %s'
                        % (op, args, reply['error'], reply['message']))
        return reply['ok']

    def call(self, op: str, **args) -> dict:
        """The raw reply: ``{'ok': ...}`` or ``{'error': ..., 'message': ...}``."""
        self._proc.stdin.write(json.dumps(dict(args, op=op)) + '\n')
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            pytest.fail('the original agent died: %s'
                        % self._proc.stderr.read()[-3000:])
        return json.loads(line)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@pytest.fixture
def shared():
    """``(ng_board, original)`` on one fresh path."""
    host, port = _services.require_endpoint('zookeeper')
    hosts = '%s:%s' % (host, port)
    path = '/taskflow-interop-%s/jobs' % uuid.uuid4().hex[:10]
    board = impl_zookeeper.ZookeeperJobBoard(
        'ng', {'hosts': hosts, 'path': path})
    board.connect()
    original = Original(hosts, path)
    try:
        yield board, original
    finally:
        original.close()
        with contextlib.suppress(Exception):
            board._client.delete(path.rsplit('/', 1)[0], recursive=True)
        board.close()


def _by_uuid(board):
    return {j.uuid: j for j in board.iterjobs(ensure_fresh=True)}


def test_taskflow_ng_works_the_originals_jobs(shared):
    board, original = shared
    held = original('post', name='held', details={'store': {'a': 1}},
                    book='the-book', priority='HIGH')
    done = original('post', name='done')
    given_back = original('post', name='given-back', priority='low')
    broken = original('post', name='broken')
    original('claim', uuid=held['uuid'], who='orig-conductor')

    jobs = _by_uuid(board)
    assert set(jobs) == {held['uuid'], done['uuid'], given_back['uuid'],
                         broken['uuid']}
    seen = jobs[held['uuid']]
    assert (seen.name, seen.details, seen.priority) == (
        'held', {'store': {'a': 1}}, base.JobPriority.HIGH)
    assert (seen.book_uuid, seen.book_name) == (held['book_uuid'], 'the-book')
    assert jobs[given_back['uuid']].priority is base.JobPriority.LOW
    # The original's claim is an owner here, and excludes us.
    assert board.find_owner(seen) == 'orig-conductor'
    assert seen.state == 'CLAIMED'
    with pytest.raises(exc.UnclaimableJob, match='orig-conductor'):
        board.claim(seen, 'ng-conductor')
    assert held['uuid'] not in {
        j.uuid for j in board.iterjobs(only_unclaimed=True)}

    board.claim(jobs[done['uuid']], 'ng-conductor')
    assert original('owner', uuid=done['uuid']) == 'ng-conductor'
    assert original.call('claim', uuid=done['uuid'],
                         who='orig-conductor')['error'] == 'UnclaimableJob'
    board.consume(jobs[done['uuid']], 'ng-conductor')

    board.claim(jobs[given_back['uuid']], 'ng-conductor')
    board.abandon(jobs[given_back['uuid']], 'ng-conductor')
    original('claim', uuid=given_back['uuid'], who='orig-conductor')

    board.claim(jobs[broken['uuid']], 'ng-conductor')
    board.trash(jobs[broken['uuid']], 'ng-conductor', reason='poison')

    listed = {j['uuid']: j for j in original('list')}
    assert set(listed) == {held['uuid'], given_back['uuid']}
    assert listed[given_back['uuid']]['owner'] == 'orig-conductor'
    assert original('count') == 2
    trashed = [j for j in board.iter_trashed() if j.uuid == broken['uuid']]
    assert [a.outcome for a in board.history(trashed[0])] == ['trashed']

    original('consume', uuid=held['uuid'], who='orig-conductor')
    assert jobs[held['uuid']].state == 'COMPLETE'


def test_the_original_works_taskflow_ngs_jobs(shared):
    board, original = shared
    book = models.LogBook('ng-book')
    held = board.post('held', book=book, details={'store': {'cups': 2}},
                      priority='VERY_HIGH')
    done = board.post('done')
    given_back = board.post('given-back')
    broken = board.post('broken')
    board.claim(held, 'ng-conductor', expiry=60)
    board.renew_claim(held, 'ng-conductor', expiry=60)
    # A claim ended by taskflow-ng leaves history behind: still invisible.
    board.claim(given_back, 'ng-conductor')
    board.abandon(given_back, 'ng-conductor', reason='stopping')

    listed = {j['uuid']: j for j in original('list')}
    assert set(listed) == {held.uuid, done.uuid, given_back.uuid, broken.uuid}
    assert original('count') == 4
    assert listed[held.uuid] == {
        'uuid': held.uuid, 'name': 'held', 'details': {'store': {'cups': 2}},
        'priority': 'VERY_HIGH', 'state': 'CLAIMED', 'book_uuid': book.uuid,
        'book_name': 'ng-book', 'owner': 'ng-conductor'}
    assert listed[given_back.uuid]['state'] == 'UNCLAIMED'
    unclaimed = {j['uuid'] for j in original('list', only_unclaimed=True)}
    assert unclaimed == {done.uuid, given_back.uuid, broken.uuid}
    reply = original.call('claim', uuid=held.uuid, who='orig-conductor')
    assert reply['error'] == 'UnclaimableJob'

    original('claim', uuid=done.uuid, who='orig-conductor')
    assert board.find_owner(done) == 'orig-conductor'
    with pytest.raises(exc.UnclaimableJob, match='orig-conductor'):
        board.claim(done, 'ng-conductor')
    original('consume', uuid=done.uuid, who='orig-conductor')
    assert done.state == 'COMPLETE'

    original('claim', uuid=given_back.uuid, who='orig-conductor')
    original('abandon', uuid=given_back.uuid, who='orig-conductor')
    board.claim(given_back, 'ng-conductor')
    assert [(a.who, a.outcome) for a in board.history(given_back)] == [
        ('ng-conductor', 'abandoned'), ('ng-conductor', None)]
    board.consume(given_back, 'ng-conductor')

    original('claim', uuid=broken.uuid, who='orig-conductor')
    original('trash', uuid=broken.uuid, who='orig-conductor')
    assert broken.uuid in {j.uuid for j in board.iter_trashed()}

    assert set(_by_uuid(board)) == {held.uuid}
    assert {j['uuid'] for j in original('list')} == {held.uuid}
    board.consume(held, 'ng-conductor')
    assert original('list') == []


def test_an_originals_claim_ends_with_its_process(shared):
    board, original = shared
    job = board.post('j')
    original('claim', uuid=job.uuid, who='orig-conductor')
    assert board.find_owner(job) == 'orig-conductor'
    original.close()  # the original's session closes: its lock goes
    assert board.find_owner(job) is None
    board.claim(job, 'ng-conductor')
    board.consume(job, 'ng-conductor')


def test_racing_the_original_each_job_is_consumed_once(shared):
    board, original = shared
    posted = set()
    for i in range(15):  # half posted by each side
        posted.add(board.post('ng-%d' % i).uuid)
        posted.add(original('post', name='orig-%d' % i)['uuid'])
    mine: list[str] = []

    def drain():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = list(board.iterjobs(only_unclaimed=True))
            if not jobs and not list(board.iterjobs()):
                return
            for job in jobs:
                try:
                    board.claim(job, 'ng-conductor')
                except (exc.UnclaimableJob, exc.NotFound):
                    continue
                board.consume(job, 'ng-conductor')
                mine.append(job.uuid)

    racer = threading.Thread(target=drain)
    racer.start()
    theirs = original('drain', who='orig-conductor')
    racer.join()
    assert not set(mine) & set(theirs)
    assert sorted(mine + theirs) == sorted(posted)
    assert original('list') == [] and list(board.iterjobs()) == []
