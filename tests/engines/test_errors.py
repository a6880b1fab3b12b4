"""Bad input: what is raised, when, and what the message names."""

from __future__ import annotations

import re

import pytest

import taskflow.engines
from taskflow import exceptions as exc
from taskflow import retry
from taskflow import states
from taskflow import task
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from tests.engines.helpers import Log, Step


class Needs(task.Task):
    def execute(self, meow, woof):
        pass


class Other(task.Task):
    def execute(self, bark):
        pass

    def revert(self, bark, **kwargs):
        pass


class NeedsX(task.Task):
    def execute(self, x):
        pass


class Plain(task.Task):
    def execute(self):
        pass


MISSING = "'%s' requires %s but no other entity produces said requirements"
METHOD = "'%s' method on " + MISSING


# -- missing requirements ---------------------------------------------------------


def test_missing_requirements_name_the_flow_and_every_atom_method(kind):
    flow = lf.Flow('cat-dog').add(Needs('needs'), Other('other'))
    engine = kind.load(flow)
    events = []
    engine.notifier.register('*', lambda state, details: events.append(state))
    with pytest.raises(exc.MissingDependencies) as info:
        engine.run()
    assert str(info.value) == '\n'.join([
        MISSING % ('"linear_flow.Flow: cat-dog(len=2)"', "['bark', 'meow', 'woof']"),
        '  MissingDependencies: ' + METHOD % ('revert', '"other==1.0"', "['bark']"),
        '    MissingDependencies: ' + METHOD % ('execute', '"other==1.0"', "['bark']"),
        '      MissingDependencies: ' + METHOD % ('execute', '"needs==1.0"',
                                                 "['meow', 'woof']"),
    ])
    assert info.value.missing_requirements == ['bark', 'meow', 'woof']
    assert events == []  # nothing ran, the flow never started


def test_missing_requirements_are_found_by_validate(kind):
    engine = kind.load(lf.Flow('f').add(NeedsX('c')))
    engine.compile()
    engine.prepare()
    with pytest.raises(exc.MissingDependencies) as info:
        engine.validate()
    assert info.value.missing_requirements == ['x']
    engine.storage.inject({'x': 1})
    engine.validate()
    engine.run()
    assert engine.storage.get_flow_state() == states.SUCCESS


def test_a_bare_task_with_missing_requirements_raises_its_own_error(kind):
    with pytest.raises(exc.MissingDependencies) as info:
        kind.run(Needs('needs'))
    assert str(info.value) == METHOD % ('execute', '"needs==1.0"', "['meow', 'woof']")
    assert info.value.missing_requirements == ['meow', 'woof']


def test_a_bare_task_missing_in_both_methods_is_wrapped_by_the_task(kind):
    with pytest.raises(exc.MissingDependencies) as info:
        kind.run(Other('other', rebind={'bark': 'growl'}))
    # The arguments are named, not the rebound values they would read.
    assert str(info.value) == '\n'.join([
        MISSING % ('"other==1.0"', "['bark']"),
        '  MissingDependencies: ' + METHOD % ('revert', '"other==1.0"', "['bark']"),
        '    MissingDependencies: ' + METHOD % ('execute', '"other==1.0"', "['bark']")])


def test_missing_rebound_arguments_are_named_by_argument(kind):
    flow = lf.Flow('f').add(NeedsX('c', rebind={'x': 'source'}))
    with pytest.raises(exc.MissingDependencies) as info:
        kind.run(flow)
    assert info.value.missing_requirements == ['x']
    assert kind.run(flow, store={'source': 3}) == {'source': 3}


def test_a_name_only_revert_needs_is_still_required(kind):
    class OnlyRevert(task.Task):
        def execute(self):
            pass

        def revert(self, undo_info, **kwargs):
            pass

    with pytest.raises(exc.MissingDependencies) as info:
        kind.run(lf.Flow('f').add(OnlyRevert('ro')))
    assert str(info.value) == '\n'.join([
        MISSING % ('"linear_flow.Flow: f(len=1)"', "['undo_info']"),
        '  MissingDependencies: ' + METHOD % ('revert', '"ro==1.0"', "['undo_info']")])


def test_a_retry_with_missing_requirements(kind):
    flow = lf.Flow('f', retry=retry.ParameterizedForEach(name='pfe')).add(Plain('t'))
    with pytest.raises(exc.MissingDependencies) as info:
        kind.run(flow)
    assert str(info.value).splitlines()[1] == (
        '  MissingDependencies: ' + METHOD % ('execute', '"pfe==1.0"', "['values']"))


@pytest.mark.parametrize('make_flow, who', [
    (lambda: uf.Flow('u').add(Plain('p', provides='x'), NeedsX('c')),
     '"unordered_flow.Flow: u(len=2)"'),
    (lambda: lf.Flow('outer').add(uf.Flow('inner').add(NeedsX('c')),
                                  Plain('p', provides='x')),
     '"linear_flow.Flow: outer(len=2)"'),
])
def test_providers_out_of_scope_do_not_count(kind, make_flow, who):
    with pytest.raises(exc.MissingDependencies) as info:
        kind.run(make_flow())
    assert str(info.value).splitlines() == [
        MISSING % (who, "['x']"),
        '  MissingDependencies: ' + METHOD % ('execute', '"c==1.0"', "['x']")]


# -- compilation --------------------------------------------------------------------


def test_duplicate_atom_names_anywhere_in_the_tree(kind):
    flow = lf.Flow('f').add(Plain('a'), uf.Flow('u').add(Plain('a'), Plain('b'),
                                                         lf.Flow('x').add(Plain('b'))))
    with pytest.raises(exc.Duplicate) as info:
        kind.run(flow)
    assert str(info.value) == "Atoms with duplicate names found: ['a', 'b']"


def test_a_retry_name_clashing_with_a_task_name(kind):
    flow = lf.Flow('f', retry=retry.Times(name='a')).add(Plain('a'))
    with pytest.raises(exc.Duplicate) as info:
        kind.run(flow)
    assert str(info.value) == "Atoms with duplicate names found: ['a']"


def test_the_same_task_object_twice(kind):
    same = Plain('same')
    with pytest.raises(ValueError) as info:
        kind.run(lf.Flow('f').add(same, uf.Flow('u').add(same)))
    assert str(info.value) == (
        "Already compiled item '\"same==1.0\"' (%s), duplicate and/or recursive compiling"
        " is not supported" % type(same))


def test_the_same_flow_object_twice(kind):
    sub = lf.Flow('sub').add(Plain('s'))
    with pytest.raises(ValueError) as info:
        kind.run(lf.Flow('f').add(sub, uf.Flow('u').add(sub)))
    assert str(info.value) == (
        "Already compiled item '\"linear_flow.Flow: sub(len=1)\"' (<class 'taskflow.patterns."
        "linear_flow.Flow'>), duplicate and/or recursive compiling is not supported")


@pytest.mark.parametrize('item', [retry.Times(name='r'), 'hello'])
def test_objects_that_are_not_tasks_or_flows(kind, item):
    engine = kind.load(lf.Flow('f').add(item))
    with pytest.raises(TypeError) as info:
        engine.compile()
    assert str(info.value) == "Unknown object '%s' (%s) requested to compile" % (item, type(item))


def test_compile_errors_surface_on_run_not_on_load(kind):
    engine = kind.load(lf.Flow('f').add(Plain('a'), Plain('a')))
    assert engine.storage.get_flow_state() == states.PENDING
    with pytest.raises(exc.Duplicate):
        engine.run()


def test_errors_while_running_leave_the_engine_usable(kind):
    log = Log()
    engine = kind.load(lf.Flow('f').add(Step('a', log, requires=['x'])))
    with pytest.raises(exc.MissingDependencies):
        engine.run()
    engine.storage.inject({'x': 'now'})
    engine.run()
    assert log.last('execute', 'a')['arguments'] == {'x': 'now'}


# -- graph flow construction ------------------------------------------------------------


CYCLE = ('No path through the node(s) in the graph produces an ordering that will allow'
         ' for logical edge traversal')


def test_a_cycle_of_manual_links_is_refused_and_the_flow_unchanged(kind):
    log = Log()
    a, b = Step('a', log), Step('b', log)
    flow = gf.Flow('g').add(a, b).link(a, b)
    with pytest.raises(exc.DependencyFailure) as info:
        flow.link(b, a)
    assert str(info.value) == CYCLE
    kind.run(flow)
    assert log.names('execute') == ['a', 'b']


def test_a_cycle_of_inferred_links_is_refused(kind):
    class Px(task.Task):
        def execute(self, y):
            pass

    with pytest.raises(exc.DependencyFailure) as info:
        gf.Flow('g').add(Px('px', provides='x'), NeedsX('py', provides='y'))
    assert str(info.value) == CYCLE


def test_several_providers_of_one_symbol_are_ambiguous(kind):
    with pytest.raises(exc.AmbiguousDependency) as info:
        gf.Flow('g').add(Plain('p1', provides='x'), Plain('p2', provides='x'), NeedsX('c'))
    assert str(info.value) == ("Resolution error detected when adding 'c', multiple"
                               " providers ['p1', 'p2'] found for required symbol 'x'")


@pytest.mark.parametrize('link, error, message', [
    (lambda g, a, b, c: g.link(c, a), ValueError, 'Node \'"c==1.0"\' not found to link from'),
    (lambda g, a, b, c: g.link(a, c), ValueError, 'Node \'"c==1.0"\' not found to link to'),
    (lambda g, a, b, c: g.link(a, b, decider=5), ValueError,
     'Decider boolean callback must be callable'),
    (lambda g, a, b, c: g.link(a, b, decider_depth='ALL'), ValueError,
     'Decider depth requires a decider to be provided along with it'),
    (lambda g, a, b, c: g.link(a, b, decider=bool, decider_depth='everything'), ValueError,
     "Unexpected decider depth value, one of ['ALL', 'ATOM', 'FLOW', 'NEIGHBORS']"
     " (case-insensitive) is expected and not 'everything'"),
    (lambda g, a, b, c: g.link(a, b, decider=bool, decider_depth=3), TypeError,
     "Unexpected desired depth type, string type expected, not <class 'int'>"),
])
def test_bad_links(kind, link, error, message):
    log = Log()
    a, b, c = Step('a', log), Step('b', log), Step('c', log)
    flow = gf.Flow('g').add(b, a)
    with pytest.raises(error) as info:
        link(flow, a, b, c)
    assert str(info.value) == message
    kind.run(flow)  # the flow is unchanged and still runs
    assert sorted(log.names('execute')) == ['a', 'b']


# -- engine kinds and options ------------------------------------------------------------


def test_an_unknown_engine_kind():
    with pytest.raises(exc.NotFound) as info:
        taskflow.engines.load(Plain('a'), engine='xyz')
    assert str(info.value).splitlines()[0] == "Could not find engine 'xyz'"


@pytest.mark.parametrize('executor', [5, object()])
def test_executor_that_is_not_an_executor(executor):
    with pytest.raises(TypeError) as info:
        taskflow.engines.load(Plain('a'), engine='parallel', executor=executor)
    prefix = "Unknown executor '%s' (%s) expected an instance of " % (executor, type(executor))
    message = str(info.value)
    assert message.startswith(prefix)
    # The reference lists the accepted classes in set order.
    assert message[len(prefix):] in (
        "[<class 'concurrent.futures.thread.ThreadPoolExecutor'>,"
        " <class 'concurrent.futures._base.Executor'>]",
        "[<class 'concurrent.futures._base.Executor'>,"
        " <class 'concurrent.futures.thread.ThreadPoolExecutor'>]")


@pytest.mark.parametrize('executor', ['processes', 'process', 'fibers'])
def test_executor_strings_that_are_not_known(executor):
    with pytest.raises(ValueError) as info:
        taskflow.engines.load(Plain('a'), engine='parallel', executor=executor)
    # The reference lists the known names in set order: compare them as a set.
    match = re.fullmatch(r"Unknown executor string '(.*)' expected one of \[(.*)\]"
                         r" \(or mixed case equivalent\)", str(info.value))
    assert match is not None, str(info.value)
    assert match.group(1) == executor
    assert sorted(match.group(2).split(', ')) == sorted(
        repr(name) for name in ('thread', 'threads', 'threaded',
                                'greenthread', 'greenthreads', 'greenthreaded'))


@pytest.mark.parametrize('executor', ['thread', 'THREADS', 'Threaded'])
def test_executor_strings_are_case_insensitive(executor):
    log = Log()
    taskflow.engines.run(uf.Flow('u').add(Step('a', log), Step('b', log)),
                           engine='parallel', executor=executor)
    assert sorted(log.names('execute')) == ['a', 'b']


def test_green_executors_need_eventlet():
    try:
        import eventlet  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip('eventlet is installed')
    engine = taskflow.engines.load(Plain('a'), engine='parallel', executor='greenthreads')
    with pytest.raises(RuntimeError) as info:
        engine.run()
    assert str(info.value) == 'Eventlet is needed to use a green executor'


def test_max_workers_that_is_not_a_number():
    with pytest.raises(ValueError, match='abc'):
        taskflow.engines.load(Plain('a'), engine='parallel', max_workers='abc')


@pytest.mark.parametrize('workers', [0, -1])
def test_max_workers_below_one(workers):
    with pytest.raises(ValueError, match='max_workers'):
        taskflow.engines.run(Plain('a'), engine='parallel', max_workers=workers)


def test_max_workers_may_be_a_numeric_string():
    log = Log()
    taskflow.engines.run(uf.Flow('u').add(Step('a', log), Step('b', log)),
                           engine='parallel', max_workers='2')
    assert sorted(log.names('execute')) == ['a', 'b']


def _defer_reverts_flow(log):
    return lf.Flow('root').add(
        Step('prep', log),
        lf.Flow('inner', retry=retry.Times(1)).add(Step('boom', log, fail=KeyError('boom'))))


@pytest.mark.parametrize('value, deferred', [
    (True, True), ('yes', True), ('TRUE', True), ('on', True), ('1', True), (1, True),
    (False, False), ('no', False), ('0', False), (0, False), (None, False),
    # Reference behaviour: strings it does not know mean False (no error).
    ('maybe', False), ('', False),
])
def test_boolean_options_accept_strings(kind, value, deferred):
    log = Log()
    engine = kind.load(_defer_reverts_flow(log), defer_reverts=value)
    with pytest.raises(KeyError):
        engine.run()
    assert ('prep' in log.names('revert')) is deferred


def test_engine_options_are_kept_without_the_kind(kind):
    engine = kind.load(Plain('a'), max_workers=2, defer_reverts=True)
    expected = {k: v for k, v in kind.options.items() if k != 'engine'}
    expected.update(max_workers=2, defer_reverts=True)
    assert engine.options == expected


def test_an_engine_uri_gives_the_kind_and_string_options():
    engine = taskflow.engines.load(Plain('a'), engine='parallel://?max_workers=2&x=y',
                                     defer_reverts=True)
    assert type(engine).__name__ == 'ParallelActionEngine'
    assert engine.options == {'max_workers': '2', 'x': 'y', 'defer_reverts': True}
    engine.run()
