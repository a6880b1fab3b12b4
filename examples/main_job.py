"""The main job: an order-fulfilment flow, persisted to SQLite, killed and resumed.

What it shows, on the embedded default (in-process engine, SQLite file):

1. A worker process runs the flow, saving every state change to SQLite.
2. The driver kills the worker with SIGKILL while it is packing the parcel.
3. The driver prints what the database holds at that moment.
4. A new worker resumes the flow from the database: finished steps are not
   run again, the interrupted one is, and the rest follows.
5. The driver prints the final, persisted outcome.

Run it with ``scripts/main`` (or ``python examples/main_job.py [--db PATH]``).
The database is kept (by default in the file the ``taskflow`` command reads,
see ``taskflow.operate.main_job_database()``); the job ends by printing the
commands that show it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time

from taskflow import engines
from taskflow import operate
from taskflow import retry
from taskflow import task
from taskflow.listeners import timing
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.persistence import backends
from taskflow.persistence import models


# -- the flow ---------------------------------------------------------------

def say(text: str) -> None:
    print('  [worker %d] %s' % (os.getpid(), text), flush=True)


class ValidateOrder(task.Task):
    default_provides = 'order'

    def execute(self, order_id, items):
        say('validating order %s (%d items)' % (order_id, len(items)))
        return {'id': order_id, 'items': items, 'total': 10 * len(items)}


class ReserveStock(task.Task):
    default_provides = 'reservation'

    def execute(self, order):
        say('reserving stock for %s' % order['items'])
        return 'RSV-%s' % order['id']

    def revert(self, order, result, **kwargs):
        say('releasing reservation %s' % result)


class ChargeCard(task.Task):
    """The payment gateway is flaky: the first attempt always times out."""

    default_provides = 'payment'

    def execute(self, order, attempt):
        if attempt == 1:
            say('charging %d EUR ... gateway timeout (attempt %d)' % (order['total'], attempt))
            raise TimeoutError('payment gateway timed out')
        say('charging %d EUR ... accepted (attempt %d)' % (order['total'], attempt))
        return 'PAY-%s' % order['id']

    def revert(self, order, result, **kwargs):
        if isinstance(result, str):
            say('refunding payment %s' % result)


class PackParcel(task.Task):
    default_provides = 'parcel'

    def execute(self, order, reservation, marker):
        say('packing parcel for %s' % reservation)
        if not os.path.exists(marker):
            pathlib.Path(marker).touch()   # tells the driver: kill me now
            time.sleep(60)                 # the driver's SIGKILL lands here
        return 'PCL-%s' % order['id']


class ShipParcel(task.Task):
    default_provides = 'tracking'

    def execute(self, parcel, payment):
        say('shipping %s (paid by %s)' % (parcel, payment))
        return 'TRK-%s' % parcel


class SendReceipt(task.Task):
    def execute(self, order, tracking):
        say('emailing receipt for order %s, tracking %s' % (order['id'], tracking))


def make_flow() -> lf.Flow:
    """Build the flow; resuming rebuilds it from this factory by name."""
    payment = lf.Flow('payment', retry=retry.Times(3, provides='attempt')).add(
        ChargeCard('charge-card'))
    return lf.Flow('fulfil-order').add(
        ValidateOrder('validate'),
        ReserveStock('reserve-stock'),
        uf.Flow('prepare').add(payment, PackParcel('pack-parcel')),
        ShipParcel('ship'),
        SendReceipt('receipt'))


# -- persistence ------------------------------------------------------------

def open_backend(db: str):
    backend = backends.fetch({'connection': 'sqlite:///%s' % db})
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()
    return backend


def find_flow_detail(backend):
    with contextlib.closing(backend.get_connection()) as conn:
        for book in conn.get_logbooks():
            for flow_detail in book:
                return flow_detail
    return None


def show_saved(backend, title: str) -> None:
    flow_detail = find_flow_detail(backend)
    print('%s: flow %r is %s' % (title, flow_detail.name, flow_detail.state))
    for atom in sorted(flow_detail, key=lambda ad: ad.name):
        if atom.name.startswith('_'):
            continue
        shown = ''
        if isinstance(atom, models.RetryDetail):
            shown = '; '.join('attempt %s%s' % (value, ' failed: %s' % sorted(failures)
                                                if failures else ' ok')
                              for value, failures in atom.results)
        elif atom.state == 'SUCCESS' and atom.results is not None:
            shown = atom.results
        print('    %-14s %-9s %s' % (atom.name, atom.state, shown))


# -- the two roles: worker and driver ---------------------------------------

def worker(db: str, marker: str) -> None:
    backend = open_backend(db)
    flow_detail = find_flow_detail(backend)
    if flow_detail is None:
        book = models.LogBook('orders')
        engine = engines.load_from_factory(
            make_flow, book=book, backend=backend,
            store={'order_id': 'A-1001', 'items': ['lamp', 'rug'], 'marker': marker})
        say('starting a new flow')
    else:
        engine = engines.load_from_detail(flow_detail, backend=backend)
        say('resuming flow %s from %s' % (flow_detail.uuid, flow_detail.state))
    # Start/end times of every atom go into its stored metadata, where the
    # taskflow command and the web view read durations from.
    with timing.EventTimeListener(engine):
        engine.run()
    say('flow finished: %s' % engine.storage.get_flow_state())


def run_worker(db: str, marker: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, '--worker', '--db', db,
                             '--marker', marker])


def driver(db: str) -> int:
    marker = db + '.kill-me'
    for path in (db, marker):
        if os.path.exists(path):
            os.unlink(path)
    print('1. Running the flow in a worker process (SQLite file %s)' % db)
    first = run_worker(db, marker)
    while not os.path.exists(marker):
        if first.poll() is not None:
            print('the worker ended before it could be killed', file=sys.stderr)
            return 1
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    print('2. Killed worker %d with SIGKILL while it was packing.' % first.pid)
    backend = open_backend(db)
    show_saved(backend, '3. What SQLite holds now')
    print('4. Resuming in a new worker process')
    second = run_worker(db, marker)
    if second.wait() != 0:
        return second.returncode
    show_saved(backend, '5. Final, persisted')
    print_how_to_look(db, find_flow_detail(backend).uuid)
    return 0


def print_how_to_look(db: str, flow_uuid: str) -> None:
    option = '' if db == operate.main_job_database() else ' --backend sqlite:///%s' % db
    print("6. Look at the result with the taskflow command (in .venv/bin; or pip install"
          " 'taskflow-ng[web]'):")
    print('     taskflow flows%s' % option)
    print('     taskflow show %s%s' % (flow_uuid, option))
    print('     taskflow graph %s --format mermaid --factory examples/main_job.py:make_flow%s'
          % (flow_uuid, option))
    print('     taskflow web%s        # then open http://127.0.0.1:8765/' % option)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--db', help='SQLite file to use (default: a temporary one)')
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--marker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.db, args.marker)
        return 0
    db = os.path.abspath(args.db) if args.db else operate.main_job_database()
    os.makedirs(os.path.dirname(db), exist_ok=True)
    return driver(db)


if __name__ == '__main__':
    sys.exit(main())
