"""What every jobboard promises, run against each kind on its real server.

Each kind registers itself with one small module in ``tests/jobs/kinds/``
defining ``make_board(name, persistence=None)`` (a board, not yet connected,
whose namespace/path is derived from ``name``: boards made with the same name
share their jobs, as boards of several processes would; it skips, or fails
under CI, when its server is missing) and ``cleanup(board)`` (removes what
the namespace holds on the server).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import pkgutil
import threading
import time
import uuid

import pytest

from taskflow import exceptions as exc
from taskflow.jobs import base
from taskflow.persistence import backends as persistence_backends
from taskflow.persistence import models
from tests.jobs import kinds

KINDS = sorted(info.name for info in pkgutil.iter_modules(kinds.__path__)
               if not info.name.startswith('_'))


@pytest.fixture(params=KINDS)
def make(request):
    """``make(persistence=None)`` -> a connected board of the kind under test."""
    kind = importlib.import_module('tests.jobs.kinds.%s' % request.param)
    name = 'contract-%s' % uuid.uuid4().hex[:8]  # one namespace per test
    made = []

    def _make(persistence=None):
        board = kind.make_board(name, persistence=persistence)
        board.connect()
        made.append(board)
        return board

    yield _make
    for board in made:
        with contextlib.suppress(Exception):
            kind.cleanup(board)
        with contextlib.suppress(Exception):
            board.close()


@pytest.fixture
def board(make):
    return make()


def test_a_posted_job_is_listed_unclaimed(board):
    job = board.post('make-coffee', details={'store': {'cups': 2}})
    assert job.name == 'make-coffee'
    assert job.details == {'store': {'cups': 2}}
    assert job.state == 'UNCLAIMED'
    assert job.priority is base.JobPriority.NORMAL
    assert isinstance(job.created_on, datetime.datetime)
    assert str(job) == '%s: make-coffee (priority=JobPriority.NORMAL, uuid=%s,' \
        " details={'store': {'cups': 2}})" % (type(job).__name__, job.uuid)
    listed = list(board.iterjobs(ensure_fresh=True))
    assert [j.uuid for j in listed] == [job.uuid]
    assert listed[0].details == {'store': {'cups': 2}}
    assert board.job_count == 1
    assert board.find_owner(job) is None


def test_every_job_is_listed_whatever_its_priority(board):
    posted = {board.post('j%d' % i, priority=p).uuid
              for i, p in enumerate(['low', 'VERY_HIGH', base.JobPriority.HIGH,
                                     'normal', 'very_low'])}
    listed = list(board.iterjobs(ensure_fresh=True))
    assert {j.uuid for j in listed} == posted
    assert board.job_count == 5


def test_claim_makes_an_owner_and_excludes_others(board):
    job = board.post('j')
    board.claim(job, 'alice')
    assert board.find_owner(job) == 'alice'
    fresh = [j for j in board.iterjobs(ensure_fresh=True) if j.uuid == job.uuid]
    assert fresh[0].state == 'CLAIMED'
    assert list(board.iterjobs(only_unclaimed=True, ensure_fresh=True)) == []
    with pytest.raises(exc.UnclaimableJob, match='alice'):
        board.claim(job, 'bob')
    assert isinstance(job.claim_token, int)


def test_who_must_be_a_non_empty_string(board):
    job = board.post('j')
    with pytest.raises(TypeError, match='Job applicant must be a string type'):
        board.claim(job, 1)
    with pytest.raises(ValueError, match='Job applicant must be non-empty'):
        board.claim(job, '')
    assert board.find_owner(job) is None


def test_only_the_owner_consumes_and_a_consumed_job_is_gone(board):
    job = board.post('j')
    board.claim(job, 'alice')
    with pytest.raises(exc.JobFailure):
        board.consume(job, 'bob')
    board.consume(job, 'alice')
    assert job.state == 'COMPLETE'
    assert list(board.iterjobs(ensure_fresh=True)) == []
    assert board.job_count == 0
    with pytest.raises(exc.NotFound):
        board.claim(job, 'alice')
    assert job.wait(timeout=0.1) is True


def test_an_unclaimed_job_cannot_be_consumed(board):
    job = board.post('j')
    with pytest.raises(exc.JobFailure):
        board.consume(job, 'alice')
    assert job.state == 'UNCLAIMED'


def test_abandon_gives_the_job_back_with_a_newer_token(board):
    job = board.post('j')
    board.claim(job, 'alice')
    first = job.claim_token
    with pytest.raises(exc.JobFailure):
        board.abandon(job, 'bob')
    board.abandon(job, 'alice', reason='stopping')
    assert job.state == 'UNCLAIMED'
    assert board.find_owner(job) is None
    board.claim(job, 'bob')
    assert job.claim_token > first
    attempts = board.history(job)
    assert [(a.who, a.outcome) for a in attempts] == [('alice', 'abandoned'),
                                                      ('bob', None)]
    assert attempts[0].reason == 'stopping'
    assert attempts[0].failed and not attempts[1].failed
    assert attempts[0].token == first and attempts[1].token == job.claim_token


def test_an_expired_claim_frees_the_job_and_counts_as_lost(board):
    job = board.post('j')
    board.claim(job, 'alice', expiry=1)
    first = job.claim_token
    deadline = time.monotonic() + 10
    while board.find_owner(job) is not None:
        assert time.monotonic() < deadline, 'the claim never expired'
        time.sleep(0.1)
    assert job.state == 'UNCLAIMED'
    board.claim(job, 'bob')
    assert job.claim_token > first
    assert [(a.who, a.outcome) for a in board.history(job)] == [
        ('alice', 'lost'), ('bob', None)]
    with pytest.raises(exc.JobFailure):
        board.consume(job, 'alice')
    board.consume(job, 'bob')


def test_a_renewed_claim_outlives_its_first_expiry(board):
    job = board.post('j')
    board.claim(job, 'alice', expiry=1.5)
    for _ in range(4):
        time.sleep(0.5)
        board.renew_claim(job, 'alice', expiry=1.5)
    assert board.find_owner(job) == 'alice'
    with pytest.raises(exc.JobFailure):
        board.renew_claim(job, 'bob', expiry=5)
    board.consume(job, 'alice')
    with pytest.raises((exc.JobFailure, exc.NotFound)):
        board.renew_claim(job, 'alice', expiry=5)


def test_trash_moves_the_job_to_the_dead_letter_with_its_history(board):
    job = board.post('poison', details={'x': 1})
    board.claim(job, 'alice')
    board.abandon(job, 'alice', reason='crashed')
    board.claim(job, 'bob')
    with pytest.raises(exc.JobFailure):
        board.trash(job, 'alice')
    board.trash(job, 'bob', reason='too many attempts')
    assert list(board.iterjobs(ensure_fresh=True)) == []
    trashed = [j for j in board.iter_trashed() if j.uuid == job.uuid]
    assert len(trashed) == 1
    assert trashed[0].name == 'poison' and trashed[0].details == {'x': 1}
    assert [(a.who, a.outcome, a.reason) for a in board.history(trashed[0])] == [
        ('alice', 'abandoned', 'crashed'), ('bob', 'trashed', 'too many attempts')]


def test_wait_expires_with_the_specified_error(board):
    with pytest.raises(exc.NotFound,
                       match='Expired waiting for jobs to arrive; waited'):
        list(board.wait(timeout=0.3))


def test_wait_wakes_when_another_board_posts(board, make):
    other = make()  # a second board object, as a poster elsewhere would have
    posted = []
    timer = threading.Timer(0.3, lambda: posted.append(other.post('wake')))
    timer.start()
    try:
        jobs = list(board.wait(timeout=10))
    finally:
        timer.join()
    assert posted and posted[0].uuid in {j.uuid for j in jobs}


def test_two_boards_racing_claim_each_job_once(board, make):
    other = make()
    jobs = [board.post('j%d' % i) for i in range(20)]
    won: dict[str, list[str]] = {j.uuid: [] for j in jobs}

    def claim_all(b, who):
        for job in list(b.iterjobs(ensure_fresh=True)):
            try:
                b.claim(job, who)
            except (exc.UnclaimableJob, exc.NotFound):
                continue
            won[job.uuid].append(who)

    threads = [threading.Thread(target=claim_all, args=(b, w))
               for b, w in ((board, 'alice'), (other, 'bob'))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(w) == 1 for w in won.values()), won


def test_the_book_is_loaded_from_persistence(make, tmp_path):
    persistence = persistence_backends.fetch(
        'sqlite:///%s' % (tmp_path / 'p.db'))
    with contextlib.closing(persistence.get_connection()) as conn:
        conn.upgrade()
        book = models.LogBook('the-book')
        book.add(models.FlowDetail('the-flow', str(uuid.uuid4())))
        conn.save_logbook(book)
    poster = make(persistence)
    job = poster.post('j', book=book)
    assert (job.book_uuid, job.book_name) == (book.uuid, 'the-book')
    consumer = make(persistence)
    found = [j for j in consumer.iterjobs(ensure_fresh=True) if j.uuid == job.uuid]
    assert found[0].book_uuid == book.uuid and found[0].book_name == 'the-book'
    assert [fd.name for fd in found[0].book] == ['the-flow']
    persistence.close()
