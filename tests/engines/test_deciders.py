"""Link deciders: conditional execution, decider_depth, history, IGNORE."""

from __future__ import annotations

import threading

import pytest

from taskflow import deciders
from taskflow import exceptions as exc
from taskflow import retry
from taskflow import states
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from tests.engines.helpers import Log, Step, atom_events, intentions_of, states_of

S, I = states.SUCCESS, states.IGNORE


class Decider:
    """A decider that remembers the histories it got.

    ``answer`` is the answer, or a function of the history giving it.
    """

    def __init__(self, answer):
        self.answer = answer
        self.histories = []
        self._lock = threading.Lock()

    def __call__(self, history):
        with self._lock:
            self.histories.append(dict(history))
        return self.answer(history) if callable(self.answer) else self.answer


def test_decider_gets_the_sources_results_and_can_skip_an_atom(kind):
    log = Log()
    src, big, always = (Step('src', log, result=5), Step('big', log), Step('always', log))
    says = Decider(lambda history: history['src'] >= 10)
    flow = gf.Flow('switch').add(src, big, always)
    flow.link(src, big, decider=says, decider_depth='atom')
    flow.link(src, always)
    engine = kind.load(flow)
    seen = atom_events(engine)
    engine.run()
    assert says.histories == [{'src': 5}]
    assert sorted(log.names('execute')) == ['always', 'src']
    assert [event for event in seen if event[0] == 'big'] == [('big', I, states.PENDING)]
    assert states_of(engine, ['src', 'big', 'always']) == {'src': S, 'big': I, 'always': S}
    assert intentions_of(engine, ['big']) == {'big': I}
    assert engine.storage.get_flow_state() == S
    with pytest.raises(exc.NotFound):
        engine.storage.get('big')


def test_a_yes_decision_runs_the_atom(kind):
    log = Log()
    src, dst = Step('src', log, result=50), Step('dst', log)
    says = Decider(lambda history: history['src'] >= 10)
    flow = gf.Flow('g').add(src, dst)
    flow.link(src, dst, decider=says)
    kind.run(flow)
    assert log.names('execute') == ['src', 'dst']
    assert says.histories == [{'src': 50}]


def _depth_flow(log, depth):
    """src -(no)-> a -> b -> c;  a -> sub(x, y);  src -> sib."""
    src, a, b, c, sib = (Step(n, log) for n in ('src', 'a', 'b', 'c', 'sib'))
    sub = lf.Flow('sub').add(Step('x', log), Step('y', log))
    flow = gf.Flow('g').add(src, a, b, c, sub, sib)
    if depth is None:
        flow.link(src, a, decider=Decider(False))
    else:
        flow.link(src, a, decider=Decider(False), decider_depth=depth)
    flow.link(a, b)
    flow.link(b, c)
    flow.link(a, sub)
    flow.link(src, sib)
    return flow


@pytest.mark.parametrize('depth, ignored', [
    (None, {'a', 'b', 'c', 'x', 'y'}),
    (deciders.Depth.ALL, {'a', 'b', 'c', 'x', 'y'}),
    ('flow', {'a', 'b', 'c'}),
    (deciders.Depth.NEIGHBORS, {'a', 'b'}),
    ('ATOM', {'a'}),
])
def test_decider_depth_chooses_what_is_ignored(kind, depth, ignored):
    log = Log()
    engine = kind.load(_depth_flow(log, depth))
    engine.run()
    names = {'src', 'a', 'b', 'c', 'x', 'y', 'sib'}
    assert set(log.names('execute')) == names - ignored
    assert states_of(engine, names) == {n: (I if n in ignored else S) for n in names}
    assert engine.storage.get_flow_state() == S


@pytest.mark.parametrize('depth, ignored', [
    ('ALL', {'x', 'y', 'z', 'after'}),
    ('FLOW', {'x', 'y'}),
    ('NEIGHBORS', {'x', 'y'}),
    ('ATOM', {'x'}),
])
def test_decider_on_a_link_into_a_subflow(kind, depth, ignored):
    log = Log()
    src = Step('src', log)
    sub = lf.Flow('sub').add(Step('x', log), Step('y', log),
                             uf.Flow('deeper').add(Step('z', log)))
    after = Step('after', log)
    says = Decider(False)
    flow = gf.Flow('g').add(src, sub, after)
    flow.link(src, sub, decider=says, decider_depth=depth)
    flow.link(sub, after)
    engine = kind.load(flow)
    engine.run()
    names = {'src', 'x', 'y', 'z', 'after'}
    assert set(log.names('execute')) == names - ignored
    assert states_of(engine, names) == {n: (I if n in ignored else S) for n in names}
    assert says.histories == [{'src': 'src'}]


def test_deciders_inside_and_into_a_nested_flow_are_each_asked(kind):
    log = Log()
    x, y = Step('x', log, result='from-x'), Step('y', log)
    outer_says, inner_says = Decider(True), Decider(True)
    inner = gf.Flow('inner').add(x, y)
    inner.link(x, y, decider=inner_says)
    src = Step('src', log, result=5)
    flow = gf.Flow('g').add(src, inner)
    flow.link(src, inner, decider=outer_says)
    kind.run(flow)
    assert log.names('execute') == ['src', 'x', 'y']
    assert outer_says.histories == [{'src': 5}]
    assert inner_says.histories == [{'x': 'from-x'}]


def test_a_flow_source_gives_an_empty_history(kind):
    log = Log()
    source = lf.Flow('source').add(Step('s1', log), Step('s2', log))
    target = Step('t', log)
    says = Decider(True)
    flow = gf.Flow('g').add(source, target)
    flow.link(source, target, decider=says)
    kind.run(flow)
    assert says.histories == [{}]
    assert log.names('execute') == ['s1', 's2', 't']


def test_every_decider_into_an_atom_gets_all_decider_sources(kind):
    log = Log()
    s1, s2, t, u = (Step('s1', log, result=1), Step('s2', log, result=2), Step('t', log),
                    Step('u', log))
    yes, no = Decider(True), Decider(False)
    flow = gf.Flow('g').add(s1, s2, t, u)
    flow.link(s1, t, decider=yes, decider_depth='ATOM')
    flow.link(s2, t, decider=no, decider_depth='ATOM')
    flow.link(t, u)
    engine = kind.load(flow)
    engine.run()
    # One "no" is enough; u still runs (only t was ignored).
    assert yes.histories == [{'s1': 1, 's2': 2}]
    assert no.histories == [{'s1': 1, 's2': 2}]
    assert states_of(engine, ['t', 'u']) == {'t': I, 'u': S}


def test_the_widest_depth_among_the_no_votes_wins(kind):
    log = Log()
    s1, s2, t, u = (Step(n, log) for n in ('s1', 's2', 't', 'u'))
    flow = gf.Flow('g').add(s1, s2, t, u)
    flow.link(s1, t, decider=Decider(False), decider_depth='ATOM')
    flow.link(s2, t, decider=Decider(False), decider_depth='NEIGHBORS')
    flow.link(t, u)
    engine = kind.load(flow)
    engine.run()
    assert states_of(engine, ['t', 'u']) == {'t': I, 'u': I}


def test_deciders_on_links_from_ignored_atoms_are_not_asked(kind):
    log = Log()
    s1, s2, t = Step('s1', log, result=1), Step('s2', log), Step('t', log)
    first, from_ignored, from_s1 = Decider(False), Decider(False), Decider(True)
    flow = gf.Flow('g').add(s1, s2, t)
    flow.link(s1, s2, decider=first, decider_depth='ATOM')
    flow.link(s2, t, decider=from_ignored)
    flow.link(s1, t, decider=from_s1)
    engine = kind.load(flow)
    engine.run()
    assert first.histories == [{'s1': 1}]
    assert from_s1.histories == [{'s1': 1}]
    assert from_ignored.histories == []
    assert states_of(engine, ['s1', 's2', 't']) == {'s1': S, 's2': I, 't': S}


def test_a_decider_that_raises_ends_the_run_in_failure(kind):
    log = Log()

    def broken(history):
        raise RuntimeError('decider broke')

    s1, t = Step('s1', log), Step('t', log)
    flow = gf.Flow('g').add(s1, t)
    flow.link(s1, t, decider=broken)
    engine = kind.load(flow)
    with pytest.raises(RuntimeError, match='decider broke'):
        engine.run()
    assert engine.storage.get_flow_state() == states.FAILURE
    assert states_of(engine, ['s1', 't']) == {'s1': S, 't': states.PENDING}
    assert log.names('revert') == []


def test_ignored_atoms_get_revert_intention_and_are_reset_on_rerun(kind):
    log = Log()
    src, a, b = Step('src', log), Step('a', log), Step('b', log, fail=ValueError('b'))
    flow = gf.Flow('g').add(src, a, b)
    flow.link(src, a, decider=Decider(False), decider_depth='ATOM')
    flow.link(src, b)
    engine = kind.load(flow)
    with pytest.raises(ValueError):
        engine.run()
    assert states_of(engine, ['src', 'a', 'b']) == {'src': states.REVERTED, 'a': I,
                                                    'b': states.REVERTED}
    assert intentions_of(engine, ['src', 'a', 'b']) == dict.fromkeys(['src', 'a', 'b'],
                                                                      states.REVERT)
    assert 'a' not in log.names('revert')
    seen = atom_events(engine)
    with pytest.raises(ValueError):
        engine.run()
    assert ('a', states.PENDING, I) in seen
    assert ('a', I, states.PENDING) in seen


def test_a_decider_is_asked_again_when_a_retry_reruns_its_subflow(kind):
    log = Log()
    says = Decider(False)
    src, skipped = Step('src', log), Step('skipped', log)

    class FailsOnce(Step):
        def execute(self, **kwargs):
            result = super().execute(**kwargs)
            if self._log.count('execute', self.name) == 1:
                raise ValueError('first time')
            return result

    flaky = FailsOnce('flaky', log)
    inner = gf.Flow('inner', retry=retry.Times(2, name='r')).add(src, skipped, flaky)
    inner.link(src, skipped, decider=says, decider_depth='ATOM')
    inner.link(skipped, flaky)
    engine = kind.load(inner)
    engine.run()
    assert len(says.histories) == 2
    assert states_of(engine, ['src', 'skipped', 'flaky']) == {'src': S, 'skipped': I,
                                                              'flaky': S}


@pytest.mark.parametrize('depth, final, after', [
    ('ALL', states.SUCCESS, {'b': I, 'c': I, 'd': I}),
    ('ATOM', states.SUSPENDED, {'b': I, 'c': states.PENDING, 'd': states.PENDING}),
])
def test_deciders_due_while_suspending_still_decide(kind, depth, final, after):
    """As the original: suspending stops atoms, not deciders; what they skip
    is stored IGNORE, and nothing left to run means SUCCESS."""
    log = Log()

    class Suspender(Step):
        def execute(self, **kwargs):
            engine.suspend()
            return super().execute(**kwargs)

    a, b, c, d = Suspender('a', log), Step('b', log), Step('c', log), Step('d', log)
    flow = gf.Flow('g').add(a, b, c, d)
    flow.link(a, b, decider=Decider(False), decider_depth=depth)
    flow.link(b, c).link(c, d)
    engine = kind.load(flow)
    engine.run()
    assert engine.storage.get_flow_state() == final
    assert states_of(engine, 'bcd') == after
    engine.run()
    assert engine.storage.get_flow_state() == states.SUCCESS
    assert log.names('execute') == ['a'] + [n for n in 'bcd' if after[n] != I]
