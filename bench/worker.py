"""Run one measurement of one scenario and print it as JSON (one worker = one process).

    python -P bench/worker.py '{"module": "linear", "size": 1000, "params": {}}'

The runner starts a fresh worker for every repeat, with taskflow-ng's or the
original's interpreter. The last line printed is ``BENCH-RESULT {json}``: the
scenario's own result plus where ``taskflow`` was imported from and the
process's peak RSS.
"""

import importlib
import json
import os
import resource
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
RESULT_PREFIX = 'BENCH-RESULT '


def main(argv):
    spec = json.loads(argv[1])
    # Under -P neither the script's folder nor the cwd is on sys.path; bench/
    # holds no taskflow/ folder, so adding it cannot shadow the implementation.
    sys.path.insert(0, BENCH_DIR)
    from scenarios import Skip
    module = importlib.import_module('scenarios.' + spec['module'])
    result = {}
    if getattr(module, 'NEEDS_TASKFLOW', True):
        import taskflow
        result['taskflow_file'] = taskflow.__file__
    try:
        result.update(module.measure(spec['size'], **spec.get('params', {})))
    except Skip as skip:
        result['skipped'] = str(skip)
    result['maxrss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result['python'] = sys.version.split()[0]
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
