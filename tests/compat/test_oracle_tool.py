"""``scripts/oracle``: the project's own way to run programs on the original.

It creates a virtualenv with taskflow==6.5.0 on first use (cached), runs
programs isolated from the folder they are in, tells "the package registry
cannot be reached" (exit 3, tests skip) from other failures, and lets
several processes start at once.  The unreachable registry is real: pip
runs with no index and no local wheels.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import _services

TOOL = _services.REPO_ROOT / 'scripts' / 'oracle'


def offline_env(venv: Path, **extra: str) -> dict[str, str]:
    """An environment in which pip cannot reach any package registry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('PIP_')}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX='1', PIP_FIND_LINKS='',
               TASKFLOW_ORACLE_VENV=str(venv), **extra)
    return env


def test_usage_without_arguments():
    done = subprocess.run([str(TOOL)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith('usage: oracle ')


def test_unreachable_registry_exits_3_and_says_so(tmp_path):
    venv = tmp_path / 'venv'
    venv.mkdir()
    (venv / 'left-by-an-interrupted-run').write_text('x')
    done = subprocess.run([str(TOOL), '--python'], capture_output=True, text=True,
                          timeout=300, env=offline_env(venv))
    assert done.returncode == 3, done.stderr
    assert 'the package registry cannot be reached' in done.stderr
    assert 'taskflow==6.5.0' in done.stderr
    assert not (venv / 'left-by-an-interrupted-run').exists()
    assert not (venv / '.taskflow-ng-oracle').exists()    # never marked usable


def test_processes_starting_together_wait_for_each_other(tmp_path):
    venv = tmp_path / 'venv'
    starts = [subprocess.Popen([str(TOOL), '--python'], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=offline_env(venv))
              for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in starts]
    for p in starts:
        p.stdout.close()
        p.stderr.close()
    # Each one tried in turn (under the lock) and failed cleanly.
    assert [code for code, _err in results] == [3, 3]
    assert all('oracle: creating %s' % venv in err for _code, err in results)


def run_pytest(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    (tmp_path / 'test_uses_oracle.py').write_text(textwrap.dedent('''
        from tests import _services

        def test_needs_the_original():
            _services.require_oracle()
    '''))
    env = dict(env, PYTHONPATH=str(_services.REPO_ROOT))
    return subprocess.run([sys.executable, '-m', 'pytest', '-q', '-rs', '-p', 'no:randomly',
                           '-p', 'no:cacheprovider', str(tmp_path / 'test_uses_oracle.py')],
                          capture_output=True, text=True, timeout=300, env=env,
                          cwd=str(tmp_path))


def test_oracle_tests_skip_when_the_registry_cannot_be_reached(tmp_path):
    env = offline_env(tmp_path / 'venv', CI='false')
    env.pop('TASKFLOW_ORACLE', None)
    done = run_pytest(tmp_path, env)
    assert done.returncode == 0, done.stdout
    assert '1 skipped' in done.stdout
    assert 'the original TaskFlow (oracle) is not available' in done.stdout
    assert 'exit 3' in done.stdout


def test_under_ci_an_unreachable_registry_fails_them(tmp_path):
    env = offline_env(tmp_path / 'venv', CI='true')
    env.pop('TASKFLOW_ORACLE', None)
    done = run_pytest(tmp_path, env)
    assert done.returncode == 1 and '1 failed' in done.stdout, done.stdout
    assert 'CI=true' in done.stdout


@pytest.mark.oracle
def test_programs_run_on_the_original_isolated_from_their_folder():
    tool = _services.require_oracle()
    # The repository root has a taskflow/ folder: it must not shadow the original.
    program = ('import sys, taskflow, importlib.metadata as m\n'
               'print(m.version("taskflow"), taskflow.__file__, sys.flags.safe_path)\n')
    done = subprocess.run([tool, '-c', program], capture_output=True, text=True,
                          timeout=300, cwd=str(_services.REPO_ROOT))
    assert done.returncode == 0, done.stderr
    version, location, safe_path = done.stdout.split()
    assert version == '6.5.0' and safe_path == 'True'
    assert not location.startswith(str(_services.REPO_ROOT))
    python = _services.oracle_python()
    assert location.startswith(str(Path(python).parent.parent))
    # The client libraries programs need are there too.
    done = subprocess.run([python, '-c', 'import sqlalchemy, alembic, psycopg2, pymysql,'
                           ' redis, kombu, pydot, kazoo, etcd3gw'], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
