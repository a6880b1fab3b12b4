"""Argument inference, provides mapping and string forms of atoms and tasks."""

from __future__ import annotations

import collections

import pytest

from taskflow import task
from taskflow.types import sets


class Joiner(task.Task):
    def execute(self, a, b, sep='-'):
        return sep.join([a, b])


class WithRevert(task.Task):
    def execute(self, a, b, *args, c=3, **kwargs):
        pass

    def revert(self, a, zz, result, flow_failures, **kwargs):
        pass


class One(task.Task):
    def execute(self, a):
        return a


def test_requires_and_optional_come_from_the_signature():
    joiner = Joiner()
    assert joiner.requires == sets.OrderedSet(['a', 'b'])
    assert list(joiner.optional) == ['sep']
    assert dict(joiner.rebind) == {'a': 'a', 'b': 'b', 'sep': 'sep'}


def test_revert_requirements_join_the_atom_requirements():
    atom = WithRevert(inject={'b': 1})
    assert list(atom.requires) == ['a', 'zz']          # b is injected, zz only revert needs
    assert list(atom.optional) == ['c']
    assert dict(atom.revert_rebind) == {'a': 'a', 'zz': 'zz'}
    assert list(atom.revert_optional) == []


def test_rebind_dict_and_list():
    assert dict(Joiner(rebind={'a': 'first'}).rebind) == {'a': 'first', 'b': 'b', 'sep': 'sep'}
    assert dict(Joiner(rebind=['left', 'right']).rebind) == {'a': 'left', 'b': 'right',
                                                             'sep': 'sep'}


def test_surplus_list_rebind_entries_reach_kwargs():
    atom = WithRevert(rebind=['q', 'w', 'e', 'r'])
    assert list(atom.rebind.items()) == [('a', 'q'), ('b', 'w'), ('e', 'e'), ('r', 'r'),
                                         ('c', 'c')]


def test_requires_extends_required_arguments_in_order():
    atom = WithRevert(requires=('x', 'y'))
    assert list(atom.rebind) == ['a', 'b', 'x', 'y', 'c']
    assert list(WithRevert(requires='x').requires) == ['a', 'b', 'x', 'zz']


def test_bad_rebind_type():
    with pytest.raises(TypeError) as info:
        Joiner(rebind=5)
    assert str(info.value) == "Invalid rebind value '5' (<class 'int'>)"


def test_extra_arguments_name_the_atom():
    with pytest.raises(ValueError) as info:
        One(rebind={'zz': 'q'})
    assert str(info.value) == "Extra arguments given to atom tests.unit.test_atom.One: ['zz']"


def test_missing_arguments_without_auto_extract():
    with pytest.raises(ValueError) as info:
        One(auto_extract=False)
    assert str(info.value) == "Missing arguments for atom tests.unit.test_atom.One: ['a']"
    atom = WithRevert(auto_extract=False, requires=['a', 'b', 'zz'])
    assert list(atom.rebind) == ['a', 'b', 'zz'] and list(atom.optional) == []


@pytest.mark.parametrize('provides, save_as', [
    (None, {}),
    ((), {}),
    ('x', {'x': None}),
    (('x', 'y'), {'x': 0, 'y': 1}),
    (['x'], {'x': 0}),
    ({'x'}, {'x': 'x'}),
])
def test_provides_becomes_save_as(provides, save_as):
    atom = One(provides=provides)
    assert dict(atom.save_as) == save_as
    assert list(atom.provides) == list(save_as)
    assert isinstance(atom.save_as, collections.OrderedDict)


def test_bad_provides_type():
    with pytest.raises(TypeError) as info:
        One(provides=42)
    assert str(info.value) == 'Atom provides parameter should be str, set or tuple/list, not 42'


def test_default_provides_is_used_when_provides_is_none():
    class Pair(task.Task):
        default_provides = ('first', 'second')

        def execute(self):
            return 1, 2
    assert list(Pair().provides) == ['first', 'second']
    assert list(Pair(provides='both').provides) == ['both']


def test_names_and_string_forms():
    atom = One()
    assert atom.name == 'tests.unit.test_atom.One'
    assert str(atom) == '"tests.unit.test_atom.One==1.0"'
    assert repr(atom) == '<tests.unit.test_atom.One "tests.unit.test_atom.One==1.0">'
    atom.version = '2.1'
    assert str(atom) == '"tests.unit.test_atom.One==2.1"'
    assert str(One(name='')) == '"==1.0"'


def test_nested_class_uses_plain_class_name():
    def make():
        class Inner(task.Task):
            def execute(self):
                pass
        return Inner()
    assert make().name == 'tests.unit.test_atom.Inner'


def test_injected_names_are_not_requirements():
    joiner = Joiner(inject={'a': 1, 'sep': '+'})
    assert list(joiner.requires) == ['b']
    assert list(joiner.optional) == []


def test_task_ignores_ignore_list():
    assert list(Joiner(ignore_list=['a']).requires) == ['a', 'b']


def test_timeout_is_keyword_only_and_validated():
    assert One(timeout=1.5).timeout == 1.5
    assert One().timeout is None
    with pytest.raises(ValueError) as info:
        One(name='slow', timeout=0)
    assert str(info.value) == "Task 'slow': timeout must be a positive number of seconds, not 0"
    with pytest.raises(TypeError):
        One('n', None, None, True, None, None, None, None, None, 5)


@pytest.mark.parametrize('inject', [5, [('a', 1)]])
def test_inject_must_be_a_mapping(inject):
    with pytest.raises(TypeError) as info:
        One(name='one', inject=inject)
    assert str(info.value) == ("Atom 'one': inject must be a mapping of argument names to"
                               " values, not %r" % (inject,))
