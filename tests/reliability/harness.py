"""Crash/resume campaigns: many trials against one backend, and the CLI.

    python -m tests.reliability.harness --backend sqlite --trials 500 [--seed S]

See README.md in this folder.  Exit status 0 when no invariant was violated.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability import invariants
from tests.reliability.driver import KillPlan, Runner, TrialReport
from tests.reliability.shapes import SHAPES

BACKENDS = ('sqlite', 'postgresql', 'mysql')


@dataclass
class Summary:
    """Counts over the trials of one backend (``violations``: how many
    trials broke each invariant)."""

    backend: str
    trials: int = 0
    kills: int = 0
    workers: int = 0
    torn_records: int = 0
    kill_modes: collections.Counter = field(default_factory=collections.Counter)
    kills_by_shape: collections.Counter = field(default_factory=collections.Counter)
    violations: collections.Counter = field(default_factory=collections.Counter)
    failed: list[TrialReport] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, report: TrialReport) -> None:
        self.trials += 1
        self.kills += report.kills
        self.workers += report.incarnations
        self.torn_records += report.torn_records
        self.kill_modes.update(report.kill_modes)
        self.kills_by_shape[report.shape] += report.kills
        self.violations.update({v.invariant for v in report.violations})
        if report.violations:
            self.failed.append(report)

    def table_row(self) -> str:
        return '%-11s %7d %6d %8d  %s' % (
            self.backend, self.trials, self.kills, self.workers,
            ' '.join('%3d' % self.violations[i] for i in invariants.INVARIANTS))

    def describe_failures(self, limit: int = 20) -> str:
        lines = [describe(report) for report in self.failed[:limit]]
        if len(self.failed) > limit:
            lines.append('... and %d more failing trials' % (len(self.failed) - limit))
        return '\n'.join(lines)


def describe(report: TrialReport) -> str:
    """A trial on one line, then its violations (one per line)."""
    lines = ['%s --replay %s: %d kills %s, %d workers, %s' % (
        report.backend, report.replay, report.kills, dict(report.kill_modes),
        report.incarnations, 'files in %s' % report.workdir if report.violations
        else 'OK')]
    lines += ['    %s' % v for v in report.violations]
    return '\n'.join(lines)


TABLE_HEADER = '%-11s %7s %6s %8s  %s' % ('backend', 'trials', 'kills', 'workers',
                                          ' '.join('%3s' % i[:3] for i in invariants.INVARIANTS))


def trial_seed(seed: int, index: int) -> int:
    return seed * 1_000_003 + index


def run_campaign(runner: Runner, shapes: list[str], trials: int, seed: int,
                 min_kills: int = 0, jobs: int = 1, keep: bool = False,
                 progress: Callable[[TrialReport], None] | None = None,
                 outages: bool = False, rivals: int = 0) -> Summary:
    """Run ``trials`` trials (round-robin over ``shapes``), then more until
    every shape had ``min_kills`` kills (at most 4x as many trials); with
    ``outages``, database outages instead of kills (a worker stopped by one
    counts as a kill); ``rivals``: concurrent resumers started beside each
    resumer."""
    summary = Summary(runner.backend)
    clock = time.monotonic()
    for shape in shapes:   # baselines first: trials are compared with them
        runner.baseline(shape)
    pending: collections.Counter = collections.Counter()
    started = 0

    def next_shape() -> str | None:
        if started < trials:
            return shapes[started % len(shapes)]
        if started >= 4 * max(trials, len(shapes)):
            return None
        # A trial kills 2.5 times on average; count running ones as 2.
        expected = {s: summary.kills_by_shape[s] + 2 * pending[s] for s in shapes}
        short = [s for s in shapes if expected[s] < min_kills]
        return min(short, key=expected.__getitem__) if short else None

    def one(shape: str, index: int) -> TrialReport:
        report = runner.trial(shape, trial_seed(seed, index), '%s-%05d' % (shape, index),
                              outages=outages, rivals=rivals)
        if not report.violations and not keep:
            shutil.rmtree(report.workdir, ignore_errors=True)
        return report

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        running: dict[concurrent.futures.Future, str] = {}
        while True:
            while len(running) < jobs and (shape := next_shape()) is not None:
                running[pool.submit(one, shape, started)] = shape
                pending[shape] += 1
                started += 1
            if not running:
                break
            done, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                pending[running.pop(future)] -= 1
                report = future.result()
                summary.add(report)
                if progress is not None:
                    progress(report)
    summary.seconds = time.monotonic() - clock
    return summary


def run_sweep(runner: Runner, shapes: list[str], jobs: int = 1, keep: bool = False,
              progress: Callable[[TrialReport], None] | None = None,
              points: Iterable[int] | None = None) -> Summary:
    """One trial per backend write of each shape's baseline run: kill right
    after write 1, after write 2... (every commit boundary), then resume.

    ``points``: only these write numbers (default: all of the run's writes).
    """
    summary = Summary(runner.backend)
    clock = time.monotonic()
    trials = []
    for shape in shapes:
        writes = runner.baseline(shape).outcome['writes']
        chosen = range(1, writes + 1) if points is None else points
        trials += [(shape, k) for k in chosen]

    def one(shape: str, k: int) -> TrialReport:
        report = runner.trial(shape, k, '%s-write-%03d' % (shape, k),
                              plans=[KillPlan('write', count=k)])
        if not report.violations and not keep:
            shutil.rmtree(report.workdir, ignore_errors=True)
        return report

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for report in pool.map(lambda trial: one(*trial), trials):
            summary.add(report)
            if progress is not None:
                progress(report)
    summary.seconds = time.monotonic() - clock
    return summary


@contextlib.contextmanager
def backend_runner(backend: str, workdir: Path) -> Iterator[Runner]:
    """A :class:`Runner` storing into ``backend``; server databases are
    created fresh (``tests._services.scratch_database``) and dropped after."""
    from tests import _services

    if backend == 'sqlite':
        def conf_for(name: str) -> dict:
            return {'connection': 'sqlite:///%s' % (workdir / name / 'flow.db')}
        yield Runner(backend, conf_for, workdir)
        return
    url = _services.scratch_database(backend)
    try:
        yield Runner(backend, lambda name: {'connection': url}, workdir)
    finally:
        _services.drop_scratch_database(url)


def _run(args: argparse.Namespace, runner: Runner, shapes: list[str], seed: int,
         progress: Callable[[TrialReport], None]) -> Summary:
    print('   workers run the taskflow in %s'
          % runner.baseline(shapes[0]).outcome['taskflow'], flush=True)
    if args.replay:
        # 'SHAPE:SEED' (a random trial), 'SHAPE:outage:SEED' (an outage
        # trial) or 'SHAPE:write:K' (a sweep trial)
        shape, _, trial = args.replay.partition(':')
        plans = None
        outages = trial.startswith('outage:')
        if trial.startswith('write:'):
            plans = [KillPlan('write', count=int(trial.split(':')[1]))]
        trial = trial.split(':')[-1]
        report = runner.trial(shape, int(trial), 'replay-%s' % shape, plans=plans,
                              outages=outages, rivals=args.rivals)
        print(describe(report))
        summary = Summary(runner.backend)
        summary.add(report)
        return summary
    if args.sweep:
        return run_sweep(runner, shapes, args.jobs, args.keep, progress)
    return run_campaign(runner, shapes, args.trials, seed, args.min_kills, args.jobs,
                        args.keep, progress, outages=args.outages, rivals=args.rivals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m tests.reliability.harness',
        description='SIGKILL workers running persisted flows, resume them, check '
                    'the invariants (see tests/reliability/README.md).')
    parser.add_argument('--backend', action='append', choices=BACKENDS,
                        help='backend to test (repeatable; default: all three)')
    parser.add_argument('--trials', type=int, default=60,
                        help='trials per backend, spread over the shapes (default 60)')
    parser.add_argument('--min-kills', type=int, default=0,
                        help='keep adding trials until every shape had this many kills')
    parser.add_argument('--shape', action='append', choices=sorted(SHAPES),
                        help='flow shape (repeatable; default: all)')
    parser.add_argument('--seed', type=int, default=None,
                        help='seed of the kill plans (default: time based; printed)')
    parser.add_argument('--jobs', type=int, default=1, help='trials run at once')
    parser.add_argument('--workdir', type=Path, default=None,
                        help='where trials keep their files (default: a temp dir)')
    parser.add_argument('--keep', action='store_true',
                        help='keep the files of passing trials too')
    parser.add_argument('--replay', metavar='SHAPE:SEED',
                        help='run again the one trial a report printed (same kill '
                             'plan); SHAPE:write:K for a sweep trial')
    parser.add_argument('--sweep', action='store_true',
                        help='instead of random kills: kill once after each backend '
                             'write of a run, in turn (every commit boundary)')
    parser.add_argument('--rivals', type=int, default=0,
                        help='start this many more resumers beside each resumer (only one'
                             ' may run the flow at a time)')
    parser.add_argument('--outages', action='store_true',
                        help='instead of kills: make the database unreachable (reset or '
                             'hung connections through a proxy; SQLite: its write lock '
                             'held) for short or long spells, then resume')
    parser.add_argument('-v', '--verbose', action='store_true', help='one line per trial')
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    shapes = args.shape or list(SHAPES)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix='taskflow-crash-'))
    print('seed %d, shapes %s, files under %s' % (seed, ', '.join(shapes), workdir))

    def progress(report: TrialReport) -> None:
        if args.verbose or report.violations:
            print(describe(report), flush=True)

    summaries = []
    for backend in args.backend or list(BACKENDS):
        print('== %s' % backend, flush=True)
        try:
            with backend_runner(backend, workdir / backend) as runner:
                summaries.append(_run(args, runner, shapes, seed, progress))
        except BaseException as e:   # pytest.skip() from _services: no server
            if type(e).__name__ not in ('Skipped', 'Failed'):
                raise
            print('   %s: skipped: %s' % (backend, e))
    print()
    print('violations = trials breaking each invariant (see README.md)')
    print(TABLE_HEADER)
    for summary in summaries:
        print(summary.table_row())
    for summary in summaries:
        print('%s: kill modes %s, %.0f s, torn ledger lines %d' % (
            summary.backend, dict(sorted(summary.kill_modes.items())), summary.seconds,
            summary.torn_records))
    failed = [s for s in summaries if s.failed]
    for summary in failed:
        print()
        print(summary.describe_failures())
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
