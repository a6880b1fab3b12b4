"""Summaries of fleet trials: violations and takeover distributions."""

from __future__ import annotations

import collections
from dataclasses import dataclass

from tests.reliability.fleet.driver import TrialResult


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank, ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def spread(values: list[float]) -> str:
    if not values:
        return 'n=0'
    return 'n=%d p50 %.2f s p95 %.2f s max %.2f s' % (
        len(values), percentile(values, 0.5), percentile(values, 0.95), max(values))


def trial_line(result: TrialResult) -> str:
    head = ('%s %s seed=%d: %d kills, %d outages%s, %d dispatched again,'
            ' %d unacknowledged consumes, %.1f s, %s') % (
        result.board, result.mode, result.seed, result.kills, len(result.cuts),
        ' (%s)' % ', '.join(result.cuts) if result.cuts else '', result.rerun_jobs,
        result.unacknowledged, result.seconds,
        '%d violation(s)' % len(result.violations) if result.violations else 'ok')
    if result.freed:   # the raw takeover times, so partial runs can be summed up
        head += '; freed %s; dispatched %s' % (
            ' '.join('%.2f' % f for f in result.freed),
            ' '.join('%.2f' % d for d in result.dispatched))
    lines = [head] + ['  [%s] %s' % v for v in result.violations]
    if result.folder:
        lines.append('  files: %s' % result.folder)
    return '\n'.join(lines)


@dataclass
class Summary:
    board: str
    trials: collections.Counter
    violations: collections.Counter
    kills: int
    cuts: collections.Counter
    rerun_jobs: int
    unacknowledged: int
    freed: list[float]
    dispatched: list[float]

    @classmethod
    def of(cls, board: str, results: list[TrialResult]) -> Summary:
        return cls(board, collections.Counter(r.mode for r in results),
                   collections.Counter(v[0] for r in results for v in r.violations),
                   sum(r.kills for r in results),
                   collections.Counter(c for r in results for c in r.cuts),
                   sum(r.rerun_jobs for r in results),
                   sum(r.unacknowledged for r in results),
                   [f for r in results for f in r.freed],
                   [d for r in results for d in r.dispatched])

    def line(self) -> str:
        trials = ', '.join('%d %s' % (n, mode) for mode, n in sorted(self.trials.items()))
        bad = ', '.join('%s %d' % kv for kv in sorted(self.violations.items())) or 'none'
        cuts = ', '.join('%d %s' % (n, what) for what, n in sorted(self.cuts.items()))
        return ('%s: trials %s; kills %d; outages %d%s; jobs dispatched again %d;'
                ' unacknowledged consumes %d; violations: %s; claimable again after kill %s;'
                ' running elsewhere %s'
                % (self.board, trials, self.kills, sum(self.cuts.values()),
                   ' (%s)' % cuts if cuts else '', self.rerun_jobs, self.unacknowledged,
                   bad, spread(self.freed),
                   spread(self.dispatched)))


def table(summaries: list[Summary]) -> str:
    rows = [('board', 'trials', 'kills', 'outages', 'violations', 'free p50/p95/max (s)',
             'dispatch p50/p95/max (s)')]
    for s in summaries:
        def dist(values: list[float]) -> str:
            if not values:
                return '-'
            return '%.2f/%.2f/%.2f' % (percentile(values, 0.5), percentile(values, 0.95),
                                       max(values))
        rows.append((s.board, str(sum(s.trials.values())), str(s.kills),
                     str(sum(s.cuts.values())),
                     str(sum(s.violations.values())), dist(s.freed), dist(s.dispatched)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
