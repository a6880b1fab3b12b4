"""The ledger: an append-only record of what user code really did.

Tasks write one JSON line when they start and one when they end, for
``execute`` and ``revert`` alike, *outside* the engine: each line is a
single ``os.write`` on an ``O_APPEND`` descriptor followed by ``fsync``, so a
record that was written survives a SIGKILL of the writer.  The driver reads
the ledger after every worker dies and counts executions from it instead of
trusting what the engine saved.

A record::

    {"inc": 2, "pid": 4711, "atom": "b", "action": "execute",
     "phase": "end", "attempt": 1, "outcome": "ok"}

``inc`` is the incarnation (1 for the first worker of a trial, 2 for the
first resume...), ``attempt`` the retry attempt the atom ran under (``None``
outside retry-controlled subflows), ``outcome`` (on ``end`` records only)
``"ok"`` or ``"raised"``.

A worker may also be asked to *stop itself* (``SIGSTOP``) right after its
N-th record, so the driver can SIGKILL it at exactly that point: between a
task's last line of code and the engine saving its state.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from dataclasses import dataclass
from typing import Any

START, END = 'start', 'end'
EXECUTE, REVERT = 'execute', 'revert'


@dataclass(frozen=True)
class Record:
    inc: int
    pid: int
    atom: str
    action: str          # EXECUTE | REVERT
    phase: str           # START | END
    attempt: int | None
    outcome: str | None  # 'ok' | 'raised' on END records


class _Writer:
    """The ledger of the current process (configured by the worker)."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.incarnation = 0
        self.stop_after: int | None = None
        self.written = 0
        self._lock = threading.Lock()

    def configure(self, path: str, incarnation: int,
                  stop_after: int | None = None) -> None:
        self.path = path
        self.incarnation = incarnation
        self.stop_after = stop_after
        self.written = 0

    def write(self, atom: str, action: str, phase: str, attempt: int | None,
              outcome: str | None = None) -> None:
        if self.path is None:
            return  # building the flow outside a worker (e.g. in the driver)
        line = json.dumps({'inc': self.incarnation, 'pid': os.getpid(),
                           'atom': atom, 'action': action, 'phase': phase,
                           'attempt': attempt, 'outcome': outcome})
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (line + '\n').encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self.written += 1
            if self.written == self.stop_after:
                # Freeze the whole process; the driver SIGKILLs it.
                os.kill(os.getpid(), signal.SIGSTOP)


writer = _Writer()


def record(atom: str, action: str, phase: str, attempt: int | None = None,
           outcome: str | None = None) -> None:
    """Append one record to this process's ledger (no-op when unconfigured)."""
    writer.write(atom, action, phase, attempt, outcome)


def read(path: str) -> tuple[list[Record], int]:
    """All complete records in ``path`` and the number of torn lines skipped."""
    records, torn = [], 0
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.read().split('\n')
    except FileNotFoundError:
        return [], 0
    for line in lines:
        if not line:
            continue
        try:
            data: dict[str, Any] = json.loads(line)
        except ValueError:
            torn += 1
            continue
        records.append(Record(**data))
    return records, torn
