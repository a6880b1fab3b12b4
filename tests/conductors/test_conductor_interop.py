"""A mixed fleet: an original TaskFlow conductor (through the oracle) and a
taskflow-ng conductor on one Redis board, sharing an SQLite persistence
file, run every job once."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import textwrap
import threading
import time
import uuid

import pytest

from taskflow.conductors import backends as conductor_backends
from taskflow.jobs import backends as job_backends
from tests import _services
from tests.conductors import _support

pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(importlib.util.find_spec('tests.jobs.kinds.redis') is None,
                       reason='the Redis board is not on this branch'),
]

# Flows both sides can import (outside the repository: a ``taskflow/``
# folder beside it would shadow the original in the oracle's process).
_FLOWS = '''
import os, time
from taskflow import task
from taskflow.patterns import linear_flow


class Note(task.Task):
    def execute(self, ledger):
        with open(ledger, 'a') as f:
            f.write('%s %s %d\\n' % (self.name, os.environ.get('SIDE', 'ng'), os.getpid()))
        time.sleep(0.05)


def two_steps():
    return linear_flow.Flow('two').add(Note('a'), Note('b'))
'''

# Runs on the original: a blocking conductor until the board is empty.
_ORIGINAL = '''
import sys, time, threading
from taskflow.conductors import backends as cb
from taskflow.jobs import backends as jb
from taskflow.persistence import backends as pb
host, port, ns, url = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
persistence = pb.fetch({'connection': url})
board = jb.fetch('original', {'board': 'redis', 'host': host, 'port': port,
                              'namespace': ns}, persistence=persistence)
board.connect()
c = cb.fetch('blocking', 'original', board, persistence=persistence, engine='serial',
             wait_timeout=0.05)
c.notifier.register('job_consumed', lambda event, details: print(
    'consumed', details['job'].uuid, flush=True))
t = threading.Thread(target=c.run, daemon=True)
t.start()
print('ready', flush=True)
deadline = time.time() + 120
while time.time() < deadline:
    time.sleep(0.3)
    if board.job_count == 0:
        break
c.stop(); c.wait(10)
board.close()
'''


def test_original_and_ng_conductors_run_every_job_once(tmp_path, monkeypatch):
    host, port = _services.require_endpoint('redis')
    python = _services.require_oracle() and _services.oracle_python()
    flows_dir = tmp_path / 'flows'
    flows_dir.mkdir()
    (flows_dir / 'mixed_fleet_flows.py').write_text(_FLOWS)
    monkeypatch.syspath_prepend(str(flows_dir))
    import mixed_fleet_flows

    url = _support.sqlite_url(tmp_path)
    persistence = _support.make_persistence(url)
    namespace = 'tf-mixed-%s' % uuid.uuid4().hex[:8]
    board = job_backends.fetch('ng', {'board': 'redis', 'host': host, 'port': port,
                                      'namespace': namespace}, persistence=persistence)
    board.connect()
    try:
        jobs = {}
        for i in range(12):
            ledger = str(tmp_path / ('ledger-%d' % i))
            job = _support.post_job(board, persistence, mixed_fleet_flows.two_steps,
                                    {'ledger': ledger})
            jobs[job.uuid] = ledger
        (tmp_path / 'original.py').write_text(textwrap.dedent(_ORIGINAL))
        env = dict(os.environ, SIDE='original', PYTHONPATH=str(flows_dir))
        original = subprocess.Popen([python, '-P', str(tmp_path / 'original.py'), host, str(port),
                                     namespace, url], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        assert original.stdout.readline().strip() == 'ready'
        conductor = conductor_backends.fetch('blocking', 'ng', board, persistence=persistence,
                                             engine='serial', wait_timeout=0.05)
        consumed_ng = []
        conductor.notifier.register('job_consumed', lambda event, details: consumed_ng.append(
            details['job'].uuid))
        thread = threading.Thread(target=conductor.run, daemon=True)
        thread.start()
        out, err = original.communicate(timeout=150)
        deadline = time.monotonic() + 30
        while board.job_count and time.monotonic() < deadline:
            time.sleep(0.1)
        conductor.stop()
        assert conductor.wait(10)
        consumed_original = [line.split()[1] for line in out.splitlines()
                             if line.startswith('consumed ')]
        assert original.returncode == 0, err[-3000:]
        # Every job consumed once, by one side or the other.
        assert sorted(consumed_ng + consumed_original) == sorted(jobs), err[-3000:]
        assert consumed_ng and consumed_original  # both sides took some
        for ledger in jobs.values():
            with open(ledger) as f:
                steps = [line.split()[0] for line in f.read().splitlines()]
            assert steps == ['a', 'b']
        print('mixed fleet: original consumed %d, taskflow-ng %d'
              % (len(consumed_original), len(consumed_ng)))
    finally:
        with contextlib.suppress(Exception):
            keys = list(board._client.scan_iter(match=board.namespace + b':*', count=1000))
            if keys:
                board._client.delete(*keys)
        board.close()
