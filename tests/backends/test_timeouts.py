"""Every wait on a database is bounded by default, and configurable.

Checked on the real servers: what a session of the backend actually runs
with (PostgreSQL ``statement_timeout``/``lock_timeout``/keepalives, MariaDB
``innodb_lock_wait_timeout``/``max_statement_time``, PyMySQL socket
timeouts, SQLite's busy timeout).
"""

from __future__ import annotations

import contextlib
import time

import pytest
import sqlalchemy as sa

from taskflow.persistence import backends
from tests.backends.conftest import server_url


def session_settings(backend, *names: str) -> dict:
    with backend.engine.connect() as conn:
        if backend.engine.dialect.name == 'postgresql':
            return {name: conn.exec_driver_sql('SHOW %s' % name).scalar()
                    for name in names}
        return {name: conn.exec_driver_sql('SELECT @@SESSION.%s' % name
                                           ).scalar()
                for name in names}


def libpq_parameters(backend) -> dict:
    with backend.engine.connect() as conn:
        return conn.connection.dbapi_connection.info.get_parameters()


@pytest.mark.postgresql
def test_postgresql_defaults_and_options(make_backend):
    backend = make_backend('postgresql')
    assert session_settings(backend, 'statement_timeout', 'lock_timeout'
                            ) == {'statement_timeout': '30s',
                                  'lock_timeout': '10s'}
    params = libpq_parameters(backend)
    assert {key: params.get(key) for key in (
        'connect_timeout', 'keepalives', 'keepalives_idle',
        'keepalives_interval', 'keepalives_count', 'tcp_user_timeout')} == {
        'connect_timeout': '10', 'keepalives': '1', 'keepalives_idle': '30',
        'keepalives_interval': '10', 'keepalives_count': '3',
        'tcp_user_timeout': '60000'}
    tuned = make_backend('postgresql', fresh=False, statement_timeout=2.5,
                         lock_timeout=0, keepalive_idle=7)
    assert session_settings(tuned, 'statement_timeout', 'lock_timeout') == {
        'statement_timeout': '2500ms', 'lock_timeout': '0'}
    assert libpq_parameters(tuned)['keepalives_idle'] == '7'


@pytest.mark.postgresql
def test_postgresql_url_and_connect_args_win(server_urls):
    url = sa.engine.make_url(server_url('postgresql', server_urls))
    with_query = url.update_query_dict({'connect_timeout': '3',
                                        'options': '-c statement_timeout=4s'})
    backend = backends.fetch({
        'connection': with_query.render_as_string(hide_password=False),
        'engine_args': {'connect_args': {'keepalives_idle': 9}}})
    try:
        assert session_settings(backend, 'statement_timeout') == {
            'statement_timeout': '4s'}
        params = libpq_parameters(backend)
        assert (params['connect_timeout'], params['keepalives_idle']) == (
            '3', '9')
    finally:
        backend.close()


@pytest.mark.mysql
def test_mysql_defaults_and_options(make_backend):
    backend = make_backend('mysql')
    settings = session_settings(backend, 'innodb_lock_wait_timeout',
                                'max_statement_time', 'sql_mode')
    assert settings['innodb_lock_wait_timeout'] == 10
    assert float(settings['max_statement_time']) == 30.0
    assert 'STRICT_TRANS_TABLES' in settings['sql_mode']
    with backend.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert (raw.connect_timeout, raw._read_timeout,
                raw._write_timeout) == (10, 40, 40)
    tuned = make_backend('mysql', fresh=False, lock_timeout=3,
                         statement_timeout=0, read_timeout=5)
    settings = session_settings(tuned, 'innodb_lock_wait_timeout',
                                'max_statement_time')
    assert settings['innodb_lock_wait_timeout'] == 3
    assert float(settings['max_statement_time']) == 0.0  # the server's
    with tuned.engine.connect() as conn:
        assert conn.connection.dbapi_connection._read_timeout == 5


def test_sqlite_busy_timeout(tmp_path):
    backend = backends.fetch({'connection': 'sqlite:///%s'
                              % (tmp_path / 'b.db'),
                              'sqlite_busy_timeout': 2.5})
    with backend.engine.connect() as conn:
        assert conn.exec_driver_sql('PRAGMA busy_timeout').scalar() == 2500
    backend.close()


def test_negative_timeouts_are_refused():
    with pytest.raises(ValueError, match='read_timeout must be >= 0'):
        backends.fetch({'connection': 'sqlite://', 'read_timeout': -1})


def test_a_pool_checkout_timeout_is_set_by_default(make_backend):
    pytest.importorskip('psycopg')
    backend = make_backend('postgresql')
    assert backend.engine.pool.timeout() == 30
    with contextlib.closing(backend.get_connection()):
        pass


@pytest.mark.postgresql
def test_the_watchdog_leaves_other_users_of_the_engine_alone(make_backend):
    """Only the backend's own operations have a client-side deadline: a
    program's idle connection from ``backend.engine`` is never cut."""
    backend = make_backend('postgresql', read_timeout=0.5)
    with backend.engine.connect() as conn:
        conn.exec_driver_sql('SELECT 1')
        time.sleep(1.5)  # idle (in a transaction) for 3 read timeouts
        assert conn.exec_driver_sql('SELECT 2').scalar() == 2
    with contextlib.closing(backend.get_connection()) as conn:
        conn.validate()
