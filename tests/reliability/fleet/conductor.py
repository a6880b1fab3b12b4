"""One fleet conductor process (the one the driver kills).

    python -m tests.reliability.fleet.conductor --board redis --board-name N \\
        --persistence URL --events FILE --slot 1 [--expiry 2] [--options JSON]

Runs a blocking conductor on the trial's board until SIGTERM, appending one
JSON line per conductor event to ``--events`` (one ``os.write`` on an
``O_APPEND`` descriptor, so lines of concurrent processes never mix)::

    {"t": 1700000000.1, "pid": 4711, "event": "running_start",
     "job": "<job uuid>", "name": "<job name>", "token": 3}

plus ``{"event": "ready"}`` once connected and, on ZooKeeper, a
``{"event": "zk_session", "session": <id>, "password": "<hex>"}`` line each
time the board's client is on a new session (the outage trials expire it).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from taskflow.conductors import backends as conductor_backends
from taskflow.types import notifier

from tests.reliability.fleet import boards


class EventLog:
    """Appends this process's events to the trial's events file."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pid = os.getpid()

    def write(self, event: str, job: Any = None, **extra: Any) -> None:
        record = {'t': time.time(), 'pid': self._pid, 'event': event}
        if job is not None:
            record.update(job=job.uuid, name=job.name,
                          token=getattr(job, 'claim_token', None))
        record.update(extra)
        os.write(self._fd, (json.dumps(record) + '\n').encode())

    def on_event(self, event_type: str, details: dict) -> None:
        self.write(event_type, details.get('job'))


def report_zk_sessions(board: Any, log: EventLog) -> None:
    """Log the board's ZooKeeper session whenever it changes (a daemon
    thread polls it: kazoo renews sessions behind the board's back)."""
    client = board._client   # the board's own KazooClient

    def watch() -> None:
        seen = None
        while True:
            current = client.client_id if client.connected else None
            if current is not None and current != seen:
                seen = current
                log.write('zk_session', session=current[0], password=current[1].hex())
            time.sleep(0.05)

    threading.Thread(target=watch, name='zk-session-report', daemon=True).start()


def connect_board(args: argparse.Namespace, persistence: Any) -> Any:
    """The trial's board, connected; retried for a while, as a service
    supervisor would restart us, when started during an outage."""
    deadline = time.monotonic() + 30
    while True:
        try:
            board = boards.make_board(args.board, args.board_name, persistence,
                                      args.persistence)
            board.connect()
            return board
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:   # also the tests' "server missing" skip
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--board', required=True, choices=boards.KINDS)
    parser.add_argument('--board-name', required=True)
    parser.add_argument('--persistence', required=True)
    parser.add_argument('--events', required=True)
    parser.add_argument('--slot', type=int, default=0)
    parser.add_argument('--expiry', type=float, default=2.0)
    parser.add_argument('--options', default='{}',
                        help='JSON dict of extra conductor options')
    args = parser.parse_args(argv)

    # Warnings (outage back-off, failed consumes) to stderr: the trial keeps them.
    # SIGABRT (the driver's, for a conductor hanging past SIGTERM) dumps every
    # thread's stack to stderr first.
    faulthandler.enable(all_threads=True)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format='%(asctime)s %(process)d %(name)s %(levelname)s %(message)s')
    log = EventLog(args.events)
    persistence = boards.open_persistence(args.persistence)
    board = connect_board(args, persistence)
    if args.board == 'zookeeper':
        report_zk_sessions(board, log)
    conductor = conductor_backends.fetch(
        'blocking', boards.conductor_name(args.slot), board, persistence=persistence,
        engine='serial', claim_expiry=args.expiry, **json.loads(args.options))
    conductor.notifier.register(notifier.Notifier.ANY, log.on_event)
    signal.signal(signal.SIGTERM, lambda *_: conductor.stop())
    log.write('ready')
    try:
        conductor.run()
    finally:
        conductor.close()
        persistence.close()
    log.write('exit')
    return 0


if __name__ == '__main__':
    code = main()
    # run() returned and the board is closed: that is what the driver waits
    # for; skip the interpreter's slow teardown of client threads.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
