"""The dir backend never leaves a file that does not load, even when the
writing process is killed with SIGKILL at an arbitrary moment."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taskflow.persistence import backends
from taskflow.persistence import models

WRITER = r'''
import contextlib, sys
from taskflow.persistence import backends, models
backend = backends.fetch({'connection': 'dir', 'path': sys.argv[1]})
with contextlib.closing(backend.get_connection()) as conn:
    book = conn.get_logbook('kill-book')
    fd = book.find('kill-fd')
    ads = list(fd)
    print('ready', flush=True)
    n = 0
    while True:
        n += 1
        for ad in ads:
            # Big enough values that a write takes more than one syscall.
            ad.put('SUCCESS', {'round': n, 'blob': 'x' * (50000 + n % 7)})
            conn.update_atom_details(ad)
        fd.meta['round'] = n
        conn.update_flow_details(fd)
'''


def all_metadata_files(root: Path) -> list[Path]:
    return sorted(root.glob('*/*/metadata'))


@pytest.mark.slow
def test_sigkill_mid_write_never_corrupts(tmp_path):
    root = tmp_path / 'store'
    backend = backends.fetch({'connection': 'dir', 'path': str(root)})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
        book = models.LogBook('kill', uuid='kill-book')
        fd = models.FlowDetail('flow', uuid='kill-fd')
        book.add(fd)
        for i in range(3):
            fd.add(models.TaskDetail('t%d' % i, uuid='kill-ad-%d' % i))
        conn.save_logbook(book)
    rounds_seen = set()
    for attempt in range(15):
        proc = subprocess.Popen([sys.executable, '-c', WRITER, str(root)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == 'ready'
        # Kill at varying points of the write loop.
        time.sleep(0.02 + (attempt % 5) * 0.013)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        files = all_metadata_files(root)
        assert len(files) == 5  # book, flow, 3 atoms
        for path in files:
            json.loads(path.read_text('utf-8'))  # every file parses
        with contextlib.closing(backend.get_connection()) as conn:
            got = conn.get_logbook('kill-book')
            fd = got.find('kill-fd')
            assert len(fd) == 3
            for ad in fd:
                if ad.results is not None:
                    rounds_seen.add(ad.results['round'])
    assert rounds_seen, 'the writer never completed a single write'


def test_leftover_temp_files_are_ignored(tmp_path):
    root = tmp_path / 'store'
    backend = backends.fetch({'connection': 'dir', 'path': str(root)})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
        book = models.LogBook('b', uuid='b1')
        fd = models.FlowDetail('f', uuid='f1')
        fd.add(models.TaskDetail('t', uuid='a1'))
        book.add(fd)
        conn.save_logbook(book)
        # What a writer killed between create and rename leaves behind.
        (root / 'books' / 'b1' / '.metadata.dead.tmp').write_text('{trunc')
        (root / 'flow_details' / 'f1' / '.metadata.dead.tmp').write_text('{')
        got = conn.get_logbook('b1')
        assert [ad.name for fd in got for ad in fd] == ['t']


def test_layout_matches_the_original(tmp_path):
    root = tmp_path / 'store'
    backend = backends.fetch({'connection': 'dir', 'path': str(root)})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
        book = models.LogBook('b', uuid='bu')
        fd = models.FlowDetail('f', uuid='fu')
        ad = models.TaskDetail('t', uuid='tu')
        fd.add(ad)
        book.add(fd)
        conn.save_logbook(book)
    link = root / 'books' / 'bu' / 'fu'
    assert link.is_symlink()
    assert os.readlink(link) == str(root / 'flow_details' / 'fu')
    assert os.readlink(root / 'flow_details' / 'fu' / 'tu') == \
        str(root / 'atom_details' / 'tu')
    for obj in ('books/bu', 'flow_details/fu', 'atom_details/tu'):
        assert (root / obj / 'lock').exists()
    assert (root / 'flow_details' / 'fu' / 'metadata').read_text() == \
        '{"name": "f", "meta": {}, "state": null, "uuid": "fu"}'
    atom = json.loads((root / 'atom_details' / 'tu' / 'metadata').read_text())
    assert atom == {'atom': ad.to_dict(), 'type': 'TASK_DETAIL'}
    assert list(atom['atom']) == list(ad.to_dict())
