"""Two conductors share a SQL jobboard on one SQLite file; one dies mid-job.

    python examples/conductors_sqlite.py

The board lives in the same SQLite file as the persistence (no server
needed). The script posts one job (make coffee: grind, brew, pour; a second
each), starts conductor A, waits until A has *stored* the first step, and
SIGKILLs it while it holds the job. Conductor B, idle until then, claims the
job once A's claim expired (a 3 s lease), skips the step A finished (it is
stored as done) and runs the rest. The script prints who did what and exits
0 when the job ended consumed and done.

Each conductor is this same script run as ``--conductor NAME DB``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

EXAMPLE_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(EXAMPLE_DIR), EXAMPLE_DIR]

from taskflow import engines  # noqa: E402
from taskflow import task  # noqa: E402
from taskflow.jobs import backends as job_backends  # noqa: E402
from taskflow.patterns import linear_flow  # noqa: E402
from taskflow.persistence import backends as persistence_backends  # noqa: E402
from taskflow.persistence import models  # noqa: E402

LEASE = 3.0          # seconds a claim lasts unless its conductor renews it
STEP_SECONDS = 1.0
STEPS = ('grind', 'brew', 'pour')


def say(text: str) -> None:
    print(text, flush=True)


class Step(task.Task):
    """One step of making coffee; says which conductor runs it."""

    def execute(self) -> str:
        me = os.environ['CONDUCTOR']
        say('[%s] %s: start' % (me, self.name))
        time.sleep(STEP_SECONDS)
        say('[%s] %s: done' % (me, self.name))
        return me


def make_coffee() -> linear_flow.Flow:
    """The job's flow (module-level, so a conductor can rebuild it by name)."""
    return linear_flow.Flow('make-coffee').add(*(Step(name) for name in STEPS))


def open_store(db: str) -> tuple:
    url = 'sqlite:///' + db
    persistence = persistence_backends.fetch({'connection': url})
    board = job_backends.fetch('coffee-shop', url, persistence=persistence)
    return persistence, board


def run_conductor(name: str, db: str) -> int:
    """Conductor mode: dispatch one job, then exit."""
    from taskflow.conductors import backends as conductor_backends

    os.environ['CONDUCTOR'] = name
    persistence, board = open_store(db)
    board.connect()
    conductor = conductor_backends.fetch('blocking', name, board, persistence=persistence,
                                         engine='serial', claim_expiry=LEASE)

    def claimed(event: str, details: dict) -> None:
        job = details['job']
        say('[%s] claimed %s (claim token %s)' % (name, job.name, job.claim_token))

    def consumed(event: str, details: dict) -> None:
        say('[%s] consumed %s' % (name, details['job'].name))

    conductor.notifier.register('running_start', claimed)
    conductor.notifier.register('job_consumed', consumed)
    try:
        conductor.run(max_dispatches=1)
    finally:
        conductor.close()
        persistence.close()
    return 0


def start_conductor(name: str, db: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), '--conductor',
                             name, db])


def stored_steps(persistence, flow_uuid: str) -> dict:
    """step -> (state, who ran it) as stored in the persistence."""
    with contextlib.closing(persistence.get_connection()) as conn:
        detail = conn.get_flow_details(flow_uuid)
        return {atom.name: (atom.state, atom.results) for atom in detail}


def wait_for(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise SystemExit('gave up waiting for %s after %.0f s' % (what, timeout))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix='tf-conductors-') as tmp:
        db = os.path.join(tmp, 'coffee.db')
        persistence, board = open_store(db)
        with contextlib.closing(persistence.get_connection()) as conn:
            conn.upgrade()
        board.connect()
        say('Two conductors share a SQL jobboard in one SQLite file (claims last %.0f s).'
            % LEASE)

        book = models.LogBook('orders')
        detail = models.FlowDetail('make-coffee', str(uuid.uuid4()))
        book.add(detail)
        # By its module name (not __main__), so the conductors can import it.
        factory = importlib.import_module('conductors_sqlite').make_coffee
        engines.save_factory_details(detail, factory, [], {})
        with contextlib.closing(persistence.get_connection()) as conn:
            conn.save_logbook(book)
        job = board.post('make-coffee', book=book, details={'flow_uuid': detail.uuid})
        say('posted job %s (steps: %s)' % (job.name, ', '.join(STEPS)))

        a = start_conductor('A', db)
        wait_for('A to claim the job', lambda: board.find_owner(job) == 'A')
        wait_for('A to store its first step',
                 lambda: stored_steps(persistence, detail.uuid).get('grind', (None,))[0]
                 == 'SUCCESS')
        b = start_conductor('B', db)
        a.send_signal(signal.SIGKILL)
        a.wait()
        killed = time.monotonic()
        say('killed conductor A (SIGKILL) while it held the job; B waits for the claim'
            ' to expire')

        wait_for('B to take the job over', lambda: board.find_owner(job) == 'B',
                 timeout=LEASE + 30)
        say('B took the job over %.1f s after the kill' % (time.monotonic() - killed))
        if b.wait(timeout=60) != 0:
            raise SystemExit('conductor B failed')
        gone = not any(j.uuid == job.uuid for j in board.iterjobs(ensure_fresh=True))
        steps = stored_steps(persistence, detail.uuid)
        board.close()
        persistence.close()

    done = all(state == 'SUCCESS' for state, _ in steps.values())
    say('job %s: %s; %s' % (job.name, 'consumed' if gone else 'STILL ON THE BOARD',
                            ', '.join('%s by %s' % (name, steps[name][1]) for name in STEPS)))
    return 0 if gone and done else 1


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == '--conductor':
        sys.exit(run_conductor(sys.argv[2], sys.argv[3]))
    sys.exit(main())
