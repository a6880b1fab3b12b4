"""Which database errors are retried (``sqlalchemy/errors.py``), and the
retry policy and its log (``sqlalchemy/retrying.py``).

Errors come from the real databases where they can be provoked (integrity
errors, a locked SQLite file, a missing table); the driver exceptions of
conditions that cannot be provoked on demand (a deadlock, a server
shutting down) are built from their documented codes.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time

import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from taskflow import exceptions as exc
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.persistence.backends.sqlalchemy import errors
from taskflow.persistence.backends.sqlalchemy import retrying
from tests.backends.conftest import kind_params


def wrapped(orig: BaseException, cls=sa.exc.OperationalError) -> sa.exc.DBAPIError:
    return cls('UPDATE atomdetails SET x=%s', {'x': 'secret'}, orig)


def pg_error(sqlstate: str) -> psycopg.Error:
    error = psycopg.errors.lookup(sqlstate)('message')
    assert error.sqlstate == sqlstate
    return error


@pytest.mark.parametrize('orig, expected', [
    (pymysql.err.OperationalError(1213, 'Deadlock found'), errors.TRANSIENT),
    (pymysql.err.OperationalError(1205, 'Lock wait timeout'),
     errors.TRANSIENT),
    (pymysql.err.OperationalError(2013, 'Lost connection (timed out)'),
     errors.TRANSIENT),
    (pymysql.err.OperationalError(2003, "Can't connect"), errors.TRANSIENT),
    (pymysql.err.OperationalError(1927, 'Connection was killed'),
     errors.TRANSIENT),
    (pymysql.err.OperationalError(1153, 'Got a packet bigger than'
                                  " 'max_allowed_packet'"),
     errors.UNSTORABLE),
    (pymysql.err.DataError(1406, "Data too long for column 'meta'"),
     errors.UNSTORABLE),
    (pymysql.err.IntegrityError(1062, 'Duplicate entry'), errors.FATAL),
    (pymysql.err.ProgrammingError(1146, "Table doesn't exist"),
     errors.FATAL),
    (pg_error('40P01'), errors.TRANSIENT),   # deadlock
    (pg_error('40001'), errors.TRANSIENT),   # serialization failure
    (pg_error('55P03'), errors.TRANSIENT),   # lock_timeout
    (pg_error('57014'), errors.TRANSIENT),   # statement_timeout
    (pg_error('57P01'), errors.TRANSIENT),   # pg_terminate_backend
    (pg_error('08006'), errors.TRANSIENT),   # connection failure
    (psycopg.OperationalError('connection refused'), errors.TRANSIENT),
    (pg_error('22P02'), errors.UNSTORABLE),  # invalid JSON text
    (pg_error('54000'), errors.UNSTORABLE),  # value too large
    (pg_error('23505'), errors.FATAL),       # unique violation
    (pg_error('42P01'), errors.FATAL),       # undefined table
], ids=lambda value: repr(value)[:60] if isinstance(value, Exception)
    else value)
def test_driver_errors_are_classified(orig, expected):
    cls = (sa.exc.OperationalError if isinstance(orig, (
        pymysql.err.OperationalError, psycopg.OperationalError))
        else sa.exc.DatabaseError)
    assert errors.classify(wrapped(orig, cls)) == expected


def test_sqlalchemy_errors_are_classified():
    assert errors.classify(sa.exc.TimeoutError('pool')) == errors.TRANSIENT
    assert errors.classify(ValueError('x')) == errors.FATAL
    assert errors.classify(None) == errors.FATAL
    invalidated = wrapped(Exception('gone'))
    invalidated.connection_invalidated = True
    assert errors.classify(invalidated) == errors.TRANSIENT


def test_descriptions_never_carry_sql_or_parameters():
    error = wrapped(pymysql.err.DataError(
        1406, "Data too long for column 'results' at row 1"))
    assert 'secret' in str(error)  # SQLAlchemy's own message has them
    assert errors.describe(error) == ("DataError: (1406) Data too long for"
                                      " column 'results' at row 1")
    assert errors.column_of(error) == 'results'


def test_real_sqlite_errors(tmp_path):
    path = tmp_path / 'c.db'
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute('CREATE TABLE t (x)')
    holder.execute('BEGIN EXCLUSIVE')
    engine = sa.create_engine('sqlite:///%s' % path,
                              connect_args={'timeout': 0.1})
    try:
        with pytest.raises(sa.exc.OperationalError) as locked:
            with engine.begin() as conn:
                conn.exec_driver_sql('INSERT INTO t VALUES (1)')
        assert 'locked' in str(locked.value)
        assert errors.classify(locked.value) == errors.TRANSIENT
        holder.execute('ROLLBACK')
        with pytest.raises(sa.exc.OperationalError) as missing:
            with engine.begin() as conn:
                conn.exec_driver_sql('SELECT * FROM nowhere')
        assert errors.classify(missing.value) == errors.FATAL
    finally:
        engine.dispose()
        holder.close()


def _count_statements(backend) -> list[str]:
    seen: list[str] = []
    sa.event.listen(backend.engine, 'before_cursor_execute',
                    lambda conn, cursor, statement, *args: seen.append(
                        statement.split()[0].upper()))
    return seen


@pytest.mark.parametrize('kind', kind_params(['sqlite-file', 'postgresql',
                                              'mysql']))
def test_deterministic_errors_are_raised_at_once(kind, make_backend, caplog):
    """A flow detail uuid stored under another book: the primary key
    refuses it; that is not retried (one INSERT, no warning)."""
    backend = make_backend(kind)
    caplog.set_level(logging.DEBUG, logger='taskflow')
    with contextlib.closing(backend.get_connection()) as conn:
        first = models.LogBook('one', uuid='book-1')
        first.add(models.FlowDetail('f', 'shared-flow'))
        conn.save_logbook(first)
        second = models.LogBook('two', uuid='book-2')
        second.add(models.FlowDetail('f', 'shared-flow'))
        seen = _count_statements(backend)
        started = time.monotonic()
        with pytest.raises(exc.StorageFailure) as info:
            conn.save_logbook(second)
        assert time.monotonic() - started < 2
    assert not isinstance(info.value, exc.UnstorableValue)
    assert isinstance(info.value.cause, sa.exc.IntegrityError)
    assert errors.classify(info.value.cause) == errors.FATAL
    assert seen.count('INSERT') == 2  # the book, then the refused flow
    assert 'retrying' not in caplog.text


# -- the retry policy ------------------------------------------------------------

class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def transient_failure() -> exc.StorageFailure:
    cause = wrapped(pymysql.err.OperationalError(2013, 'Lost connection'))
    return exc.StorageFailure('Failed updating atom details', cause)


def test_retries_back_off_exponentially_with_jitter_within_limits():
    fake = FakeTime()
    log = retrying.OutageLog('db', clock=fake.clock)
    policy = retrying.Retrying(log, max_retries=100, max_time=30,
                               backoff=0.1, sleep=fake.sleep,
                               clock=fake.clock)
    attempts = []

    def always_down():
        attempts.append(fake.now)
        fake.now += 0.5  # each attempt takes a while too
        raise transient_failure()

    with pytest.raises(exc.StorageFailure):
        policy.call('update_atom_details', always_down)
    # No attempt started more than max_time after the first.
    assert attempts[-1] - attempts[0] <= 30
    assert fake.now - attempts[0] <= 30 + 0.5
    # Each delay is between half and all of 0.1 * 2**n, at most 5 s.
    for n, delay in enumerate(fake.sleeps):
        full = min(5.0, 0.1 * 2 ** n)
        assert full / 2 <= delay <= full
    assert len(set(fake.sleeps)) == len(fake.sleeps)  # jittered


def test_retries_stop_after_max_retries():
    fake = FakeTime()
    policy = retrying.Retrying(retrying.OutageLog('db', clock=fake.clock),
                               max_retries=3, max_time=1000,
                               sleep=fake.sleep, clock=fake.clock)
    calls = []

    def down():
        calls.append(1)
        raise transient_failure()

    with pytest.raises(exc.StorageFailure):
        policy.call('op', down)
    assert len(calls) == 4


def test_a_short_outage_is_ridden_out_and_others_not_retried():
    fake = FakeTime()
    policy = retrying.Retrying(retrying.OutageLog('db', clock=fake.clock),
                               sleep=fake.sleep, clock=fake.clock)
    outcomes = [transient_failure(), transient_failure(), 'stored']

    def flaky():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert policy.call('op', flaky) == 'stored'
    assert len(fake.sleeps) == 2

    def refused():
        raise exc.UnstorableValue('never')

    with pytest.raises(exc.UnstorableValue):
        policy.call('op', refused)
    fatal = exc.StorageFailure('x', wrapped(
        pymysql.err.IntegrityError(1062, 'Duplicate'), sa.exc.IntegrityError))

    def duplicate():
        raise fatal

    with pytest.raises(exc.StorageFailure) as info:
        policy.call('op', duplicate)
    assert info.value is fatal
    assert len(fake.sleeps) == 2


def test_outage_log_is_rate_limited(caplog):
    caplog.set_level(logging.DEBUG, logger='taskflow')
    fake = FakeTime()
    log = retrying.OutageLog('db', interval=10, clock=fake.clock)
    # A 100 s outage, 1,000 failed attempts from many calls.
    for _ in range(1000):
        log.failed('update_atom_details', transient_failure(),
                   giving_up=False)
        fake.now += 0.1
    log.succeeded()
    log.succeeded()
    lines = [r.getMessage() for r in caplog.records]
    assert 10 <= len(lines) <= 12
    assert lines[0] == ('db: update_atom_details failed, retrying'
                        ' (OperationalError: (2013) Lost connection)')
    assert 'failing for 10.0 s' in lines[1]
    assert lines[-1].startswith('db: the database answers again after 100.0'
                                ' s')
    assert all('secret' not in line for line in lines)


def test_retry_options_are_backend_options(tmp_path):
    backend = backends.fetch({'connection': 'sqlite:///%s'
                              % (tmp_path / 'o.db'), 'max_retries': 2,
                              'max_retry_time': 4.5, 'retry_backoff': 0.3})
    policy = backend._retrying
    assert (policy.max_retries, policy.max_time, policy.backoff) == (
        2, 4.5, 0.3)
    backend.close()
    with pytest.raises(ValueError, match='max_retries'):
        backends.fetch({'connection': 'sqlite://', 'max_retries': -1})
