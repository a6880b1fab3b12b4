"""A named entity (e.g. a conductor or worker) with some metadata."""

from __future__ import annotations

from typing import Any


class Entity:
    """An entity of some ``kind`` with a ``name`` and ``metadata``."""

    def __init__(self, kind: str, name: str, metadata: Any) -> None:
        self.kind = kind
        self.name = name
        self.metadata = metadata

    def to_dict(self) -> dict:
        """``{'kind': ..., 'name': ..., 'metadata': ...}``."""
        return {
            'kind': self.kind,
            'name': self.name,
            'metadata': self.metadata,
        }
