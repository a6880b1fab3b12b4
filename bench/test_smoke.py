"""Cheap checks of the benchmark itself (not of taskflow's speed).

``test_quick_run`` runs ``bench/run.py --quick --skip-original`` end to end
(about 20 s on the 2-core machine); the others test the runner's arithmetic.
Run with: ``.venv/bin/python -m pytest bench/test_smoke.py``.
"""

import json
import math
import os
import subprocess
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import _registry  # noqa: E402
import _stats  # noqa: E402


def test_quick_run_without_original(tmp_path):
    done = subprocess.run(
        [sys.executable, os.path.join(BENCH_DIR, 'run.py'), '--quick', '--skip-original',
         '--results-dir', str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert 'taskflow-ng' in done.stdout
    [path] = tmp_path.glob('*.json')
    data = json.loads(path.read_text())
    assert [s['name'] for s in data['scenarios']] == [s.name for s in _registry.SCENARIOS]
    for scenario in data['scenarios']:
        for case in scenario['cases']:
            if case['skipped']:   # e.g. no PostgreSQL server here
                continue
            impl = 'floor' if scenario['name'] == 'floor' else 'ng'
            assert case['median'][impl] > 0, (scenario['name'], case['case'])


def test_growth_exponent():
    linear = [(n, 2e-5 * n) for n in (1000, 10000, 100000)]
    quadratic = [(n, 1e-9 * n * n) for n in (100, 1000)]
    assert math.isclose(_stats.growth_exponent(linear), 1.0)
    assert math.isclose(_stats.growth_exponent(quadratic), 2.0)
    assert _stats.growth_exponent([(1000, 1.0)]) is None


def test_median_ignores_missing_values():
    assert _stats.median([3.0, None, 1.0, 2.0]) == 2.0
    assert _stats.median([]) is None
