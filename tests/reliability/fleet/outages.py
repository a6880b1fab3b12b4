"""Cutting a board's service under a running fleet (the ``outage`` mode).

One :class:`Outage` per board kind.  It may start a *private* server for
the trial (restarting the shared one would hit the other users of the
machine), exports where that server listens through the environment
variables the boards are built from (``tests/_services.py``), and
:meth:`Outage.cut` interrupts the service once:

* ``redis``: ``CLIENT KILL TYPE normal SKIPME yes`` and ``TYPE pubsub``
  (every client of the trial's private server), or a restart of that server (SIGTERM, 1-3 s down,
  started again on the same port and append-only file);
* ``zookeeper``: the live conductors' sessions expire (a client opened with
  each victim's session id and password, then closed: the server ends the
  session, the victim's ephemeral claims vanish); the conductors report their
  sessions as ``zk_session`` events;
* ``etcd``: the trial's private etcd is restarted (SIGTERM, 1-3 s down);
* ``sql-postgresql``: ``pg_terminate_backend`` of every connection to the
  trial's database but the one asking;
* ``sql-sqlite``: an exclusive lock on the trial's database file for 1-3 s.

Each cut returns a :class:`Cut` record (written to the trial's ``cuts.json``).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cut:
    what: str            # e.g. 'client-kill', 'restart', 'expire', 'terminate', 'lock'
    at: float            # epoch seconds when it began
    seconds: float = 0.0   # how long the service was away (0: instant)
    victims: int = 0       # connections / sessions cut (when known)
    detail: dict = field(default_factory=dict)


class Outage:
    """Base: no private server, no environment, cuts nothing."""

    #: Cuts of this kind that restart a server: at most one per trial.
    restarts = False

    def __init__(self, folder: str, rng: random.Random) -> None:
        self.folder = folder
        self.rng = rng

    def env(self) -> dict[str, str]:
        """Environment the trial's boards (driver and conductors) need."""
        return {}

    def start(self) -> None:
        """Start the trial's private server, if any."""

    def close(self) -> None:
        """Stop the private server, if any."""

    def cut(self, ctx: CutContext) -> Cut:
        raise NotImplementedError


@dataclass
class CutContext:
    """What a cut may need to know about the trial."""
    url: str                      # the persistence URL (SQL boards: the board's too)
    events: list[dict]            # the conductors' events so far
    live_pids: set[int]           # pids of the conductors now running
    first_restart: bool           # whether this cut should be the trial's restart


# -- helpers -----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise RuntimeError('%s did not come up within %.0f s' % (what, timeout))


class _Server:
    """A server process the harness owns (started, stopped, restarted)."""

    def __init__(self, argv: list[str], log: str, ready: Any, name: str) -> None:
        self.argv = argv
        self.log = log
        self.ready = ready
        self.name = name
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, 'a') as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        _wait_until(self.ready, 30, self.name)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the boards ---------------------------------------------------------------

class RedisOutage(Outage):
    """A private redis-server (append-only file, fsync always)."""

    restarts = True

    def start(self) -> None:
        import redis

        self.port = free_port()
        data = os.path.join(self.folder, 'redis')
        os.makedirs(data)
        self.server = _Server(
            [shutil.which('redis-server') or 'redis-server', '--port', str(self.port),
             '--bind', '127.0.0.1', '--dir', data, '--save', '', '--appendonly', 'yes',
             '--appendfsync', 'always', '--protected-mode', 'no'],
            os.path.join(self.folder, 'redis.log'),
            lambda: redis.Redis(port=self.port, socket_timeout=1).ping(), 'redis-server')
        self.server.start()

    def env(self) -> dict[str, str]:
        return {'TASKFLOW_TEST_REDIS': '127.0.0.1:%d' % self.port}

    def close(self) -> None:
        self.server.stop()

    def cut(self, ctx: CutContext) -> Cut:
        import redis

        if ctx.first_restart:
            return _restart(self.server, self.rng)
        at = time.time()
        client = redis.Redis(port=self.port, socket_timeout=5)
        try:
            # Subscribers too: a conductor's wake-up channel is a connection as well.
            killed = sum(int(client.execute_command('CLIENT', 'KILL', 'TYPE', kind,
                                                    'SKIPME', 'yes'))
                         for kind in ('normal', 'pubsub'))
        finally:
            client.close()
        return Cut('client-kill', at, 0.0, killed)


class EtcdOutage(Outage):
    """A private etcd (own ports and data directory), restarted each cut."""

    restarts = True

    def start(self) -> None:
        self.port, peer = free_port(), free_port()
        client_url = 'http://127.0.0.1:%d' % self.port
        peer_url = 'http://127.0.0.1:%d' % peer
        self.server = _Server(
            [shutil.which('etcd') or 'etcd', '--name', 'fleet',
             '--data-dir', os.path.join(self.folder, 'etcd'),
             '--listen-client-urls', client_url, '--advertise-client-urls', client_url,
             '--listen-peer-urls', peer_url, '--initial-advertise-peer-urls', peer_url,
             '--initial-cluster', 'fleet=' + peer_url, '--log-level', 'warn'],
            os.path.join(self.folder, 'etcd.log'), self._healthy, 'etcd')
        self.server.start()

    def _healthy(self) -> bool:
        with urllib.request.urlopen('http://127.0.0.1:%d/health' % self.port,
                                    timeout=1) as reply:
            return b'true' in reply.read()

    def env(self) -> dict[str, str]:
        return {'TASKFLOW_TEST_ETCD': '127.0.0.1:%d' % self.port}

    def close(self) -> None:
        self.server.stop()

    def cut(self, ctx: CutContext) -> Cut:
        return _restart(self.server, self.rng)


def _restart(server: _Server, rng: random.Random) -> Cut:
    at = time.time()
    server.stop()
    time.sleep(rng.uniform(1.0, 3.0))
    server.start()
    return Cut('restart', at, time.time() - at)


class ZookeeperOutage(Outage):
    """Expires the live conductors' sessions on the shared server."""

    def cut(self, ctx: CutContext) -> Cut:
        from kazoo.client import KazooClient
        from tests import _services

        sessions: dict[int, tuple[int, bytes]] = {}
        for event in ctx.events:   # the latest session each live conductor reported
            if event['event'] == 'zk_session' and event['pid'] in ctx.live_pids:
                sessions[event['pid']] = (event['session'], bytes.fromhex(event['password']))
        host, port = _services.endpoint('zookeeper')
        at = time.time()
        expired = []
        for pid, client_id in sessions.items():
            client = KazooClient(hosts='%s:%d' % (host, port), client_id=client_id,
                                 timeout=4)
            try:
                client.start(timeout=5)
                client.stop()   # closing the session ends it for its owner too
                expired.append(pid)
            except Exception:   # the session already ended (its owner moved on)
                with contextlib.suppress(Exception):
                    client.stop()
            finally:
                client.close()
        return Cut('expire', at, time.time() - at, len(expired), {'pids': expired})


class PostgresOutage(Outage):
    """``pg_terminate_backend`` of every other connection to the trial's database."""

    def cut(self, ctx: CutContext) -> Cut:
        import sqlalchemy as sa

        database = sa.engine.make_url(ctx.url).database
        engine = sa.create_engine(ctx.url, poolclass=sa.pool.NullPool)
        at = time.time()
        try:
            with engine.connect() as conn:
                killed = conn.execute(sa.text(
                    'SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))'
                    ' FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()'),
                    {'db': database}).scalar()
        finally:
            engine.dispose()
        return Cut('terminate', at, 0.0, int(killed or 0))


class SqliteOutage(Outage):
    """Holds an exclusive lock on the trial's SQLite file for 1-3 s."""

    def cut(self, ctx: CutContext) -> Cut:
        path = ctx.url[len('sqlite:///'):]
        hold = self.rng.uniform(1.0, 3.0)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            conn.execute('BEGIN EXCLUSIVE')   # waits for a writer in progress
            at = time.time()
            time.sleep(hold)
            conn.execute('ROLLBACK')
        finally:
            conn.close()
        return Cut('lock', at, time.time() - at)


OUTAGES = {'redis': RedisOutage, 'etcd': EtcdOutage, 'zookeeper': ZookeeperOutage,
           'sql-postgresql': PostgresOutage, 'sql-sqlite': SqliteOutage}


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set (restored afterwards): the driver's
    boards and the conductor processes it starts find the private server."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
