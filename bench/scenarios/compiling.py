"""``compile``: compile + prepare + validate of a layered graph flow, nothing run.

Timed: ``engine.compile(); engine.prepare(); engine.validate()`` on an engine
already loaded (``engines.load`` is outside the timed region). The flow is
built providers first: building it dependents first is slow on taskflow-ng at
10,000 nodes (see the ``build`` scenario) and would only lengthen the run.
"""

from taskflow import engines

from scenarios import _flows


def run_once(size):
    engine = engines.load(_flows.build_layers(size, order='providers'))

    def compile_prepare_validate():
        engine.compile()
        engine.prepare()
        engine.validate()

    seconds, _ = _flows.timed(compile_prepare_validate)
    return seconds


def measure(size):
    run_once(_flows.WARM_UP_SIZE)
    return {'seconds': run_once(size)}
