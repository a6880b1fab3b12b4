"""What the benchmark runs: the scenarios, their cases and their targets.

Adding a scenario = one module in ``scenarios/`` (with ``measure(size,
**params) -> {'seconds': ...}``) plus one ``Scenario`` entry in
``SCENARIOS`` below. A ``Case`` is one (size, params) point of a scenario;
a case whose ``(module, size, params)`` equals another one's is measured once
and shared (``memory`` reuses ``linear``'s 1,000-task runs for RSS, and
``scaling`` reuses them at 1,000).

Targets are checked on the medians after the run and printed with the table;
they are information (the machine is noisy), not a pass/fail of the run
unless ``--check-targets`` is given.
"""

from dataclasses import dataclass, field
from typing import Callable

import _stats

SECONDS = 'seconds'
RSS_MB = 'maxrss_mb'
TRACEMALLOC_MB = 'tracemalloc_peak_mb'
ORIGINAL_MEMORY_MB = 176.0   # the original's max RSS on the 1,000 chain, if not measured


@dataclass(frozen=True)
class Case:
    size: int
    params: dict = field(default_factory=dict)
    label: str = ''
    quick_size: int | None = None   # size under --quick (None: same; 0: not run)
    module: str | None = None       # defaults to the scenario's module
    metric: str = SECONDS           # which measurement the table shows
    original: bool = True           # also run on the original?
    floor: str | None = None        # graphlib floor shape shown beside this case
    atoms_per_unit: int = 1         # atoms per unit of size (for µs per atom)


@dataclass(frozen=True)
class Target:
    what: str
    value: str
    ok: bool | None   # None: could not be checked


@dataclass(frozen=True)
class Scenario:
    name: str
    module: str
    summary: str
    cases: tuple
    targets: Callable | None = None   # (Results) -> [Target]
    note: str = ''
    original_repeat_cap: int | None = None   # e.g. 1 for slow, steady memory traces
    runs_taskflow: bool = True   # False: a floor scenario, run without taskflow
    growth: bool = False         # print the growth exponent over the cases' sizes


# -- targets ----------------------------------------------------------------

def _fmt(value, unit):
    return '-' if value is None else '%.3g %s' % (value, unit)


def _floor_target(label):
    def targets(results):
        ng = results.median(label, 'ng')
        floor = results.median(label, 'floor')
        ratio = _stats.ratio(ng, floor)
        return [Target('taskflow-ng within 10x of the graphlib floor (per atom)',
                       _fmt(ratio, 'x'), None if ratio is None else ratio <= 10)]
    return targets


def _compile_targets(results):
    ng = results.median('large graph', 'ng')
    return [Target('compile 10,000-node graph in < 1 s (taskflow-ng)',
                   _fmt(ng, 's'), None if ng is None else ng < 1.0)]


def _parallel_targets(results):
    run = results.runs('sleep', 'ng')
    ideal = run[0]['ideal_seconds'] if run else None
    ratio = _stats.ratio(results.median('sleep', 'ng'), ideal)
    one = results.median('one task', 'ng')
    return [Target('parallel sleep within 1.15x of ideal N*10ms/16 (taskflow-ng)',
                   _fmt(ratio, 'x'), None if ratio is None else ratio <= 1.15),
            Target('1-task parallel flow returns in milliseconds (< 10 ms, taskflow-ng)',
                   _fmt(one, 's'), None if one is None else one < 0.010)]


def _scaling_targets(results):
    points = [(case.size, case.median('ng')) for case in results.cases]
    exponent = _stats.growth_exponent(points)
    return [Target('linear chain growth exponent <= 1.1 (log-log fit, taskflow-ng)',
                   '-' if exponent is None else '%.3f' % exponent,
                   None if exponent is None else exponent <= 1.1)]


def _memory_targets(results):
    ng = results.median('rss', 'ng')
    original = results.median('rss', 'original')
    source = 'measured'
    if original is None:
        original, source = ORIGINAL_MEMORY_MB, 'assumed'
    limit = original / 3
    return [Target('max RSS of the 1,000 chain <= 1/3 of the original (%s %.0f MB)'
                   % (source, original), _fmt(ng, 'MB'), None if ng is None else ng <= limit)]


def _workers_targets(results):
    targets = []
    for label in ('wide', 'chain'):
        ng = results.median(label, 'ng')
        original = results.median(label, 'original')
        ratio = _stats.ratio(original, ng)
        details = []
        for impl in ('ng', 'original'):
            runs = results.runs(label, impl)
            if runs:
                middle = sorted(runs, key=lambda run: run['seconds'])[len(runs) // 2]
                details.append('%s %.0f tasks/s, round trip p50 %.1f ms p99 %.1f ms'
                               % (impl, middle['tasks_per_second'],
                                  middle['round_trip_p50_ms'], middle['round_trip_p99_ms']))
        targets.append(Target('worker-based %s over RabbitMQ >= 5x the original (%s)'
                              % (label, '; '.join(details) or 'no runs'),
                              _fmt(ratio, 'x'), None if ratio is None else ratio >= 5))
    return targets
def _async_sleep_targets(results):
    found = []
    runs = results.runs('async', 'ng')
    ideal = runs[0]['ideal_seconds'] if runs else None
    seconds = results.median('async', 'ng')
    efficiency = _stats.ratio(ideal, seconds)
    found.append(Target('10,000 async sleeps, concurrency 1,000: efficiency (ideal/actual)'
                        ' >= 0.9', _fmt(efficiency, ''),
                        None if efficiency is None else efficiency >= 0.9))
    floor = results.median('gather floor', 'ng')
    of_floor = _stats.ratio(floor, seconds)
    found.append(Target('the same, relative to the bare asyncio floor (floor/actual), info',
                        _fmt(of_floor, ''), None))
    threads = results.median('threads', 'ng')
    speedup = _stats.ratio(threads, seconds)
    found.append(Target('async faster than 1,000 threads of time.sleep (threads/async > 1)',
                        _fmt(speedup, 'x'), None if speedup is None else speedup > 1))
    rss = results.median('async rss', 'ng')
    threads_rss = results.median('threads rss', 'ng')
    found.append(Target('peak RSS async <= threads (%s MB)' % _fmt(threads_rss, '').strip(),
                        _fmt(rss, 'MB'), None if rss is None or threads_rss is None
                        else rss <= threads_rss))
    return found


def _async_chain_targets(results):
    ratio = _stats.ratio(results.median('async', 'ng'), results.median('plain', 'ng'))
    return [Target('async chain cost per atom within 1.5x of the plain chain (taskflow-ng)',
                   _fmt(ratio, 'x'), None if ratio is None else ratio <= 1.5)]


def _jobboards_targets(results):
    found = []
    for board in ('redis', 'zookeeper', 'etcd'):
        for consumers in (1, 4):
            label = '%s %d' % (board, consumers)
            ratio = _stats.ratio(results.median(label, 'original'), results.median(label, 'ng'))
            found.append(Target('%s board, %d consumer(s): >= 3x the original'
                                % (board, consumers),
                                _fmt(ratio, 'x'), None if ratio is None else ratio >= 3))
    rates = [_stats.median([run['jobs_per_second'] for run in runs])
             for runs in (results.runs('sql-postgresql %d' % c, 'ng') for c in (1, 4)) if runs]
    best = max(rates) if rates else None
    found.append(Target('SQL board on PostgreSQL >= 500 jobs/s (best of 1 and 4 consumers, '
                        'taskflow-ng; at the quick size: scaled)', _fmt(best, 'jobs/s'),
                        None if best is None else best >= 500))
    for board in ('redis', 'sql-postgresql'):
        p50 = results.median('%s latency p50' % board, 'ng')
        found.append(Target('dispatch latency p50 <= 20 ms on %s (taskflow-ng)' % board,
                            _fmt(None if p50 is None else p50 * 1000, 'ms'),
                            None if p50 is None else p50 <= 0.020))
    return found


def _jobboard_cases():
    cases = []
    for board in ('redis', 'zookeeper', 'etcd', 'sql-postgresql', 'sql-sqlite'):
        theirs = not board.startswith('sql-')
        for consumers in (1, 4):
            cases.append(Case(1000, {'board': board, 'consumers': consumers},
                              label='%s %d' % (board, consumers), quick_size=50,
                              original=theirs))
    for board in ('redis', 'zookeeper', 'etcd', 'sql-postgresql', 'sql-sqlite'):
        params = {'board': board, 'mode': 'latency'}
        theirs = not board.startswith('sql-')
        cases.append(Case(50, params, label='%s latency p50' % board, quick_size=5,
                          original=theirs, metric='latency_p50'))
        cases.append(Case(50, params, label='%s latency p99' % board, quick_size=5,
                          original=theirs, metric='latency_p99'))
    return tuple(cases)


# -- the scenarios ------------------------------------------------------------

SCENARIOS = (
    Scenario('linear', 'linear',
             'chain of N tasks, task i+1 requires r_i of task i; load + run',
             (Case(1000, label='chain', quick_size=100, floor='linear'),),
             targets=_floor_target('chain')),
    Scenario('unordered', 'unordered', 'wide unordered flow of N no-op tasks; load + run',
             (Case(1000, label='wide', quick_size=100),)),
    Scenario('graph', 'graph',
             'N/10 layers of 10 tasks, 3 inputs each from the previous layer, '
             'edges inferred; load + run',
             (Case(1000, label='layered', quick_size=100, floor='layered'),),
             targets=_floor_target('layered')),
    Scenario('revert', 'revert', 'chain of N tasks, the last raises; load + run + revert all',
             (Case(1000, label='chain', quick_size=100),)),
    Scenario('compile', 'compiling',
             'layered graph flow: compile() + prepare() + validate() only',
             (Case(1000, label='graph', quick_size=100),
              Case(10000, label='large graph', quick_size=1000, original=False)),
             targets=_compile_targets,
             note='original: run at 1,000 only (at 10,000 it took 268 s and 9.5 GB of RSS '
                  'in one run)'),
    Scenario('build', 'build',
             'building the layered graph flow: one graph_flow.add(*tasks) call, edges '
             'inferred (no engine)',
             (Case(1000, {'order': 'dependents'}, label='dependents first', quick_size=100),
              Case(3000, {'order': 'dependents'}, label='dependents first', quick_size=300),
              Case(10000, {'order': 'providers'}, label='providers first', quick_size=1000)),
             growth=True),
    Scenario('parallel_sleep', 'parallel',
             'unordered flow, parallel engine, max_workers=16: N tasks sleeping 10 ms; '
             'and 1 no-op task (fixed cost)',
             (Case(1000, {'sleep': 0.01}, label='sleep', quick_size=160),
              Case(1, {'sleep': 0.0}, label='one task')),
             targets=_parallel_targets),
    Scenario('scaling', 'linear', 'linear chain (as `linear`) at growing N; taskflow-ng only above 1,000',
             (Case(1000, label='chain', quick_size=300),
              Case(10000, label='chain', quick_size=1000, original=False),
              Case(100000, label='chain', quick_size=5000, original=False)),
             targets=_scaling_targets, growth=True,
             note='original: run at 1,000 only (it cannot finish 5,000 in minutes)'),
    Scenario('memory', 'memory',
             'peak memory of the 1,000 chain: max RSS of the process (the linear runs), '
             'tracemalloc peak of build + load + run',
             (Case(1000, label='rss', quick_size=100, module='linear', metric=RSS_MB),
              Case(1000, label='tracemalloc', quick_size=100,
                   metric=TRACEMALLOC_MB)),
             targets=_memory_targets, original_repeat_cap=1),
    Scenario('floor', 'floor',
             'graphlib.TopologicalSorter loop over the same shapes (no taskflow)',
             (Case(1000, {'shape': 'linear'}, label='linear', quick_size=100),
              Case(1000, {'shape': 'layered'}, label='layered', quick_size=100)),
             runs_taskflow=False),
    Scenario('retry', 'retry',
             'a subflow under retry.Times(3) failing twice then succeeding: N separate '
             'load + run (runs), or one chain of N such subflows (chain)',
             (Case(1000, {'shape': 'runs'}, label='runs', quick_size=50, atoms_per_unit=2),
              Case(100, {'shape': 'chain'}, label='chain', quick_size=20, atoms_per_unit=2))),
    Scenario('listeners', 'listeners',
             'chain of N tasks returning a password, watched by a PrintingListener and a '
             'DynamicLoggingListener (DEBUG) writing to memory; load + run',
             (Case(300, {'keys': 'none'}, label='nothing masked', quick_size=50),
              Case(300, {'keys': 'listener'}, label='listener keys', quick_size=50),
              Case(300, {'keys': 'project'}, label='project keys', quick_size=50,
                   original=False)),
             note="listener keys: mask_outputs_keys=['password'] (the original masks only "
                  'failure details); project keys: taskflow.secrets.mask_keys, '
                  'taskflow-ng only'),
    Scenario('workers', 'workers',
             'worker-based engine over RabbitMQ, 2 worker processes of the same '
             'implementation on one topic: N no-op tasks unordered (wide), or a chain; '
             'load + run incl. discovery',
             (Case(1000, {'shape': 'wide'}, label='wide', quick_size=50),
              Case(200, {'shape': 'chain'}, label='chain', quick_size=20)),
             targets=_workers_targets),
    Scenario('async_sleep', 'async_sleep',
             'unordered flow, parallel engine, N tasks waiting 10 ms, 1,000 at a time: async def '
             '+ asyncio.sleep (run(), run_async()), time.sleep on 1,000 threads, bare asyncio',
             (Case(10000, {'kind': 'async'}, label='async', quick_size=1000, original=False),
              Case(10000, {'kind': 'run_async'}, label='run_async', quick_size=1000,
                   original=False),
              Case(10000, {'kind': 'threads'}, label='threads', quick_size=1000,
                   original=False),
              Case(10000, label='gather floor', module='async_floor', quick_size=1000,
                   original=False),
              Case(1000, {'kind': 'threads'}, label='threads', quick_size=100),
              Case(10000, {'kind': 'async'}, label='async rss', quick_size=1000,
                   original=False, metric=RSS_MB),
              Case(10000, {'kind': 'threads'}, label='threads rss', quick_size=1000,
                   original=False, metric=RSS_MB),
              Case(10000, label='floor rss', module='async_floor', quick_size=1000,
                   original=False, metric=RSS_MB)),
             targets=_async_sleep_targets,
             note='original: time.sleep threads at 1,000 only (it cannot run coroutines; '
                  '10,000 took it 459 s and 8.6 GB)'),
    Scenario('async_chain', 'async_chain',
             'chain of N async def tasks (serial engine): run(), run_async(); the plain chain',
             (Case(1000, {'drive': 'run'}, label='async', quick_size=100, original=False),
              Case(1000, {'drive': 'run_async'}, label='run_async', quick_size=100,
                   original=False),
              Case(1000, label='plain', module='linear', quick_size=100, original=False)),
             targets=_async_chain_targets),
    Scenario('persisted', 'persisted',
             'chain of N no-op tasks persisted to a SQL backend as it runs; load + run',
             (Case(200, {'backend': 'sqlite', 'synchronous': 'FULL'}, label='sqlite FULL',
                   quick_size=20),
              Case(200, {'backend': 'sqlite', 'synchronous': 'NORMAL'},
                   label='sqlite NORMAL', quick_size=20),
              Case(200, {'backend': 'postgresql'}, label='postgresql', quick_size=20)),
             note='sqlite FULL / NORMAL: taskflow-ng with sqlite_synchronous=FULL (its '
                  'default) or NORMAL; the original ignores that option and runs its own '
                  'default (rollback journal, synchronous=FULL) in both rows'),
)

SCENARIOS += (
    Scenario('jobboards', 'jobboards',
             'post -> claim -> consume of N jobs on a board, 1 or 4 consumer threads '
             '(label: board consumers); dispatch latency post -> running_start on an idle '
             'blocking conductor (p50, p99 of N jobs)',
             _jobboard_cases(), targets=_jobboards_targets,
             note='sql-*: the SQL board is taskflow-ng only; latency rows show seconds '
                  '(post -> running_start), the original idles 0.5 s between looks'),
)

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
