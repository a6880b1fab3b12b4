"""Persistence in ZooKeeper znodes (``zookeeper`` backend) — not available.

taskflow-ng does not implement this backend yet: it needs the ``kazoo``
client and a ZooKeeper service, neither of which this project ships or tests
against. The class exists so that ``backends.fetch('zookeeper://...')``
fails with a clear error instead of ``NotFound``.
"""

from __future__ import annotations

from typing import Any

from taskflow.persistence import path_based

__all__ = ['ZkBackend']


class ZkBackend(path_based.PathBasedBackend):
    """Placeholder for the ZooKeeper backend (``conf``: ``hosts``, ``path``,
    ``timeout``, ``check_compatible``); constructing it raises."""

    DEFAULT_PATH = '/taskflow'

    def __init__(self, conf: dict | None, client: Any = None) -> None:
        super().__init__(conf)
        try:
            import kazoo  # noqa: F401
        except ImportError as e:
            raise ImportError(
                "The zookeeper persistence backend needs the 'kazoo' package"
                " (pip install kazoo), and taskflow-ng does not implement it"
                " yet: use the 'sqlite', 'postgresql', 'mysql' or 'dir'"
                " backend") from e
        raise NotImplementedError(
            'The zookeeper persistence backend is not implemented by'
            " taskflow-ng yet: use the 'sqlite', 'postgresql', 'mysql' or"
            " 'dir' backend")

    def get_connection(self) -> Any:  # pragma: no cover - never constructed
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - never constructed
        pass
