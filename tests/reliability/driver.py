"""Start workers, SIGKILL them, resume, until a trial's flow is finished.

One *trial* runs one flow shape against one backend:

1. start a worker (``python -m tests.reliability.worker``) with a kill plan;
2. SIGKILL it according to the plan (see :func:`plan_kill`);
3. read what is stored (a :class:`~tests.reliability.observe.Snapshot`),
   start the next worker, which resumes with ``load_from_detail``;
4. once the planned kills are spent, let the last worker finish; then hand
   everything (snapshots, ledger, outcome) to :mod:`invariants`.

With ``rivals``, every resume starts that many more workers at the same
moment (concurrent resumers): only one may own and run the flow, the others
are refused.  With ``outages``, some plans disrupt the database instead of
killing the worker (connections terminated, or the SQLite file locked) for
a random time; a worker that then stops with a storage failure is resumed
like a killed one.

Worker numbers are ``100 * step + k``: ``k`` is 0 for the worker the plan
applies to and 1, 2... for its rivals.

A *baseline* is the same shape run once without kills: the reference the
trials are compared with.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability import invariants, ledger, observe
from tests.reliability.shapes import SHAPES, Shape

REPO_ROOT = Path(__file__).resolve().parents[2]
# A worker still running after this long is hung (an engine that never ends).
WORKER_DEADLINE = 60.0
_POLL = 0.0005


@dataclass(frozen=True)
class KillPlan:
    """When to SIGKILL one worker.

    ``startup``: ``delay`` seconds after it was spawned (may land while it
    loads or creates the logbook); ``timer``: ``delay`` seconds after it
    loaded the engine; ``record``: when it stops itself right after its
    ``count``-th ledger record (between user code and the state commit);
    ``event``: when it stops itself inside its ``count``-th notification
    (right after a state was saved); ``write``: when it stops itself right
    after its ``count``-th backend write returned (every commit boundary,
    e.g. between two intention changes of one failure resolution);
    ``outage``: ``delay`` seconds after it loaded the engine, disrupt the
    database for ``count`` milliseconds instead of killing the worker.
    """

    mode: str
    delay: float = 0.0
    count: int = 0


@dataclass(frozen=True)
class Baseline:
    shape: Shape
    outcome: dict
    final: observe.Snapshot
    records: list[ledger.Record]


@dataclass
class TrialReport:
    backend: str
    shape: str
    seed: int
    kills: int = 0
    kill_modes: dict[str, int] = field(default_factory=dict)
    incarnations: int = 0
    violations: list[invariants.Violation] = field(default_factory=list)
    torn_records: int = 0   # ledger lines cut by a kill (not a violation)
    workdir: str = ''
    replay: str = ''         # --replay argument that runs this trial again


def _spawn(spec: dict, spec_path: Path, stderr_path: Path,
           python: str) -> subprocess.Popen:
    spec_path.write_text(json.dumps(spec), encoding='utf-8')
    # Our PYTHONPATH first: it may point at another taskflow build to test.
    path = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path + [str(REPO_ROOT)]))
    with open(stderr_path, 'wb') as err:
        return subprocess.Popen(
            [python, '-m', 'tests.reliability.worker', str(spec_path)],
            cwd=spec_path.parent, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err)


def _reap(proc: subprocess.Popen) -> int:
    _, status = os.waitpid(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode


def supervise(proc: subprocess.Popen, plan: KillPlan | None, ready_path: Path,
              deadline: float = WORKER_DEADLINE,
              disrupt: Any = None) -> tuple[str, bool]:
    """Wait for the worker, killing it per ``plan``: ``(how it ended, ready?)``.

    An ``outage`` plan calls ``disrupt(milliseconds)`` once instead of killing.
    """
    spawned = time.monotonic()
    ready_at = None
    while True:
        pid, status = os.waitpid(proc.pid, os.WNOHANG | os.WUNTRACED)
        now = time.monotonic()
        if ready_at is None and ready_path.exists():
            ready_at = now
        if pid:
            if os.WIFSTOPPED(status):   # it stopped itself at the planned point
                os.kill(proc.pid, signal.SIGKILL)
                _reap(proc)
                return observe.KILLED, ready_at is not None
            proc.returncode = os.waitstatus_to_exitcode(status)
            return _exit_kind(proc.returncode), ready_at is not None
        due = None
        if plan is not None and plan.mode == 'startup':
            due = spawned + plan.delay
        elif (plan is not None and plan.mode in ('timer', 'outage')
              and ready_at is not None):
            due = ready_at + plan.delay
        if due is not None and now >= due and plan.mode == 'outage':
            disrupt(plan.count)
            plan = None
        elif due is not None and now >= due:
            os.kill(proc.pid, signal.SIGKILL)
            code = _reap(proc)
            if code == -signal.SIGKILL:
                return observe.KILLED, ready_at is not None
            return _exit_kind(code), ready_at is not None  # it won the race
        if now - spawned > deadline:
            os.kill(proc.pid, signal.SIGKILL)
            _reap(proc)
            return observe.HUNG, ready_at is not None
        time.sleep(_POLL)


def _exit_kind(code: int) -> str:
    from tests.reliability import worker
    if code == worker.EXIT_FINISHED:
        return observe.FINISHED
    if code == worker.EXIT_LOAD_FAILED:
        return observe.LOAD_FAILED
    if code == worker.EXIT_REFUSED:
        return observe.REFUSED
    if code == worker.EXIT_STORAGE_DOWN:
        return observe.STORAGE_DOWN
    return observe.CRASHED


def plan_kill(rng: random.Random, baseline: Baseline, records_so_far: int,
              outages: bool = False) -> KillPlan:
    """A random kill, scaled to how long / how much the shape's run does."""
    outcome = baseline.outcome
    remaining = max(1, outcome['records'] - records_so_far)
    if outages and rng.random() < 0.5:
        return KillPlan('outage', delay=rng.uniform(0.0, outcome['run_seconds'] * 0.9),
                        count=rng.randint(50, 3000))
    roll = rng.random()
    if roll < 0.10:
        return KillPlan('startup', delay=rng.uniform(0.0, outcome['startup_seconds'] * 1.2))
    if roll < 0.40:
        return KillPlan('timer', delay=rng.uniform(0.0, outcome['run_seconds'] * 1.1))
    if roll < 0.60:
        return KillPlan('record', count=rng.randint(1, remaining))
    if roll < 0.75:
        return KillPlan('event', count=rng.randint(1, outcome['events']))
    return KillPlan('write', count=rng.randint(1, outcome['writes']))


class Runner:
    """Runs baselines and trials for one backend configuration.

    ``conf_for(name)`` returns the ``fetch()`` configuration a trial (or
    baseline) called ``name`` stores its flow in.
    """

    def __init__(self, backend: str, conf_for: Any, workdir: Path,
                 python: str = sys.executable) -> None:
        self.kind = backend
        self.backend = backend
        self.conf_for = conf_for
        self.workdir = workdir
        self.python = python
        self._baselines: dict[str, Baseline] = {}

    def baseline(self, shape_name: str) -> Baseline:
        if shape_name not in self._baselines:
            self._baselines[shape_name] = self._run_baseline(SHAPES[shape_name])
        return self._baselines[shape_name]

    def _run_baseline(self, shape: Shape) -> Baseline:
        where = self.workdir / ('baseline-%s' % shape.name)
        where.mkdir(parents=True, exist_ok=True)
        conf = self.conf_for(where.name)
        book = str(uuid.uuid4())
        incarnation = self._run_worker(where, conf, shape, book, 1, None, seed=0)
        if incarnation.end != observe.FINISHED:
            raise RuntimeError('baseline run of %r ended %s:\n%s'
                               % (shape.name, incarnation.end, incarnation.stderr))
        outcome = json.loads((where / 'outcome.json').read_text(encoding='utf-8'))
        final = observe.snapshot(conf, book, shape)
        records, _ = ledger.read(str(where / 'ledger'))
        return Baseline(shape, outcome, final, records)

    def _run_worker(self, where: Path, conf: dict, shape: Shape, book: str,
                    number: int, plan: KillPlan | None, seed: int,
                    before: observe.Snapshot | None = None) -> observe.Incarnation:
        ready = where / ('ready.%d' % number)
        spec = {'conf': conf, 'book': book, 'shape': shape.name,
                'ledger': str(where / 'ledger'), 'incarnation': number,
                'outcome': str(where / 'outcome.json'), 'ready': str(ready),
                'seed': seed}
        if plan is not None and plan.mode == 'record':
            spec['stop_after_record'] = plan.count
        if plan is not None and plan.mode == 'event':
            spec['stop_after_event'] = plan.count
        if plan is not None and plan.mode == 'write':
            spec['stop_after_write'] = plan.count
        stderr_path = where / ('stderr.%d' % number)
        proc = _spawn(spec, where / ('spec.%d.json' % number), stderr_path, self.python)
        outages: list[threading.Thread] = []
        end, reached_ready = supervise(
            proc, plan, ready, disrupt=lambda ms: outages.append(disrupt(self.kind, conf, ms)))
        for outage in outages:   # the database is back before anyone looks again
            outage.join()
        stderr = stderr_path.read_text(encoding='utf-8', errors='replace')
        (where / ('end.%d' % number)).write_text(end, encoding='utf-8')  # (for humans)
        return observe.Incarnation(number, before or observe.Snapshot(absent=True),
                                   plan.mode if plan else None, end, reached_ready,
                                   stderr)

    def _run_group(self, where: Path, conf: dict, shape: Shape, book: str, step: int,
                   plan: KillPlan | None, rng: random.Random, rivals: int,
                   before: observe.Snapshot) -> list[observe.Incarnation]:
        """The planned worker and ``rivals`` more, all started at once."""
        if not rivals:
            return [self._run_worker(where, conf, shape, book, 100 * step, plan,
                                     seed=rng.randrange(1 << 30), before=before)]
        found: list[observe.Incarnation] = []
        threads = [threading.Thread(target=lambda k=k, seed=rng.randrange(1 << 30):
                                    found.append(self._run_worker(
                                        where, conf, shape, book, 100 * step + k,
                                        plan if k == 0 else None, seed=seed,
                                        before=before)))
                   for k in range(rivals + 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for inc in found:
            inc.group = step
        return sorted(found, key=lambda inc: inc.number)

    def trial(self, shape_name: str, seed: int, name: str,
              plans: list[KillPlan] | None = None, rivals: int = 0,
              outages: bool = False) -> TrialReport:
        """Kill a run of ``shape_name``, resume it, check the invariants.

        ``plans``: the kills to make, in order; by default 1 to 4 random ones
        (see :func:`plan_kill`, which plans database outages too when
        ``outages``). ``rivals``: workers started beside every resumer.
        """
        shape = SHAPES[shape_name]
        baseline = self.baseline(shape_name)
        rng = random.Random(seed)
        where = self.workdir / name
        where.mkdir(parents=True, exist_ok=True)
        conf = self.conf_for(name)
        book = str(uuid.uuid4())
        report = TrialReport(self.backend, shape_name, seed, workdir=str(where),
                             replay='%s:%d' % (shape_name, seed))
        if plans is not None and [p.mode for p in plans] == ['write']:
            report.replay = '%s:write:%d' % (shape_name, plans[0].count)
        planned_kills = len(plans) if plans is not None else rng.randint(1, 4)
        incarnations: list[observe.Incarnation] = []
        before = observe.Snapshot(absent=True)
        # Every kill needs one more worker, plus one that finishes; a worker
        # that neither gets killed nor finishes ends the trial.
        for step in range(1, planned_kills + 2):
            plan = None
            if report.kills < planned_kills:
                if plans is not None:
                    plan = plans[report.kills]
                else:
                    records, _ = ledger.read(str(where / 'ledger'))
                    plan = plan_kill(rng, baseline, len(records), outages)
            group = self._run_group(where, conf, shape, book, step, plan, rng,
                                    rivals if step > 1 else 0, before)
            incarnations += group
            ends = {inc.end for inc in group}
            interrupted = ends & {observe.KILLED, observe.STORAGE_DOWN}
            if interrupted and observe.FINISHED not in ends:
                report.kills += 1
                report.kill_modes[plan.mode] = report.kill_modes.get(plan.mode, 0) + 1
                before = observe.snapshot(conf, book, shape)
                observe.save(before, where / ('snapshot.%d.json' % (step + 1)))
                if before.error and not any(i.reached_ready for i in incarnations):
                    # Killed while creating the schema: nothing to load yet.
                    before = observe.Snapshot(absent=True)
                continue
            if (plan is not None and plan.mode == 'outage'
                    and observe.FINISHED in ends and report.kills < planned_kills):
                # The outage was ridden out: it still counts as a planned fault.
                report.kill_modes['outage-ridden-out'] = \
                    report.kill_modes.get('outage-ridden-out', 0) + 1
            break
        report.incarnations = len(incarnations)
        outcome = None
        if incarnations[-1].end == observe.FINISHED:
            outcome = json.loads((where / 'outcome.json').read_text(encoding='utf-8'))
        final = observe.snapshot(conf, book, shape)
        observe.save(final, where / 'snapshot.final.json')
        records, torn = ledger.read(str(where / 'ledger'))
        report.violations = invariants.check(
            shape, baseline, incarnations, records, outcome, final)
        report.torn_records = torn
        return report


def disrupt(kind: str, conf: dict, milliseconds: int) -> threading.Thread:
    """Make the trial's database unusable for a while (a background thread).

    SQLite: another connection holds the file's exclusive lock. PostgreSQL
    and MariaDB: every connection to the trial's database is terminated,
    again and again, for the whole time (trials with outages must not run
    beside other trials on a shared server database).
    """
    seconds = milliseconds / 1000.0
    if kind == 'sqlite':
        path = conf['connection'].split(':///', 1)[1]

        def hold_lock() -> None:
            try:
                db = sqlite3.connect(path, timeout=10, isolation_level=None)
                db.execute('BEGIN EXCLUSIVE')
                time.sleep(seconds)
                db.execute('ROLLBACK')
                db.close()
            except sqlite3.Error:
                pass
        thread = threading.Thread(target=hold_lock, daemon=True)
        thread.start()
        return thread
    import sqlalchemy as sa

    if kind == 'postgresql':
        terminate = ('SELECT pg_terminate_backend(pid) FROM pg_stat_activity'
                     ' WHERE datname = current_database() AND pid <> pg_backend_pid()')
    else:
        terminate = None

    def terminate_for_a_while() -> None:
        engine = sa.create_engine(conf['connection'], isolation_level='AUTOCOMMIT')
        until = time.monotonic() + seconds
        try:
            with engine.connect() as conn:
                while time.monotonic() < until:
                    if terminate is not None:
                        conn.exec_driver_sql(terminate)
                    else:
                        ids = conn.exec_driver_sql(
                            'SELECT id FROM information_schema.processlist'
                            ' WHERE db = DATABASE() AND id <> CONNECTION_ID()').scalars()
                        for thread_id in list(ids):
                            try:
                                conn.exec_driver_sql('KILL %d' % int(thread_id))
                            except sa.exc.DBAPIError:
                                pass  # it ended meanwhile
                    time.sleep(0.02)
        except sa.exc.DBAPIError:
            pass
        finally:
            engine.dispose()
    thread = threading.Thread(target=terminate_for_a_while, daemon=True)
    thread.start()
    return thread
