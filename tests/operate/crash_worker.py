"""A process that performs one operator action (and may be SIGKILLed doing it).

    python -m tests.operate.crash_worker URL FLOW_UUID ACTION [--wait]

ACTION is ``retry``, ``revert`` or ``skip:ATOM:RESULT``.  With ``--wait``
it prints ``ready`` once everything is imported and the backend is open,
then acts when a line arrives on stdin (so a test can time a kill to land
inside the action).  Prints ``done SECONDS`` when it finished.
"""

from __future__ import annotations

import sys
import time

from taskflow import operate


def main() -> int:
    url, flow_uuid, action = sys.argv[1:4]
    wait = '--wait' in sys.argv[4:]
    backend = operate.open_backend(url)
    if wait:
        print('ready', flush=True)
        sys.stdin.readline()
    started = time.monotonic()
    if action == 'retry':
        operate.retry(backend, flow_uuid, who='crash-test', why='trial')
    elif action == 'revert':
        operate.revert(backend, flow_uuid, who='crash-test')
    elif action.startswith('skip:'):
        _skip, atom, result = action.split(':', 2)
        operate.skip(backend, flow_uuid, atom, result, who='crash-test')
    else:
        raise SystemExit('unknown action %r' % action)
    print('done %.6f' % (time.monotonic() - started), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
