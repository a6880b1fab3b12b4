"""``listeners``: a chain of N tasks watched by the printing and logging listeners.

Each task returns a small dict holding a ``'password'``. A ``PrintingListener``
and a ``DynamicLoggingListener`` (DEBUG, every record formatted) write to
memory while the chain runs. Timed: ``engines.load(flow)`` + ``engine.run()``.

``keys``: ``'none'`` (nothing masked), ``'listener'`` (the logging listener's
``mask_outputs_keys=['password']``, which both implementations accept; the
original masks only failure details, taskflow-ng also the logged results) or
``'project'`` (taskflow-ng's ``taskflow.secrets.mask_keys('password')``: every
listener masks, log records are scrubbed; taskflow-ng only).
"""

import io
import logging
import sys

from taskflow import engines
from taskflow import task
from taskflow.listeners import logging as logging_listeners
from taskflow.listeners import printing
from taskflow.patterns import linear_flow

from scenarios import _flows

SECRET = 'pw-not-for-logs'


class Login(task.Task):
    def execute(self, x):
        return {'password': SECRET, 'n': x['n'] + 1}


class First(task.Task):
    def execute(self):
        return {'password': SECRET, 'n': 0}


def build(n):
    flow = linear_flow.Flow('listened')
    flow.add(First('t_0', provides=_flows.chain_name(0)))
    for i in range(1, n):
        flow.add(Login('t_%d' % i, provides=_flows.chain_name(i),
                       rebind={'x': _flows.chain_name(i - 1)}))
    return flow


def run_once(size, keys):
    flow = build(size)
    printed = io.StringIO()
    logged = io.StringIO()
    log = logging.getLogger('bench.listeners')
    log.handlers[:] = [logging.StreamHandler(logged)]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    mask = ['password'] if keys == 'listener' else []

    def load_and_run():
        engine = engines.load(flow)
        with printing.PrintingListener(engine), logging_listeners.DynamicLoggingListener(
                engine, log=log, mask_outputs_keys=mask):
            engine.run()
        return engine

    # The printing listener writes to the stream current when it is made.
    real_stdout, sys.stdout = sys.stdout, printed
    try:
        seconds, engine = _flows.timed(load_and_run)
    finally:
        sys.stdout = real_stdout
    last = engine.storage.fetch(_flows.chain_name(size - 1))
    if last['n'] != size - 1:
        raise AssertionError('last result is %r, expected n=%r' % (last, size - 1))
    if printed.getvalue().count('has moved task') != 2 * size:
        raise AssertionError('the printing listener missed events')
    if keys == 'project' and SECRET in printed.getvalue() + logged.getvalue():
        raise AssertionError('a masked value was printed or logged')
    return seconds


def measure(size, keys='none'):
    if keys == 'project':
        from taskflow import secrets
        secrets.mask_keys('password')
    run_once(_flows.WARM_UP_SIZE, keys)
    return {'seconds': run_once(size, keys)}
