"""Benchmark: cost of write-through persistence on the SQL backends.

Not collected by pytest. Run::

    .venv/bin/python tests/backends/bench_sql_writes.py [URL ...]

For each URL (default: a temporary SQLite file) it reports

* ``engine``: a linear flow of 200 no-op tasks run by the serial engine with
  the backend (every state change committed), against the same flow with no
  backend at all;
* ``raw``: the connection calls alone, the way the engine makes them
  (``update_atom_details`` for RUNNING then SUCCESS, per task).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time

from taskflow.persistence import backends
from taskflow.persistence import models

N = 200


def bench_raw(url: str) -> str:
    backend = backends.fetch({'connection': url})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
        conn.clear_all()
        book = models.LogBook('bench')
        fd = models.FlowDetail('f', 'fd-bench')
        book.add(fd)
        conn.save_logbook(book)
        ads = []
        for i in range(N):
            ad = models.TaskDetail('t%d' % i, 'ad-%d' % i)
            ad.state, ad.version = 'PENDING', '1.0'
            fd.add(ad)
            ads.append(ad)
        t0 = time.perf_counter()
        conn.update_flow_details(fd)
        t1 = time.perf_counter()
        for ad in ads:
            ad.put('RUNNING', None)
            conn.update_atom_details(ad)
            ad.put('SUCCESS', {'v': 1})
            conn.update_atom_details(ad)
        t2 = time.perf_counter()
        conn.clear_all()
    backend.close()
    return ('raw: update_atom_details %.0f us/call; update_flow_details with'
            ' %d new atoms %.1f ms' % ((t2 - t1) / (2 * N) * 1e6, N,
                                       (t1 - t0) * 1e3))


def bench_engine(url: str | None) -> float:
    from taskflow import engines, task
    from taskflow.patterns import linear_flow as lf

    class Noop(task.Task):
        def execute(self):
            return None

    flow = lf.Flow('chain').add(*[Noop('t%d' % i) for i in range(N)])
    backend = None
    if url is not None:
        backend = backends.fetch({'connection': url})
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
            conn.clear_all()
    t0 = time.perf_counter()
    engines.run(flow, backend=backend)
    elapsed = time.perf_counter() - t0
    if backend is not None:
        backend.close()
    return elapsed


def main(urls: list[str]) -> None:
    tmp = None
    if not urls:
        tmp = tempfile.mkdtemp()
        urls = ['sqlite:///%s' % os.path.join(tmp, 'bench.db')]
    try:
        base = bench_engine(None)
        for url in urls:
            shown = url.split('@')[-1]
            print('%s\n  %s' % (shown, bench_raw(url)))
            total = bench_engine(url)
            print('  engine: %d tasks in %.3f s (%.3f s without a backend)'
                  % (N, total, base))
    finally:
        if tmp:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main(sys.argv[1:])
