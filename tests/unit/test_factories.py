"""Flow factories: what is saved, how flows are rebuilt, and import errors."""

from __future__ import annotations

import functools

import pytest

import taskflow.engines
from taskflow import task
from taskflow.patterns import linear_flow as lf
from taskflow.persistence import backends
from taskflow.persistence import models


class Add(task.Task):
    def execute(self, x, y):
        return x + y


def make_flow(name, *, y_name='y'):
    return lf.Flow(name).add(Add('add', provides='sum', rebind={'y': y_name}))


def test_a_factory_flow_is_saved_and_rebuilt_from_its_detail():
    backend = backends.fetch('memory://')
    book = models.LogBook('book')
    engine = taskflow.engines.load_from_factory(
        make_flow, factory_args=['adder'], factory_kwargs={'y_name': 'z'},
        store={'x': 1, 'z': 2}, book=book, backend=backend)
    detail, = book
    assert detail.meta['factory'] == {'name': __name__ + '.make_flow', 'args': ['adder'],
                                      'kwargs': {'y_name': 'z'}}
    engine.run()
    rebuilt = taskflow.engines.flow_from_detail(detail)
    assert rebuilt.name == 'adder'
    again = taskflow.engines.load_from_detail(detail, backend=backend)
    again.run()
    assert again.storage.fetch('sum') == 3


@pytest.mark.parametrize('factory, reason', [
    ('nosuch.module.func', "No module named 'nosuch'"),
    ('nodots', 'Empty module name'),
    ('os.path.nope', 'Class nope cannot be found ('),
])
def test_factory_names_that_do_not_import_say_why(factory, reason):
    with pytest.raises(ImportError) as info:
        taskflow.engines.load_from_factory(factory)
    assert str(info.value).startswith("Could not import factory '%s': %s" % (factory, reason))


@pytest.mark.parametrize('factory', [lambda: make_flow('local'),
                                     functools.partial(make_flow, 'partial')])
def test_a_factory_that_cannot_be_reimported_is_refused(factory):
    with pytest.raises(ValueError, match='is not reimportable'):
        taskflow.engines.load_from_factory(factory)


# -- stored factories are checked before they are called (issue 7) ----------------------

calls = []


def not_a_flow():
    calls.append('not_a_flow')
    return 'surprise'


class _Namespace:
    @staticmethod
    def nested():
        calls.append('nested')
        return lf.Flow('nested')


def _detail(name, args=(), kwargs=None):
    detail = models.FlowDetail('stored', 'fd-uuid')
    detail.meta = {'factory': {'name': name, 'args': list(args), 'kwargs': kwargs or {}}}
    return detail


@pytest.mark.parametrize('name, args', [
    ('os.system', ['echo PWNED']),
    ('builtins.eval', ['1 + 1']),
    ('subprocess.call', [['echo', 'x']]),
    ('json.loads', ['1']),
    ('importlib.import_module', ['os']),
])
def test_standard_library_callables_are_refused_before_being_called(name, args, capfd):
    with pytest.raises(ValueError) as info:
        taskflow.engines.flow_from_detail(_detail(name, args))
    assert str(info.value) == ("Refusing to rebuild flow stored fd-uuid from factory %r:"
                               " it is in the standard library or builtins" % name)
    assert 'PWNED' not in capfd.readouterr().out


def test_a_stdlib_callable_imported_into_another_module_is_refused():
    # Reached through a module of ours, it is still the standard library's.
    with pytest.raises(ValueError, match='it is _functools from the standard library'):
        taskflow.engines.flow_from_detail(_detail(__name__ + '.imported', [max, [1]]))


imported = functools.reduce   # a stdlib function, under a module-level name here


def test_only_module_level_callables_are_accepted():
    calls.clear()
    with pytest.raises(ValueError, match='it is not a module-level callable'):
        taskflow.engines.flow_from_detail(_detail(__name__ + '._Namespace.nested'))
    with pytest.raises(ValueError, match='it is not callable'):
        taskflow.engines.flow_from_detail(_detail(__name__ + '.calls'))
    assert calls == []


def test_a_factory_must_return_a_flow():
    calls.clear()
    with pytest.raises(TypeError, match="returned 'surprise', not a flow"):
        taskflow.engines.flow_from_detail(_detail(__name__ + '.not_a_flow'))


def test_an_allow_list_limits_the_modules_factories_come_from(monkeypatch):
    detail = _detail(__name__ + '.make_flow', ['allowed'])
    assert taskflow.engines.helpers.rebuild_flow(detail, ['tests.unit']).name == 'allowed'
    with pytest.raises(ValueError, match=r"not one of the allowed modules \['myapp'\]"):
        taskflow.engines.helpers.rebuild_flow(detail, ['myapp'])
    with pytest.raises(ValueError, match='not one of the allowed modules'):
        taskflow.engines.load_from_detail(detail, allowed_factory_modules=['tests.unitx'])
    monkeypatch.setenv('TASKFLOW_ALLOWED_FACTORY_MODULES', 'myapp, otherapp')
    with pytest.raises(ValueError, match=r"\['myapp', 'otherapp'\]"):
        taskflow.engines.flow_from_detail(detail)
    monkeypatch.setenv('TASKFLOW_ALLOWED_FACTORY_MODULES', 'tests')
    assert taskflow.engines.flow_from_detail(detail).name == 'allowed'


@pytest.mark.parametrize('factory', [{'name': __name__ + '.make_flow', 'args': 'x'},
                                     {'name': __name__ + '.make_flow', 'kwargs': [1]}])
def test_malformed_factory_arguments_are_refused(factory):
    detail = models.FlowDetail('stored', 'fd-uuid')
    detail.meta = {'factory': factory}
    with pytest.raises(ValueError, match='malformed factory arguments'):
        taskflow.engines.flow_from_detail(detail)
