"""``graph``: a layered graph flow whose edges are inferred from requires/provides.

N / 10 layers of 10 tasks; each task requires three outputs of the previous
layer. Timed: ``engines.load(flow)`` + ``engine.run()`` (serial engine).
"""

from taskflow import engines

from scenarios import _flows


def run_once(size):
    flow = _flows.build_layers(size)

    def load_and_run():
        engine = engines.load(flow)
        engine.run()
        return engine

    seconds, engine = _flows.timed(load_and_run)
    layers = _flows.layers_of(size)
    last = engine.storage.fetch(_flows.layer_name(layers - 1, 0))
    if last != layers - 1:
        raise AssertionError('last layer holds %r, expected %r' % (last, layers - 1))
    return seconds


def measure(size):
    run_once(_flows.WARM_UP_SIZE)
    return {'seconds': run_once(size)}
