"""Flow patterns and data: execution order, results, scoping, arguments."""

from __future__ import annotations

import pytest

from taskflow import exceptions as exc
from taskflow import states
from taskflow import task
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from tests.engines.helpers import Const, Echo, Log, Step, states_of


def before(log: Log, first: str, then: str, action: str = 'execute') -> bool:
    return log.position(action, first) < log.position(action, then)


# -- execution order --------------------------------------------------------


def test_linear_flow_runs_children_in_add_order(kind):
    log = Log()
    flow = lf.Flow('lin').add(*(Step(n, log) for n in 'abcde'))
    kind.run(flow)
    assert log.names('execute') == list('abcde')
    assert log.names('revert') == []


def test_unordered_flow_runs_every_child_once(kind):
    log = Log()
    flow = uf.Flow('un').add(*(Step(n, log, provides=n.upper()) for n in 'abcd'))
    results = kind.run(flow)
    assert sorted(log.names('execute')) == list('abcd')
    assert results == {'A': 'a', 'B': 'b', 'C': 'c', 'D': 'd'}


def test_graph_flow_follows_inferred_links(kind):
    log = Log()
    flow = gf.Flow('g').add(
        Step('d', log, requires=['b', 'c'], provides='d'),
        Step('b', log, requires=['a'], provides='b'),
        Step('c', log, requires=['a'], provides='c'),
        Step('a', log, provides='a'))
    kind.run(flow)
    assert sorted(log.names('execute')) == list('abcd')
    assert before(log, 'a', 'b') and before(log, 'a', 'c')
    assert before(log, 'b', 'd') and before(log, 'c', 'd')


def test_graph_flow_follows_manual_links(kind):
    log = Log()
    a, b, c = Step('a', log), Step('b', log), Step('c', log)
    flow = gf.Flow('g').add(a, b, c)
    flow.link(c, b)
    flow.link(b, a)
    kind.run(flow)
    assert log.names('execute') == ['c', 'b', 'a']


def test_subflow_is_one_unit_of_its_linear_parent(kind):
    log = Log()
    flow = lf.Flow('root').add(
        Step('first', log),
        uf.Flow('middle').add(Step('m1', log), Step('m2', log),
                              lf.Flow('deep').add(Step('d1', log), Step('d2', log))),
        Step('last', log))
    kind.run(flow)
    order = log.names('execute')
    assert order[0] == 'first' and order[-1] == 'last'
    assert sorted(order[1:-1]) == ['d1', 'd2', 'm1', 'm2']
    assert before(log, 'd1', 'd2')


def test_linking_graph_nodes_that_are_subflows(kind):
    log = Log()
    left = uf.Flow('left').add(Step('l1', log), Step('l2', log))
    right = uf.Flow('right').add(Step('r1', log), Step('r2', log))
    flow = gf.Flow('g').add(right, left)
    flow.link(left, right)
    kind.run(flow)
    for first in ('l1', 'l2'):
        for then in ('r1', 'r2'):
            assert before(log, first, then)


def test_empty_flow_succeeds_with_no_results(kind):
    engine = kind.load(lf.Flow('empty'))
    engine.run()
    assert engine.storage.get_flow_state() == states.SUCCESS
    assert engine.storage.fetch_all() == {}


def test_nested_empty_flows_succeed(kind):
    flow = lf.Flow('root').add(uf.Flow('u'), gf.Flow('g'), lf.Flow('l').add(lf.Flow('ll')))
    assert kind.run(flow) == {}


def test_a_bare_task_can_be_run(kind):
    log = Log()
    assert kind.run(Step('alone', log, provides='out')) == {'out': 'alone'}
    assert log.names('execute') == ['alone']


def test_higher_priority_runs_first_among_ready_atoms(kind):
    if kind.name == 'parallel-executor':
        pytest.skip('start order is only observable with one worker')
    log = Log()

    class Prioritized(Step):
        def __init__(self, name, priority):
            super().__init__(name, log)
            self.priority = priority

    flow = uf.Flow('u').add(Prioritized('low', 1), Prioritized('high', 9),
                            Prioritized('mid', 5))
    kind.run(flow, max_workers=1)
    assert log.names('execute') == ['high', 'mid', 'low']


# -- results and provides ---------------------------------------------------


def test_run_returns_store_and_every_published_result(kind):
    flow = lf.Flow('f').add(Echo(name='echo', provides='y'), Const(5, name='five'))
    assert kind.run(flow, store={'x': 'in'}) == {'x': 'in', 'y': 'in'}


@pytest.mark.parametrize('provides, result, published', [
    ('whole', (1, 2), {'whole': (1, 2)}),
    (('first', 'second'), (1, 2), {'first': 1, 'second': 2}),
    (['first', 'second'], [1, 2, 3], {'first': 1, 'second': 2}),
    ({'k1', 'k2'}, {'k1': 'v1', 'k2': 'v2', 'k3': 'v3'}, {'k1': 'v1', 'k2': 'v2'}),
    ((), 'ignored', {}),
    (None, 'ignored', {}),
])
def test_provides_publishes_the_result_by_shape(kind, provides, result, published):
    engine = kind.load(Const(result, name='c', provides=provides))
    engine.run()
    assert engine.storage.fetch_all() == published
    # The complete result is always saved, whatever was published.
    assert engine.storage.get('c') == result


def test_default_provides_is_used_when_provides_is_none(kind):
    class Pair(task.Task):
        default_provides = ('first', 'second')

        def execute(self):
            return 'one', 'two'

    assert kind.run(Pair()) == {'first': 'one', 'second': 'two'}
    assert kind.run(Pair(provides='both')) == {'both': ('one', 'two')}


def test_a_result_shorter_than_provides_leaves_the_rest_unfetchable(kind):
    engine = kind.load(Const(('only',), name='c', provides=('a', 'b')))
    engine.run()
    assert engine.storage.fetch('a') == 'only'
    with pytest.raises(exc.NotFound):
        engine.storage.fetch('b')
    assert engine.storage.fetch_all() == {'a': 'only'}


def test_fetch_returns_first_provider_and_fetch_all_lists_every_value(kind):
    flow = lf.Flow('f').add(Const(1, name='one', provides='x'),
                            Const(2, name='two', provides='x'))
    engine = kind.load(flow)
    engine.run()
    assert engine.storage.fetch('x') == 1
    assert engine.storage.fetch_all() == {'x': [1, 2]}


# -- arguments ----------------------------------------------------------------


def test_store_values_reach_tasks_by_argument_name(kind):
    class Join(task.Task):
        def execute(self, a, b):
            return a + b

    assert kind.run(Join(provides='ab'), store={'a': 'x', 'b': 'y'})['ab'] == 'xy'


def test_rebind_with_a_dict_maps_arguments_to_other_names(kind):
    class Sub(task.Task):
        def execute(self, a, b):
            return a - b

    flow = Sub(provides='diff', rebind={'a': 'big', 'b': 'small'})
    assert kind.run(flow, store={'big': 10, 'small': 3})['diff'] == 7


def test_rebind_with_a_list_maps_positionally_and_extras_reach_kwargs(kind):
    class Collect(task.Task):
        def execute(self, a, b, **kwargs):
            return (a, b, kwargs)

    flow = Collect(provides='got', rebind=['one', 'two', 'three'])
    got = kind.run(flow, store={'one': 1, 'two': 2, 'three': 3})['got']
    assert got == (1, 2, {'three': 3})


def test_requires_adds_names_passed_as_kwargs(kind):
    class Collect(task.Task):
        def execute(self, **kwargs):
            return kwargs

    flow = Collect(provides='got', requires=['p', 'q'])
    assert kind.run(flow, store={'p': 1, 'q': 2, 'r': 3})['got'] == {'p': 1, 'q': 2}


def test_optional_argument_uses_python_default_when_nothing_provides_it(kind):
    class Greet(task.Task):
        def execute(self, name, greeting='hello'):
            return '%s %s' % (greeting, name)

    assert kind.run(Greet(provides='g'), store={'name': 'bob'})['g'] == 'hello bob'
    assert kind.run(Greet(provides='g'),
                    store={'name': 'bob', 'greeting': 'hi'})['g'] == 'hi bob'


def test_optional_argument_is_read_from_a_provider_in_scope(kind):
    class Greet(task.Task):
        def execute(self, name, greeting='hello'):
            return '%s %s' % (greeting, name)

    flow = lf.Flow('f').add(Const('yo', name='gr', provides='greeting'),
                            Greet(provides='g'))
    assert kind.run(flow, store={'name': 'al'})['g'] == 'yo al'


def test_optional_argument_with_an_unreachable_provider_fails_the_run(kind):
    """As the original: the default is used only when nothing provides the name."""
    class Greet(task.Task):
        def execute(self, greeting='hello'):
            return greeting

    flow = lf.Flow('f').add(Greet(provides='g'), Const('yo', name='gr', provides='greeting'))
    engine = kind.load(flow)
    with pytest.raises(exc.NotFound) as info:
        engine.run()
    assert str(info.value) == ("Mapped argument 'greeting' <= 'greeting' was not produced"
                               " by any accessible provider (0 possible providers were"
                               " scanned)")
    assert engine.storage.get_flow_state() == states.FAILURE


def test_an_argument_missing_from_every_providers_result_names_them_all(kind):
    class Use(task.Task):
        def execute(self, b=None):
            return b

    flow = lf.Flow('f').add(Const({'a': 1}, name='p', provides=('a', 'b')), Use('use'))
    with pytest.raises(exc.NotFound) as info:
        kind.run(flow)
    assert str(info.value) == ("Unable to find result 'b', expected to be able to find it"
                               " created by one of [<Provider 'p' @ index 1>] but was unable"
                               " to perform successful extraction")


def test_inject_gives_values_to_one_atom_only(kind):
    flow = lf.Flow('f').add(
        Echo(name='e1', provides='r1', inject={'x': 'injected'}),
        Echo(name='e2', provides='r2'))
    engine = kind.load(flow, store={'x': 'stored'})
    engine.run()
    assert engine.storage.fetch('r1') == 'injected'
    assert engine.storage.fetch('r2') == 'stored'


def test_inject_wins_over_store_and_over_results(kind):
    flow = lf.Flow('f').add(Const('produced', name='p', provides='x'),
                            Echo(name='e', provides='r', inject={'x': 'injected'}))
    assert kind.run(flow, store={'x': 'stored'})['r'] == 'injected'


def test_store_shadows_a_task_that_provides_the_same_name(kind):
    flow = lf.Flow('f').add(Const('produced', name='p', provides='x'),
                            Echo(name='e', provides='r'))
    assert kind.run(flow, store={'x': 'stored'})['r'] == 'stored'


def test_storage_inject_after_load_is_seen_by_the_run(kind):
    engine = kind.load(Echo(provides='r'))
    engine.storage.inject({'x': 'late'})
    engine.run()
    assert engine.storage.fetch('r') == 'late'


def test_transient_injection_is_used_but_not_persisted(kind):
    engine = kind.load(Echo(provides='r'))
    engine.storage.inject({'x': 'ephemeral'}, transient=True)
    engine.run()
    assert engine.storage.fetch('r') == 'ephemeral'


# -- scoping ------------------------------------------------------------------


class Give(task.Task):
    def __init__(self, name, value):
        super().__init__(name=name, provides='x')
        self.value = value

    def execute(self):
        return self.value


class Show(task.Task):
    def execute(self, x):
        return x


def test_nearest_preceding_provider_wins_between_nested_flows(kind):
    # The example of storage-and-scoping.md ("Scope visibility").
    flow = lf.Flow('root').add(
        Give('g1', 'outer-1'),
        Show('s1'),
        lf.Flow('sub').add(Show('s2'), Give('g2', 'inner-2'), Show('s3')),
        Show('s4'),
        Give('g3', 'outer-3'),
        Show('s5'))
    engine = kind.load(flow)
    engine.run()
    seen = {name: engine.storage.get(name) for name in ('s1', 's2', 's3', 's4', 's5')}
    assert seen == {'s1': 'outer-1', 's2': 'outer-1', 's3': 'inner-2',
                    's4': 'inner-2', 's5': 'outer-3'}
    assert engine.storage.fetch('x') == 'outer-1'
    assert engine.storage.fetch_all() == {'x': ['outer-1', 'inner-2', 'outer-3']}


def test_last_atom_of_a_preceding_subflow_is_the_nearest_provider(kind):
    flow = lf.Flow('root').add(
        lf.Flow('sub').add(Give('g1', 'one'), uf.Flow('deeper').add(Give('g2', 'two'))),
        Show('s'))
    engine = kind.load(flow)
    engine.run()
    assert engine.storage.get('s') == 'two'


def test_inner_flow_reads_the_outer_flow_before_it(kind):
    flow = lf.Flow('root').add(
        Give('g', 'outer'),
        uf.Flow('u').add(Show('s1'), lf.Flow('l').add(Show('s2'))))
    engine = kind.load(flow)
    engine.run()
    assert (engine.storage.get('s1'), engine.storage.get('s2')) == ('outer', 'outer')


def test_unordered_siblings_do_not_see_each_other(kind):
    flow = uf.Flow('u').add(Give('g', 'sibling'), Show('s'))
    with pytest.raises(exc.MissingDependencies) as info:
        kind.run(flow)
    assert info.value.missing_requirements == ['x']


def test_unordered_sibling_is_not_used_when_an_earlier_provider_exists(kind):
    flow = lf.Flow('root').add(
        Give('g1', 'before'),
        uf.Flow('u').add(Give('g2', 'sibling'), Show('s')))
    engine = kind.load(flow)
    engine.run()
    assert engine.storage.get('s') == 'before'


def test_later_providers_are_not_visible(kind):
    flow = lf.Flow('root').add(Show('s'), Give('g', 'later'))
    with pytest.raises(exc.MissingDependencies):
        kind.run(flow)
    engine = kind.load(flow, store={'x': 'stored'})
    engine.run()
    assert engine.storage.get('s') == 'stored'


def test_graph_flow_atoms_read_their_graph_predecessors(kind):
    g1, s1, g2, s2 = Give('g1', 'one'), Show('s1'), Give('g2', 'two'), Show('s2')
    flow = gf.Flow('g').add(g1, s1, g2, s2, resolve_requires=False)
    flow.link(g1, s1)
    flow.link(g1, g2)
    flow.link(g2, s2)
    engine = kind.load(flow)
    engine.run()
    assert engine.storage.get('s1') == 'one'
    assert engine.storage.get('s2') == 'two'


def test_graph_flow_subflow_nodes_share_results_along_links(kind):
    producer = lf.Flow('producer').add(Give('g', 'from-subflow'))
    consumer = lf.Flow('consumer').add(Show('s'))
    flow = gf.Flow('g').add(consumer, producer)
    engine = kind.load(flow)
    engine.run()
    assert engine.storage.get('s') == 'from-subflow'
    assert states_of(engine, ['g', 's']) == {'g': states.SUCCESS, 's': states.SUCCESS}
