"""Every test here starts and ends with nothing masked and nothing remembered."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from taskflow import secrets


@pytest.fixture(autouse=True)
def forget_secrets() -> Iterator[None]:
    secrets.reset()
    yield
    secrets.reset()


@pytest.fixture
def everything_logged() -> Iterator[list[logging.LogRecord]]:
    """Every log record of the process, at every level (TRACE included)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler = Keep(level=1)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(1)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def formatted(records: list[logging.LogRecord]) -> str:
    """The records as a handler with a full formatter would write them."""
    formatter = logging.Formatter('%(levelname)s %(name)s %(message)s')
    return '\n'.join(formatter.format(record) for record in records)
