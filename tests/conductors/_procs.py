"""Conductor processes for the kill tests (``_conductor_proc``), the
fixture that starts them and helpers reading what they did."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests import _services
from tests.conductors import _support

LEASE = 1.5  # claim expiry of the conductor processes (seconds)


class Proc:
    """A conductor process (see ``_conductor_proc``)."""

    def __init__(self, tmp_path, url, namespace, name, max_attempts=5, kind='blocking',
                 lease=LEASE):
        self.name = name
        self.out_path = tmp_path / ('%s-%s.out' % (name, uuid.uuid4().hex[:6]))
        self._out = open(self.out_path, 'w')
        self.popen = subprocess.Popen(
            [sys.executable, '-m', 'tests.conductors._conductor_proc', url, namespace,
             name, str(lease), str(max_attempts), kind],
            cwd=str(_services.REPO_ROOT), stdout=self._out, stderr=subprocess.STDOUT)
        self.pid = self.popen.pid

    def lines(self):
        return self.out_path.read_text().splitlines()

    def signal(self, signum):
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def stop(self):
        if self.popen.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._out.close()


@pytest.fixture
def env(tmp_path):
    url = _support.sqlite_url(tmp_path)
    persistence = _support.make_persistence(url)
    namespace = 'kills-%s' % uuid.uuid4().hex[:8]
    board = _support.make_board(url, namespace, persistence)
    procs = []

    def start(name, **kwargs):
        proc = Proc(tmp_path, url, namespace, name, **kwargs)
        procs.append(proc)
        return proc

    start.procs = procs
    yield board, persistence, str(tmp_path / 'ledger'), start
    for proc in procs:
        proc.stop()
    board.close()


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError('timed out waiting for %s' % what)


def _ledger(path):
    """(line, pid) pairs of the ledger."""
    try:
        with open(path) as f:
            return [(line.rsplit(' ', 1)[0], int(line.rsplit(' ', 1)[1]))
                    for line in f.read().splitlines()]
    except FileNotFoundError:
        return []


def _results(persistence, job):
    """Atom name -> stored result of the job's flow."""
    with contextlib.closing(persistence.get_connection()) as conn:
        book = conn.get_logbook(job.book_uuid)
    [flow_detail] = list(book)
    return {atom.name: atom.results for atom in flow_detail}


