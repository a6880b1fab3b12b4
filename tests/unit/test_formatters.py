"""taskflow.formatters.FailureFormatter.

Expected texts were observed on the reference TaskFlow 6.5.0 (run as a black
box) for the same flows: the predecessor tree is part of what users see in
their logs, quirks included (see the module docstring of
``taskflow.formatters``).
"""

from __future__ import annotations

import collections
import os

import pytest

import taskflow.engines
from taskflow import formatters
from taskflow import retry
from taskflow import secrets
from taskflow import task
from taskflow.listeners import base
from taskflow.patterns import graph_flow as gf
from taskflow.patterns import linear_flow as lf
from taskflow.patterns import unordered_flow as uf
from taskflow.types import failure

ENGINES = ('serial', 'parallel')
HEADER = '%d predecessors (most recent first):'


class Named(task.Task):
    """Returns its own name."""

    def execute(self):
        return self.name


class Boom(task.Task):
    def execute(self):
        raise ValueError('boom')


class Add(task.Task):
    def execute(self, a, b):
        return a + b


class Secretive(task.Task):
    def execute(self, secret, k, opt=7):
        return {'secret': secret, 'k': k}


def atom_line(name, result=None, intention='EXECUTE', state='SUCCESS', requires=None,
              show_io=True):
    info = {'intention': intention, 'state': state}
    if show_io:
        info['requires'] = {} if requires is None else requires
        info['provides'] = name if result is None else result
    return "Atom '%s' %s" % (name, info)


def text(count, *lines):
    return os.linesep.join([HEADER % count] + ['  ' + line for line in lines])


class FormatAtFailure(base.Listener):
    """Calls a FailureFormatter when a task fails (as DynamicLoggingListener does)."""

    def __init__(self, engine, fail=None, matcher=None, **formatter_kwargs):
        super().__init__(engine, task_listen_for=['FAILURE'], flow_listen_for=[],
                         retry_listen_for=[])
        self.formatter = formatters.FailureFormatter(engine, **formatter_kwargs)
        self.fail = fail
        self.matcher = matcher
        self.results = []

    def _task_receiver(self, state, details):
        fail = self.fail if self.fail is not None else details['result']
        name = details['task_name']
        matcher = self.matcher or (lambda node: isinstance(node.item, task.Task)
                                   and node.item.name == name)
        self.results.append(self.formatter.format(fail, matcher))


def format_first_failure(flow, engine='serial', store=None, **kwargs):
    eng = taskflow.engines.load(flow, engine=engine, store=store)
    with FormatAtFailure(eng, **kwargs) as listener:
        with pytest.raises(Exception):
            eng.run()
    assert listener.results, 'no task failed'
    return listener.results[0]


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


@pytest.fixture(autouse=True)
def forget_secrets():
    # Masked keys and remembered values are process-wide: start and end clean.
    secrets.reset()
    yield
    secrets.reset()


def test_lone_task_in_a_flow(engine):
    exc_info, details = format_first_failure(lf.Flow('f').add(Boom('boom')), engine)
    assert details == text(1, "Flow 'f'")
    assert exc_info[0] is ValueError
    assert str(exc_info[1]) == 'boom'


def test_linear_predecessors_most_recent_first(engine):
    flow = lf.Flow('f').add(Named('a'), Named('b'), Boom('boom'))
    _exc_info, details = format_first_failure(flow, engine)
    assert details == text(3, atom_line('b'), '|__' + atom_line('a'), "   |__Flow 'f'")


def test_nested_linear_flows(engine):
    flow = lf.Flow('f').add(Named('a'), lf.Flow('g').add(Named('b'), Boom('boom')))
    _exc_info, details = format_first_failure(flow, engine)
    assert details == text(4, atom_line('b'), "|__Flow 'g'",
                           '   |__' + atom_line('a'), "      |__Flow 'f'")


def test_subflow_end_and_its_last_atom_are_not_shown(engine):
    # Reference quirk: the end of subflow 'g' *and* 'b' before it are skipped.
    flow = lf.Flow('f').add(lf.Flow('g').add(Named('a'), Named('b')), Boom('boom'))
    _exc_info, details = format_first_failure(flow, engine)
    assert details == text(3, atom_line('a'), "|__Flow 'g'", "   |__Flow 'f'")


def test_unordered_subflow_repeats_its_start_per_member(engine):
    flow = lf.Flow('f').add(uf.Flow('g').add(Named('a'), Named('b'), Named('c')),
                            Boom('boom'))
    _exc_info, details = format_first_failure(flow, engine)
    assert details == text(6, *["Flow 'g'", "|__Flow 'f'"] * 3)


def test_nested_subflow_ends(engine):
    flow = lf.Flow('f').add(
        lf.Flow('g').add(Named('a'), uf.Flow('h').add(Named('b'), Named('c'))),
        Boom('boom'))
    _exc_info, details = format_first_failure(flow, engine)
    branch = lambda name: [atom_line(name), "|__Flow 'h'", '   |__' + atom_line('a'),  # noqa: E731
                           "      |__Flow 'g'", "         |__Flow 'f'"]
    assert details == text(10, *branch('b'), *branch('c'))


def test_shared_history_is_drawn_with_continuation_bars(engine):
    flow = lf.Flow('f').add(uf.Flow('u').add(Named('a'), Named('b')),
                            lf.Flow('g').add(Named('c'), Boom('boom')))
    _exc_info, details = format_first_failure(flow, engine)
    assert details == text(6, atom_line('c'), "|__Flow 'g'", "   |__Flow 'u'",
                           "   |  |__Flow 'f'", "   |__Flow 'u'", "      |__Flow 'f'")


class NeedsXY(task.Task):
    def execute(self, x, y):
        raise ValueError('xy')


@pytest.mark.parametrize('order, first, second', [
    ('abc', 'a', 'b'),
    ('cba', 'b', 'a'),
])
def test_graph_flow_predecessors_in_link_order(engine, order, first, second):
    atoms = {'a': Named('a', provides='x'), 'b': Named('b', provides='y'),
             'c': NeedsXY('boom')}
    flow = gf.Flow('g').add(*[atoms[k] for k in order])
    _exc_info, details = format_first_failure(flow, engine)
    assert details == text(4, atom_line(first), "|__Flow 'g'",
                           atom_line(second), "|__Flow 'g'")


def test_retry_shows_its_history(engine):
    flow = lf.Flow('f', retry=retry.Times(2, 'r')).add(Named('a'), Boom('boom'))
    _exc_info, details = format_first_failure(flow, engine)
    assert details == text(3, atom_line('a'), '|__' + atom_line('r', result=[(1, {})]),
                           "   |__Flow 'f'")


def test_atom_inputs_are_the_arguments_it_got(engine):
    flow = lf.Flow('f').add(Add('add', provides='x'), Boom('boom'))
    _exc_info, details = format_first_failure(flow, engine, store={'a': 1, 'b': 2})
    assert details == text(2, atom_line('add', result=3, requires={'a': 1, 'b': 2}),
                           "|__Flow 'f'")


def test_masked_input_and_output_keys(engine):
    flow = lf.Flow('f').add(Secretive('s', inject={'k': 'K'}), Boom('boom'))
    _exc_info, details = format_first_failure(
        flow, engine, store={'secret': 'pw'}, mask_inputs_keys=['secret', 'opt'],
        mask_outputs_keys=['k'])
    assert details == text(2, atom_line('s', requires={'secret': '***', 'k': 'K'},
                                        result={'secret': 'pw', 'k': '***'}),
                           "|__Flow 'f'")


class Returns(task.Task):
    """Returns the value it was built with (whatever it requires)."""

    def __init__(self, name, value, **kwargs):
        super().__init__(name, **kwargs)
        self.value = value

    def execute(self, **kwargs):
        return self.value


class Ordered(collections.OrderedDict):
    pass


def test_masking_is_recursive_through_dicts_lists_and_tuples():
    # Reference behaviour: keys match at any depth of dicts and lists, a
    # matching key hides its whole value, and dict subclasses are shown as
    # plain dicts.  Unlike the reference, masking also reaches into tuples
    # (the reference shows ('secret', {'secret': 5}) as it is), and a tuple
    # with nothing masked inside stays a tuple.
    nested = {'secret': 1, 'deep': {'secret': 2, 'l': [{'secret': 3}, [{'secret': 4}]]},
              'other': ('secret', {'secret': 5}), 'od': Ordered(secret=6, x=7)}
    flow = lf.Flow('f').add(Returns('a', nested, provides='pa', requires=['secret', 'deep']),
                            Returns('b', None, requires=['pa']), Boom('boom'))
    store = {'secret': 'S', 'deep': {'secret': 'S2', 'x': [{'secret': 'S3'}]}}
    _exc_info, details = format_first_failure(flow, store=store, mask_inputs_keys=['secret'],
                                              mask_outputs_keys=['secret', 'deep'])
    masked_output = {'secret': '***', 'deep': '***', 'other': ('secret', {'secret': '***'}),
                     'od': {'secret': '***', 'x': 7}}
    masked_input = {'secret': '***', 'deep': {'secret': '***', 'x': [{'secret': '***'}]}}
    b_input = {'pa': {'secret': '***',
                      'deep': {'secret': '***', 'l': [{'secret': '***'}, [{'secret': '***'}]]},
                      'other': ('secret', {'secret': '***'}), 'od': {'secret': '***', 'x': 7}}}
    b_line = "Atom 'b' %s" % {'intention': 'EXECUTE', 'state': 'SUCCESS', 'requires': b_input,
                              'provides': None}
    assert details == text(
        3, b_line, '|__' + atom_line('a', result=masked_output, requires=masked_input),
        "   |__Flow 'f'")


def test_values_are_shown_as_plain_dicts_and_lists_even_unmasked():
    value = [Ordered(k=collections.OrderedDict(v=1))]
    flow = lf.Flow('f').add(Returns('a', value), Boom('boom'))
    _exc_info, details = format_first_failure(flow)
    assert details == text(2, atom_line('a', result=[{'k': {'v': 1}}]), "|__Flow 'f'")


def test_self_containing_values_do_not_break_formatting():
    # The reference dies of RecursionError here; the repeat is masked instead.
    loop = {'secret': 1}
    loop['self'] = loop
    flow = lf.Flow('f').add(Returns('a', loop), Boom('boom'))
    _exc_info, details = format_first_failure(flow, mask_outputs_keys=['secret'])
    assert details == text(2, atom_line('a', result={'secret': '***', 'self': '***'}),
                           "|__Flow 'f'")


def test_mask_keys_are_tested_with_in_as_given():
    # A string is a container too (so its substrings match), as on the reference.
    flow = lf.Flow('f').add(Returns('a', {'secret': 1, 'sec': 2, 'x': 3}), Boom('boom'))
    _exc_info, details = format_first_failure(flow, mask_outputs_keys='secret')
    assert details == text(2, atom_line('a', result={'secret': '***', 'sec': '***', 'x': 3}),
                           "|__Flow 'f'")


def test_hidden_atoms_show_only_intention_and_state(engine):
    flow = lf.Flow('f').add(Secretive('s', inject={'k': 'K'}), Named('t'), Boom('boom'))
    _exc_info, details = format_first_failure(flow, engine, store={'secret': 'pw'},
                                              hide_inputs_outputs_of=['s'])
    assert details == text(3, atom_line('t'), '|__' + atom_line('s', show_io=False),
                           "   |__Flow 'f'")


def test_ignored_atom_has_no_inputs_or_outputs(engine):
    g = gf.Flow('inner')
    s, a, q, z = Named('s'), Named('a', provides='x'), NeedsX('q'), Named('z')
    g.add(s, a, q, z)
    g.link(s, a, decider=lambda history: False, decider_depth='FLOW')
    g.link(q, z)
    flow = lf.Flow('outer').add(g, Boom('boom'))
    _exc_info, details = format_first_failure(flow, engine)
    ignored = {'intention': 'IGNORE', 'state': 'IGNORE'}
    assert details == text(
        5, "Atom 'q' %s" % ignored,
        "|__Atom 'a' %s" % dict(ignored, requires={}),
        '   |__' + atom_line('s'), "      |__Flow 'inner'", "         |__Flow 'outer'")


class NeedsX(task.Task):
    def execute(self, x):
        return x


def test_lone_task_engine_has_no_predecessors(engine):
    _exc_info, details = format_first_failure(Boom('boom'), engine)
    assert details == HEADER % 0 + os.linesep


def test_empty_subflows_are_passed_through(engine):
    flow = lf.Flow('f').add(Named('a'), lf.Flow('empty'), Boom('boom'))
    _exc_info, details = format_first_failure(flow, engine)
    assert details == text(2, atom_line('a'), "|__Flow 'f'")


NO_EXC_INFO = failure.Failure(exception_str='nope', traceback_str='TB here\n',
                              exc_type_names=['ValueError'])


def test_failure_without_exc_info_starts_with_its_pformat(engine):
    flow = lf.Flow('f').add(Named('a'), Boom('boom'))
    exc_info, details = format_first_failure(flow, engine, fail=NO_EXC_INFO)
    assert exc_info is None
    assert details == ('Failure: ValueError: nope' + os.linesep
                       + 'Traceback (most recent call last):' + os.linesep + 'TB here'
                       + os.linesep + text(2, atom_line('a'), "|__Flow 'f'"))


def test_no_matching_atom_means_no_tree(engine):
    flow = lf.Flow('f').add(Named('a'), Boom('boom'))
    exc_info, details = format_first_failure(flow, engine, matcher=lambda node: False)
    assert exc_info[0] is ValueError
    assert details == ''
    _exc_info, details = format_first_failure(flow, engine, fail=NO_EXC_INFO,
                                              matcher=lambda node: False)
    assert details == NO_EXC_INFO.pformat(traceback=True) + os.linesep


def test_no_tree_once_the_atom_is_not_meant_to_execute():
    eng = taskflow.engines.load(lf.Flow('f').add(Named('a'), Boom('boom')))
    with pytest.raises(ValueError):
        eng.run()
    assert eng.storage.get_atom_intention('boom') != 'EXECUTE'
    fmt = formatters.FailureFormatter(eng)
    exc_info, details = fmt.format(NO_EXC_INFO, lambda node: node.item.name == 'boom')
    assert (exc_info, details) == (None, NO_EXC_INFO.pformat(traceback=True) + os.linesep)


def test_engine_not_compiled_yet():
    eng = taskflow.engines.load(lf.Flow('f').add(Named('a')))
    fmt = formatters.FailureFormatter(eng)
    assert fmt.format(NO_EXC_INFO, lambda node: True) == (
        None, NO_EXC_INFO.pformat(traceback=True) + os.linesep)


def test_matcher_sees_atoms_only_in_compile_order():
    # taskflow-ng: the reference also shows flows to the matcher, and its
    # nodes have no ``name``/``kind``; ``item`` and ``metadata`` match.
    flow = lf.Flow('f', retry=retry.Times(2, 'r')).add(
        Named('a'), uf.Flow('g').add(Named('b')), Boom('boom'))
    seen = []

    def matcher(node):
        seen.append((node.name, node.kind, node.metadata, node.item.name))
        return node.item.name == 'boom'

    eng = taskflow.engines.load(flow)
    with FormatAtFailure(eng, matcher=matcher) as listener:
        with pytest.raises(ValueError):
            eng.run()
    assert seen[:4] == [('r', 'retry', {'kind': 'retry'}, 'r'),
                        ('a', 'task', {'kind': 'task'}, 'a'),
                        ('b', 'task', {'kind': 'task'}, 'b'),
                        ('boom', 'task', {'kind': 'task'}, 'boom')]
    assert listener.results[0][1].startswith(HEADER % 4)


def test_a_flow_named_like_the_task_is_never_matched():
    # The reference crashes (NotFound) when a matcher picks a flow; flows are
    # simply not offered here.
    flow = lf.Flow('boom-flow').add(Named('a'), Boom('boom'))
    _exc_info, details = format_first_failure(
        flow, matcher=lambda node: node.item.name in ('boom-flow', 'boom'))
    assert details == text(2, atom_line('a'), "|__Flow 'boom-flow'")


def test_huge_trees_are_cut_but_counted_exactly(monkeypatch):
    # taskflow-ng: the reference draws every line (here 3070 of them).
    # Each unordered pair doubles the paths: 2**10 paths through 10 pairs.
    monkeypatch.setattr(formatters.FailureFormatter, 'MAX_TREE_LINES', 50)
    flow = lf.Flow('f')
    for i in range(10):
        flow.add(uf.Flow('u%d' % i).add(Named('a%d' % i), Named('b%d' % i)))
    flow.add(Boom('boom'))
    _exc_info, details = format_first_failure(flow)
    lines = details.split(os.linesep)
    # Subflow u(10-k) is drawn 2**k times, and so is 'f' below the last one.
    count = sum(2 ** k for k in range(1, 11)) + 2 ** 10
    assert lines[0] == HEADER % count
    assert len(lines) == 1 + 50 + 1
    assert lines[-1] == '  ... (%d more not shown)' % (count - 50)
    assert lines[1:4] == ["  Flow 'u9'", "  |__Flow 'u8'", "  |  |__Flow 'u7'"]


# -- secrets -------------------------------------------------------------------------


def test_project_wide_keys_are_masked_too():
    secrets.mask_keys('password')
    flow = lf.Flow('f').add(Returns('a', {'password': 'x', 'k': 1}, requires=['password']),
                            Boom('boom'))
    _exc_info, details = format_first_failure(flow, store={'password': 'pw'})
    assert details == text(2, atom_line('a', result={'password': '***', 'k': 1},
                                        requires={'password': '***'}), "|__Flow 'f'")


def test_sets_and_namedtuples_are_masked():
    Pair = collections.namedtuple('Pair', 'token other')
    value = {'s': frozenset(['a']), 'p': Pair('tok', 'o'), 't': ({'token': 1},)}
    flow = lf.Flow('f').add(Returns('a', value), Boom('boom'))
    _exc_info, details = format_first_failure(flow, mask_outputs_keys=['token'])
    shown = {'s': frozenset(['a']), 'p': Pair('***', 'o'), 't': ({'token': '***'},)}
    assert details == text(2, atom_line('a', result=shown), "|__Flow 'f'")


class Quoting(task.Task):
    def execute(self, password):
        raise ValueError('bad password %s' % password)


def test_a_failure_quoting_the_failed_atoms_masked_input_is_scrubbed():
    # A failure loaded from storage (no exc_info) is written out in full: its
    # message quoted the failed task's own masked input.
    secret = 'pw-%s' % id(object())
    eng = taskflow.engines.load(lf.Flow('f').add(Quoting('q')), store={'password': secret})
    with pytest.raises(ValueError):
        eng.run()
    stored = failure.Failure.from_dict(eng.storage.get_execute_failures()['q'].to_dict())
    assert secret in stored.exception_str        # nothing masked when it was made
    formatter = formatters.FailureFormatter(eng, mask_inputs_keys=['password'])
    _exc_info, details = formatter.format(stored, lambda node: node.item.name == 'q')
    assert secret not in details
    assert details.startswith('Failure: ValueError: bad password ***')


def test_nothing_is_scrubbed_without_masked_keys():
    secret = 'pw-%s' % id(object())
    eng = taskflow.engines.load(lf.Flow('f').add(Quoting('q')), store={'password': secret})
    with pytest.raises(ValueError):
        eng.run()
    stored = failure.Failure.from_dict(eng.storage.get_execute_failures()['q'].to_dict())
    _exc_info, details = formatters.FailureFormatter(eng).format(
        stored, lambda node: node.item.name == 'q')
    assert details.startswith('Failure: ValueError: bad password %s' % secret)
