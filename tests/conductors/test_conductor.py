"""Conductors on the SQL board (SQLite file, same database as persistence):
the API, dispatch outcomes and their events, the hooks OpenStack services
override, fencing options, the dead-letter and safe dispatch."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import socket
import threading
import time
import uuid
from typing import Any

import pytest

from taskflow import exceptions as exc
from taskflow.conductors import backends as conductor_backends
from taskflow.conductors.backends import impl_blocking
from taskflow.conductors.backends import impl_executor
from taskflow.conductors.backends import impl_nonblocking
from taskflow.listeners import logging as logging_listener
from tests.conductors import _support
from tests.conductors import flows


# Boards the conductor runs on: the SQL board sharing the persistence's
# SQLite file, and every other kind registered for the contract tests that
# is on this branch (tests/jobs/kinds), with persistence on an SQLite file.
BOARDS = ['sql'] + [kind for kind in ('sql_postgresql', 'redis', 'zookeeper', 'etcd')
                    if importlib.util.find_spec('tests.jobs.kinds.%s' % kind)]


class _Env(tuple):
    """``(board, persistence, ledger)``; ``another_board()`` opens a second
    board on the same namespace, as another conductor's process would."""

    another_board: Any


@pytest.fixture(params=BOARDS)
def env(request, tmp_path):
    url = _support.sqlite_url(tmp_path)
    persistence = _support.make_persistence(url)
    name = 'cond-%s' % uuid.uuid4().hex[:8]
    if request.param == 'sql':
        def open_board():
            return _support.make_board(url, name, persistence)
        cleanup = None
    else:
        kind = importlib.import_module('tests.jobs.kinds.%s' % request.param)

        def open_board():
            board = kind.make_board(name, persistence=persistence)
            board.connect()
            return board
        cleanup = kind.cleanup
    board = open_board()
    others = []

    def another_board():
        others.append(open_board())
        return others[-1]
    env = _Env((board, persistence, str(tmp_path / 'ledger')))
    env.another_board = another_board
    yield env
    for other in others:
        other.close()
    if cleanup is not None:
        cleanup(board)
    board.close()


def _conductor(board, persistence, kind='blocking', **kwargs):
    kwargs.setdefault('wait_timeout', 0.05)
    return conductor_backends.fetch(kind, 'cond-1', board, persistence=persistence,
                                    engine='serial', **kwargs)


def _events(conductor):
    seen = []
    conductor.notifier.register(conductor.notifier.ANY,
                                lambda event, details: seen.append((event, details)))
    return seen


def _run_until(conductor, predicate, timeout=20.0):
    thread = threading.Thread(target=conductor.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    conductor.stop()
    assert conductor.wait(10)
    thread.join(5)
    assert predicate()


def test_entity_constants_and_fetch(env):
    board, persistence, _ = env
    conductor = _conductor(board, persistence)
    assert isinstance(conductor, impl_blocking.BlockingConductor)
    entity = conductor.conductor
    host, pid = socket.gethostname(), os.getpid()
    assert entity.to_dict() == {'kind': 'conductor', 'name': 'cond-1@%s:%s' % (host, pid),
                                'metadata': {'hostname': host, 'pid': pid}}
    assert conductor.conductor is entity  # cached
    assert impl_executor.ExecutorConductor.WAIT_TIMEOUT == 0.5
    assert impl_executor.ExecutorConductor.REFRESH_PERIODICITY == 30
    assert impl_executor.ExecutorConductor.NO_CONSUME_EXCEPTIONS == (
        exc.ExecutionFailure, exc.StorageFailure)
    assert impl_blocking.BlockingConductor.MAX_SIMULTANEOUS_JOBS == 1
    assert impl_nonblocking.NonBlockingConductor.MAX_SIMULTANEOUS_JOBS == \
        (os.cpu_count() or 1) + 1
    assert isinstance(conductor_backends.fetch('nonblocking', 'n', board),
                      impl_nonblocking.NonBlockingConductor)
    with pytest.raises(exc.NotFound, match='^Could not find conductor nope$'):
        conductor_backends.fetch('nope', 'n', board)
    with pytest.raises(ValueError, match="'executor_factory' must be callable"):
        impl_nonblocking.NonBlockingConductor('n', board, executor_factory=3)
    with pytest.raises(ValueError, match="claim_expiry"):
        _conductor(board, persistence, claim_expiry=0)
    with pytest.raises(ValueError, match="max_attempts"):
        _conductor(board, persistence, max_attempts=0)


def test_run_zero_wait_and_dispatching(env):
    board, persistence, _ = env
    conductor = _conductor(board, persistence)
    assert conductor.wait(0.01) is False
    conductor.run(max_dispatches=0)
    assert conductor.wait(0.01) is True
    assert conductor.dispatching is False


def test_a_job_runs_and_is_consumed_with_every_event(env):
    board, persistence, ledger = env
    job = _support.post_job(board, persistence, flows.steps, {'ledger': ledger})
    conductor = _conductor(board, persistence)
    seen = _events(conductor)
    conductor.run(max_dispatches=1)
    assert _support.read_ledger(ledger) == ['start step-0', 'done step-0', 'start step-1',
                                            'done step-1', 'start step-2', 'done step-2']
    assert [e for e, _ in seen] == [
        'compilation_start', 'compilation_end', 'preparation_start', 'preparation_end',
        'validation_start', 'validation_end', 'running_start', 'running_end',
        'job_consumed']
    assert sorted(seen[0][1]) == ['conductor', 'engine', 'job']
    assert seen[-1][1]['job'].uuid == job.uuid
    assert seen[-1][1]['conductor'] is conductor
    assert seen[-1][1]['persistence'] is persistence
    assert list(board.iterjobs(ensure_fresh=True)) == []
    # Attempts are kept for trashed jobs only; a consumed one is gone.
    assert job.state == 'COMPLETE'


def test_a_failing_flow_is_consumed_an_execution_failure_abandoned(env):
    board, persistence, ledger = env
    failing = _support.post_job(board, persistence, flows.failing, {'ledger': ledger})
    conductor = _conductor(board, persistence)
    seen = _events(conductor)
    conductor.run(max_dispatches=1)
    assert [e for e, _ in seen][-2:] == ['running_start', 'job_consumed']
    assert failing.state == 'COMPLETE'
    abandoned = _support.post_job(board, persistence, flows.exec_failing, {'ledger': ledger})
    seen.clear()
    conductor.run(max_dispatches=1)
    assert [e for e, _ in seen][-1] == 'job_abandoned'
    assert board.find_owner(abandoned) is None
    [attempt] = board.history(abandoned)
    assert attempt.who == 'cond-1' and attempt.outcome == 'abandoned'
    assert 'ExecutionFailure' in attempt.reason


def test_the_hooks_services_override(env):
    """``_listeners_from_job(job, engine)`` gives a logging listener (as the
    original), is called once per job before compiling; ``_on_job_done(job,
    fut)`` gets the dispatch's future (``True``: consume); ``_persistence``
    is the backend given."""
    board, persistence, ledger = env
    job = _support.post_job(board, persistence, flows.steps, {'ledger': ledger})
    calls = []

    class Service(impl_blocking.BlockingConductor):
        def _listeners_from_job(self, job, engine):
            listeners = super()._listeners_from_job(job, engine)
            calls.append(('listeners', job.uuid, listeners,
                          dict(engine.options)))
            return listeners

        def _on_job_done(self, job, fut):
            calls.append(('done', job.uuid, fut.result()))
            return super()._on_job_done(job, fut)

    conductor = Service('svc', board, persistence=persistence, engine='serial')
    assert conductor._persistence is persistence
    conductor.run(max_dispatches=1)
    (_, uuid1, listeners, options), (_, uuid2, result) = calls
    assert uuid1 == uuid2 == job.uuid
    assert [type(listener) for listener in listeners] == [logging_listener.LoggingListener]
    assert result is True
    # Fencing: the engine runs as the conductor's entity, with the claim's token.
    assert options['owner'] == conductor.conductor.name
    assert isinstance(options['claim_token'], int)


def test_a_refused_factory_is_trashed_and_never_called(env, monkeypatch, tmp_path):
    board, persistence, ledger = env
    called = tmp_path / 'called'
    monkeypatch.setenv(flows.CALLED_MARK, str(called))
    stdlib = _support.post_job(board, persistence, None, {'ledger': ledger},
                               factory_name='os.system')
    outside = _support.post_job(board, persistence, None, {'ledger': ledger},
                                factory_name='tests.conductors.flows.marking_factory')
    conductor = _conductor(board, persistence, allowed_factory_modules=['myapp'])
    seen = _events(conductor)
    conductor.run(max_dispatches=2)
    assert [e for e, _ in seen] == ['job_trashed', 'job_trashed']
    assert not called.exists()
    trashed = {j.uuid: board.history(j)[-1] for j in board.iter_trashed()}
    assert set(trashed) == {stdlib.uuid, outside.uuid}
    assert 'standard library' in trashed[stdlib.uuid].reason
    assert "'os.system'" in trashed[stdlib.uuid].reason
    assert 'allowed modules' in trashed[outside.uuid].reason
    assert all(a.outcome == 'trashed' for a in trashed.values())


def test_a_job_without_its_logbook_is_trashed_at_once(env):
    board, persistence, ledger = env
    job = _support.post_job(board, persistence, None, {'ledger': ledger},
                            with_book=False)
    conductor = _conductor(board, persistence)
    seen = _events(conductor)
    conductor.run(max_dispatches=1)
    assert [e for e, _ in seen] == ['job_trashed']
    [trashed] = list(board.iter_trashed())
    assert trashed.uuid == job.uuid
    assert 'No book found in job' in board.history(trashed)[-1].reason


def test_a_job_abandoned_max_attempts_times_goes_to_the_dead_letter(env):
    board, persistence, ledger = env
    job = _support.post_job(board, persistence, flows.exec_failing, {'ledger': ledger})
    conductor = _conductor(board, persistence, max_attempts=3)
    seen = _events(conductor)
    _run_until(conductor, lambda: any(e == 'job_trashed' for e, _ in seen))
    assert _support.read_ledger(ledger) == ['execfail execfail'] * 3
    [trashed] = list(board.iter_trashed())
    history = board.history(trashed)
    assert [a.outcome for a in history] == ['abandoned'] * 3 + ['trashed']
    assert 'failed 3 time(s), max_attempts is 3' in history[-1].reason
    assert job.uuid == trashed.uuid
    assert list(board.iterjobs(ensure_fresh=True)) == []


def test_stop_suspends_the_running_job_and_abandons_it(env):
    board, persistence, ledger = env
    job = _support.post_job(board, persistence, flows.steps,
                            {'ledger': ledger, 'pause': 0.3})
    conductor = _conductor(board, persistence)
    seen = _events(conductor)
    thread = threading.Thread(target=conductor.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while 'start step-0' not in _support.read_ledger(ledger) and time.monotonic() < deadline:
        time.sleep(0.01)
    conductor.stop()
    assert conductor.wait(5)
    assert [e for e, _ in seen][-1] == 'job_abandoned'
    assert 'done step-2' not in _support.read_ledger(ledger)
    assert board.history(job)[-1].reason.startswith('flow ')
    assert 'SUSPENDED' in board.history(job)[-1].reason


def test_nonblocking_runs_jobs_at_once(env):
    board, persistence, ledger = env
    jobs = [_support.post_job(board, persistence, flows.steps,
                              {'ledger': ledger, 'pause': 0.2}) for _ in range(3)]
    conductor = _conductor(board, persistence, kind='nonblocking',
                           max_simultaneous_jobs=3)
    seen = _events(conductor)
    _run_until(conductor, lambda: sum(e == 'job_consumed' for e, _ in seen) == 3)
    # Side by side: another job started before the first one finished.
    lines = _support.read_ledger(ledger)
    assert lines[:lines.index('done step-2')].count('start step-0') >= 2
    assert all(job.state == 'COMPLETE' for job in jobs)


def test_claims_are_renewed_while_the_job_runs(env):
    board, persistence, ledger = env
    job = _support.post_job(board, persistence, flows.steps,
                            {'ledger': ledger, 'pause': 1.0})
    conductor = _conductor(board, persistence, claim_expiry=1.5)
    seen = _events(conductor)
    conductor.run(max_dispatches=1)
    # 3 s of work on a 1.5 s claim: still ours at the end (consumed).
    assert [e for e, _ in seen][-1] == 'job_consumed'
    assert job.state == 'COMPLETE'


def test_a_job_whose_logbook_was_destroyed_is_trashed_at_once(env):
    import contextlib
    board, persistence, ledger = env
    job = _support.post_job(board, persistence, flows.steps, {'ledger': ledger})
    with contextlib.closing(persistence.get_connection()) as conn:
        conn.destroy_logbook(job.book_uuid)
    conductor = _conductor(board, persistence)
    seen = _events(conductor)
    conductor.run(max_dispatches=1)
    assert [e for e, _ in seen] == ['job_trashed']
    [trashed] = list(board.iter_trashed())
    assert trashed.uuid == job.uuid
    reason = board.history(trashed)[-1].reason
    # The ZooKeeper board hands its own poster the posted job (book object
    # included), so there the flow detail, not the book, is found missing.
    assert 'NotFound' in reason
    assert job.book_uuid in reason or 'No flow details found' in reason
    assert _support.read_ledger(ledger) == []


def test_executor_factory_with_or_without_the_conductor(env):
    from concurrent import futures
    board, persistence, ledger = env
    made = []

    def plain():
        made.append('plain')
        return futures.ThreadPoolExecutor(1)

    def with_conductor(conductor):
        made.append(conductor)
        return futures.ThreadPoolExecutor(1)

    for factory in (plain, with_conductor):
        job = _support.post_job(board, persistence, flows.steps, {'ledger': ledger})
        conductor = _conductor(board, persistence, kind='nonblocking',
                               executor_factory=factory)
        conductor.run(max_dispatches=1)
        assert job.wait(10)
    assert made[0] == 'plain' and made[1] is conductor


def test_flow_detail_choice_errors_trash_the_job(env):
    import contextlib
    from taskflow.persistence import models
    board, persistence, ledger = env
    book = models.LogBook('two-flows')
    book.add(models.FlowDetail('f1', uuid.uuid4().hex))
    book.add(models.FlowDetail('f2', uuid.uuid4().hex))
    empty = models.LogBook('no-flows')
    with contextlib.closing(persistence.get_connection()) as conn:
        conn.save_logbook(book)
        conn.save_logbook(empty)
    missing = uuid.uuid4().hex
    board.post('multiple', book=book)
    board.post('unknown-flow', book=book, details={'flow_uuid': missing})
    board.post('no-flow', book=empty)
    conductor = _conductor(board, persistence)
    conductor.run(max_dispatches=3)
    reasons = {j.name: board.history(j)[-1].reason for j in board.iter_trashed()}
    assert reasons == {
        'multiple': 'dispatch failed: MultipleChoices: No matching flow detail found'
                    ' (2 choices) in jobs book',
        'unknown-flow': 'dispatch failed: NotFound: No matching flow detail found in jobs'
                        ' book for flow detail with uuid %s' % missing,
        'no-flow': 'dispatch failed: NotFound: No flow detail(s) found in jobs book',
    }


@pytest.mark.parametrize('env', [k for k in BOARDS if k in ('redis', 'zookeeper', 'etcd')],
                         indirect=True)
def test_a_post_from_another_board_wakes_an_idle_conductor(env, tmp_path):
    # The conductor idles 30 s between listings; the board's POSTED
    # announcement (another process's post) makes it claim the job at once.
    board, persistence, ledger = env
    conductor = _conductor(board, persistence, wait_timeout=30)
    started = threading.Event()
    conductor.notifier.register('running_start', lambda event, details: started.set())
    thread = threading.Thread(target=conductor.run, daemon=True)
    thread.start()
    try:
        time.sleep(1.0)  # idle now
        poster = importlib.import_module('tests.jobs.kinds.%s' % board.__module__.rsplit(
            'impl_', 1)[1]).make_board(board.name, persistence=persistence)
        poster.connect()
        try:
            posted_at = time.monotonic()
            _support.post_job(poster, persistence, flows.steps, {'ledger': ledger})
            assert started.wait(10), 'the conductor slept through the post'
            assert time.monotonic() - posted_at < 5
        finally:
            poster.close()
    finally:
        conductor.stop()
        assert conductor.wait(30)


def test_a_job_object_handed_out_again_runs_its_flow_as_stored_now(env):
    """A board may hand out the same job object again (the ZooKeeper board
    does) with the logbook it cached before: the conductor reads the flow
    afresh, so tasks another conductor finished since are not run again
    (found by a fleet outage trial)."""
    board, persistence, ledger = env
    from taskflow import engines
    from taskflow.persistence import models

    _support.post_job(board, persistence, flows.steps, {'ledger': ledger})
    job = next(iter(board.iterjobs(ensure_fresh=True)))
    flow_uuid = next(iter(job.book)).uuid
    # What a refused attempt leaves in the cached book: unsaved atom details.
    job.book.find(flow_uuid).add(models.TaskDetail('step-0', uuid.uuid4().hex))
    with contextlib.closing(persistence.get_connection()) as conn:
        stored = conn.get_flow_details(flow_uuid)
    engines.load_from_detail(stored, store={'ledger': ledger}, backend=persistence).run()
    assert _support.read_ledger(ledger).count('start step-0') == 1

    conductor = _conductor(board, persistence)
    conductor._engine_from_job(job).run()
    assert _support.read_ledger(ledger).count('start step-0') == 1
    with contextlib.closing(persistence.get_connection()) as conn:
        again = conn.get_flow_details(flow_uuid)
    assert sorted(ad.name for ad in again if ad.name.startswith('step')) == [
        'step-0', 'step-1', 'step-2']   # one atom detail each


def test_a_consume_whose_answer_was_lost_counts_as_consumed_once(env, monkeypatch):
    """The board did the consume but the answer was lost in an outage: the
    job is complete, and the conductor reports it consumed (once) instead of
    'could not be consumed' (found by a fleet outage trial)."""
    board, persistence, ledger = env
    job = _support.post_job(board, persistence, flows.steps, {'ledger': ledger})
    real_consume = board.consume
    calls = []

    def consume_then_lose_the_answer(job, who, *args, **kwargs):
        calls.append(job.uuid)
        real_consume(job, who, *args, **kwargs)
        if len(calls) == 1:
            raise ConnectionError('connection reset while reading the answer')

    monkeypatch.setattr(board, 'consume', consume_then_lose_the_answer)
    conductor = _conductor(board, persistence)
    seen = _events(conductor)
    conductor.run(max_dispatches=1)
    assert len(calls) == 1   # not retried: the board says it is complete
    assert [e for e, _ in seen].count('job_consumed') == 1
    assert list(board.iterjobs(ensure_fresh=True)) == []
    assert job.state == 'COMPLETE'


def _next_owner(env, **options):
    """A second conductor, on a board of its own, on ``env``'s namespace."""
    return conductor_backends.fetch('blocking', 'cond-2', env.another_board(),
                                    persistence=env[1], engine='serial',
                                    wait_timeout=0.05, **options)


def _hand_over_on_first_try(board, monkeypatch, method, next_owner):
    """Make ``board.<method>`` (consume or trash) end our claim on its first
    call, as an expired session would, let ``next_owner`` claim and finish
    the job, and then fail as a connection lost before the request was
    sent; later calls go through."""
    real = getattr(board, method)
    calls = []

    def hand_over_then_fail(job, who, *args, **kwargs):
        calls.append(who)
        if len(calls) == 1:
            board.abandon(job, who)
            next_owner.run(max_dispatches=1)
            raise ConnectionError('connection lost before the %s was sent' % method)
        return real(job, who, *args, **kwargs)

    monkeypatch.setattr(board, method, hand_over_then_fail)


def test_a_job_its_next_owner_consumed_is_not_reported_consumed_again(env, monkeypatch):
    """Our claim was lost while our consume failed (say a ZooKeeper session
    expired in an outage); the next owner claimed the job, found its flow
    done and consumed it. Our retry finds the job gone: only the next owner
    reports it consumed (found by a fleet outage trial on ZooKeeper)."""
    board, persistence, ledger = env
    _support.post_job(board, persistence, flows.steps, {'ledger': ledger})
    next_owner = _next_owner(env)
    next_owner_seen = _events(next_owner)
    _hand_over_on_first_try(board, monkeypatch, 'consume', next_owner)
    conductor = _conductor(board, persistence)
    seen = _events(conductor)
    conductor.run(max_dispatches=1)
    assert [e for e, _ in next_owner_seen].count('job_consumed') == 1
    assert [e for e, _ in seen].count('job_consumed') == 0
    assert list(board.iterjobs(ensure_fresh=True)) == []
    assert _support.read_ledger(ledger).count('start step-0') == 1


def test_a_job_its_next_owner_trashed_is_not_reported_trashed_again(env, monkeypatch):
    """As above, for the dead-letter: our trash failed after our claim was
    lost, the next owner claimed the job and trashed it; the job's history
    says whose trash it was, so only the next owner reports it."""
    board, persistence, ledger = env
    job = _support.post_job(board, persistence, flows.steps, {'ledger': ledger})
    board.claim(job, 'earlier')
    board.abandon(job, 'earlier', reason='crashed')   # one failed attempt
    next_owner = _next_owner(env, max_attempts=1)
    next_owner_seen = _events(next_owner)
    _hand_over_on_first_try(board, monkeypatch, 'trash', next_owner)
    conductor = _conductor(board, persistence, max_attempts=1)
    seen = _events(conductor)
    conductor.run(max_dispatches=1)
    assert [e for e, _ in next_owner_seen].count('job_trashed') == 1
    assert [e for e, _ in seen].count('job_trashed') == 0
    trashed = [j for j in board.iter_trashed() if j.uuid == job.uuid]
    assert [a.who for a in board.history(trashed[0])][-1] == 'cond-2'
    assert _support.read_ledger(ledger) == []   # a dead letter never runs
