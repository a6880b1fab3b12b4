"""Start workers, SIGKILL them, resume, until a trial's flow is finished.

One *trial* runs one flow shape against one backend:

1. start a worker (``python -m tests.reliability.worker``) with a kill plan;
2. SIGKILL it according to the plan (see :func:`plan_kill`);
3. read what is stored (a :class:`~tests.reliability.observe.Snapshot`),
   start the next worker, which resumes with ``load_from_detail``;
4. once the planned kills are spent, let the last worker finish; then hand
   everything (snapshots, ledger, outcome) to :mod:`invariants`.

With ``rivals``, every resume starts that many more workers at the same
moment (concurrent resumers): only one may own and run the flow at a time.
Worker numbers are ``100 * step + k``: ``k`` is 0 for the worker the plan
applies to and 1, 2... for its rivals.

A *baseline* is the same shape run once without kills: the reference the
trials are compared with.

An *outage trial* makes the database unreachable instead of killing the
worker (``KillPlan('outage', ...)``, see :class:`Faults`): through a TCP
proxy in front of PostgreSQL / MariaDB that resets connections (``down``)
or stops answering (``hang``), or by holding SQLite's write lock
(``lock``). A short outage must be ridden out; after a long one the worker
stops with ``StorageFailure`` within a bounded time and the next worker
resumes the flow once the database is back.
"""

from __future__ import annotations

import json
import os
import random
import signal
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
    ``outage``: no kill, the database goes away (``fault``) ``delay``
    seconds after the worker loaded the engine (or was spawned, with
    ``at_startup``) for ``duration`` seconds.
    """

    mode: str
    delay: float = 0.0
    count: int = 0
    fault: str = ''         # outage: 'down', 'hang' or 'lock'
    duration: float = 0.0   # outage: seconds the database stays away
    at_startup: bool = False   # outage: delay counts from the spawn


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


class Faults:
    """Makes one trial's database unreachable for a while.

    ``conf(conf)`` is the configuration workers use (through the fault
    point, with small timeouts so outages end quickly); ``start(fault)``
    and ``stop()`` begin and end an outage.
    """

    # Short limits: an attempt waits ~2 s at most, retries stop after 1.5 s.
    SERVER_OPTIONS = {'connect_timeout': 2, 'read_timeout': 1,
                      'statement_timeout': 1, 'lock_timeout': 1,
                      'max_retry_time': 1.5, 'retry_backoff': 0.05}
    SQLITE_OPTIONS = {'sqlite_busy_timeout': 0.3, 'max_retry_time': 1.5,
                      'retry_backoff': 0.05}

    def __init__(self, backend: str, conf: dict) -> None:
        import sqlalchemy as sa

        self._url = sa.engine.make_url(conf['connection'])
        self._proxy = None
        self._lock_holder: Any = None
        self.started = 0   # outages begun so far
        self.kinds: tuple[str, ...]
        if backend == 'sqlite':
            self.kinds = ('lock',)
            self._conf = dict(conf, **self.SQLITE_OPTIONS)
        else:
            from tests._proxy import TcpProxy
            self.kinds = ('down', 'hang')
            self._proxy = TcpProxy(self._url.host or '127.0.0.1', self._url.port or
                                   {'postgresql': 5432, 'mysql': 3306}[backend])
            url = self._url.set(host='127.0.0.1', port=self._proxy.port)
            self._conf = dict(conf, connection=url.render_as_string(
                hide_password=False), **self.SERVER_OPTIONS)

    def conf(self) -> dict:
        return dict(self._conf)

    def start(self, fault: str) -> None:
        self.started += 1
        if fault == 'lock':
            import sqlite3
            holder = sqlite3.connect(self._url.database, timeout=10,
                                     isolation_level=None)
            holder.execute('BEGIN EXCLUSIVE')
            self._lock_holder = holder
        else:
            getattr(self._proxy, fault)()

    def stop(self) -> None:
        if self._lock_holder is not None:
            self._lock_holder.execute('ROLLBACK')
            self._lock_holder.close()
            self._lock_holder = None
        if self._proxy is not None:
            self._proxy.resume()
            self._proxy.up()

    def close(self) -> None:
        self.stop()
        if self._proxy is not None:
            self._proxy.close()


def supervise(proc: subprocess.Popen, plan: KillPlan | None, ready_path: Path,
              deadline: float = WORKER_DEADLINE,
              faults: Faults | None = None) -> tuple[str, bool]:
    """Wait for the worker, killing it (or making its database go away) per
    ``plan``: ``(how it ended, ready?)``."""
    try:
        return _supervise(proc, plan, ready_path, deadline, faults)
    finally:
        if faults is not None:
            faults.stop()   # the next worker finds the database back


def _supervise(proc: subprocess.Popen, plan: KillPlan | None, ready_path: Path,
               deadline: float, faults: Faults | None) -> tuple[str, bool]:
    spawned = time.monotonic()
    ready_at = None
    outage_ends = None
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
        if plan is not None and plan.mode == 'outage':
            if outage_ends is None:
                begins = (spawned if plan.at_startup else ready_at)
                if begins is not None and now >= begins + plan.delay:
                    faults.start(plan.fault)
                    outage_ends = now + plan.duration
            elif now >= outage_ends:
                faults.stop()
                outage_ends = float('inf')
        due = None
        if plan is not None and plan.mode == 'startup':
            due = spawned + plan.delay
        elif plan is not None and plan.mode == 'timer' and ready_at is not None:
            due = ready_at + plan.delay
        if due is not None and now >= due:
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
    if code == worker.EXIT_STORAGE_DOWN:
        return observe.STOPPED
    if code == worker.EXIT_REFUSED:
        return observe.REFUSED
    return observe.CRASHED


def plan_kill(rng: random.Random, baseline: Baseline, records_so_far: int) -> KillPlan:
    """A random kill, scaled to how long / how much the shape's run does."""
    outcome = baseline.outcome
    remaining = max(1, outcome['records'] - records_so_far)
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


def plan_outage(rng: random.Random, baseline: Baseline, kinds: tuple[str, ...]
                ) -> KillPlan:
    """A random outage: short ones (ridden out by retries) and long ones
    (the worker gives up), mostly while the flow runs."""
    outcome = baseline.outcome
    fault = rng.choice(kinds)
    long = rng.random() < 0.5
    duration = rng.uniform(2.5, 4.0) if long else rng.uniform(0.1, 1.0)
    if rng.random() < 0.1:
        return KillPlan('outage', delay=rng.uniform(0.0, outcome['startup_seconds']),
                        fault=fault, duration=duration, at_startup=True)
    return KillPlan('outage', delay=rng.uniform(0.0, outcome['run_seconds'] * 1.1),
                    fault=fault, duration=duration)


class Runner:
    """Runs baselines and trials for one backend configuration.

    ``conf_for(name)`` returns the ``fetch()`` configuration a trial (or
    baseline) called ``name`` stores its flow in.
    """

    def __init__(self, backend: str, conf_for: Any, workdir: Path,
                 python: str = sys.executable) -> None:
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
                    before: observe.Snapshot | None = None,
                    faults: Faults | None = None) -> observe.Incarnation:
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
        end, reached_ready = supervise(proc, plan, ready, faults=faults)
        stderr = stderr_path.read_text(encoding='utf-8', errors='replace')
        (where / ('end.%d' % number)).write_text(end, encoding='utf-8')  # (for humans)
        return observe.Incarnation(number, before or observe.Snapshot(absent=True),
                                   plan.mode if plan else None, end, reached_ready,
                                   stderr)

    def _run_group(self, where: Path, conf: dict, shape: Shape, book: str, step: int,
                   plan: KillPlan | None, rng: random.Random, rivals: int,
                   before: observe.Snapshot, faults: Faults | None
                   ) -> list[observe.Incarnation]:
        """Worker ``100 * step`` (the plan's) and ``rivals`` more, all started at once.

        Only one of them may own and run the flow at a time (invariant f).
        """
        if not rivals:
            return [self._run_worker(where, conf, shape, book, 100 * step, plan,
                                     seed=rng.randrange(1 << 30), before=before,
                                     faults=faults)]
        found: list[observe.Incarnation] = []
        seeds = [rng.randrange(1 << 30) for _ in range(rivals + 1)]

        def run(k: int) -> None:
            found.append(self._run_worker(where, conf, shape, book, 100 * step + k,
                                          plan if k == 0 else None, seed=seeds[k],
                                          before=before, faults=faults if k == 0 else None))
        threads = [threading.Thread(target=run, args=(k,)) for k in range(rivals + 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for inc in found:
            inc.group = step
        return sorted(found, key=lambda inc: inc.number)

    def trial(self, shape_name: str, seed: int, name: str,
              plans: list[KillPlan] | None = None,
              outages: bool = False, rivals: int = 0) -> TrialReport:
        """Kill a run of ``shape_name``, resume it, check the invariants.

        ``plans``: the kills to make, in order; by default 1 to 4 random ones
        (see :func:`plan_kill`; with ``outages``, database outages instead,
        see :func:`plan_outage`). ``rivals``: workers started beside every
        resumer (concurrent resumers).
        """
        faults = None
        if outages or any(p.mode == 'outage' for p in plans or ()):
            faults = Faults(self.backend, self.conf_for(name))
        try:
            return self._trial(shape_name, seed, name, plans, faults, rivals)
        finally:
            if faults is not None:
                faults.close()

    def _trial(self, shape_name: str, seed: int, name: str,
               plans: list[KillPlan] | None, faults: Faults | None,
               rivals: int) -> TrialReport:
        shape = SHAPES[shape_name]
        baseline = self.baseline(shape_name)
        rng = random.Random(seed)
        where = self.workdir / name
        where.mkdir(parents=True, exist_ok=True)
        conf = self.conf_for(name) if faults is None else faults.conf()
        book = str(uuid.uuid4())
        report = TrialReport(self.backend, shape_name, seed, workdir=str(where),
                             replay='%s:%s%d' % (shape_name,
                                                 'outage:' if faults else '', seed))
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
                elif faults is not None:
                    plan = plan_outage(rng, baseline, faults.kinds)
                else:
                    records, _ = ledger.read(str(where / 'ledger'))
                    plan = plan_kill(rng, baseline, len(records))
            began = faults.started if faults is not None else 0
            group = self._run_group(where, conf, shape, book, step, plan, rng,
                                    rivals if step > 1 else 0, before, faults)
            incarnations += group
            planned = group[0]   # the worker the plan applies to
            ends = {inc.end for inc in group}
            if plan is not None and plan.mode == 'outage':
                if faults.started == began:
                    how = 'missed'   # the worker was done before it began
                elif planned.end == observe.STOPPED:
                    how = 'stopped'
                else:
                    how = 'ridden-out'
                mode = 'outage-%s-%s' % (plan.fault, how)
                report.kill_modes[mode] = report.kill_modes.get(mode, 0) + 1
            if (planned.end in (observe.KILLED, observe.STOPPED)
                    and observe.FINISHED not in ends):
                report.kills += 1
                if plan.mode != 'outage':
                    report.kill_modes[plan.mode] = report.kill_modes.get(plan.mode, 0) + 1
                before = observe.snapshot(conf, book, shape)
                observe.save(before, where / ('snapshot.%d.json' % (step + 1)))
                if before.error and not any(i.reached_ready for i in incarnations):
                    # Killed while creating the schema: nothing to load yet.
                    before = observe.Snapshot(absent=True)
                continue
            break
        report.incarnations = len(incarnations)
        outcome = None
        if any(inc.end == observe.FINISHED for inc in incarnations[-(rivals + 1):]):
            outcome = json.loads((where / 'outcome.json').read_text(encoding='utf-8'))
        final = observe.snapshot(conf, book, shape)
        observe.save(final, where / 'snapshot.final.json')
        records, torn = ledger.read(str(where / 'ledger'))
        report.violations = invariants.check(
            shape, baseline, incarnations, records, outcome, final)
        report.torn_records = torn
        return report
