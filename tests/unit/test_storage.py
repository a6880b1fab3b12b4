"""Storage on its own: details, results, injection, lookups and write-through."""

from __future__ import annotations

import contextlib

import pytest

from taskflow import exceptions as exc
from taskflow import retry
from taskflow import states
from taskflow import storage as storage_module
from taskflow import task
from taskflow.persistence import backends
from taskflow.persistence import models
from taskflow.types import failure


class T(task.Task):
    def execute(self):
        return 1


def _failure(message='boom'):
    try:
        raise ValueError(message)
    except ValueError:
        return failure.Failure()


@pytest.fixture(params=['no-backend', 'memory', 'sqlite'])
def make_storage(request, tmp_path):
    backend = None
    if request.param == 'memory':
        backend = backends.fetch('memory://')
    elif request.param == 'sqlite':
        backend = backends.fetch('sqlite:///%s' % (tmp_path / 'tf.db'))
    if backend is not None:
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()

    def make(*atoms, scope=None):
        book = models.LogBook('book')
        detail = models.FlowDetail('flow', uuid='fd-1')
        book.add(detail)
        if backend is not None:
            with contextlib.closing(backend.get_connection()) as conn:
                conn.save_logbook(book)
        storage = storage_module.Storage(detail, backend=backend, scope_fetcher=scope)
        storage.ensure_atoms(atoms)
        return storage
    make.backend = backend
    return make


def _reload(make_storage, storage):
    with contextlib.closing(make_storage.backend.get_connection()) as conn:
        return conn.get_flow_details(storage.flow_uuid)


def test_ensure_atoms_creates_pending_details_once(make_storage):
    storage = make_storage(T('a'), retry.Times(name='r'))
    uuid = storage.get_atom_uuid('a')
    assert storage.ensure_atom(T('a')) == uuid
    assert storage.get_atom_state('a') == states.PENDING
    assert storage.get_atom_intention('a') == states.EXECUTE
    assert storage.get_retry_history('r').failure is None and len(storage.get_retry_history('r')) == 0
    with pytest.raises(exc.Duplicate):
        storage.ensure_atom(retry.Times(name='a'))
    with pytest.raises(ValueError) as info:
        storage.ensure_atom(T(name=''))
    assert str(info.value) == 'Task name must be non-empty'


def test_unknown_atom_names(make_storage):
    storage = make_storage(T('a'))
    with pytest.raises(exc.NotFound) as info:
        storage.get_atom_state('zzz')
    assert str(info.value).splitlines()[0] == "Unknown atom name 'zzz'"
    with pytest.raises(exc.NotFound):
        storage.inject_atom_args('zzz', {'x': 1})


def test_results_by_state(make_storage):
    storage = make_storage(T('a'), T('b'))
    storage.save('a', 5)
    assert storage.get('a') == 5
    boom = _failure()
    storage.save('b', boom, states.FAILURE)
    assert storage.get('b') is boom
    assert storage.get_execute_failures() == {'b': boom}
    storage.set_atom_state('a', states.REVERTING)
    assert storage.get('a') == 5
    storage.save('a', None, states.REVERTED)
    with pytest.raises(exc.NotFound) as info:
        storage.get('a')
    assert str(info.value).splitlines()[0] == "Result for atom 'a' execution is not known"
    assert storage.get_revert_result('a') is None
    storage.reset('a')
    assert storage.get_atom_state('a') == states.PENDING
    with pytest.raises(exc.NotFound):
        storage.get_revert_result('a')


def test_write_through_survives_reload(make_storage):
    if make_storage.backend is None:
        pytest.skip('no backend to reload from')
    storage = make_storage(T('a'))
    storage.save('a', {'k': [1, 2]})
    storage.set_atom_intention('a', states.REVERT)
    storage.update_atom_metadata('a', {'note': 'x'})
    storage.set_task_progress('a', 0.5, {'step': 1})
    storage.inject({'x': 1})
    storage.set_flow_state(states.RUNNING)
    detail = _reload(make_storage, storage)
    ad = {ad.name: ad for ad in detail}['a']
    assert (ad.state, ad.intention, ad.results) == (states.SUCCESS, states.REVERT, {'k': [1, 2]})
    assert ad.meta['note'] == 'x' and ad.meta['progress'] == 0.5
    assert detail.state == states.RUNNING
    again = storage_module.Storage(detail)
    assert again.fetch('x') == 1


def test_fetch_ignores_scope_and_orders_injected_first(make_storage):
    storage = make_storage(T('p', provides='z'), T('q', provides='z'),
                           T('pair', provides=('first', 'second')))
    storage.save('p', 'P')
    storage.save('q', 'Q')
    storage.save('pair', ('only-one',))
    assert storage.fetch('z') == 'P'
    assert storage.fetch('z', many_handler=list) == ['P', 'Q']
    storage.inject({'z': 'inj'}, transient=True)
    assert storage.fetch_all()['z'] == ['inj', 'P', 'Q']
    assert storage.fetch('first') == 'only-one'
    with pytest.raises(exc.NotFound) as info:
        storage.fetch('second')
    assert str(info.value).splitlines()[0] == (
        "Unable to find result 'second', expected to be able to find it created by"
        " <Provider 'pair' @ index 1> but was unable to perform successful extraction")
    assert 'second' not in storage.fetch_all()
    with pytest.raises(exc.NotFound) as info:
        storage.fetch('nothing')
    assert str(info.value) == "Name 'nothing' is not mapped as a produced output by any providers"


def test_lookup_order_for_atom_arguments(make_storage):
    scope = {('user', 'x'): ['near', 'far']}
    storage = make_storage(T('far', provides='x'), T('near', provides='x'), T('user'),
                           scope=lambda atom, name: scope.get((atom, name), []))
    storage.save('far', 'far-value')
    storage.save('near', 'near-value')
    assert storage.fetch_mapped_args({'arg': 'x'}, atom_name='user') == {'arg': 'near-value'}
    storage.inject({'x': 'flow-value'})
    assert storage.fetch_mapped_args({'arg': 'x'}, atom_name='user') == {'arg': 'flow-value'}
    storage.inject_atom_args('user', {'x': 'atom-value'})
    assert storage.fetch_mapped_args({'arg': 'x'}, atom_name='user') == {'arg': 'atom-value'}
    # Without an atom name only flow-level injected values are visible.
    assert storage.fetch_mapped_args({'arg': 'x'}) == {'arg': 'flow-value'}


def test_missing_arguments(make_storage):
    storage = make_storage(T('p', provides='x'), T('user'),
                           scope=lambda atom, name: ['p'] if name == 'x' else [])
    with pytest.raises(exc.NotFound) as info:
        storage.fetch_mapped_args({'arg': 'x'}, atom_name='user')
    assert str(info.value).splitlines() == [
        "Expected to be able to find output 'x' produced by <Provider 'p'> but was unable to"
        " get at that providers results",
        "  DisallowedAccess: Result for atom 'p' is not known/accessible due to it being in"
        " PENDING state when result access is restricted to ('SUCCESS', 'FAILURE',"
        " 'REVERTING') states"]
    with pytest.raises(exc.NotFound) as info:
        storage.fetch_mapped_args({'arg': 'x'})
    assert str(info.value) == ("Mapped argument 'arg' <= 'x' was not produced by any accessible"
                               " provider (0 possible providers were scanned)")
    assert storage.fetch_mapped_args({'arg': 'nope'}, optional_args=['arg']) == {}
    assert storage.fetch_unsatisfied_args('user', {'a': 'x', 'b': 'nope'}) == {'b'}


def test_retry_history_and_failures(make_storage):
    storage = make_storage(retry.Times(name='r'), T('t'))
    storage.save('r', 1)
    boom = _failure()
    storage.save_retry_failure('r', 't', boom)
    storage.save_retry_failure('r', 't', _failure('second'))   # first failure per atom wins
    storage.save('r', 2)
    history = storage.get_retry_history('r')
    assert list(history.provided_iter()) == [1, 2]
    assert list(history.outcomes_iter()) == [('t', boom)]
    assert storage.get_retry_histories()[0][0] == 'r'
    storage.cleanup_retry_history('r', states.REVERTED)
    assert len(storage.get_retry_history('r')) == 0


def test_retry_calls_on_the_wrong_atoms_fail_like_the_original(make_storage):
    storage = make_storage(retry.Times(name='r'), T('t'))
    with pytest.raises(TypeError) as info:
        storage.get_retry_history('t')
    assert str(info.value) == ("Atom 't' is not of the expected type:"
                               " taskflow.persistence.models.RetryDetail")
    with pytest.raises(exc.StorageFailure) as info:
        storage.save_retry_failure('r', 't', _failure())   # r never ran
    assert str(info.value).splitlines() == [
        'Unable to fetch most recent retry failures so new retry failure can be inserted',
        '  NotFound: Last failures not found',
        '    IndexError: list index out of range']
    with pytest.raises(exc.Duplicate) as info:
        storage.ensure_atom(retry.Times(name='t'))
    assert str(info.value) == "Atom detail 't' already exists in flow detail 'flow'"
    with pytest.raises(exc.NotFound) as info:
        storage.inject_atom_args('nope', {'x': 1})
    assert str(info.value) == "Unknown atom name 'nope'"


def test_lookup_errors_chain_like_the_originals(make_storage):
    storage = make_storage(T('a'))
    with pytest.raises(exc.NotFound) as info:
        storage.fetch('nothing')
    # Raised while a KeyError was handled: printed tracebacks show it.
    assert repr(info.value.__context__) == "KeyError('nothing')"
    storage.save('a', 1)
    with pytest.raises(exc.NotFound) as info:
        storage.fetch_mapped_args({'arg': 'nothing'})
    assert repr(info.value.__context__) == "KeyError('nothing')"


def test_storage_needs_a_flow_detail():
    with pytest.raises(exc.StorageFailure) as info:
        storage_module.Storage(None)
    assert str(info.value) == "Invalid storage class <class 'NoneType'>"


def test_progress_details(make_storage):
    storage = make_storage(T('a'))
    assert storage.get_task_progress('a') == 0.0
    assert storage.get_task_progress_details('a') is None
    storage.set_task_progress('a', 0.5, {'k': 1})
    assert storage.get_task_progress_details('a') == {'at_progress': 0.5, 'details': {'k': 1}}


def test_flow_state_transitions(make_storage):
    storage = make_storage(T('a'))
    assert storage.get_flow_state() == states.PENDING
    assert storage.change_flow_state(states.SUSPENDED) == (False, states.PENDING)
    assert storage.change_flow_state(states.RUNNING) == (True, states.PENDING)
    with pytest.raises(exc.InvalidState):
        storage.change_flow_state(states.PENDING)
    storage.update_flow_metadata({'k': 'v'})
    assert storage.flow_meta['k'] == 'v'


def test_a_result_the_backend_cannot_store_changes_nothing(make_storage):
    if make_storage.backend is None or isinstance(
            make_storage.backend, backends.impl_memory.MemoryBackend):
        pytest.skip('only serialising backends refuse values')
    storage = make_storage(T('a'))
    storage.save('a', 'stored')
    with pytest.raises(exc.StorageFailure) as info:
        storage.save('a', object())
    assert "'a'" in str(info.value)
    assert storage.get('a') == 'stored'
    ad = {ad.name: ad for ad in _reload(make_storage, storage)}['a']
    assert ad.results == 'stored' and ad.state == states.SUCCESS


@pytest.mark.parametrize('values, error', [(5, TypeError), ('abc', ValueError),
                                           ([1, 2], TypeError)])
def test_injected_values_must_be_a_mapping_or_pairs(make_storage, values, error):
    storage = make_storage(T('a'))
    with pytest.raises(error) as info:
        storage.inject(values)
    assert str(info.value) == ('flow-level injected values (store=) must be a mapping of'
                               ' names to values (or (name, value) pairs), not %r' % (values,))
    storage.inject([('x', 1)])
    assert storage.fetch('x') == 1


def test_atom_detail_uuids_are_unique_random_version_4_uuids(make_storage):
    import uuid
    storage = make_storage(*[T('t%d' % i) for i in range(300)])
    uuids = [storage.get_atom_uuid('t%d' % i) for i in range(300)]
    assert len(set(uuids)) == 300
    for text in uuids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
