"""Starting worker processes: which interpreters, and one measurement per process.

Each measurement runs ``worker.py`` in a fresh process with ``-P`` (so no
``taskflow/`` folder next to the script or in the cwd can shadow the
implementation), in a scratch cwd, without ``PYTHONPATH``, under a timeout.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
WORKER = os.path.join(BENCH_DIR, 'worker.py')
RESULT_PREFIX = 'BENCH-RESULT '
# The project's own tool; it creates the original's virtualenv on first use.
DEFAULT_ORACLE = os.path.join(REPO_DIR, 'scripts', 'oracle')


@dataclass(frozen=True)
class Implementation:
    key: str            # 'ng', 'original' or 'floor'
    title: str
    python: str
    taskflow_dir: str | None   # where `import taskflow` must come from (None: not checked)


def taskflow_ng(python=None):
    return Implementation('ng', 'taskflow-ng', python or sys.executable,
                          os.path.join(REPO_DIR, 'taskflow'))


def floor(python=None):
    return Implementation('floor', 'graphlib floor', python or sys.executable, None)


def original():
    """The original taskflow's interpreter, from ``scripts/oracle`` (or ``$TASKFLOW_ORACLE``).

    Raises ``RuntimeError`` saying why when it cannot be found.
    """
    tool = os.environ.get('TASKFLOW_ORACLE', DEFAULT_ORACLE)
    if not os.path.exists(tool):
        raise RuntimeError('oracle tool not found at %s (set TASKFLOW_ORACLE)' % tool)
    done = subprocess.run([tool, '--python'], capture_output=True, text=True, timeout=900)
    python = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ''
    if done.returncode or not os.path.exists(python):
        raise RuntimeError('%s --python failed: %s' % (tool, done.stderr.strip()[-500:]))
    venv = os.path.dirname(os.path.dirname(python))
    return Implementation('original', 'original 6.5.0', python, venv)


class WorkerError(Exception):
    """A worker crashed, timed out or printed no result."""


def measure(impl, module, size, params, timeout, cwd):
    """Run one measurement in a fresh process; return the worker's result dict."""
    spec = json.dumps({'module': module, 'size': size, 'params': params})
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
    try:
        done = subprocess.run([impl.python, '-P', WORKER, spec], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WorkerError('timed out after %.3g s' % timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-8:]
        raise WorkerError('exit %d: %s' % (done.returncode, '\n    '.join(tail)))
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    origin = result.get('taskflow_file')
    if impl.taskflow_dir and origin and not origin.startswith(impl.taskflow_dir + os.sep):
        raise WorkerError('taskflow imported from %s, expected under %s'
                          % (origin, impl.taskflow_dir))
    return result
