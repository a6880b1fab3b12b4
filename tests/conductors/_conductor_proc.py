"""A conductor process for the kill tests:

    python -m tests.conductors._conductor_proc URL NAMESPACE NAME EXPIRY ATTEMPTS [KIND]

Runs a conductor (KIND: ``blocking``, the default, or ``nonblocking``) with
claims of EXPIRY seconds and ``max_attempts=ATTEMPTS`` on the SQL board
``NAMESPACE`` of ``URL`` (the same database holds the persistence) until
SIGTERM. Prints ``ready`` once running, and one line per conductor event.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from taskflow.conductors import backends as conductor_backends
from tests.conductors import _support


def main(argv: list[str]) -> int:
    url, namespace, name, expiry, attempts, kind = (argv + ['blocking'])[:6]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format='%(process)d %(name)s %(levelname)s %(message)s')
    persistence = _support.make_persistence(url)
    board = _support.make_board(url, namespace, persistence)
    conductor = conductor_backends.fetch(
        kind, name, board, persistence=persistence, engine='serial',
        wait_timeout=0.05, claim_expiry=float(expiry), max_attempts=int(attempts))
    conductor.notifier.register(
        conductor.notifier.ANY,
        lambda event, details: print(event, details['job'].uuid, flush=True))
    signal.signal(signal.SIGTERM, lambda *_: conductor.stop())
    thread = threading.Thread(target=conductor.run, daemon=True)
    thread.start()
    print('ready', flush=True)
    while not conductor.wait(0.2):
        pass
    board.close()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
