"""Finding the real services (and tools) tests need, in one place.

Every ``require_*`` function returns what a test needs to use the service
(a URL, a path) or, when the service is unreachable, skips the test with a
reason saying what was tried. Under ``CI=true`` a missing service is a test
*failure* instead: CI must never go green by skipping.

Defaults match the development machines; override with environment
variables:

==========================  ===================================================
``TASKFLOW_TEST_PG_URL``     ``postgresql+psycopg://postgres@127.0.0.1:5432/test``
``TASKFLOW_TEST_MYSQL_URL``  ``mysql+pymysql://root@127.0.0.1:3306/test``
``TASKFLOW_ORACLE``          ``scripts/oracle`` (runs the original TaskFlow)
``TASKFLOW_TEST_REDIS``      ``127.0.0.1:6379``
``TASKFLOW_TEST_RABBITMQ``   ``127.0.0.1:5672`` (guest/guest)
``TASKFLOW_TEST_ZOOKEEPER``  ``127.0.0.1:2181``
``TASKFLOW_TEST_ETCD``       ``127.0.0.1:2379``
==========================  ===================================================

``require_endpoint(kind)`` gives ``(host, port)`` of one of the servers above
that have no SQL database (Redis, RabbitMQ, ZooKeeper, etcd).

``scratch_database(kind)`` creates a uniquely named database on a server
(dropped again by ``drop_scratch_database``) so test sessions never see each
other's data.

The original TaskFlow 6.5.0 (the *oracle*) runs through the project's own
``scripts/oracle``, which creates its virtualenv on first use (cached under
``~/.cache/taskflow-ng/oracle-venv``, see the script).  Oracle tests skip
only when the package registry cannot be reached (and fail under CI); any
other problem setting it up fails them.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import uuid
from pathlib import Path
from typing import NoReturn

import pytest

DEFAULT_URLS = {
    'postgresql': 'postgresql+psycopg://postgres@127.0.0.1:5432/test',
    'mysql': 'mysql+pymysql://root@127.0.0.1:3306/test',
}
_URL_ENV = {'postgresql': 'TASKFLOW_TEST_PG_URL',
            'mysql': 'TASKFLOW_TEST_MYSQL_URL'}
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ORACLE = REPO_ROOT / 'scripts' / 'oracle'
# scripts/oracle's exit status when the package registry cannot be reached.
ORACLE_REGISTRY_UNREACHABLE = 3


def in_ci() -> bool:
    """Whether we run under CI (``CI=true``), where nothing may be skipped."""
    return os.environ.get('CI', '').strip().lower() == 'true'


def unavailable(what: str, reason: str) -> NoReturn:
    """Skip (or, under CI, fail) because ``what`` cannot be used."""
    message = '%s is not available: %s' % (what, reason)
    if in_ci():
        pytest.fail(message + ' (CI=true: services must be running)',
                    pytrace=False)
    pytest.skip(message)


def _port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def service_url(kind: str) -> str:
    """The configured server URL for ``'postgresql'`` or ``'mysql'``."""
    return os.environ.get(_URL_ENV[kind], DEFAULT_URLS[kind])


@functools.lru_cache(maxsize=None)
def _probe(kind: str) -> str | None:
    """``None`` when the server answers, else why not (cached per run)."""
    import sqlalchemy as sa

    url = sa.engine.make_url(service_url(kind))
    host = url.host or '127.0.0.1'
    port = url.port or (5432 if kind == 'postgresql' else 3306)
    if not _port_open(host, port):
        return 'nothing listens on %s:%s' % (host, port)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql('SELECT 1')
    except Exception as e:  # any driver error means "not usable"
        return '%s: %s' % (type(e).__name__,
                           str(e).splitlines()[0] if str(e) else '')
    finally:
        engine.dispose()
    return None


DEFAULT_ENDPOINTS = {
    'redis': ('TASKFLOW_TEST_REDIS', '127.0.0.1:6379'),
    'rabbitmq': ('TASKFLOW_TEST_RABBITMQ', '127.0.0.1:5672'),
    'zookeeper': ('TASKFLOW_TEST_ZOOKEEPER', '127.0.0.1:2181'),
    'etcd': ('TASKFLOW_TEST_ETCD', '127.0.0.1:2379'),
}


def endpoint(kind: str) -> tuple[str, int]:
    """The configured ``(host, port)`` of a non-SQL service (see the table above)."""
    env, default = DEFAULT_ENDPOINTS[kind]
    host, _, port = os.environ.get(env, default).rpartition(':')
    return host, int(port)


def require_endpoint(kind: str) -> tuple[str, int]:
    """``(host, port)`` of a reachable ``kind`` server, else skip (fail under CI)."""
    host, port = endpoint(kind)
    if not _port_open(host, port):
        unavailable(kind, 'nothing listens on %s:%s (set %s to point elsewhere)'
                    % (host, port, DEFAULT_ENDPOINTS[kind][0]))
    return host, port


def require_program(name: str, *candidates: str) -> str:
    """Path of an installed program (the first candidate found), else skip."""
    import shutil

    for candidate in candidates or (name,):
        found = shutil.which(candidate)
        if found:
            return found
    unavailable(name, 'none of %s is installed' % (list(candidates or (name,)),))


def require_postgresql() -> str:
    """URL of a reachable PostgreSQL server (default database)."""
    return _require('postgresql')


def require_mysql() -> str:
    """URL of a reachable MySQL/MariaDB server (default database)."""
    return _require('mysql')


def _require(kind: str) -> str:
    problem = _probe(kind)
    if problem is not None:
        unavailable(kind, '%s (set %s to point elsewhere)'
                    % (problem, _URL_ENV[kind]))
    return service_url(kind)


def scratch_database(kind: str) -> str:
    """Create a fresh, uniquely named database; return its URL."""
    import sqlalchemy as sa

    base = sa.engine.make_url(_require(kind))
    name = 'tf_test_%s' % uuid.uuid4().hex[:12]
    engine = sa.create_engine(base, isolation_level='AUTOCOMMIT')
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql('CREATE DATABASE %s' % name)
    finally:
        engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def drop_scratch_database(url: str) -> None:
    """Drop a database made by :func:`scratch_database`."""
    import sqlalchemy as sa

    target = sa.engine.make_url(url)
    assert target.database and target.database.startswith('tf_test_')
    kind = target.get_backend_name()
    base = sa.engine.make_url(service_url(kind))
    engine = sa.create_engine(base, isolation_level='AUTOCOMMIT')
    try:
        with engine.connect() as conn:
            if kind == 'postgresql':
                conn.exec_driver_sql(
                    'DROP DATABASE IF EXISTS %s WITH (FORCE)'
                    % target.database)
            else:
                conn.exec_driver_sql('DROP DATABASE IF EXISTS %s'
                                     % target.database)
    finally:
        engine.dispose()


def oracle_tool() -> Path:
    """The program that runs Python code on the original (``$TASKFLOW_ORACLE``)."""
    return Path(os.environ.get('TASKFLOW_ORACLE', str(DEFAULT_ORACLE)))


@functools.lru_cache(maxsize=None)
def _oracle_setup() -> tuple[str | None, bool, str]:
    """``(problem, registry_unreachable, interpreter)`` (cached per run)."""
    tool = oracle_tool()
    if not tool.exists():
        return 'no oracle tool at %s (set TASKFLOW_ORACLE)' % tool, False, ''
    try:
        # The first use creates the original's virtualenv (with pip).
        proc = subprocess.run([str(tool), '--python'], capture_output=True,
                              text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 'cannot run %s: %s' % (tool, e), False, ''
    if proc.returncode != 0:
        unreachable = proc.returncode == ORACLE_REGISTRY_UNREACHABLE
        return ('%s --python failed (exit %s): %s'
                % (tool, proc.returncode, proc.stderr.strip()[-1500:]),
                unreachable, '')
    return None, False, proc.stdout.strip().splitlines()[-1]


def _require_oracle_setup() -> str:
    problem, unreachable, python = _oracle_setup()
    if problem is not None:
        if unreachable:
            unavailable('the original TaskFlow (oracle)', problem)
        pytest.fail('the original TaskFlow (oracle) could not be set up: %s'
                    % problem, pytrace=False)
    return python


def require_oracle() -> str:
    """Path of the tool running programs on the original TaskFlow 6.5.0.

    Use it as a command prefix (``[tool, '-c', source, ...]`` or
    ``[tool, 'program.py', ...]``).  Skips (fails under CI) when the package
    registry cannot be reached to create the original's virtualenv.
    """
    _require_oracle_setup()
    return str(oracle_tool())


def oracle_python() -> str:
    """The original TaskFlow's interpreter (run programs with ``-P``)."""
    return _require_oracle_setup()


def run_oracle(program: str, *args: str, timeout: float = 300
               ) -> subprocess.CompletedProcess:
    """Run Python source ``program`` on the original; fail on non-zero exit."""
    tool = require_oracle()
    proc = subprocess.run([tool, '-c', program, *args], capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail('the original TaskFlow failed (exit %s):\n%s'
                    % (proc.returncode, proc.stderr[-3000:]), pytrace=False)
    return proc
