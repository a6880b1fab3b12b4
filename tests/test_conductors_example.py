"""The conductors example: A is killed holding the job, B takes it over."""

from __future__ import annotations

import pathlib
import subprocess
import sys

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / 'examples' / 'conductors_sqlite.py'


def test_the_second_conductor_finishes_the_job_of_the_killed_one():
    proc = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith('Two conductors share a SQL jobboard')
    assert 'posted job make-coffee (steps: grind, brew, pour)' in lines
    assert '[A] claimed make-coffee (claim token 1)' in lines
    assert '[A] grind: done' in lines
    kill = lines.index('killed conductor A (SIGKILL) while it held the job; B waits for'
                       ' the claim to expire')
    after = lines[kill + 1:]
    # B never redoes the step A had stored as done, and runs the rest.
    assert '[B] grind: start' not in after
    assert [line for line in after if line.startswith('[B]')] == [
        '[B] claimed make-coffee (claim token 2)',
        '[B] brew: start', '[B] brew: done', '[B] pour: start', '[B] pour: done',
        '[B] consumed make-coffee']
    took = next(line for line in after if line.startswith('B took the job over'))
    seconds = float(took.split()[5])
    assert 1.0 <= seconds <= 3.0 + 2.0 + 1.0   # claimable within the lease (+ 2 s)
    assert lines[-1] == 'job make-coffee: consumed; grind by A, brew by B, pour by B'
