"""A flow one implementation was running when it died is finished by the other.

One implementation (the original TaskFlow 6.5.0 through
``scripts/oracle``, or taskflow-ng) starts a persisted flow built by
``cross_resume_flow.make_flow`` and dies inside a task (``os._exit``, so
nothing after that line is saved).  The other implementation then loads the
flow detail from the same database, resumes it with ``load_from_detail`` and
runs it to the end.  Checked: what was stored when it died, the final flow
and atom states, ``fetch_all()``, which tasks each implementation ran (a
ledger file written by the tasks), and that the implementation that died
reads the finished flow back the same way.

Scenarios: ``finish`` dies in the middle of executing ``c``; ``revert`` dies
while reverting ``b`` after ``c`` failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import _services

pytestmark = pytest.mark.oracle

COMPAT_DIR = Path(__file__).resolve().parent

START = r'''
import contextlib, sys
from taskflow import engines
from taskflow.persistence import backends, models
import cross_resume_flow

url, book_uuid, scenario = sys.argv[1:4]
backend = backends.fetch({'connection': url})
with contextlib.closing(backend.get_connection()) as conn:
    conn.upgrade()
    book = models.LogBook('cross-resume', uuid=book_uuid)
    fd = models.FlowDetail('cross-' + scenario, uuid=book_uuid + '-flow')
    engines.save_factory_details(fd, cross_resume_flow.make_flow, [scenario], {})
    book.add(fd)
    conn.save_logbook(book)
engine = engines.load_from_detail(fd, backend=backend)
engine.run()
print('the task was meant to kill this process')
'''

READ = r'''
import contextlib, json, sys
from taskflow.persistence import backends

url, book_uuid = sys.argv[1:3]
backend = backends.fetch({'connection': url})
with contextlib.closing(backend.get_connection()) as conn:
    conn.upgrade()
    fd = conn.get_logbook(book_uuid).find(book_uuid + '-flow')
print(json.dumps({'flow': fd.state,
                  'atoms': {ad.name: [ad.state, ad.intention] for ad in fd
                            if not ad.name.startswith('_')}}))
'''

RESUME = r'''
import contextlib, json, sys
from taskflow import engines
from taskflow.persistence import backends

url, book_uuid = sys.argv[1:3]
backend = backends.fetch({'connection': url})
with contextlib.closing(backend.get_connection()) as conn:
    conn.upgrade()
    fd = conn.get_logbook(book_uuid).find(book_uuid + '-flow')
engine = engines.load_from_detail(fd, backend=backend)
raised = None
try:
    engine.run()
except Exception as e:
    raised = type(e).__name__
names = ['a', 'b', 'c', 'd']
def plain(value):   # a Failure (the failed atom's result) by its message
    return 'Failure: %s' % value.exception_str
print(json.dumps({'flow': engine.storage.get_flow_state(),
                  'results': engine.storage.fetch_all(),
                  'atoms': {n: list(s) for n, s in
                            engine.storage.get_atoms_states(names).items()},
                  'raised': raised}, default=plain))
'''

IMPLEMENTATIONS = {'original': 'oracle', 'ng': 'taskflow-ng'}


@pytest.fixture(scope='module')
def server_databases():
    made: dict[str, str] = {}
    yield made
    for url in made.values():
        with contextlib.suppress(Exception):
            _services.drop_scratch_database(url)


def store_url(kind: str, implementation: str, tmp_path: Path,
              server_databases: dict[str, str]) -> str:
    """The same store, spelled with the driver each implementation has."""
    if kind == 'sqlite':
        return 'sqlite:///%s' % (tmp_path / 'cross.db')
    if kind not in server_databases:
        server_databases[kind] = _services.scratch_database(kind)
    url = sa.engine.make_url(server_databases[kind])
    if kind == 'postgresql':
        # The original's venv has psycopg2, taskflow-ng's psycopg 3.
        driver = 'psycopg2' if implementation == 'original' else 'psycopg'
        url = url.set(drivername='postgresql+' + driver)
    return url.render_as_string(hide_password=False)


class Side:
    """Runs programs on one implementation, with the shared flow module."""

    def __init__(self, implementation: str, url: str, ledger: Path) -> None:
        self.implementation = implementation
        self.url = url
        self.ledger = ledger

    def run(self, program: str, *args: str, crash: str | None = None
            ) -> subprocess.CompletedProcess:
        if self.implementation == 'original':
            command = [_services.require_oracle(), '-c', program]
        else:
            command = [sys.executable, '-c', program]
        env = dict(os.environ, PYTHONPATH=str(COMPAT_DIR), CROSS_LEDGER=str(self.ledger),
                   CROSS_IMPL=self.implementation)
        env.pop('CROSS_CRASH', None)
        if crash:
            env['CROSS_CRASH'] = crash
        return subprocess.run(command + [self.url, *args], capture_output=True, text=True,
                              timeout=300, env=env, cwd=str(self.ledger.parent))

    def json(self, program: str, *args: str) -> dict:
        proc = self.run(program, *args)
        assert proc.returncode == 0, '%s failed:\n%s' % (self.implementation,
                                                         proc.stderr[-3000:])
        return json.loads(proc.stdout.strip().splitlines()[-1])


def ledger_lines(path: Path) -> list[tuple[str, str, str]]:
    lines = path.read_text(encoding='utf-8').splitlines() if path.exists() else []
    return [(r['impl'], r['action'], r['atom']) for r in map(json.loads, lines)]


FINISHED_RESULTS = {'a': 'a()', 'b': 'b(a())', 'c': 'c(b(a()))', 'd': 'd(c(b(a())))'}

SCENARIOS = {
    # scenario: (where the first implementation dies,
    #            what it ran, what was stored when it died,
    #            what the second one runs, the final outcome)
    'finish': (
        'execute:c',
        [('execute', 'a'), ('execute', 'b'), ('execute', 'c')],
        {'flow': 'RUNNING', 'atoms': {'a': ['SUCCESS', 'EXECUTE'],
                                      'b': ['SUCCESS', 'EXECUTE'],
                                      'c': ['RUNNING', 'EXECUTE'],
                                      'd': ['PENDING', 'EXECUTE']}},
        [('execute', 'c'), ('execute', 'd')],
        {'flow': 'SUCCESS', 'results': FINISHED_RESULTS, 'raised': None,
         'atoms': {n: ['SUCCESS', 'EXECUTE'] for n in 'abcd'}},
    ),
    'revert': (
        'revert:b',
        [('execute', 'a'), ('execute', 'b'), ('execute', 'c'), ('revert', 'c'),
         ('revert', 'b')],
        {'flow': 'RUNNING', 'atoms': {'a': ['SUCCESS', 'REVERT'],
                                      'b': ['REVERTING', 'REVERT'],
                                      'c': ['REVERTED', 'REVERT'],
                                      'd': ['PENDING', 'REVERT']}},
        [('revert', 'b'), ('revert', 'a')],
        # The failure of c was loaded from the store, so the exception object
        # is gone: run() raises WrappedFailure.  A failed atom's result (its
        # Failure) stays fetchable after it was reverted.
        {'flow': 'REVERTED', 'results': {'c': 'Failure: c failed'},
         'raised': 'WrappedFailure',
         'atoms': {'a': ['REVERTED', 'REVERT'], 'b': ['REVERTED', 'REVERT'],
                   'c': ['REVERTED', 'REVERT'], 'd': ['PENDING', 'REVERT']}},
    ),
}

STORES = [pytest.param('sqlite', id='sqlite'),
          pytest.param('postgresql', id='postgresql', marks=pytest.mark.postgresql),
          pytest.param('mysql', id='mysql', marks=pytest.mark.mysql)]


@pytest.mark.parametrize('scenario', sorted(SCENARIOS))
@pytest.mark.parametrize('kind', STORES)
@pytest.mark.parametrize('died, resumed', [('original', 'ng'), ('ng', 'original')],
                         ids=['original-dies-ng-resumes', 'ng-dies-original-resumes'])
def test_resume_what_the_other_implementation_left(died, resumed, kind, scenario,
                                                   tmp_path, server_databases):
    _services.require_oracle()
    ledger = tmp_path / 'ledger'
    first = Side(died, store_url(kind, died, tmp_path, server_databases), ledger)
    second = Side(resumed, store_url(kind, resumed, tmp_path, server_databases), ledger)
    crash_at, first_ran, stored, second_runs, final = SCENARIOS[scenario]
    book = str(uuid.uuid4())

    proc = first.run(START, book, scenario, crash=crash_at)
    assert proc.returncode == 17, '%s did not die in the task:\n%s' % (
        died, proc.stderr[-3000:])
    assert ledger_lines(ledger) == [(died, action, atom) for action, atom in first_ran]
    # Both implementations read the same thing from what the dead one left.
    assert first.json(READ, book) == stored
    assert second.json(READ, book) == stored

    outcome = second.json(RESUME, book)

    assert (outcome['flow'], outcome['atoms'], outcome['raised']) == (
        final['flow'], final['atoms'], final['raised'])
    assert ledger_lines(ledger)[len(first_ran):] == [
        (resumed, action, atom) for action, atom in second_runs]
    # ... and the one that died reads the finished flow the same way.
    assert first.json(READ, book) == {'flow': final['flow'], 'atoms': final['atoms']}
    assert outcome['results'] == final['results']
