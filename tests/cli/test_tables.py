"""The listing tables on terminals of ordinary widths: what a user copies
or reads (uuids, state counts) stays whole."""

from __future__ import annotations

import time

import pytest
from rich.console import Console

from taskflow.cli import _render

UUID = '0f7a3c1e-5b2d-4c9a-8e61-2d4b7a9c3f10'


@pytest.mark.parametrize('width', [100, 110, 140])
def test_books_keep_uuids_and_state_counts_whole(width):
    book = {'name': 'a-fairly-long-logbook-name-of-a-service', 'uuid': UUID, 'flows': 14,
            'states': {'SUCCESS': 12, 'FAILURE': 1, 'RUNNING': 1},
            'created_at': time.time(), 'updated_at': time.time()}
    console = Console(width=width, record=True)
    console.print(_render.books_table([book]))
    text = console.export_text()
    assert UUID in text
    for count in ('SUCCESS 12', 'FAILURE 1', 'RUNNING 1'):
        assert count in text, text
    assert '…' not in text, text
    # The name folds rather than being cut: the first column, read down
    # from below the header's rule, spells it whole.
    lines = text.splitlines()
    rows = lines[next(i for i, line in enumerate(lines) if '───' in line) + 1:]
    assert ''.join(line.split()[0] for line in rows if line.strip()) == book['name'], text
