"""The flows fleet jobs run, and the ledger their tasks append to.

Every task appends one line when it starts and one when it ends to the
trial's ledger: a single ``os.write`` on an ``O_APPEND`` descriptor, then
``fsync``, so a line that was written survives a SIGKILL of its writer::

    <job> <task> start <pid> <epoch seconds>
    <job> <task> end <pid> <epoch seconds>

A task returns the pid that ran it, so what the engine *stored* says which
process's completion was accepted (the SIGSTOP trial checks no stale owner's
result was stored).  ``make_flow`` is the module-level factory the
conductors rebuild each job's flow with.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from taskflow import task
from taskflow.patterns import linear_flow

START, END = 'start', 'end'
#: Exit status of a conductor process killed by the poison task.
POISON_EXIT = 70


def append(path: str, line: str) -> None:
    """Append ``line`` durably (one write, then fsync)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + '\n').encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class LedgerTask(task.Task):
    """Records its start and end in the ledger, sleeping in between."""

    def __init__(self, name: str, job: str, ledger: str, seconds: float,
                 poison: bool = False) -> None:
        super().__init__(name=name)
        self._job = job
        self._ledger = ledger
        self._seconds = seconds
        self._poison = poison

    def execute(self) -> int:
        pid = os.getpid()
        append(self._ledger, '%s %s %s %d %.6f' % (self._job, self.name, START, pid,
                                                  time.time()))
        if self._poison:
            # Crash the whole conductor, as a segfaulting extension would.
            os._exit(POISON_EXIT)
        time.sleep(self._seconds)
        append(self._ledger, '%s %s %s %d %.6f' % (self._job, self.name, END, pid,
                                                  time.time()))
        return pid


def task_names(tasks: int) -> list[str]:
    return ['t%d' % i for i in range(tasks)]


def make_flow(job: str, ledger: str, tasks: int = 3, seconds: float = 0.1,
              poison: bool = False) -> linear_flow.Flow:
    """The flow of fleet job ``job``: ``tasks`` ledger tasks in a chain
    (the last one crashes its process when ``poison``)."""
    flow = linear_flow.Flow('fleet-%s' % job)
    names = task_names(tasks)
    for i, name in enumerate(names):
        flow.add(LedgerTask(name, job, ledger, seconds,
                            poison=poison and i == len(names) - 1))
    return flow


@dataclass(frozen=True)
class Line:
    job: str
    task: str
    phase: str   # START | END
    pid: int
    at: float


def read_ledger(path: str) -> list[Line]:
    """The ledger's lines (a torn last line, cut by a kill, is skipped)."""
    try:
        with open(path) as f:
            raw = f.read().splitlines()
    except FileNotFoundError:
        return []
    lines = []
    for text in raw:
        parts = text.split()
        if len(parts) != 5:
            continue
        try:
            lines.append(Line(parts[0], parts[1], parts[2], int(parts[3]), float(parts[4])))
        except ValueError:
            continue
    return lines
