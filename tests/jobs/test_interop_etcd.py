"""taskflow-ng and the original TaskFlow share one etcd board.

The original runs through the oracle (a black box): a small driver program
takes a list of operations and prints what it saw as JSON. Each test uses
its own etcd path.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import pytest

from taskflow import exceptions as exc
from taskflow.jobs.backends import impl_etcd
from tests import _services
from tests.jobs.kinds import etcd as etcd_kind

pytestmark = pytest.mark.oracle

# Runs on the original: argv = host, port, path, JSON list of operations.
DRIVER = r'''
import json, sys
from taskflow.jobs import backends
from taskflow import exceptions as exc
host, port, path, ops = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
board = backends.fetch('oracle', {'board': 'etcd', 'host': host, 'port': port, 'path': path})
board.connect()
out = []
def find(job_uuid):
    for job in board.iterjobs(ensure_fresh=True):
        if job.uuid == job_uuid:
            return job
    raise exc.NotFound('no job %s' % job_uuid)
try:
    for op, *args in ops:
        try:
            if op == 'post':
                name, details, priority = args
                job = board.post(name, details=details, priority=priority)
                out.append(job.uuid)
            elif op == 'list':
                out.append(sorted([j.uuid, j.name, j.details, j.priority.value, j.state]
                                  for j in board.iterjobs(ensure_fresh=True)))
            elif op == 'count':
                out.append(board.job_count)
            elif op == 'owner':
                out.append(board.find_owner(find(args[0])))
            elif op == 'claim' and len(args) == 3:
                board.claim(find(args[0]), args[1], expiry=args[2])
                out.append('ok')
            elif op in ('claim', 'consume', 'abandon'):
                getattr(board, op)(find(args[0]), args[1])
                out.append('ok')
            else:
                raise ValueError(op)
        except exc.TaskFlowException as e:
            out.append(['error', type(e).__name__, str(e)])
finally:
    board.close()
print(json.dumps(out))
'''


def oracle(board: impl_etcd.EtcdJobBoard, *ops: list) -> list:
    """Run ``ops`` on the original's board at ``board``'s path."""
    host, port = _services.endpoint('etcd')
    proc = _services.run_oracle(DRIVER, host, str(port), board.path,
                                json.dumps(ops), timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def board():
    board = etcd_kind.make_board('interop-%s' % uuid.uuid4().hex[:8])
    board.connect()
    yield board
    with contextlib.suppress(Exception):
        etcd_kind.cleanup(board)
    board.close()


def by_uuid(board):
    return {j.uuid: j for j in board.iterjobs(ensure_fresh=True)}


def test_ng_lists_claims_consumes_and_abandons_the_originals_jobs(board):
    first, second, third = oracle(
        board, ['post', 'a', {'store': {'x': 1}}, 'NORMAL'],
        ['post', 'b', {}, 'HIGH'], ['post', 'c', {}, 'LOW'])
    jobs = by_uuid(board)
    assert sorted((j.uuid, j.name, json.dumps(j.details), j.priority.value)
                  for j in jobs.values()) == sorted([
        (first, 'a', '{"store": {"x": 1}}', 'NORMAL'),
        (second, 'b', '{}', 'HIGH'), (third, 'c', '{}', 'LOW')])
    board.claim(jobs[first], 'ng-1', expiry=30)
    board.claim(jobs[second], 'ng-2', expiry=30)
    # The original sees the claims as owners and cannot take them.
    out = oracle(board, ['owner', first], ['claim', first, 'orig'],
                 ['owner', third])
    assert out[0] == 'ng-1'
    assert out[1][:2] == ['error', 'UnclaimableJob'] and 'ng-1' in out[1][2]
    assert out[2] is None
    board.consume(jobs[first], 'ng-1')
    board.abandon(jobs[second], 'ng-2')
    listed = oracle(board, ['list'], ['count'])
    assert listed == [sorted([[second, 'b', {}, 'HIGH', 'UNCLAIMED'],
                              [third, 'c', {}, 'LOW', 'UNCLAIMED']]), 2]


def test_the_original_lists_claims_consumes_and_abandons_ng_jobs(board):
    a = board.post('a', details={'store': {'cups': 2}})
    b = board.post('b', priority='VERY_HIGH')
    c = board.post('c')
    assert oracle(board, ['list']) == [sorted([
        [a.uuid, 'a', {'store': {'cups': 2}}, 'NORMAL', 'UNCLAIMED'],
        [b.uuid, 'b', {}, 'VERY_HIGH', 'UNCLAIMED'],
        [c.uuid, 'c', {}, 'NORMAL', 'UNCLAIMED']])]
    assert oracle(board, ['claim', a.uuid, 'orig-1'],
                  ['claim', b.uuid, 'orig-2']) == ['ok', 'ok']
    # ng sees the original's claims as owners and cannot take them.
    assert board.find_owner(a) == 'orig-1' and a.state == 'CLAIMED'
    with pytest.raises(exc.UnclaimableJob, match='orig-1'):
        board.claim(a, 'ng')
    with pytest.raises(exc.JobFailure):
        board.consume(a, 'ng')
    assert [(t.who, t.outcome) for t in board.history(a)] == [('orig-1', None)]
    assert oracle(board, ['consume', a.uuid, 'orig-1'],
                  ['abandon', b.uuid, 'orig-2']) == ['ok', 'ok']
    assert a.state == 'COMPLETE'
    assert b.state == 'UNCLAIMED' and board.find_owner(b) is None
    board.claim(b, 'ng')
    board.consume(b, 'ng')
    assert [j.uuid for j in board.iterjobs(ensure_fresh=True)] == [c.uuid]


def test_an_originals_expiring_claim_frees_the_job_for_ng(board):
    job = board.post('j')
    # Long enough to outlive the oracle process's exit on a loaded machine.
    assert oracle(board, ['claim', job.uuid, 'orig', 5]) == ['ok']
    assert board.find_owner(job) == 'orig'
    with pytest.raises(exc.UnclaimableJob, match='orig'):
        board.claim(job, 'ng')
    deadline = time.monotonic() + 15
    while board.find_owner(job) is not None:
        assert time.monotonic() < deadline, "the original's lease never ended"
        time.sleep(0.1)
    board.claim(job, 'ng', expiry=30)
    attempts = board.history(job)
    assert [(a.who, a.outcome) for a in attempts] == [('ng', None)]
    assert oracle(board, ['owner', job.uuid]) == ['ng']
    board.consume(job, 'ng')


def test_ng_history_and_trash_are_never_listed_by_the_original(board):
    keep = board.post('keep')
    poison = board.post('poison')
    board.claim(keep, 'ng', expiry=30)
    board.abandon(keep, 'ng', reason='stopping')
    board.claim(poison, 'ng', expiry=30)
    board.trash(poison, 'ng', reason='broken')
    board.claim(keep, 'ng', expiry=30)
    assert [t.outcome for t in board.history(keep)] == ['abandoned', None]
    out = oracle(board, ['list'], ['count'], ['owner', keep.uuid])
    assert out == [[[keep.uuid, 'keep', {}, 'NORMAL', 'CLAIMED']], 1, 'ng']
    assert [j.uuid for j in board.iter_trashed()] == [poison.uuid]


def test_a_mixed_pair_claims_every_job_once(board):
    """Both sides race to claim the same jobs: each is won exactly once."""
    posted = [board.post('j%d' % i).uuid for i in range(10)]
    ops = [['claim', u, 'orig'] for u in posted]
    import threading

    ng_won = []

    def ng_claims():
        for job in list(board.iterjobs(ensure_fresh=True)):
            try:
                board.claim(job, 'ng', expiry=30)
                ng_won.append(job.uuid)
            except (exc.UnclaimableJob, exc.NotFound):
                pass

    thread = threading.Thread(target=ng_claims)
    thread.start()
    out = oracle(board, *ops)
    thread.join()
    orig_won = [u for u, r in zip(posted, out) if r == 'ok']
    assert sorted(orig_won + ng_won) == sorted(posted)
    owners = {j.uuid: board.find_owner(j)
              for j in board.iterjobs(ensure_fresh=True)}
    assert all(owners[u] == 'orig' for u in orig_won)
    assert all(owners[u] == 'ng' for u in ng_won)


def test_posting_at_once_on_both_sides_keeps_every_job(board):
    import threading

    ng_posted: list = []
    done = threading.Event()

    def ng_posts():  # until the original is done, so the two overlap
        while not done.is_set():
            ng_posted.append(board.post('ng-%d' % len(ng_posted)).uuid)

    thread = threading.Thread(target=ng_posts)
    thread.start()
    try:
        orig_posted = oracle(board, *[['post', 'orig-%d' % i, {}, 'NORMAL']
                                      for i in range(30)])
    finally:
        done.set()
        thread.join()
    listed = list(board.iterjobs(ensure_fresh=True))
    assert sorted(j.uuid for j in listed) == sorted(orig_posted + ng_posted)
    assert len({j.sequence for j in listed}) == len(listed)


def test_ng_is_told_of_the_originals_posts_and_consumes(board):
    import threading

    from taskflow.jobs import base

    seen, arrived = [], threading.Condition()

    def on_event(event, details):
        with arrived:
            seen.append((event, details['job'].uuid, details['job'].name))
            arrived.notify_all()

    board.notifier.register(base.POSTED, on_event)
    board.notifier.register(base.REMOVAL, on_event)
    assert board._watcher.watching.wait(10)
    [posted] = oracle(board, ['post', 'from-orig', {}, 'NORMAL'])
    job = by_uuid(board)[posted]
    assert oracle(board, ['claim', posted, 'orig'],
                  ['consume', posted, 'orig']) == ['ok', 'ok']
    with arrived:
        assert arrived.wait_for(lambda: len(seen) >= 2, timeout=10)
    assert seen == [(base.POSTED, job.uuid, 'from-orig'),
                    (base.REMOVAL, job.uuid, 'from-orig')]
