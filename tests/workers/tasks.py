"""Task classes the worker tests serve (importable by worker processes as
``tests.workers.tasks``).  Tasks that must leave evidence outside the worker
append JSON lines to the file named by ``$TASKFLOW_TEST_LEDGER``."""

from __future__ import annotations

import json
import os
import time

from taskflow import task

LEDGER_ENV = 'TASKFLOW_TEST_LEDGER'


def record(event: str, **details) -> None:
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    line = json.dumps(dict(details, event=event, pid=os.getpid(), at=time.time()))
    with open(path, 'a') as ledger:   # one short write per line: atomic for O_APPEND
        ledger.write(line + '\n')


class Adder(task.Task):
    def execute(self, x, y):
        return x + y


class Multiplier(task.Task):
    def execute(self, z, factor=2):
        return z * factor


class Progressing(task.Task):
    def execute(self):
        self.update_progress(0.25)
        self.notifier.notify('update_progress', {'progress': 0.5, 'stage': 'half'})
        return 'done'


class Failing(task.Task):
    def execute(self, **kwargs):
        raise ValueError('failing on purpose')

    def revert(self, result, flow_failures, **kwargs):
        record('reverted', name=self.name, failures=sorted(flow_failures))


class Reverting(task.Task):
    """Succeeds; its revert records what it was given."""

    def execute(self):
        return [1, 'two']

    def revert(self, result, flow_failures, **kwargs):
        record('revert', name=self.name, result=result,
               failures={k: v.exception_str for k, v in flow_failures.items()})


class Echo(task.Task):
    def execute(self, value):
        return value


class Noop(task.Task):
    def execute(self):
        return None


class Sleeper(task.Task):
    """Sleeps ``seconds`` (default 0.2); records start and finish in the ledger."""

    def execute(self, seconds=0.2):
        record('start', name=self.name)
        time.sleep(seconds)
        record('finish', name=self.name)
        return self.name


class Unjsonable(task.Task):
    def execute(self):
        return {1, 2, 3}


class Huge(task.Task):
    def execute(self, size=2000):
        return 'x' * size


class Forbidden(task.Task):
    """Served by no test worker: running it would be a security bug."""

    def execute(self):
        record('FORBIDDEN-RAN', name=self.name)
        raise AssertionError('an unregistered task ran')


class AsyncDoubler(task.Task):
    """An ``async def`` task: the worker awaits it on an event loop of its own."""

    async def execute(self, x):
        import asyncio
        await asyncio.sleep(0.01)
        return 2 * x

    async def revert(self, x, **kwargs):
        record('async-revert', name=self.name, x=x)
