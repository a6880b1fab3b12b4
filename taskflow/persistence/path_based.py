"""Connection logic shared by backends that store objects at paths.

The layout (memory file system, directory tree, zookeeper znodes)::

    <root>/books/<book uuid>            book dict; children link to flow details
    <root>/flow_details/<fd uuid>       flow dict; children link to atom details
    <root>/atom_details/<ad uuid>       {'atom': atom dict, 'type': 'TASK_DETAIL'}
    <root>/leases/<fd uuid>             the flow's lease (taskflow-ng, see ``ownership``)

A subclass provides the primitive operations (read/write an item, list
children, make a link, delete a tree, a transaction); this module turns them
into the ``Connection`` API with the original's merge semantics: saving an
object that already exists merges the given object into the stored one.
"""

from __future__ import annotations

import abc
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from taskflow import exceptions as exc
from taskflow.persistence import _decode
from taskflow.persistence import base
from taskflow.persistence import models
from taskflow.persistence import ownership

__all__ = ['INTERNAL_ERROR', 'PathBasedBackend', 'PathBasedConnection']

# Writes to make, in order: (primitive, path, value or link target).
_Plan = list[tuple[Callable[[str, Any, Any], None], str, Any]]

# The message of every StorageFailure these backends raise (the error that
# caused it is attached as its cause), as the original's.
INTERNAL_ERROR = 'Storage backend internal error'


class PathBasedBackend(base.Backend, abc.ABC):
    """A backend whose objects live under ``path`` (``DEFAULT_PATH`` when the
    configuration has none)."""

    DEFAULT_PATH: str | None = None

    def __init__(self, conf: dict | None) -> None:
        super().__init__(conf)
        path = self._conf.get('path') or self.DEFAULT_PATH
        if not path:
            raise ValueError('Empty path is disallowed')
        self._path: str = path

    @property
    def path(self) -> str:
        return self._path


class PathBasedConnection(base.Connection, abc.ABC):
    """The ``Connection`` API on top of path primitives.

    Leases (see :mod:`~taskflow.persistence.ownership`) are read and written
    in the same transactions as the objects, so a write under ``fence`` (the
    writer's lease) is refused once the flow has a newer owner.
    """

    def __init__(self, backend: PathBasedBackend) -> None:
        self._backend = backend
        self._book_path = self._join_path(backend.path, 'books')
        self._flow_path = self._join_path(backend.path, 'flow_details')
        self._atom_path = self._join_path(backend.path, 'atom_details')
        self._lease_path = self._join_path(backend.path, 'leases')
        self.fence: ownership.Lease | None = None

    @property
    def backend(self) -> PathBasedBackend:
        return self._backend

    @property
    def book_path(self) -> str:
        return self._book_path

    @property
    def flow_path(self) -> str:
        return self._flow_path

    @property
    def atom_path(self) -> str:
        return self._atom_path

    # -- primitives ---------------------------------------------------------

    @staticmethod
    @abc.abstractmethod
    def _join_path(*parts: str) -> str:
        """Join path pieces."""

    @abc.abstractmethod
    def _get_item(self, path: str) -> Any:
        """The object stored at ``path`` (``NotFound`` if missing)."""

    @abc.abstractmethod
    def _set_item(self, path: str, value: Any, transaction: Any) -> None:
        """Store ``value`` (a dict) at ``path``."""

    @abc.abstractmethod
    def _del_tree(self, path: str, transaction: Any) -> None:
        """Delete ``path`` and everything under it."""

    @abc.abstractmethod
    def _get_children(self, path: str) -> list[str]:
        """Names of the links under ``path`` (``NotFound`` if missing)."""

    @abc.abstractmethod
    def _ensure_path(self, path: str) -> None:
        """Create ``path`` (and its parents) when missing."""

    @abc.abstractmethod
    def _create_link(self, src_path: str, dest_path: str,
                     transaction: Any) -> None:
        """Make ``dest_path`` a link to ``src_path`` (no-op if it exists)."""

    @abc.abstractmethod
    def _exists(self, path: str) -> bool:
        """Whether an object is stored at ``path``."""

    @abc.abstractmethod
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A context in which a multi-object change happens as one."""

    # -- hooks to convert dicts; backends storing JSON override these -------

    def _dump_atom(self, ad: models.AtomDetail) -> Any:
        return base._format_atom(ad)

    def _dump_flow(self, fd: models.FlowDetail) -> Any:
        return fd.to_dict()

    def _dump_book(self, book: models.LogBook) -> Any:
        return book.to_dict(marshal_time=True)

    def _dump_plain(self, data: dict[str, Any]) -> Any:
        return data

    # -- leases ----------------------------------------------------------------

    def _read_lease(self, flow_uuid: str) -> ownership.Lease | None:
        try:
            data = self._get_item(self._join_path(self._lease_path, flow_uuid))
        except exc.NotFound:
            return None
        try:
            return ownership.Lease(**data)
        except TypeError as e:
            raise exc.StorageFailure("Malformed lease of flow detail '%s': %r"
                                     % (flow_uuid, data), e) from e

    def _write_lease(self, lease: ownership.Lease, transaction: Any) -> None:
        self._ensure_path(self._lease_path)
        self._set_item(self._join_path(self._lease_path, lease.flow_uuid),
                       self._dump_plain(lease._asdict()), transaction)

    def acquire_flow_lease(self, flow_uuid: str, owner: str, ttl: float,
                           claim_token: int | None = None) -> ownership.Lease:
        """Take the lease of a flow detail (see :mod:`~taskflow.persistence.ownership`)."""
        ttl = ownership.check_ttl(ttl)
        with self._transaction() as transaction:
            lease = ownership.grant(self._read_lease(flow_uuid), flow_uuid, owner, ttl,
                                    time.time(), claim_token)
            self._write_lease(lease, transaction)
        return lease

    def renew_flow_lease(self, lease: ownership.Lease, ttl: float) -> ownership.Lease:
        ttl = ownership.check_ttl(ttl)
        with self._transaction() as transaction:
            current = self._read_lease(lease.flow_uuid)
            if current is None or current.token != lease.token:
                raise ownership.lost(lease, current)
            renewed = current._replace(expires_at=time.time() + ttl)
            self._write_lease(renewed, transaction)
        return renewed

    def release_flow_lease(self, lease: ownership.Lease) -> None:
        with self._transaction() as transaction:
            current = self._read_lease(lease.flow_uuid)
            if current is not None and current.token == lease.token:
                self._write_lease(current._replace(expires_at=0.0), transaction)

    def get_flow_lease(self, flow_uuid: str) -> ownership.Lease | None:
        with self._reading():
            return self._read_lease(flow_uuid)

    def _check_fence(self) -> None:
        """Refuse a write under a lease that is no longer the flow's current one."""
        fence = self.fence
        if fence is not None:
            current = self._read_lease(fence.flow_uuid)
            if current is None or current.token != fence.token:
                raise ownership.lost(fence, current)

    def _reading(self) -> contextlib.AbstractContextManager[Any]:
        return self._transaction()

    # -- Connection API -------------------------------------------------------

    def upgrade(self) -> None:
        for path in (self.book_path, self.flow_path, self.atom_path):
            self._ensure_path(path)

    def validate(self) -> None:
        pass

    def close(self) -> None:
        pass

    def clear_all(self) -> None:
        with self._transaction() as transaction:
            for path in (self.book_path, self.flow_path, self.atom_path):
                if self._exists_dir(path):
                    self._del_tree(path, transaction)

    def _exists_dir(self, path: str) -> bool:
        try:
            self._get_children(path)
        except exc.NotFound:
            return False
        return True

    # Reading goes through _decode, which refuses corrupt records (naming
    # the object, the field and the problem).

    def _read_atom(self, ad_uuid: str) -> models.AtomDetail:
        path = self._join_path(self.atom_path, ad_uuid)
        data = self._get_item(path)
        record = _decode.Record('atom detail', None, ad_uuid, 'at ' + path)
        if not isinstance(data, dict):
            raise record.corrupt('data', 'is not a dict (it is %s)'
                                 % _decode._type_name(data))
        atom = data.get('atom')
        if not isinstance(atom, dict):
            raise record.corrupt('atom', 'is missing' if atom is None
                                 else 'is not a dict')
        if atom.get('uuid') != ad_uuid:
            raise record.corrupt('uuid', 'does not match its path')
        return _decode.atom_detail(data.get('type'), atom, 'at ' + path)

    def _flow_from_item(self, path: str, fd_uuid: str) -> models.FlowDetail:
        data = self._get_item(path)
        record = _decode.Record('flow detail', None, fd_uuid, 'at ' + path)
        if not isinstance(data, dict):
            raise record.corrupt('data', 'is not a dict (it is %s)'
                                 % _decode._type_name(data))
        if data.get('uuid') != fd_uuid:
            raise record.corrupt('uuid', 'does not match its path')
        return _decode.flow_detail(data, 'at ' + path)

    def _book_from_item(self, path: str, book_uuid: str) -> models.LogBook:
        data = self._get_item(path)
        record = _decode.Record('logbook', None, book_uuid, 'at ' + path)
        if not isinstance(data, dict):
            raise record.corrupt('data', 'is not a dict (it is %s)'
                                 % _decode._type_name(data))
        if data.get('uuid') != book_uuid:
            raise record.corrupt('uuid', 'does not match its path')
        return _decode.logbook(data, unmarshal_time=True,
                               where='at ' + path)

    def _read_flow(self, fd_uuid: str, lazy: bool) -> models.FlowDetail:
        path = self._join_path(self.flow_path, fd_uuid)
        fd = self._flow_from_item(path, fd_uuid)
        if not lazy:
            for ad_uuid in self._get_children(path):
                fd.add(self._read_atom(ad_uuid))
        return fd

    def _read_book(self, book_uuid: str, lazy: bool) -> models.LogBook:
        path = self._join_path(self.book_path, book_uuid)
        book = self._book_from_item(path, book_uuid)
        if not lazy:
            updated_at = book.updated_at  # add() would touch it
            for fd_uuid in self._get_children(path):
                book.add(self._read_flow(fd_uuid, lazy=False))
            book.updated_at = updated_at
        return book

    # Writes are planned first (stored objects read and merged, every value
    # encoded), then applied: a value that can never be stored is refused
    # before anything is written.

    def _plan_atom(self, ad: models.AtomDetail, plan: _Plan) -> None:
        path = self._join_path(self.atom_path, ad.uuid)
        if self._exists(path):
            stored = self._read_atom(ad.uuid)
            ad = stored.merge(ad)
        plan.append((self._set_item, path, self._dump_atom(ad)))

    def _plan_flow(self, fd: models.FlowDetail, plan: _Plan,
                   ignore_missing: bool) -> None:
        path = self._join_path(self.flow_path, fd.uuid)
        if self._exists(path):
            stored = self._flow_from_item(path, fd.uuid)
            stored.merge(fd)
            plan.append((self._set_item, path, self._dump_flow(stored)))
        elif ignore_missing:
            plan.append((self._set_item, path, self._dump_flow(fd)))
        else:
            self._get_item(path)  # raises the backend's NotFound
        for ad in fd:
            self._plan_atom(ad, plan)
            plan.append((self._create_link,
                         self._join_path(self.atom_path, ad.uuid),
                         self._join_path(path, ad.uuid)))

    @staticmethod
    def _apply(plan: _Plan, transaction: Any) -> None:
        for write, first, second in plan:
            write(first, second, transaction)

    def update_atom_details(self, atom_detail: models.AtomDetail
                            ) -> models.AtomDetail:
        """Returns the stored atom detail merged with ``atom_detail``."""
        path = self._join_path(self.atom_path, atom_detail.uuid)
        with self._transaction() as transaction:
            self._check_fence()
            stored = self._read_atom(atom_detail.uuid)  # NotFound if missing
            stored.merge(atom_detail)
            self._set_item(path, self._dump_atom(stored), transaction)
        return stored

    def update_flow_details(self, flow_detail: models.FlowDetail
                            ) -> models.FlowDetail:
        """Returns ``flow_detail`` itself (as the original's path based
        backends do)."""
        with self._transaction() as transaction:
            self._check_fence()
            plan: _Plan = []
            self._plan_flow(flow_detail, plan, ignore_missing=False)
            self._apply(plan, transaction)
        return flow_detail

    def save_logbook(self, book: models.LogBook) -> models.LogBook:
        """Returns ``book`` itself (as the original's path based backends
        do)."""
        path = self._join_path(self.book_path, book.uuid)
        with self._transaction() as transaction:
            self._check_fence()
            if self._exists(path):
                stored = self._book_from_item(path, book.uuid)
                stored.merge(book)
                plan: _Plan = [(self._set_item, path,
                                self._dump_book(stored))]
            else:
                plan = [(self._set_item, path, self._dump_book(book))]
            for fd in book:
                self._plan_flow(fd, plan, ignore_missing=True)
                plan.append((self._create_link,
                             self._join_path(self.flow_path, fd.uuid),
                             self._join_path(path, fd.uuid)))
            self._apply(plan, transaction)
        return book

    def get_logbook(self, book_uuid: str, lazy: bool = False
                    ) -> models.LogBook:
        with self._transaction():
            return self._read_book(book_uuid, lazy)

    def get_logbooks(self, lazy: bool = False) -> Iterator[models.LogBook]:
        with self._transaction():
            books = [self._read_book(book_uuid, lazy)
                     for book_uuid in self._get_children(self.book_path)]
        return iter(books)

    def get_flows_for_book(self, book_uuid: str, lazy: bool = False
                           ) -> Iterator[models.FlowDetail]:
        path = self._join_path(self.book_path, book_uuid)
        with self._transaction():
            flows = [self._read_flow(fd_uuid, lazy)
                     for fd_uuid in self._get_children(path)]
        return iter(flows)

    def get_flow_details(self, fd_uuid: str, lazy: bool = False
                         ) -> models.FlowDetail:
        with self._transaction():
            return self._read_flow(fd_uuid, lazy)

    def get_atom_details(self, ad_uuid: str) -> models.AtomDetail:
        with self._transaction():
            return self._read_atom(ad_uuid)

    def get_atoms_for_flow(self, fd_uuid: str
                           ) -> Iterator[models.AtomDetail]:
        path = self._join_path(self.flow_path, fd_uuid)
        with self._transaction():
            atoms = [self._read_atom(ad_uuid)
                     for ad_uuid in self._get_children(path)]
        return iter(atoms)

    def destroy_logbook(self, book_uuid: str) -> None:
        path = self._join_path(self.book_path, book_uuid)
        with self._transaction() as transaction:
            for fd_uuid in self._get_children(path):  # NotFound if missing
                fd_path = self._join_path(self.flow_path, fd_uuid)
                for ad_uuid in self._get_children_if_any(fd_path):
                    ad_path = self._join_path(self.atom_path, ad_uuid)
                    if self._exists(ad_path):
                        self._del_tree(ad_path, transaction)
                if self._exists(fd_path):
                    self._del_tree(fd_path, transaction)
            self._del_tree(path, transaction)

    def _get_children_if_any(self, path: str) -> list[str]:
        try:
            return self._get_children(path)
        except exc.NotFound:
            return []
