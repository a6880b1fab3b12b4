"""``revert``: a chain of N tasks whose last task raises, so the whole chain reverts.

Timed: ``engines.load(flow)`` + ``engine.run()`` until it re-raises the
task's error, i.e. executing N tasks and reverting them all.
"""

from taskflow import engines

from scenarios import _flows


class Boom(Exception):
    pass


class CountingLink(_flows.Link):
    reverted = 0

    def revert(self, *args, **kwargs):
        CountingLink.reverted += 1


class FailingLink(CountingLink):
    def execute(self, x):
        raise Boom('task %s fails on purpose' % self.name)


def run_once(size):
    flow = _flows.build_chain(size, link=CountingLink, last=FailingLink)
    CountingLink.reverted = 0

    def load_and_run():
        engine = engines.load(flow)
        try:
            engine.run()
        except Boom:
            return engine
        raise AssertionError('the run did not fail')

    seconds, _ = _flows.timed(load_and_run)
    # The head is a plain task (no counting revert); the N-1 others count.
    if CountingLink.reverted != size - 1:
        raise AssertionError('%d tasks reverted, expected %d'
                             % (CountingLink.reverted, size - 1))
    return seconds


def measure(size):
    run_once(_flows.WARM_UP_SIZE)
    return {'seconds': run_once(size)}
