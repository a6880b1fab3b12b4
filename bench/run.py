"""Benchmark taskflow-ng against the original TaskFlow 6.5.0.

    .venv/bin/python bench/run.py [--scenarios linear,graph] [--repeat N]
                                  [--repeat-original M] [--quick] [--skip-original]

Every measurement runs in a fresh worker process (``worker.py``), taskflow-ng
with this interpreter and the original with the oracle's, alternating between
them so noise hits both alike. Prints a table of medians (and the graphlib
floor where one applies), notes and targets; writes the raw measurements to
``bench/results/<timestamp>.json``. Exits 1 if a measurement failed (or, with
``--check-targets``, if a target was missed). See bench/README.md.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time

import _registry
import _report
import _results
import _workers

DEFAULTS = {False: {'repeat': 5, 'repeat_original': 3, 'timeout': 900.0},
            True: {'repeat': 3, 'repeat_original': 1, 'timeout': 120.0}}


def _wanted(case, cases: str) -> bool:
    """Whether ``--cases`` selects ``case`` (every case when it is empty)."""
    wanted = [part.strip() for part in cases.split(',') if part.strip()]
    return not wanted or any(part in case.label for part in wanted)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scenarios', default='',
                        help='comma-separated scenario names (default: all): %s'
                        % ', '.join(_registry.BY_NAME))
    parser.add_argument('--cases', default='',
                        help='comma-separated substrings: run only the cases whose label '
                        'contains one of them (e.g. "redis 1,etcd")')
    parser.add_argument('--repeat', type=int, help='runs per case for taskflow-ng and the '
                        'floor (default 5; 3 with --quick)')
    parser.add_argument('--repeat-original', type=int,
                        help='runs per case for the original (default 3; 1 with --quick)')
    parser.add_argument('--quick', action='store_true',
                        help='small sizes and few repeats: a smoke run')
    parser.add_argument('--skip-original', action='store_true',
                        help='do not run the original TaskFlow')
    parser.add_argument('--timeout', type=float,
                        help='seconds one worker process may take (default 900; 120 with --quick)')
    parser.add_argument('--results-dir', default=os.path.join(_workers.BENCH_DIR, 'results'),
                        help='where the JSON results go (default bench/results)')
    parser.add_argument('--check-targets', action='store_true',
                        help='exit 1 when a target is missed')
    parser.add_argument('--list', action='store_true', help='list the scenarios and exit')
    args = parser.parse_args(argv)
    for name, value in DEFAULTS[args.quick].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    names = [n.strip() for n in args.scenarios.split(',') if n.strip()]
    unknown = [n for n in names if n not in _registry.BY_NAME]
    if unknown:
        parser.error('unknown scenario(s) %s; known: %s'
                     % (', '.join(unknown), ', '.join(_registry.BY_NAME)))
    args.selected = [_registry.BY_NAME[n] for n in names] or list(_registry.SCENARIOS)
    return args


class Runner:
    """Runs the measurements of each case, sharing identical ones between cases."""

    def __init__(self, impls, args, scratch):
        self.impls = impls            # key -> Implementation (absent: not run)
        self.args = args
        self.scratch = scratch
        self._cache = {}              # (impl, module, size, params) -> (runs, errors)

    def repeats(self, scenario, impl):
        if impl == 'original':
            cap = scenario.original_repeat_cap
            return min(self.args.repeat_original, cap) if cap else self.args.repeat_original
        return self.args.repeat

    def _jobs(self, scenario, case, size):
        """(impl key, module, params) of every measurement the case needs."""
        module = case.module or scenario.module
        if not scenario.runs_taskflow:
            return [('floor', module, case.params)]
        jobs = [('ng', module, case.params)]
        if case.original:
            jobs.append(('original', module, case.params))
        if case.floor:
            jobs.append(('floor', 'floor', {'shape': case.floor}))
        return jobs

    def run_case(self, scenario, case, size):
        result = _results.CaseResult(scenario.name, case, size)
        jobs = self._jobs(scenario, case, size)
        if scenario.runs_taskflow and not case.original:
            result.skipped['original'] = 'not run at this size'  # see the scenario note
        for impl, _, _ in jobs:
            if impl not in self.impls:
                result.skipped[impl] = 'not selected'
        jobs = [job for job in jobs if job[0] in self.impls]
        rounds = max([self.repeats(scenario, impl) for impl, _, _ in jobs] or [0])
        for n in range(rounds):   # interleave implementations round by round
            for impl, module, params in jobs:
                if n < self.repeats(scenario, impl):
                    self._measure_once(scenario, case, size, impl, module, params, n)
        for impl, module, params in jobs:
            runs, errors = self._cache[self._key(impl, module, size, params)]
            wanted = self.repeats(scenario, impl)
            result.runs[impl] = [r for r in runs[:wanted] if 'skipped' not in r]
            if errors:
                result.errors[impl] = list(errors)
            skips = [r['skipped'] for r in runs if 'skipped' in r]
            if skips:
                result.skipped[impl] = skips[0]
        return result

    @staticmethod
    def _key(impl, module, size, params):
        return (impl, module, size, json.dumps(params, sort_keys=True))

    def _measure_once(self, scenario, case, size, impl, module, params, n):
        runs, errors = self._cache.setdefault(self._key(impl, module, size, params), ([], []))
        if len(runs) > n or errors or any('skipped' in r for r in runs):
            return   # shared with an earlier case, failed, or cannot run here
        where = '%s %s [%s] %d/%d' % (scenario.name, case.label, impl, n + 1,
                                      self.repeats(scenario, impl))
        try:
            run = _workers.measure(self.impls[impl], module, size, params,
                                   self.args.timeout, self.scratch)
        except _workers.WorkerError as error:
            errors.append(str(error))
            print('%s: ERROR %s' % (where, error), file=sys.stderr, flush=True)
            return
        runs.append(run)
        shown = run.get('skipped') or '%.4g s' % run['seconds']
        print('%s: %s' % (where, shown), file=sys.stderr, flush=True)


def implementations(args):
    impls = {'ng': _workers.taskflow_ng(), 'floor': _workers.floor()}
    notes = []
    if args.skip_original:
        notes.append('original not run (--skip-original)')
    else:
        try:
            impls['original'] = _workers.original()
        except RuntimeError as error:
            notes.append('original not run: %s' % error)
    return impls, notes


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for scenario in _registry.SCENARIOS:
            print('%-15s %s' % (scenario.name, scenario.summary))
        return 0
    impls, notes = implementations(args)
    started = datetime.datetime.now()
    clock = time.monotonic()
    with tempfile.TemporaryDirectory(prefix='tf-bench-') as scratch:
        runner = Runner(impls, args, scratch)
        scenario_results = []
        for scenario in args.selected:
            cases = []
            for case in scenario.cases:
                size = case.size if not args.quick or case.quick_size is None else case.quick_size
                if size and _wanted(case, args.cases):
                    cases.append(runner.run_case(scenario, case, size))
            scenario_results.append(_results.ScenarioResults(scenario, cases))
    checked = [(sr.scenario.name, target) for sr in scenario_results if sr.scenario.targets
               and sr.cases for target in sr.scenario.targets(sr)]

    print(_report.table(scenario_results))
    lines = notes + _report.notes(scenario_results)
    if lines:
        print('\nNotes:\n  ' + '\n  '.join(lines))
    if checked:
        print('\nTargets%s:\n  ' % (' (quick sizes: not the real targets)' if args.quick else '')
              + '\n  '.join(_report.targets(checked)))

    os.makedirs(args.results_dir, exist_ok=True)
    path = os.path.join(args.results_dir, started.strftime('%Y%m%d-%H%M%S') + '.json')
    header = {'started': started.isoformat(timespec='seconds'),
              'wall_seconds': round(time.monotonic() - clock, 1),
              'argv': sys.argv, 'quick': args.quick,
              'repeat': args.repeat, 'repeat_original': args.repeat_original,
              'machine': {'cpus': os.cpu_count(), 'platform': platform.platform()},
              'implementations': {k: {'title': i.title, 'python': i.python}
                                  for k, i in impls.items()},
              'notes': lines}
    _results.dump(path, header, scenario_results, checked)
    print('\nRaw results: %s (%.0f s)' % (path, time.monotonic() - clock))

    failed = any(case.errors for sr in scenario_results for case in sr.cases)
    missed = args.check_targets and any(t.ok is False for _, t in checked)
    return 1 if failed or missed else 0


if __name__ == '__main__':
    sys.exit(main())
