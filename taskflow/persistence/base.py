"""The two interfaces every persistence backend implements.

A :class:`Backend` is built from a configuration dict and hands out
:class:`Connection` objects; a connection reads and writes logbooks, flow
details and atom details (see ``taskflow.persistence.models``). Every error
coming from the underlying store is raised as ``exceptions.StorageFailure``
(unknown uuids raise ``exceptions.NotFound``).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any

from taskflow.persistence import models

__all__ = ['Backend', 'Connection']


class Backend(abc.ABC):
    """Base class for persistence backends.

    ``conf`` must be a dict (a falsy value means ``{}``).
    """

    def __init__(self, conf: dict | None) -> None:
        if not conf:
            conf = {}
        if not isinstance(conf, dict):
            raise TypeError("Configuration dictionary expected not '%s' (%s)"
                            % (conf, type(conf)))
        self._conf = conf

    @abc.abstractmethod
    def get_connection(self) -> Connection:
        """Return a new connection to this backend."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the resources held by this backend."""


class Connection(abc.ABC):
    """Base class for backend connections (usable with ``contextlib.closing``).
    """

    @property
    @abc.abstractmethod
    def backend(self) -> Backend:
        """The backend this connection belongs to."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection (it must not be used afterwards)."""

    @abc.abstractmethod
    def upgrade(self) -> None:
        """Create or migrate the schema / layout (idempotent)."""

    @abc.abstractmethod
    def validate(self) -> None:
        """Check the backend is usable; raise if it is not."""

    @abc.abstractmethod
    def clear_all(self) -> None:
        """Delete every logbook, flow detail and atom detail."""

    @abc.abstractmethod
    def update_atom_details(self, atom_detail: models.AtomDetail
                            ) -> models.AtomDetail:
        """Save an existing atom detail (``NotFound`` if it is unknown);
        returns the stored one merged with it (a new object)."""

    @abc.abstractmethod
    def update_flow_details(self, flow_detail: models.FlowDetail
                            ) -> models.FlowDetail:
        """Save an existing flow detail and its atom details (unknown atom
        details are added; ``NotFound`` if the flow detail is unknown).

        Returns the merged flow detail: SQL backends return a new object
        holding every stored atom detail, the others ``flow_detail``.
        """

    @abc.abstractmethod
    def save_logbook(self, book: models.LogBook) -> models.LogBook:
        """Insert or merge ``book`` with all its flow and atom details.

        Returns the saved book: SQL backends return a new object (the stored
        book merged with ``book``, holding every stored flow detail) when
        the book existed, the others ``book``.
        """

    # Saving without the merged copy the two methods above return: what
    # taskflow-ng itself calls (the engine's storage on every flow change).
    # Backends for which that copy costs reads override these.

    def _write_flow_details(self, flow_detail: models.FlowDetail) -> None:
        """``update_flow_details(flow_detail)``, returning nothing."""
        self.update_flow_details(flow_detail)

    def _write_logbook(self, book: models.LogBook) -> None:
        """``save_logbook(book)``, returning nothing."""
        self.save_logbook(book)

    @abc.abstractmethod
    def destroy_logbook(self, book_uuid: str) -> None:
        """Delete a book with its flow and atom details (``NotFound`` if
        unknown)."""

    @abc.abstractmethod
    def get_logbook(self, book_uuid: str, lazy: bool = False
                    ) -> models.LogBook:
        """The book with its flow details (and their atom details) unless
        ``lazy``; ``NotFound`` if unknown."""

    @abc.abstractmethod
    def get_logbooks(self, lazy: bool = False) -> Iterable[models.LogBook]:
        """Every stored book."""

    @abc.abstractmethod
    def get_flows_for_book(self, book_uuid: str, lazy: bool = False
                           ) -> Iterable[models.FlowDetail]:
        """The flow details of a book (``NotFound`` if the book is
        unknown)."""

    @abc.abstractmethod
    def get_flow_details(self, fd_uuid: str, lazy: bool = False
                         ) -> models.FlowDetail:
        """A flow detail with its atom details unless ``lazy``."""

    @abc.abstractmethod
    def get_atom_details(self, ad_uuid: str) -> models.AtomDetail:
        """An atom detail (``NotFound`` if unknown)."""

    @abc.abstractmethod
    def get_atoms_for_flow(self, fd_uuid: str
                           ) -> Iterable[models.AtomDetail]:
        """The atom details of a flow detail."""


def _format_atom(atom_detail: models.AtomDetail) -> dict[str, Any]:
    """The stored form of an atom detail: ``{'atom': dict, 'type': name}``."""
    return {'atom': atom_detail.to_dict(),
            'type': models.atom_detail_type(atom_detail)}
