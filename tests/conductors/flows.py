"""Flow factories the conductor tests post jobs for (module level, so the
conductors' safe factory resolution accepts them).

Tasks append a line to a *ledger* file (``store['ledger']``) so tests (and
the processes they start) can see what ran, and in which process.
"""

from __future__ import annotations

import os
import time

from taskflow import exceptions as exc
from taskflow import task
from taskflow.patterns import linear_flow

CALLED_MARK = 'TASKFLOW_NG_TEST_FACTORY_CALLED'


def _note(ledger: str, line: str) -> None:
    with open(ledger, 'a') as f:
        f.write('%s %d\n' % (line, os.getpid()))
        f.flush()
        os.fsync(f.fileno())


class Note(task.Task):
    """Writes its name to the ledger, after ``pause`` seconds."""

    def execute(self, ledger: str, pause: float = 0.0) -> str:
        _note(ledger, 'start %s' % self.name)
        if pause:
            time.sleep(pause)
        _note(ledger, 'done %s' % self.name)
        return '%s@%d' % (self.name, os.getpid())


class Fail(task.Task):
    def execute(self, ledger: str) -> None:
        _note(ledger, 'fail %s' % self.name)
        raise RuntimeError('task %s failed' % self.name)


class ExecFail(task.Task):
    def execute(self, ledger: str) -> None:
        _note(ledger, 'execfail %s' % self.name)
        raise exc.ExecutionFailure('execution failure in %s' % self.name)


class Die(task.Task):
    """Kills its process (a poison job: its dispatch crashes the conductor)."""

    def execute(self, ledger: str) -> None:
        _note(ledger, 'die %s' % self.name)
        os._exit(17)


def steps(count: int = 3) -> linear_flow.Flow:
    """``count`` tasks writing to the ledger, one after the other."""
    return linear_flow.Flow('steps').add(
        *[Note('step-%d' % i, inject=None) for i in range(count)])


def failing() -> linear_flow.Flow:
    return linear_flow.Flow('failing').add(Note('before'), Fail('fail'))


def exec_failing() -> linear_flow.Flow:
    return linear_flow.Flow('exec-failing').add(ExecFail('execfail'))


def poison() -> linear_flow.Flow:
    return linear_flow.Flow('poison').add(Die('die'))


def marking_factory() -> linear_flow.Flow:
    """Records that it was called (a refused factory must never be)."""
    path = os.environ.get(CALLED_MARK)
    if path:
        _note(path, 'called')
    return steps(1)
