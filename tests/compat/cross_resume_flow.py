"""The flow that ``test_cross_resume.py`` runs on one implementation and
resumes on the other.

Imported as the top-level module ``cross_resume_flow`` by *both* the
original TaskFlow (through ``scripts/oracle``) and taskflow-ng, with
this folder on ``PYTHONPATH`` (only this folder: the repository root would
shadow the original's ``taskflow`` package).  Its factory name, saved in the
flow detail, is therefore ``cross_resume_flow.make_flow`` on both sides.

Environment:

``CROSS_LEDGER``
    file every task appends ``{"impl", "atom", "action"}`` lines to when one of
    its methods finishes its work (before returning to the engine);
``CROSS_IMPL``
    the implementation name written in those lines;
``CROSS_CRASH``
    ``"execute:<atom>"`` or ``"revert:<atom>"``: that method ends the process
    with ``os._exit`` right after its ledger line, so the engine never
    records its outcome.
"""

import json
import os

from taskflow import task
from taskflow.patterns import linear_flow as lf

CRASH_EXIT = 17


class Step(task.Task):
    def __init__(self, name, requires=(), fails=False):
        super().__init__(name=name, provides=name, requires=list(requires))
        self.fails = fails

    def execute(self, **inputs):
        _note(self.name, 'execute')
        if self.fails:
            raise RuntimeError('%s failed' % self.name)
        return '%s(%s)' % (self.name, ','.join(inputs[k] for k in sorted(inputs)))

    def revert(self, result, flow_failures, **inputs):
        _note(self.name, 'revert')


def _note(atom, action):
    with open(os.environ['CROSS_LEDGER'], 'a') as f:
        f.write(json.dumps({'impl': os.environ['CROSS_IMPL'], 'atom': atom,
                            'action': action}) + '\n')
        f.flush()
        os.fsync(f.fileno())
    if os.environ.get('CROSS_CRASH') == '%s:%s' % (action, atom):
        os._exit(CRASH_EXIT)


def make_flow(scenario):
    """``'finish'``: four tasks that succeed; ``'revert'``: the third fails."""
    return lf.Flow('cross-%s' % scenario).add(
        Step('a'), Step('b', ['a']), Step('c', ['b'], fails=scenario == 'revert'),
        Step('d', ['c']))
