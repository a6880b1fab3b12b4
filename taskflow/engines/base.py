"""The abstract engine: what every engine kind offers."""

from __future__ import annotations

import abc
from typing import Any

from taskflow.types import notifier as notifier_module


class Engine(metaclass=abc.ABCMeta):
    """Runs a flow: compiles it, prepares storage, validates, then executes.

    :param flow: the flow (or a single task) to run.
    :param flow_detail: the flow detail holding its persisted state.
    :param backend: the persistence backend (or ``None``).
    :param options: engine options (see the engine kinds).
    """

    def __init__(self, flow: Any, flow_detail: Any, backend: Any,
                 options: dict[str, Any] | None) -> None:
        self._flow = flow
        self._flow_detail = flow_detail
        self._backend = backend
        self._options = dict(options or {})
        self._notifier = notifier_module.Notifier()
        self._atom_notifier = notifier_module.Notifier()

    @property
    def notifier(self) -> notifier_module.Notifier:
        """Notifier of flow state changes (event name = new flow state)."""
        return self._notifier

    @property
    def atom_notifier(self) -> notifier_module.Notifier:
        """Notifier of task and retry state changes (event name = new atom state)."""
        return self._atom_notifier

    @property
    def options(self) -> dict[str, Any]:
        """A copy of the options the engine was created with."""
        return dict(self._options)

    @property
    @abc.abstractmethod
    def storage(self) -> Any:
        """The engine's :class:`taskflow.storage.Storage`."""

    @property
    @abc.abstractmethod
    def statistics(self) -> dict[str, Any]:
        """Figures about the last run (empty before the first one)."""

    @abc.abstractmethod
    def compile(self) -> None:
        """Build the execution graph of the flow (idempotent)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Put every atom back to ``PENDING`` and the flow to ``PENDING``."""

    @abc.abstractmethod
    def prepare(self) -> None:
        """Create the atom details in storage and inject atom-level values."""

    @abc.abstractmethod
    def validate(self) -> None:
        """Check that every requirement has a provider."""

    @abc.abstractmethod
    def run(self) -> None:
        """Run the flow to completion (or suspension)."""

    @abc.abstractmethod
    def suspend(self) -> None:
        """Ask a running engine to stop scheduling new work."""
