"""Command line of the fleet trials.

    python -m tests.reliability.fleet --board redis --trials 20 [--conductors 3]
        [--jobs 50] [--kills 3] [--lease 2] [--stop-trials 1] [--poison-trials 1]
        [--outage-trials 0] [--outage-jobs 30]

Runs ``--trials`` kill trials per board, then the SIGSTOP, poison and outage trials,
and prints one summary line per board: trials, violations, and the takeover
times (kill -> the job is claimable again; kill -> the job's next
``running_start`` on another conductor) as p50/p95/max.  Exit status 1 if
any invariant was violated; failing trials keep their folder (printed).
"""

from __future__ import annotations

import argparse
import sys

from tests.reliability.fleet import boards
from tests.reliability.fleet import report
from tests.reliability.fleet.driver import TrialConfig, run_trial


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m tests.reliability.fleet',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--board', action='append', choices=boards.KINDS,
                        help='board to run on (repeatable; default: every available one)')
    parser.add_argument('--trials', type=int, default=1, help='kill trials per board')
    parser.add_argument('--stop-trials', type=int, default=1)
    parser.add_argument('--poison-trials', type=int, default=1)
    parser.add_argument('--outage-trials', type=int, default=0,
                        help="trials cutting the board's service 2-3 times")
    parser.add_argument('--outage-jobs', type=int, default=30, help='jobs per outage trial')
    parser.add_argument('--conductors', type=int, default=3)
    parser.add_argument('--jobs', type=int, default=50)
    parser.add_argument('--kills', type=int, default=3, help='SIGKILLs per kill trial')
    parser.add_argument('--lease', type=float, default=2.0, help='claim expiry (s)')
    parser.add_argument('--dead-letter-after', type=int, default=3)
    parser.add_argument('--dead-letter-option', default='max_attempts',
                        help="the conductor option naming how many attempts a job gets")
    parser.add_argument('--deadline', type=float, default=120.0)
    parser.add_argument('--seed', type=int, default=None)
    parser.add_argument('--keep', action='store_true', help='keep every trial folder')
    parser.add_argument('-v', '--verbose', action='store_true', help='one line per trial')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    kinds = args.board or list(boards.KINDS)
    summaries = []
    for kind in kinds:
        try:
            boards.check_available(kind)
        except boards.Unavailable as e:
            print('%s: skipped (%s)' % (kind, e), flush=True)
            continue
        results = []
        plan = ([('kill', args.trials), ('stop', args.stop_trials),
                 ('poison', args.poison_trials), ('outage', args.outage_trials)])
        n = 0
        for mode, count in plan:
            for _ in range(count):
                n += 1
                cfg = TrialConfig(
                    board=kind, mode=mode,
                    jobs={'kill': args.jobs, 'outage': args.outage_jobs}.get(mode, 4),
                    conductors=args.conductors if mode != 'poison' else 2,
                    kills=args.kills, lease=args.lease,
                    task_seconds=(0.1, 0.3) if mode == 'outage' else (0.02, 0.15),
                    dead_letter_after=args.dead_letter_after,
                    dead_letter_option=args.dead_letter_option,
                    deadline=args.deadline,
                    seed=None if args.seed is None else args.seed + n, keep=args.keep)
                result = run_trial(cfg)
                results.append(result)
                if args.verbose or result.violations:
                    print(report.trial_line(result), flush=True)
        summaries.append(report.Summary.of(kind, results))
        print(summaries[-1].line(), flush=True)
    print()
    print(report.table(summaries))
    return 1 if any(s.violations for s in summaries) else 0


if __name__ == '__main__':
    sys.exit(main())
