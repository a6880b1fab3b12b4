"""One fleet trial: post jobs, run conductor processes, kill or stop them, check.

Modes:

* ``kill``: ``jobs`` jobs, ``conductors`` processes; every so often the
  holder of a random claimed job is SIGKILLed and a replacement started;
  the driver watches when the job becomes claimable again;
* ``stop``: a holder is SIGSTOPped just after it started a job's second
  task, kept stopped until another conductor reports ``running_start`` of
  that job, then SIGCONTed;
* ``poison``: a few jobs plus one whose last task exits its process; the
  dead conductors are replaced until the poison job is in the dead-letter;
* ``outage``: 2-3 times, at random moments, the board's service is cut
  (``outages.py``: Redis client kills and a restart, ZooKeeper session
  expiry, an etcd restart, PostgreSQL backends terminated, the SQLite file
  locked); the driver notes when each task is first seen ``SUCCESS`` in
  storage, and no task may start again after that.

Every trial has its own folder (ledger, events, conductor stderr, SQLite
file), its own board namespace and its own persistence database.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from taskflow import engines
from taskflow.persistence import models

from tests.reliability.fleet import boards
from tests.reliability.fleet import flows
from tests.reliability.fleet import invariants as inv
from tests.reliability.fleet import outages

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
TICK = 0.02   # seconds between the driver's looks


@dataclass
class TrialConfig:
    board: str
    mode: str = 'kill'             # 'kill' | 'stop' | 'poison' | 'outage'
    jobs: int = 50
    conductors: int = 3
    kills: int = 3
    cuts: tuple[int, int] = (2, 3)   # outages per outage trial (inclusive range)
    lease: float = 2.0             # the conductors' claim expiry
    task_seconds: tuple[float, float] = (0.02, 0.15)
    dead_letter_after: int = 3     # attempts before a crashing job is trashed
    dead_letter_option: str | None = 'max_attempts'   # the conductor option carrying it
    conductor_options: dict = field(default_factory=dict)
    deadline: float = 120.0
    seed: int | None = None
    keep: bool = False             # keep the trial folder even when it passed


@dataclass
class TrialResult:
    board: str
    mode: str
    seed: int
    violations: list[inv.Violation]
    freed: list[float]             # kill -> claimable again (s)
    dispatched: list[float]        # kill -> running_start elsewhere (s)
    kills: int
    seconds: float
    folder: str | None
    cuts: list[str] = field(default_factory=list)   # what each outage was
    rerun_jobs: int = 0            # jobs dispatched more than once (a takeover)
    unacknowledged: int = 0        # consumes whose answer an outage lost


class Fleet:
    """The conductor processes of one trial (replaced when they die)."""

    def __init__(self, cfg: TrialConfig, board_name: str, url: str, folder: str) -> None:
        self.cfg = cfg
        self.board_name = board_name
        self.url = url
        self.folder = folder
        self.events = os.path.join(folder, 'events.jsonl')
        self.procs: dict[int, subprocess.Popen] = {}
        self.started = 0
        self.ours: set[int] = set()       # pids we signalled (their death is expected)
        self.crashes: list[str] = []      # conductors that died by themselves

    def options(self) -> dict:
        options = dict(self.cfg.conductor_options)
        if self.cfg.dead_letter_option:
            attempts = self.cfg.dead_letter_after
            if self.cfg.mode == 'outage':
                # Each cut may cost every job in flight its claim (a lost
                # claim is an attempt): the cuts alone must not dead-letter.
                attempts = max(attempts, self.cfg.cuts[1] + 2)
            options[self.cfg.dead_letter_option] = attempts
        return options

    def start(self, slot: int) -> subprocess.Popen:
        self.started += 1
        err = open(os.path.join(self.folder, 'conductor-%d-%d.err' % (slot, self.started)), 'w')
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (REPO_ROOT, os.environ.get('PYTHONPATH')) if p))
        proc = subprocess.Popen(
            [sys.executable, '-m', 'tests.reliability.fleet.conductor',
             '--board', self.cfg.board, '--board-name', self.board_name,
             '--persistence', self.url, '--events', self.events, '--slot', str(slot),
             '--expiry', str(self.cfg.lease), '--options', json.dumps(self.options())],
            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err)
        err.close()
        self.procs[slot] = proc
        return proc

    def start_all(self) -> None:
        for slot in range(self.cfg.conductors):
            self.start(slot)

    def by_pid(self, pid: int | None) -> subprocess.Popen | None:
        for proc in self.procs.values():
            if proc.pid == pid and proc.poll() is None:
                return proc
        return None

    def replace_dead(self) -> None:
        """Start a replacement for every conductor that exited."""
        for slot, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            if proc.pid not in self.ours and code != flows.POISON_EXIT:
                self.crashes.append('pid %d exited %s (see %s/conductor-%d-*.err)'
                                    % (proc.pid, code, self.folder, slot))
            self.start(slot)

    def signal(self, proc: subprocess.Popen, signum: int) -> None:
        self.ours.add(proc.pid)
        os.kill(proc.pid, signum)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                self.ours.add(proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
                    proc.terminate()
        deadline = time.monotonic() + 5
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # A conductor that hangs past stop() is reported; SIGABRT
                # first so its stderr file shows where every thread was.
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGABRT)
                try:
                    proc.wait(3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                self.crashes.append('pid %d did not stop within 5 s of SIGTERM' % proc.pid)

    def read_events(self) -> list[dict]:
        try:
            with open(self.events) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []


class Trial:
    """Runs one trial (see the module doc) and checks its invariants."""

    def __init__(self, cfg: TrialConfig) -> None:
        self.cfg = cfg
        self.seed = cfg.seed if cfg.seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.jobs: list[inv.JobInfo] = []
        self.jobs_by_key: dict[str, inv.JobInfo] = {}
        self.kills: list[inv.Kill] = []
        self.stops: list[inv.Stop] = []
        self.violations: list[inv.Violation] = []
        self.cuts: list[outages.Cut] = []
        self.persistence_url = ''
        self.unacknowledged: set[str] = set()   # consumes an outage made ambiguous
        # (job key, task) -> when the driver first saw it SUCCESS in storage
        self.seen_success: dict[tuple[str, str], float] = {}

    # -- setting up ---------------------------------------------------------

    def post(self, board: Any, persistence: Any, ledger: str) -> None:
        counts = {'kill': self.cfg.jobs, 'outage': self.cfg.jobs,
                  'stop': max(self.cfg.jobs, 1), 'poison': max(self.cfg.jobs, 1) + 1}
        total = counts[self.cfg.mode]
        with contextlib.closing(persistence.get_connection()) as conn:
            for i in range(total):
                poison = self.cfg.mode == 'poison' and i == total - 1
                key = 'job%03d' % i + ('-poison' if poison else '')
                tasks = 3 if self.cfg.mode == 'stop' else self.rng.choice((2, 3))
                seconds = (0.4 if self.cfg.mode == 'stop'
                           else round(self.rng.uniform(*self.cfg.task_seconds), 3))
                book = models.LogBook('fleet-%s' % key)
                detail = models.FlowDetail('fleet-%s' % key, str(uuid.uuid4()))
                book.add(detail)
                engines.save_factory_details(
                    detail, flows.make_flow, [key, ledger],
                    {'tasks': tasks, 'seconds': seconds, 'poison': poison})
                conn.save_logbook(book)
                job = board.post(key, book=book, details={'flow_uuid': detail.uuid})
                self.jobs.append(inv.JobInfo(key, job.uuid, detail.uuid,
                                             flows.task_names(tasks), poison))

    # -- observing ----------------------------------------------------------

    @staticmethod
    def task_states(persistence: Any, flow_uuid: str, attempts: int = 3) -> inv.Final:
        for attempt in range(attempts):
            try:
                with contextlib.closing(persistence.get_connection()) as conn:
                    detail = conn.get_flow_details(flow_uuid)
                    return inv.Final(detail.state,
                                     {ad.name: (ad.state, ad.results) for ad in detail})
            except Exception:
                # An outage may have cut the driver's pooled connection too:
                # the pool drops it and the next attempt reconnects.
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5)
        raise AssertionError('unreachable')

    def look(self, persistence: Any) -> None:
        """Note the tasks stored ``SUCCESS`` by now (outage trials)."""
        for job in self.jobs:
            if all((job.key, name) in self.seen_success for name in job.tasks):
                continue
            try:
                final = self.task_states(persistence, job.flow_uuid, attempts=1)
            except Exception:
                return   # the outage: look again later
            now = time.time()   # after the read: the write happened before
            for name, (state, _) in final.tasks.items():
                if state == 'SUCCESS':
                    self.seen_success.setdefault((job.key, name), now)

    def claimed(self, board: Any, fleet: Fleet) -> list[tuple[Any, Any]]:
        """(job, holder process) of the claimed jobs held by live conductors."""
        found = []
        with contextlib.suppress(Exception):   # an outage: try again later
            for job in board.iterjobs(ensure_fresh=True):
                proc = fleet.by_pid(boards.owner_pid(board.find_owner(job)))
                if proc is not None:
                    found.append((job, proc))
        return found

    def remaining(self, board: Any) -> set[str] | None:
        try:
            return {job.uuid for job in board.iterjobs(ensure_fresh=True)}
        except Exception:
            return None

    # -- the modes ----------------------------------------------------------

    def _key(self, uuid_: str) -> str:
        return next(job.key for job in self.jobs if job.uuid == uuid_)

    def drive_kills(self, board: Any, persistence: Any, fleet: Fleet, deadline: float,
                    ) -> None:
        # The first kill comes early: a short trial may be over within 2 s.
        next_kill = time.monotonic() + self.rng.uniform(0.1, 0.5)
        watching: list[tuple[inv.Kill, Any, float]] = []
        killed_jobs: set[str] = set()
        while time.monotonic() < deadline:
            fleet.replace_dead()
            for kill, job, since in list(watching):
                with contextlib.suppress(Exception):
                    owner = boards.owner_pid(board.find_owner(job))
                    if owner != kill.pid:
                        kill.freed_after = time.monotonic() - since
                        watching.remove((kill, job, since))
            if len(self.kills) < self.cfg.kills and time.monotonic() >= next_kill:
                candidates = [(job, proc) for job, proc in self.claimed(board, fleet)
                              if job.uuid not in killed_jobs]
                if candidates:
                    job, proc = self.rng.choice(candidates)
                    with contextlib.suppress(Exception):   # it may have moved on since
                        if boards.owner_pid(board.find_owner(job)) != proc.pid:
                            continue
                    kill = inv.Kill(proc.pid, self._key(job.uuid), time.time())
                    since = time.monotonic()
                    fleet.signal(proc, signal.SIGKILL)
                    proc.wait()
                    kill.persisted = {name: state for name, (state, _) in self.task_states(
                        persistence, self.jobs_by_key[kill.job].flow_uuid).tasks.items()}
                    self.kills.append(kill)
                    killed_jobs.add(job.uuid)
                    watching.append((kill, job, since))
                    fleet.start(next(s for s, p in fleet.procs.items() if p is proc))
                    next_kill = time.monotonic() + self.rng.uniform(0.3, 2.0)
            if not watching and self.done(board):
                return
            time.sleep(TICK)

    def drive_stop(self, board: Any, persistence: Any, fleet: Fleet, ledger: str,
                   deadline: float) -> None:
        stop = None
        while time.monotonic() < deadline:
            fleet.replace_dead()
            if stop is None:
                for line in flows.read_ledger(ledger):
                    proc = fleet.by_pid(line.pid)
                    if line.task == 't1' and line.phase == flows.START and proc is not None:
                        fleet.signal(proc, signal.SIGSTOP)
                        stop = inv.Stop(proc.pid, line.job, time.time())
                        stop.persisted = {n: s for n, (s, _) in self.task_states(
                            persistence, self.jobs_by_key[line.job].flow_uuid).tasks.items()}
                        self.stops.append(stop)
                        stopped_proc = proc
                        break
            elif stop.resumed_at is None:
                uuid_ = self.jobs_by_key[stop.job].uuid
                started = [e['t'] for e in fleet.read_events()
                           if e['event'] == 'running_start' and e.get('job') == uuid_
                           and e['pid'] != stop.pid and e['t'] > stop.stopped_at]
                overdue = time.time() - stop.stopped_at > self.cfg.lease + 20
                if started or overdue:
                    stop.taken_over_at = min(started) if started else None
                    if not started and self.cfg.board == 'sql-sqlite':
                        stop.note = sqlite_writable(self.persistence_url)
                    os.kill(stopped_proc.pid, signal.SIGCONT)
                    stop.resumed_at = time.time()
            elif self.done(board) and time.time() - stop.resumed_at > 1.0:
                return   # gave the stale owner a second to try writing
            time.sleep(TICK)

    def drive_outages(self, board: Any, persistence: Any, fleet: Fleet, url: str,
                      outage: outages.Outage, deadline: float) -> None:
        planned = self.rng.randint(*self.cfg.cuts)
        restart = self.rng.randrange(planned) if outage.restarts else None
        next_cut = None   # the first cut comes once the fleet is up and working
        next_look = 0.0
        while time.monotonic() < deadline:
            fleet.replace_dead()
            if next_cut is None:
                ready = sum(e['event'] == 'ready' for e in fleet.read_events())
                if ready >= self.cfg.conductors:
                    next_cut = time.monotonic() + self.rng.uniform(0.3, 1.0)
            if time.monotonic() >= next_look:
                self.look(persistence)
                next_look = time.monotonic() + 0.25
            if len(self.cuts) < planned and next_cut is not None \
                    and time.monotonic() >= next_cut:
                self.look(persistence)
                live = {p.pid for p in fleet.procs.values() if p.poll() is None}
                self.cuts.append(outage.cut(outages.CutContext(
                    url, fleet.read_events(), live, len(self.cuts) == restart)))
                next_cut = time.monotonic() + self.rng.uniform(0.5, 2.5)
                continue
            if self.done(board):
                return
            time.sleep(TICK * 5)
        self.look(persistence)

    def drive_until_done(self, board: Any, fleet: Fleet, deadline: float) -> None:
        while time.monotonic() < deadline:
            fleet.replace_dead()
            if self.done(board):
                return
            time.sleep(TICK * 5)

    def done(self, board: Any) -> bool:
        left = self.remaining(board)
        return left is not None and not left

    # -- the trial ----------------------------------------------------------

    def run(self) -> TrialResult:
        cfg = self.cfg
        clock = time.monotonic()
        folder = tempfile.mkdtemp(prefix='tf-fleet-%s-%s-' % (cfg.board, cfg.mode))
        outage = (outages.OUTAGES[cfg.board] if cfg.mode == 'outage'
                  else outages.Outage)(folder, self.rng)
        outage.start()
        try:
            with outages.environment(outage.env()):
                events = self._run(folder, outage)
        finally:
            outage.close()
        with open(os.path.join(folder, 'cuts.json'), 'w') as f:   # for diagnosis
            json.dump({'kills': [vars(k) for k in self.kills],
                       'stops': [vars(s) for s in self.stops],
                       'outages': [vars(c) for c in self.cuts],
                       'seen_success': {'%s %s' % key: at
                                        for key, at in self.seen_success.items()}},
                      f, indent=1)
        dispatched = inv.dispatch_takeovers(self.kills, self.jobs, events)
        keep = cfg.keep or bool(self.violations)
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        return TrialResult(cfg.board, cfg.mode, self.seed, self.violations,
                           [k.freed_after for k in self.kills if k.freed_after is not None],
                           dispatched, len(self.kills), time.monotonic() - clock,
                           folder if keep else None, [c.what for c in self.cuts],
                           inv.dispatched_again(events), len(self.unacknowledged))

    def _run(self, folder: str, outage: outages.Outage) -> list[dict]:
        cfg = self.cfg
        board_name = 'fleet-%s' % uuid.uuid4().hex[:10]
        ledger = os.path.join(folder, 'ledger.txt')
        with boards.persistence_url(cfg.board, folder) as url:
            self.persistence_url = url
            persistence = boards.open_persistence(url, upgrade=True)
            board = boards.make_board(cfg.board, board_name, persistence, url)
            board.connect()
            fleet = Fleet(cfg, board_name, url, folder)
            try:
                fleet.start_all()   # first: their start-up overlaps the posting
                self.post(board, persistence, ledger)
                self.jobs_by_key = {job.key: job for job in self.jobs}
                deadline = time.monotonic() + cfg.deadline
                if cfg.mode == 'kill':
                    self.drive_kills(board, persistence, fleet, deadline)
                elif cfg.mode == 'stop':
                    self.drive_stop(board, persistence, fleet, ledger, deadline)
                elif cfg.mode == 'outage':
                    self.drive_outages(board, persistence, fleet, url, outage, deadline)
                self.drive_until_done(board, fleet, deadline)
                if not self.done(board):
                    self.violations.append(('deadline', 'jobs left on the board after'
                                            ' %.0f s: %s' % (cfg.deadline, sorted(
                                                self._key(u) for u in
                                                self.remaining(board) or ()))))
            finally:
                fleet.stop_all()
            events = fleet.read_events()
            self.check(board, persistence, fleet, events, ledger)
            with contextlib.suppress(Exception):
                boards.cleanup(cfg.board, board)
            with contextlib.suppress(Exception):
                board.close()
            persistence.close()
        return events

    def check(self, board: Any, persistence: Any, fleet: Fleet, events: list[dict],
              ledger_path: str) -> None:
        ledger = flows.read_ledger(ledger_path)
        finals = {job.key: self.task_states(persistence, job.flow_uuid) for job in self.jobs}
        left = self.remaining(board) or set()
        trashed: dict[str, list] = {}
        with contextlib.suppress(Exception):
            for job in board.iter_trashed():
                trashed[job.uuid] = list(board.history(job))
        found = self.violations
        found += inv.check_flows(self.jobs, finals)
        self.unacknowledged = inv.unacknowledged_consumes(
            self.jobs, events, left, [(c.at, c.at + c.seconds) for c in self.cuts])
        found += inv.check_consumed(self.jobs, events, left, self.kills,
                                    self.unacknowledged)
        found += inv.check_reruns(self.kills, self.stops, ledger)
        found += inv.check_reruns_seen(self.seen_success, ledger)
        found += inv.check_takeovers(self.kills, self.cfg.lease)
        found += inv.check_stale(self.stops, self.jobs, ledger, events, finals)
        found += inv.check_dead_letter(self.jobs, trashed, self.cfg.dead_letter_after
                                       if self.cfg.mode == 'poison' else 0)
        found += [('conductor', crash) for crash in fleet.crashes]


def sqlite_writable(url: str) -> str:
    """Whether a write transaction can start on the SQLite file at ``url`` now
    (a process frozen inside one keeps every other writer out)."""
    import sqlite3

    conn = sqlite3.connect(url[len('sqlite:///'):], timeout=1.0, isolation_level=None)
    try:
        conn.execute('BEGIN IMMEDIATE')
        conn.execute('ROLLBACK')
        return 'the database file was writable'
    except sqlite3.OperationalError as e:
        return 'the database file was not writable for 1 s: %s; the stopped holder' \
               ' probably froze inside a write transaction' % e
    finally:
        conn.close()


def run_trial(cfg: TrialConfig) -> TrialResult:
    """Run one trial of ``cfg`` (see :class:`Trial`)."""
    return Trial(cfg).run()
