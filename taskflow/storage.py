"""Storage: an engine's view of one flow detail, written through to a backend.

Storage owns the flow detail of one engine and the atom details inside it.
Every mutating call updates the in-memory detail and, when a persistence
backend was given, saves it immediately (write-through), so a crash loses at
most the atoms that were running.

It also answers "what value does this atom get for this name": atom-level
injected values first, then flow-level injected values, then the results of
atoms in the atom's scope (nearest first).  Which atoms are in scope is not
storage's business: the engine passes a ``scope_fetcher`` that lists them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid as uuid_module
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NoReturn

from taskflow import exceptions as exc
from taskflow import retry as retry_module
from taskflow import states
from taskflow.persistence import models
from taskflow.persistence import ownership
from taskflow.types import failure as failure_module

_META_INJECTED = 'injected'
_META_PROGRESS = 'progress'
_META_PROGRESS_DETAILS = 'progress_details'

# States in which an atom's execute result may be read.
_READABLE_STATES = (states.SUCCESS, states.FAILURE, states.REVERTING)
_REVERT_READABLE_STATES = (states.REVERTED, states.REVERT_FAILURE, states.REVERTING)

ScopeFetcher = Callable[[str, str], list[str]]   # (atom name, value name) -> provider names


class _Missing(Exception):
    """Internal: a provider could not give a value (``args[0]`` is the NotFound to raise).

    ``unextractable``: its results are readable but lack the value (a short
    tuple, a dict without the key), as opposed to not readable at all.
    """

    def __init__(self, error: exc.NotFound, unextractable: bool = False) -> None:
        super().__init__(error)
        self.unextractable = unextractable


class Storage:
    """Interface between an engine and the persisted state of its flow.

    :param flow_detail: the :class:`~taskflow.persistence.models.FlowDetail` to use.
    :param backend: persistence backend to write through to (optional).
    :param scope_fetcher: ``f(atom_name, name) -> [provider atom names]``,
        nearest first, used to look up atom arguments.
    """

    injector_name = '_TaskFlow_INJECTOR'

    def __init__(self, flow_detail: models.FlowDetail, backend: Any = None,
                 scope_fetcher: ScopeFetcher | None = None) -> None:
        if not isinstance(flow_detail, models.FlowDetail):
            raise exc.StorageFailure('Invalid storage class %s' % type(flow_detail))
        self._flowdetail = flow_detail
        self._backend = backend
        self._connection: Any = None
        self._lock = threading.RLock()
        self._scope_fetcher = scope_fetcher
        self._atoms: dict[str, models.AtomDetail] = {}
        # name -> ((provider atom name, save_as index), ...), in registration order.
        self._providers: dict[str, tuple[tuple[str, Any], ...]] = {}
        self._transients: dict[str, Any] = {}
        self._transients_first = False     # registered before the persistent injector?
        self._atom_transients: dict[str, dict[str, Any]] = {}
        # The latest execute failure of each atom, kept for the life of this
        # storage even when the atom is reset (retried, re-run): the original
        # re-raises and reports them all when a run ends reverted.
        self._failures: dict[str, failure_module.Failure] = {}
        self._lease: ownership.Lease | None = None   # while this storage owns the flow
        self._last_token: int | None = None          # of the last lease it held
        self._lease_connection: Any = None           # renewals (from another thread)
        self._private_backend = False                # made by this storage (see backend)
        for ad in flow_detail:
            self._atoms[ad.name] = ad
            if ad.failure is not None:
                self._failures[ad.name] = ad.failure
        if self.injector_name in self._atoms:
            self._register_injector()

    # -- properties -----------------------------------------------------------

    @property
    def flow_name(self) -> str:
        return self._flowdetail.name

    @property
    def flow_uuid(self) -> str:
        return self._flowdetail.uuid

    @property
    def flow_meta(self) -> dict[str, Any]:
        return self._flowdetail.meta

    @property
    def backend(self) -> Any:
        """The persistence backend written through to.

        Without one the original gives storage an in-memory backend holding
        the flow detail, and programs dump it; here it is made the first time
        it is asked for (seeded with the flow detail as it is then), so runs
        nobody inspects never pay for writing through to it.
        """
        backend = self._backend
        if backend is None:
            from taskflow.persistence.backends import impl_memory

            with self._lock:
                if self._backend is None:
                    self._backend = impl_memory.holding(self._flowdetail)
                    self._private_backend = True   # nobody else can run this flow
                backend = self._backend
        return backend

    @property
    def lock(self) -> threading.RLock:
        """The lock that serialises changes (for readers that need a consistent view)."""
        return self._lock

    # -- persistence ----------------------------------------------------------

    def _conn(self) -> Any:
        if self._connection is None:
            self._connection = self._backend.get_connection()
        return self._connection

    def _save_atom(self, ad: models.AtomDetail) -> None:
        if self._backend is not None:
            self._conn().update_atom_details(ad)

    def _save_flow(self) -> None:
        if self._backend is not None:
            conn = self._conn()
            # Our connections can skip building the merged copy that
            # update_flow_details() returns; other backends' cannot.
            write = getattr(conn, '_write_flow_details', conn.update_flow_details)
            write(self._flowdetail)

    @contextlib.contextmanager
    def _changing(self, ad: models.AtomDetail, *fields: str) -> Iterator[models.AtomDetail]:
        """Apply a change to ``ad`` and save it; on a failed save, undo the change."""
        saved = [(f, getattr(ad, f)) for f in fields]
        meta = dict(ad.meta) if 'meta' in fields else None
        try:
            yield ad
            self._save_atom(ad)
        except BaseException:
            for name, value in saved:
                setattr(ad, name, value if name != 'meta' else meta)
            raise

    def _atom(self, name: str) -> models.AtomDetail:
        try:
            return self._atoms[name]
        except KeyError as e:
            _raise_with(exc.NotFound("Unknown atom name '%s'" % name, cause=e))

    # -- atoms ----------------------------------------------------------------

    def ensure_atom(self, atom: Any) -> str:
        """Create the atom detail of ``atom`` if missing; returns its uuid."""
        return self.ensure_atoms([atom])[0]

    def ensure_atoms(self, atoms: Iterable[Any]) -> list[str]:
        """Create missing atom details (matched by name); returns their uuids."""
        uuids, created = [], False
        atoms = list(atoms)
        new_uuids = _uuid4_strings(sum(1 for a in atoms if a.name not in self._atoms))
        with self._lock:
            for atom in atoms:
                kind = 'Retry' if isinstance(atom, retry_module.Retry) else 'Task'
                if not atom.name:
                    raise ValueError('%s name must be non-empty' % kind)
                detail_cls = models.RetryDetail if kind == 'Retry' else models.TaskDetail
                ad = self._atoms.get(atom.name)
                if ad is None:
                    ad = detail_cls(atom.name, next(new_uuids))
                    ad.state = states.PENDING
                    ad.version = _version_string(atom.version)
                    self._flowdetail.add(ad)
                    self._atoms[atom.name] = ad
                    created = True
                elif not isinstance(ad, detail_cls):
                    raise exc.Duplicate("Atom detail '%s' already exists in flow detail '%s'"
                                        % (atom.name, self.flow_name))
                self._register_provides(atom.name, atom.save_as)
                uuids.append(ad.uuid)
            if created:
                self._save_flow()
        return uuids

    def _register_provides(self, atom_name: str, save_as: Mapping[str, Any]) -> None:
        providers = self._providers
        for name, index in save_as.items():
            entries = providers.get(name, ())
            if not any(provider == atom_name for provider, _ in entries):
                # Tuples of strings/ints: the garbage collector stops tracking them.
                providers[name] = entries + ((atom_name, index),)

    def get_atom_detail(self, atom_name: str) -> models.AtomDetail:
        """The live atom detail of ``atom_name`` (taskflow-ng; read it, don't change it)."""
        return self._atom(atom_name)

    def get_atom_uuid(self, atom_name: str) -> str:
        return self._atom(atom_name).uuid

    def get_atom_state(self, atom_name: str) -> str:
        return _str(self._atom(atom_name).state)

    def set_atom_state(self, atom_name: str, state: str, *,
                       progress: float | None = None) -> None:
        """Set an atom's state (and, for a task, its progress in the same write)."""
        with self._lock:
            ad = self._atom(atom_name)
            old = ad.state
            old_progress = ad.meta.get(_META_PROGRESS, _UNSET)
            ad.state = state
            if progress is not None:
                ad.meta[_META_PROGRESS] = progress
            if self._backend is not None:
                try:
                    self._save_atom(ad)
                except BaseException:
                    ad.state = old
                    if progress is not None:
                        _restore(ad.meta, _META_PROGRESS, old_progress)
                    raise

    def get_atom_intention(self, atom_name: str) -> str:
        return _str(self._atom(atom_name).intention)

    def set_atom_pending(self, atom_name: str) -> None:
        """Back to ``PENDING`` with intention ``EXECUTE``, in one write.

        Unlike :meth:`reset`, results and failures stay stored (unreadable
        while ``PENDING``; a failure still counts): what the original does
        to atoms an engine reset or a retry will run again.
        """
        with self._lock:
            ad = self._atom(atom_name)
            if ad.state != states.PENDING or ad.intention != states.EXECUTE:
                with self._changing(ad, 'state', 'intention'):
                    ad.state = states.PENDING
                    ad.intention = states.EXECUTE

    def set_atom_intention(self, atom_name: str, intention: str) -> None:
        with self._lock:
            ad = self._atom(atom_name)
            if ad.intention != intention:
                with self._changing(ad, 'intention'):
                    ad.intention = intention

    def set_atoms_intention(self, atom_names: Iterable[str], intention: str) -> None:
        """Set one intention on many atoms (one flow-wide save when many change)."""
        with self._lock:
            changed = [ad for ad in map(self._atom, atom_names) if ad.intention != intention]
            if len(changed) <= 4:
                for ad in changed:
                    self.set_atom_intention(ad.name, intention)
                return
            for ad in changed:
                ad.intention = intention
            self._save_flow()

    def get_atoms_states(self, atom_names: Iterable[str]) -> dict[str, tuple[str, str]]:
        return {name: (self.get_atom_state(name), self.get_atom_intention(name))
                for name in atom_names}

    def update_atom_metadata(self, atom_name: str, update_with: Mapping[str, Any]) -> None:
        """Merge ``update_with`` into the atom detail's ``meta`` and save it."""
        if not update_with:
            return
        with self._lock:
            ad = self._atom(atom_name)
            with self._changing(ad, 'meta'):
                ad.meta.update(update_with)

    def set_task_progress(self, task_name: str, progress: float,
                          details: Mapping[str, Any] | None = None) -> None:
        """Store a task's progress (and optional details at that progress)."""
        with self._lock:
            ad = self._atom(task_name)
            meta = ad.meta
            if details is None and meta.get(_META_PROGRESS) == progress:
                return  # nothing changed: spare the backend a write
            before = dict(meta) if self._backend is not None else None
            meta[_META_PROGRESS] = progress
            if details is not None:
                # Details reported by the task replace older ones ({} clears them).
                meta[_META_PROGRESS_DETAILS] = ({'at_progress': progress,
                                                 'details': dict(details)}
                                                if details else None)
            if before is not None:
                try:
                    self._save_atom(ad)
                except BaseException:
                    meta.clear()
                    meta.update(before)
                    raise

    def get_task_progress(self, task_name: str) -> float:
        return float(self._atom(task_name).meta.get(_META_PROGRESS, 0.0))

    def get_task_progress_details(self, task_name: str) -> dict[str, Any] | None:
        return self._atom(task_name).meta.get(_META_PROGRESS_DETAILS)

    # -- results --------------------------------------------------------------

    def save(self, atom_name: str, result: Any, state: str = states.SUCCESS, *,
             progress: float | None = None) -> None:
        """Store an atom's result for ``state`` (a ``Failure`` for failed states).

        ``progress`` (taskflow-ng) also sets a task's progress, in the same write.
        """
        with self._lock:
            ad = self._atom(atom_name)
            if self._backend is None:
                ad.put(state, result)
                if progress is not None:
                    ad.meta[_META_PROGRESS] = progress
            else:
                with self._changing(ad, 'state', 'results', 'failure', 'revert_results',
                                    'revert_failure', 'meta'):
                    if isinstance(ad, models.RetryDetail):
                        ad.results = list(ad.results)  # keep the undo copy intact
                    ad.put(state, result)
                    if progress is not None:
                        ad.meta[_META_PROGRESS] = progress
            if state == states.FAILURE and ad.intention != states.REVERT:
                # As the original: only failures that start a revert are
                # listed; one of an atom already meant to revert is not.
                self._remember_failure(atom_name, result)

    def get_execute_result(self, atom_name: str) -> Any:
        """The atom's execute result, or its ``Failure`` if it failed."""
        ad = self._atom(atom_name)
        if ad.failure is not None:
            return ad.failure
        if ad.state == states.IGNORE:
            raise exc.NotFound("Result for atom '%s' execution is not known (as it was"
                               " ignored)" % atom_name)
        if ad.state not in _READABLE_STATES:
            _raise_with(exc.NotFound("Result for atom '%s' execution is not known" % atom_name,
                                     cause=_disallowed(atom_name, ad.state, _READABLE_STATES)))
        return ad.results

    get = get_execute_result

    def get_revert_result(self, atom_name: str) -> Any:
        """The atom's revert result, or its ``Failure`` if reverting failed."""
        ad = self._atom(atom_name)
        if ad.revert_failure is not None:
            return ad.revert_failure
        if ad.state not in _REVERT_READABLE_STATES:
            _raise_with(exc.NotFound("Result for atom '%s' revert is not known" % atom_name,
                                     cause=_disallowed(atom_name, ad.state,
                                                       _REVERT_READABLE_STATES)))
        return ad.revert_results

    def get_execute_failures(self) -> dict[str, failure_module.Failure]:
        """``{atom name: Failure}``: the latest execute failure of each atom
        that failed, in flow order (as the original).

        Failures stay listed after the atom is reset (e.g. retried), for the
        life of this storage.
        """
        return dict(self._failures)

    get_failures = get_execute_failures

    def _remember_failure(self, atom_name: str, failure: failure_module.Failure) -> None:
        failures = self._failures
        known = atom_name in failures
        failures[atom_name] = failure
        if not known and len(failures) > 1:
            # Kept in flow order (rare: a new atom failed), so reads are copies.
            self._failures = {name: failures[name] for name in self._atoms
                              if name in failures}

    def get_revert_failures(self) -> dict[str, failure_module.Failure]:
        return {name: ad.revert_failure for name, ad in self._atoms.items()
                if ad.revert_failure is not None}

    def has_failures(self) -> bool:
        return bool(self._failures)

    def reset(self, atom_name: str, state: str = states.PENDING) -> None:
        """Forget an atom's results and failures; intention back to ``EXECUTE``."""
        if atom_name == self.injector_name:
            return
        with self._lock:
            ad = self._atom(atom_name)
            if ad.state == state and ad.intention == states.EXECUTE and not _has_results(ad):
                return
            with self._changing(ad, 'state', 'intention', 'results', 'failure',
                                'revert_results', 'revert_failure'):
                ad.reset(state)

    # -- retries --------------------------------------------------------------

    def get_retry_history(self, retry_name: str) -> retry_module.History:
        ad = self._atom(retry_name)
        if not isinstance(ad, models.RetryDetail):
            raise TypeError("Atom '%s' is not of the expected type: %s.%s"
                            % (retry_name, models.RetryDetail.__module__,
                               models.RetryDetail.__name__))
        return retry_module.History(ad.results, failure=ad.failure)

    def get_retry_histories(self) -> list[tuple[str, retry_module.History]]:
        return [(name, retry_module.History(ad.results, failure=ad.failure))
                for name, ad in self._atoms.items() if isinstance(ad, models.RetryDetail)]

    def save_retry_failure(self, retry_name: str, failed_atom_name: str,
                           failure: failure_module.Failure) -> None:
        """Record, in the retry's latest attempt, that ``failed_atom_name`` failed."""
        with self._lock:
            ad = self._atom(retry_name)
            if not ad.results:  # the retry never ran: no attempt to add it to
                missing = exc.NotFound('Last failures not found',
                                       cause=IndexError('list index out of range'))
                _raise_with(exc.StorageFailure('Unable to fetch most recent retry failures'
                                               ' so new retry failure can be inserted',
                                               cause=missing))
            provided, failures = ad.results[-1]
            if failed_atom_name in failures:
                return
            with self._changing(ad, 'results'):
                ad.results = ad.results[:-1] + [(provided, dict(failures,
                                                                **{failed_atom_name: failure}))]

    def cleanup_retry_history(self, retry_name: str, state: str) -> None:
        """Forget a retry's history (after it was reverted)."""
        with self._lock:
            ad = self._atom(retry_name)
            with self._changing(ad, 'state', 'results'):
                ad.state = state
                ad.results = []

    # -- injection ------------------------------------------------------------

    def _register_injector(self) -> None:
        injector = self._atoms[self.injector_name]
        self._register_provides(self.injector_name,
                                {name: name for name in (injector.results or {})})

    def inject(self, pairs: Mapping[str, Any] | Iterable[tuple[str, Any]],
               transient: bool = False) -> None:
        """Add flow-level values every atom can read.

        Persistent values are saved (so they survive resumption); transient
        ones live in memory only.
        """
        pairs = _as_values(pairs, 'flow-level injected values (store=)')
        with self._lock:
            if transient:
                if not self._transients and self.injector_name not in self._atoms:
                    self._transients_first = True
                self._transients.update(pairs)
                return
            ad = self._atoms.get(self.injector_name)
            if ad is None:
                ad = models.TaskDetail(self.injector_name, str(uuid_module.uuid4()))
                ad.state = states.SUCCESS
                ad.results = dict(pairs)
                self._flowdetail.add(ad)
                self._atoms[self.injector_name] = ad
                try:
                    self._save_flow()
                except BaseException:
                    del self._atoms[self.injector_name]
                    raise
            else:
                with self._changing(ad, 'results'):
                    ad.results = dict(ad.results or {}, **pairs)
            self._register_injector()

    def inject_atom_args(self, atom_name: str, pairs: Mapping[str, Any],
                         transient: bool = True) -> None:
        """Add values only ``atom_name`` can read (they win over everything else)."""
        pairs = _as_values(pairs, 'values injected for atom %r' % atom_name)
        with self._lock:
            if atom_name not in self._atoms:  # the original's message has no cause
                raise exc.NotFound("Unknown atom name '%s'" % atom_name)
            ad = self._atoms[atom_name]
            if transient:
                self._atom_transients.setdefault(atom_name, {}).update(pairs)
                return
            with self._changing(ad, 'meta'):
                ad.meta[_META_INJECTED] = dict(ad.meta.get(_META_INJECTED) or {}, **pairs)

    def _flow_injected(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Flow-level injected value dicts, first registered first."""
        persistent = self._atoms.get(self.injector_name)
        stored = (persistent.results or {}) if persistent is not None else {}
        if self._transients_first:
            return self._transients, stored
        return stored, self._transients

    # -- lookups --------------------------------------------------------------

    def _provided_value(self, provider: str, index: Any, name: str) -> Any:
        """The value ``provider`` published as ``name``; raises ``_Missing``."""
        ad = self._atoms[provider]
        if provider == self.injector_name:
            return ad.results[name]
        if ad.failure is not None:
            # As the original: a failed atom's "result" is its Failure, even
            # after it was reverted.
            result = ad.failure
        elif ad.state not in _READABLE_STATES:
            raise _Missing(_unreachable(name, provider, index,
                                        _disallowed(provider, ad.state, _READABLE_STATES)))
        else:
            result = ad.last_results if isinstance(ad, models.RetryDetail) else ad.results
        if index is None:
            return result
        try:
            return result[index]
        except (LookupError, TypeError) as e:
            raise _Missing(exc.NotFound(
                'Unable to find result %r, expected to be able to find it created by %s but'
                ' was unable to perform successful extraction'
                % (name, _provider_repr(provider, index)), cause=e),
                unextractable=True) from None

    def _values_of(self, name: str) -> tuple[list[Any], Exception | None]:
        """Every value published as ``name`` (injected first), ignoring scopes."""
        values, problem = [], None
        for source in self._flow_injected():
            if name in source:
                values.append(source[name])
        for provider, index in self._providers.get(name, ()):
            if provider == self.injector_name:
                continue
            if self._atoms[provider].state == states.IGNORE:
                continue
            try:
                values.append(self._provided_value(provider, index, name))
            except _Missing as missing:
                problem = problem or missing.args[0]
        return values, problem

    def fetch(self, name: str, many_handler: Callable[[list[Any]], Any] | None = None) -> Any:
        """The value published under ``name``, whatever the scope.

        Flow-level injected values come first, then atom results in the order
        atoms were registered; the first is returned unless ``many_handler``
        is given (it then gets the list of all values).
        """
        with self._lock:
            if name not in self._providers and not any(
                    name in source for source in self._flow_injected()):
                _raise_on_key_error(exc.NotFound('Name %r is not mapped as a produced'
                                                 ' output by any providers' % name), name)
            values, problem = self._values_of(name)
        if not values:
            if problem is not None:
                raise problem
            raise exc.NotFound('Unable to find result %r, expected to be able to find it'
                               ' within %s providers' % (name, len(self._providers.get(name, ()))))
        if many_handler is None:
            return values[0]
        return many_handler(values)

    def fetch_all(self, many_handler: Callable[[list[Any]], Any] | None = None
                  ) -> dict[str, Any]:
        """Every fetchable name; a name with several values maps to their list."""
        if many_handler is None:
            many_handler = _one_or_all
        with self._lock:
            names = list(self._providers)
            for source in self._flow_injected():
                names.extend(n for n in source if n not in self._providers)
            result = {}
            for name in names:
                if name in result:
                    continue
                values, _problem = self._values_of(name)
                if values:
                    result[name] = many_handler(values)
        return result

    def fetch_mapped_args(self, args_mapping: Mapping[str, str], atom_name: str | None = None,
                          scope_walker: Any = None,
                          optional_args: Iterable[str] | None = None) -> dict[str, Any]:
        """Values for ``{argument: storage name}``, as ``atom_name`` would see them.

        Without ``atom_name`` only flow-level injected values are visible.
        Optional arguments that cannot be found are left out.
        """
        optional = set(optional_args or ())
        with self._lock:
            result = {}
            for arg, name in args_mapping.items():
                providers = (self._scope_fetcher(atom_name, name)
                             if atom_name is not None and self._scope_fetcher is not None
                             else None)
                found, value = self._lookup(atom_name, arg, name, providers,
                                            arg in optional or name in optional)
                if found:
                    result[arg] = value
            return result

    def fetch_unsatisfied_args(self, atom_name: str, args_mapping: Mapping[str, str],
                               scope_walker: Any = None,
                               optional_args: Iterable[str] | None = None) -> set[str]:
        """Argument names that no injected value or possible provider can satisfy."""
        optional = set(optional_args or ())
        missing = set()
        with self._lock:
            atom_values = self._atom_injected(atom_name)
            injected = self._flow_injected()
            for arg, name in args_mapping.items():
                if arg in optional or name in optional:
                    continue
                if name in atom_values or any(name in source for source in injected):
                    continue
                if self._scope_fetcher is not None:
                    if self._scope_fetcher(atom_name, name):
                        continue
                elif name in self._providers:
                    continue
                missing.add(arg)
        return missing

    def is_injected(self, name: str, atom_name: str | None = None) -> bool:
        """Whether ``name`` is an injected value (flow-level, or for ``atom_name``)."""
        first, second = self._flow_injected()
        return name in first or name in second or name in self._atom_injected(atom_name)

    def _atom_injected(self, atom_name: str | None) -> dict[str, Any]:
        if atom_name is None:
            return {}
        transient = self._atom_transients.get(atom_name)
        ad = self._atoms.get(atom_name)
        persistent = ad.meta.get(_META_INJECTED) if ad is not None else None
        if transient and persistent:
            return dict(persistent, **transient)
        return transient or persistent or {}

    def _lookup(self, atom_name: str | None, arg: str, name: str,
                providers: list[str] | None, optional: bool) -> tuple[bool, Any]:
        """Find one argument value following the lookup order; see the module docstring."""
        if atom_name is not None:
            atom_values = self._atom_injected(atom_name)
            if name in atom_values:
                return True, atom_values[name]
        first, second = self._flow_injected()
        if name in first:
            return True, first[name]
        if name in second:
            return True, second[name]
        unextractable = []
        unreadable = None
        scanned = 0
        for provider in providers or ():
            if provider == self.injector_name:
                continue
            scanned += 1
            ad = self._atoms.get(provider)
            if ad is None or ad.state == states.IGNORE:
                continue
            index = _index_of(self._providers.get(name, ()), provider)
            try:
                return True, self._provided_value(provider, index, name)
            except _Missing as missing:
                if not missing.unextractable:
                    unreadable = missing.args[0]
                    break
                unextractable.append(_provider_repr(provider, index))
        if unreadable is not None:
            raise unreadable  # outside the handler: its cause, not _Missing, shows
        # As the original: an optional argument takes its default only when
        # no atom at all provides the name, not when its providers are out
        # of reach or failed to produce it.
        if optional and name not in self._providers:
            return False, None
        if unextractable:
            error = exc.NotFound('Unable to find result %r, expected to be able to find it'
                                 ' created by one of [%s] but was unable to perform'
                                 ' successful extraction' % (name, ', '.join(unextractable)))
        elif name not in self._providers:
            error = exc.NotFound('Name %r is not mapped as a produced output by any providers'
                                 % name)
        else:
            error = exc.NotFound('Mapped argument %r <= %r was not produced by any accessible'
                                 ' provider (%s possible providers were scanned)'
                                 % (arg, name, scanned))
        _raise_on_key_error(error, name)

    def fetch_arguments(self, atom_name: str,
                        plan: Iterable[tuple[str, str, bool, list[str]]]) -> dict[str, Any]:
        """Arguments for ``atom_name`` from a precomputed plan (engine hot path).

        ``plan`` holds ``(argument, storage name, optional, providers nearest
        first)`` per argument; same lookup rules as :meth:`fetch_mapped_args`.
        """
        arguments = {}
        with self._lock:
            for arg, name, optional, providers in plan:
                found, value = self._lookup(atom_name, arg, name, providers, optional)
                if found:
                    arguments[arg] = value
        return arguments

    # -- flow -----------------------------------------------------------------

    def get_flow_state(self) -> str:
        state = self._flowdetail.state
        return states.PENDING if state is None else state

    def set_flow_state(self, state: str) -> None:
        with self._lock:
            old = self._flowdetail.state
            self._flowdetail.state = state
            try:
                self._save_flow()
            except BaseException:
                self._flowdetail.state = old
                raise

    def change_flow_state(self, state: str) -> tuple[bool, str]:
        """Move the flow to ``state`` if allowed; returns ``(moved, old state)``."""
        with self._lock:
            old = self.get_flow_state()
            moved = states.check_flow_transition(old, state)
            if moved:
                self.set_flow_state(state)
            return moved, old

    def update_flow_metadata(self, update_with: Mapping[str, Any]) -> None:
        """Merge ``update_with`` into the flow detail's ``meta`` and save it."""
        if not update_with:
            return
        with self._lock:
            meta = self._flowdetail.meta
            before = dict(meta)
            meta.update(update_with)
            try:
                self._save_flow()
            except BaseException:
                meta.clear()
                meta.update(before)
                raise

    # -- ownership (see taskflow.persistence.ownership) ------------------------

    @property
    def lease(self) -> ownership.Lease | None:
        """The lease this storage holds on its flow detail (taskflow-ng), if any."""
        return self._lease

    def take_ownership(self, owner: str, ttl: float,
                       claim_token: int | None = None) -> ownership.Lease | None:
        """Take the lease of the flow detail; every write then carries its token.

        Raises ``FlowLeased`` when someone else owns the flow. When another
        owner may have written since this storage last owned the flow, the
        atom details are read again first, so what it sees is current.
        ``None`` (and nothing done) without a backend that keeps leases, or
        with the in-memory backend storage made for itself.
        """
        if self._backend is None or self._private_backend:
            return None
        conn = self._conn()
        if not ownership.supports_leases(conn):
            return None
        with self._lock:
            lease: ownership.Lease = conn.acquire_flow_lease(self.flow_uuid, owner, ttl,
                                                             claim_token=claim_token)
            ownership.reinstate(owner)
            self._lease = lease
            conn.fence = lease
            if self._last_token is None or lease.token != self._last_token + 1:
                try:
                    self._reload(conn)
                except BaseException:
                    self.give_up_ownership()
                    raise
            return lease

    def recorded_lease(self) -> ownership.Lease | None:
        """The lease the backend records on the flow now, whoever took it
        (released ones too: they keep their tokens); ``None`` without one or
        without a backend that keeps leases."""
        if self._backend is None or self._private_backend:
            return None
        conn = self._conn()
        if not ownership.supports_leases(conn):
            return None
        lease: ownership.Lease | None = conn.get_flow_lease(self.flow_uuid)
        return lease

    def renew_ownership(self, ttl: float) -> ownership.Lease:
        """Extend the lease (``OwnershipLost`` if the flow has a new owner).

        Safe to call from another thread than the one writing.
        """
        lease = self._lease
        if lease is None:
            raise exc.InvalidState("Storage of flow detail '%s' does not own it"
                                   % self.flow_uuid)
        if self._lease_connection is None:
            self._lease_connection = self._backend.get_connection()
        renewed: ownership.Lease = self._lease_connection.renew_flow_lease(lease, ttl)
        if self._lease is lease:
            self._lease = renewed
        return renewed

    def give_up_ownership(self) -> None:
        """Release the lease (best effort: an unreleased lease expires anyway).

        Later writes still carry the released lease's token: they are refused
        once another owner has taken the flow.
        """
        with self._lock:
            lease, self._lease = self._lease, None
            if lease is None:
                return
            self._last_token = lease.token
            conn = self._conn()
            # The fence stays: once another owner took the flow, nothing this
            # storage still writes (a stale engine winding down, a suspend
            # arriving late) may land. Until then its writes go through.
            try:
                conn.release_flow_lease(lease)
            except exc.StorageFailure:
                # It expires by itself; this process may take it over now.
                ownership.retire(lease.owner)
            if self._lease_connection is not None:
                self._lease_connection.close()
                self._lease_connection = None

    def _reload(self, conn: Any) -> None:
        """Bring the flow detail up to date with what the backend stores."""
        try:
            stored = conn.get_flow_details(self.flow_uuid)
        except exc.NotFound:
            return  # not saved yet: nobody else can have written it
        fd = self._flowdetail
        fd.state = stored.state
        fd.meta = stored.meta
        for stored_ad in stored:
            ad = self._atoms.get(stored_ad.name)
            if ad is None:
                fd.add(stored_ad)
                self._atoms[stored_ad.name] = stored_ad
            elif ad.uuid == stored_ad.uuid and type(ad) is type(stored_ad):
                for field in ('state', 'intention', 'results', 'failure', 'revert_results',
                              'revert_failure', 'meta', 'version'):
                    setattr(ad, field, getattr(stored_ad, field))
            else:
                continue  # another detail of that name: ours stays the one used
            if stored_ad.failure is not None:
                self._failures[stored_ad.name] = stored_ad.failure
        if self.injector_name in self._atoms:
            self._register_injector()

    def close(self) -> None:
        """Release the backend connection this storage opened (if any)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


_VERSION_STRINGS: dict[Any, str] = {}


def _str(value: str | None) -> str:
    """A state or intention: always set on the details storage manages."""
    assert value is not None
    return value


def _version_string(version: Any) -> str:
    try:
        return _VERSION_STRINGS[version]
    except (KeyError, TypeError):
        pass
    if isinstance(version, tuple):
        text = '.'.join(str(part) for part in version)
        if len(_VERSION_STRINGS) < 1024:  # almost every atom uses (1, 0)
            _VERSION_STRINGS[version] = text
        return text
    return str(version)


def _has_results(ad: models.AtomDetail) -> bool:
    return (bool(ad.results) or ad.failure is not None or ad.revert_results is not None
            or ad.revert_failure is not None)


_UNSET = object()


def _uuid4_strings(count: int) -> Iterator[str]:
    """``count`` random (version 4) UUID strings, from one ``os.urandom`` call.

    Same randomness as ``uuid.uuid4()``, without building a ``UUID`` object
    per atom (flows of many atoms create one per atom).
    """
    random_bytes = os.urandom(16 * count)
    for start in range(0, 16 * count, 16):
        value = int.from_bytes(random_bytes[start:start + 16], 'big')
        value = (value & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
        text = '%032x' % value
        yield '%s-%s-%s-%s-%s' % (text[:8], text[8:12], text[12:16], text[16:20], text[20:])


def _as_values(pairs: Any, what: str) -> dict[str, Any]:
    """``dict(pairs)``, with an error that says what was wrong (same error types)."""
    try:
        return dict(pairs)
    except (TypeError, ValueError) as error:
        raise type(error)('%s must be a mapping of names to values (or (name, value)'
                          ' pairs), not %r' % (what, pairs)) from error


def _restore(mapping: dict[str, Any], key: str, value: Any) -> None:
    if value is _UNSET:
        mapping.pop(key, None)
    else:
        mapping[key] = value


def _one_or_all(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def _index_of(entries: tuple[tuple[str, Any], ...], provider: str) -> Any:
    for name, index in entries:
        if name == provider:
            return index
    return None


def _disallowed(atom_name: str, state: str | None, allowed: tuple[str, ...]) -> exc.DisallowedAccess:
    return exc.DisallowedAccess(
        "Result for atom '%s' is not known/accessible due to it being in %s state when"
        " result access is restricted to %s states" % (atom_name, state, allowed), state=state)


def _provider_repr(provider: str, index: Any) -> str:
    if index is None:
        return '<Provider %r>' % provider
    return '<Provider %r @ index %r>' % (provider, index)


def _unreachable(name: str, provider: str, index: Any, cause: Exception) -> exc.NotFound:
    error = exc.NotFound("Expected to be able to find output %r produced by %s but was unable"
                         " to get at that providers results"
                         % (name, _provider_repr(provider, index)), cause=cause)
    error.__cause__ = cause
    return error


def _raise_on_key_error(error: exc.NotFound, key: str) -> NoReturn:
    """Raise ``error`` while a ``KeyError(key)`` is handled, as the original's
    lookups do: printed tracebacks show the same chain."""
    try:
        raise KeyError(key)
    except KeyError:
        raise error  # the implicit context is the point


def _raise_with(error: exc.TaskFlowException) -> NoReturn:
    """Raise ``error`` chained (``__cause__``) to its taskflow ``cause``."""
    raise error from error.cause
