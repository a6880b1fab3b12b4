"""The README's async example really awaits, reverts over HTTP and cancels."""

from __future__ import annotations

import pathlib
import subprocess
import sys

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / 'examples' / 'async_flow.py'


def test_the_async_example_reverts_what_it_reserved_and_cancels_the_slow_call():
    proc = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ''
    first, rest = proc.stdout.split('\n2. ', 1)
    declined, timed_out = rest.split('\n3. ', 1)
    assert "-> SUCCESS charged 52 | reserved now: ['book', 'lamp']" in first
    # The three reservations ran (and revert) side by side: in any order.
    assert sorted(line for line in declined.splitlines()
                  if line.startswith('  released')) == [
        '  released book', '  released desk', '  released lamp']
    assert '-> REVERTED: charging 132 failed: card declined | reserved now: []' in declined
    assert timed_out.splitlines()[1:] == [
        '  reserved book (HTTP 200)',
        '  carrier call cancelled after 0.5 s',
        '  carrier connection closed (finally ran)',
        '  released book',
        "  -> REVERTED: Task 'carrier' did not finish execute within 0.5 seconds;"
        " it was cancelled",
        '  reserved now: []']
