"""Masking compared with the original TaskFlow 6.5.0 (run as a black box).

Where the original masks (``mask_inputs_keys``/``mask_outputs_keys`` in the
failure details of ``DynamicLoggingListener``: dicts and lists), taskflow-ng
prints the same lines.  Where it goes further -- a result logged when a task
succeeds, values inside tuples -- the only difference is that the masked
value shows as ``'***'`` (the expected line is the original's with that one
value replaced), as ``docs/behaviour.md`` says.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests import _services

pytestmark = pytest.mark.oracle

PROGRAM = r'''
import logging, sys
import taskflow.engines
from taskflow import task
from taskflow.listeners import logging as logging_listeners
from taskflow.patterns import linear_flow as lf

class Login(task.Task):
    default_provides = 'login'

    def execute(self, password, config):
        return RESULT

class Boom(task.Task):
    def execute(self, login):
        raise ValueError('boom')

log = logging.getLogger('masking-demo')
handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(logging.Formatter('%(levelname)s %(message)s'))
log.addHandler(handler)
log.setLevel(logging.DEBUG)
log.propagate = False
engine = taskflow.engines.load(
    lf.Flow('f').add(Login('login'), Boom('boom')),
    store={'password': 'pw-secret-1', 'config': {'password': 'pw-secret-2', 'x': [{'password': 'pw-secret-3'}], 'port': 5432}})
with logging_listeners.DynamicLoggingListener(engine, log=log, mask_inputs_keys=['password'],
                                              mask_outputs_keys=['token']):
    try:
        engine.run()
    except ValueError:
        pass
'''

UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')


def lines_of(output: str) -> list[str]:
    """What the listener logged, without uuids and traceback frames (engine internals)."""
    kept = []
    for line in output.splitlines():
        if line.startswith('  File ') or line.startswith('    '):
            continue
        kept.append(UUID.sub('<uuid>', line))
    return kept


def both(result: str) -> tuple[list[str], list[str]]:
    program = PROGRAM.replace('RESULT', result)
    ng = subprocess.run([sys.executable, '-P', '-c', program], capture_output=True, text=True,
                        timeout=120, check=True)
    original = _services.run_oracle(program)
    return lines_of(ng.stdout), lines_of(original.stdout)


def test_masked_failure_details_are_the_originals():
    # Only dicts and lists, and no masked key in the logged result: the
    # original masks all of it, and the outputs are the same, line for line.
    ng, original = both("{'user': 'bob', 'list': [{'name': 'x'}], 'more': {'deep': [1, 2]}}")
    assert ng == original
    tree = [line for line in ng if line.startswith("  Atom 'login'")]
    assert tree and "'password': '***'" in tree[0] and 'pw-secret' not in '\n'.join(ng)


def test_results_are_masked_where_the_original_shows_them():
    ng, original = both("{'token': 'tok-123456', 'user': 'bob', 'list': [{'token': 'tok-2'}]}")
    [ng_line] = [line for line in ng if "'SUCCESS'" in line and 'with result' in line]
    [line] = [line for line in original if "'SUCCESS'" in line and 'with result' in line]
    assert "'tok-123456'" in line   # the original logs the masked key's value
    assert ng_line == line.replace("'tok-123456'", "'***'").replace("'tok-2'", "'***'")
    others = [line for line in ng if line != ng_line]
    assert others == [line for line in original if "'SUCCESS'" not in line
                      or 'with result' not in line]


def test_tuples_are_masked_where_the_original_shows_them():
    ng, original = both("{'pair': ('a', {'token': 'tok-abcdef'}), 'user': 'bob'}")
    [ng_tree] = [line for line in ng if line.startswith("  Atom 'login'")]
    [tree] = [line for line in original if line.startswith("  Atom 'login'")]
    assert "'tok-abcdef'" in tree
    assert ng_tree == tree.replace("'tok-abcdef'", "'***'")
