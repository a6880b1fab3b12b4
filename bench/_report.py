"""The printed report: one table of medians, then notes and targets."""

import _stats

COLUMNS = ('scenario', 'case', 'N', 'taskflow-ng', 'original', 'orig/ng',
           'ng µs/atom', 'ng noise', 'floor', 'ng/floor')


# Skips every case shares: said once (scenario note or runner note), not per case.
QUIET_SKIPS = ('not selected', 'not run at this size')


def _quantity(value, metric):
    if value is None:
        return '-'
    if metric.endswith('_mb'):
        return '%.1f MB' % value
    if value < 1.0:
        return '%.3g ms' % (value * 1000)
    return '%.3g s' % value


def _times(value):
    if value is None:
        return '-'
    return '%.0fx' % value if value >= 100 else '%.3gx' % value


def _row(case):
    metric = case.case.metric
    ng, original = case.median('ng'), case.median('original')
    floor = case.median('floor')
    per_atom = None
    if metric == 'seconds' and ng is not None:
        per_atom = '%.1f' % (ng / (case.size * case.case.atoms_per_unit) * 1e6)
    values = case.values('ng')
    noise = None
    if len(values) > 1 and ng:
        noise = '%.0f%%' % ((max(values) - min(values)) / ng * 100)
    return (case.scenario, case.label, str(case.size), _quantity(ng, metric),
            _quantity(original, metric), _times(_stats.ratio(original, ng)),
            per_atom or '-', noise or '-', _quantity(floor, 'seconds'),
            _times(_stats.ratio(ng, floor)))


def table(scenario_results):
    rows = [COLUMNS] + [_row(case) for sr in scenario_results for case in sr.cases]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if i < 2 else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append('  '.join(cells).rstrip())
        if n == 0:
            lines.append('  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def notes(scenario_results):
    """Lines about what was skipped or failed, and scenario-specific extras."""
    lines = []
    for sr in scenario_results:
        if sr.scenario.note:
            lines.append('%s: %s' % (sr.scenario.name, sr.scenario.note))
        for case in sr.cases:
            where = '%s %s' % (sr.scenario.name, case.label)
            for impl, reason in case.skipped.items():
                if reason not in QUIET_SKIPS:
                    lines.append('%s [%s]: not run: %s' % (where, impl, reason))
            for impl, messages in case.errors.items():
                for message in dict.fromkeys(messages):
                    lines.append('%s [%s]: ERROR %s' % (where, impl, message))
            for impl, runs in case.runs.items():
                ideal = runs[0].get('ideal_seconds') if runs else None
                if ideal and case.case.metric == 'seconds':   # (not for RSS cases)
                    lines.append('%s [%s]: %.3gx the ideal %.3g s'
                                 % (where, impl, case.median(impl) / ideal, ideal))
        if sr.scenario.growth:
            lines.extend(_growth(sr))
    return lines


def _growth(sr):
    """Growth exponents (log-log fit) over the sizes of the cases sharing a label."""
    lines = []
    for label in dict.fromkeys(case.label for case in sr.cases):
        cases = [c for c in sr.cases if c.label == label]
        for impl, title in (('ng', 'taskflow-ng'), ('original', 'original')):
            points = [(c.size, c.median(impl)) for c in cases if c.median(impl)]
            exponent = _stats.growth_exponent(points)
            if exponent is not None:
                lines.append('%s %s: %s growth exponent over N=%s: %.2f (1 = linear)'
                             % (sr.scenario.name, label, title,
                                ', '.join(str(n) for n, _ in points), exponent))
    return lines


def targets(checked):
    mark = {True: 'MET ', False: 'MISS', None: 'n/a '}
    return ['[%s] %s: %s: %s' % (mark[t.ok], name, t.what, t.value) for name, t in checked]
