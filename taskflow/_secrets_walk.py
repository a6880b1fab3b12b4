"""The walks of :mod:`taskflow.secrets`: masked copies, and finding secret values.

One job: go through data (and a failure's stack frames) looking for values
under masked keys.  ``Redactor`` makes the masked copy that is shown;
``learn_*`` only remember what they find (in ``_secrets_memory``), without
copying, within a budget of nodes so a huge value never stalls a failure.
Mappings, lists, tuples, sets and frozensets are walked; fields of a
namedtuple or a dataclass count as keys.
"""

from __future__ import annotations

import collections.abc
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, cast

from taskflow._secrets_memory import LEARN_MAX_FRAMES, MASK, KeyTest, memory, remember, scrub


def keyed_items(item: Any) -> list[tuple[Any, Any]] | None:
    """``(key, value)`` pairs of a mapping, namedtuple or dataclass; else ``None``."""
    try:
        if isinstance(item, collections.abc.Mapping):
            return list(item.items())
        fields = getattr(type(item), '_fields', None)
        if isinstance(item, tuple) and isinstance(fields, tuple):
            return list(zip(fields, item))
        if dataclasses.is_dataclass(item):
            return [(f.name, getattr(item, f.name, None)) for f in dataclasses.fields(item)]
    except Exception:
        return []
    return None


def learn_under_keys(data: Any, masked: KeyTest, budget: list[int]) -> None:
    """Remember values under masked keys inside ``data`` (no copy is made)."""
    stack = [data]
    seen: set[int] = set()
    while stack and budget[0] > 0:
        budget[0] -= 1
        item = stack.pop()
        if isinstance(item, (str, bytes, bytearray, type)) or not (
                isinstance(item, (collections.abc.Mapping, list, tuple, set, frozenset))
                or dataclasses.is_dataclass(item)):
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        pairs = keyed_items(item)
        if pairs is None:
            stack.extend(cast(Iterable[Any], item))
            continue
        for key, value in pairs:
            if masked(key):
                remember(value)
            else:
                stack.append(value)


def learn_from_traceback(tb: Any, masked: KeyTest, budget: list[int]) -> None:
    """Remember values of masked names (and under masked keys) in ``tb``'s frames.

    This is how a failure learns the password its task was called with
    (``def execute(self, password)``, or the engine's ``arguments`` dict)
    before it keeps the exception's message.
    """
    frames = 0
    while tb is not None and frames < LEARN_MAX_FRAMES and budget[0] > 0:
        frames += 1
        try:
            local_vars = dict(tb.tb_frame.f_locals)
        except Exception:
            local_vars = {}
        for name, value in local_vars.items():
            if masked(name):
                remember(value)
            else:
                learn_under_keys(value, masked, budget)
        tb = tb.tb_next


def learn_from_exception(value: Any, tb: Any, args: Any, masked: KeyTest,
                          budget: list[int]) -> None:
    """Remember what an exception met under masked names and keys.

    Looks in the frames of its traceback ``tb`` (see
    :func:`learn_from_traceback`), its ``args`` and its attributes.
    """
    learn_from_traceback(tb, masked, budget)
    learn_under_keys(args, masked, budget)
    attributes = getattr(value, '__dict__', None)
    if attributes:
        learn_under_keys(dict(attributes), masked, budget)


class Redactor:
    """Copies data with masked values replaced (see :func:`redact`)."""

    def __init__(self, masked: KeyTest, plain: bool) -> None:
        self.masked = masked
        self.plain = plain
        self.path: set[int] = set()

    def walk(self, data: Any) -> tuple[Any, bool]:
        """Return ``(shown, changed)``: ``changed`` when something was masked."""
        if isinstance(data, str):
            # Checked each time: a value masked earlier in this walk counts.
            if memory.longest_first:
                shown = scrub(data)
                return shown, shown != data
            return data, False
        if isinstance(data, collections.abc.Mapping):
            return self._container(data, self._mapping)
        if isinstance(data, list):
            return self._container(data, self._list)
        if isinstance(data, tuple):
            return self._container(data, self._tuple)
        if isinstance(data, (set, frozenset)):
            return self._container(data, self._set)
        if dataclasses.is_dataclass(data) and not isinstance(data, type):
            return self._container(data, self._dataclass)
        return data, False

    def _container(self, data: Any, rebuild: Callable[[Any], tuple[Any, bool]]
                   ) -> tuple[Any, bool]:
        # A container inside itself: the repeat is masked (it would show the
        # unmasked original through the copy); unchanged if nothing else is.
        if id(data) in self.path:
            return MASK, False
        self.path.add(id(data))
        try:
            return rebuild(data)
        finally:
            self.path.discard(id(data))

    def _mapping(self, data: Any) -> tuple[Any, bool]:
        shown = {}
        changed = False
        for key, value in data.items():
            if self.masked(key):
                remember(value)
                shown[key] = MASK
                changed = True
            else:
                shown[key], item_changed = self.walk(value)
                changed = changed or item_changed
        # The original formatter shows any dict as a plain dict.
        if changed or (self.plain and isinstance(data, dict)):
            return shown, changed
        return data, False

    def _items(self, data: Iterable[Any]) -> tuple[list[Any], bool]:
        shown = []
        changed = False
        for item in data:
            item_shown, item_changed = self.walk(item)
            shown.append(item_shown)
            changed = changed or item_changed
        return shown, changed

    def _list(self, data: list[Any]) -> tuple[Any, bool]:
        shown, changed = self._items(data)
        if changed or self.plain:
            return shown, changed
        return data, False

    def _tuple(self, data: tuple[Any, ...]) -> tuple[Any, bool]:
        fields = getattr(type(data), '_fields', None)
        if isinstance(fields, tuple) and len(fields) == len(data):
            # A namedtuple: its field names are keys.
            shown, changed = [], False
            for field, value in zip(fields, data):
                if self.masked(field):
                    remember(value)
                    shown.append(MASK)
                    changed = True
                else:
                    value_shown, value_changed = self.walk(value)
                    shown.append(value_shown)
                    changed = changed or value_changed
            if not changed:
                return data, False
            try:
                return getattr(type(data), '_make')(shown), True   # keeps its type and repr
            except Exception:
                return tuple(shown), True
        shown, changed = self._items(data)
        if not changed:
            return data, False
        return tuple(shown), True

    def _dataclass(self, data: Any) -> tuple[Any, bool]:
        # Field names are keys.  The copy is made with ``dataclasses.replace``;
        # when that is refused (``init=False`` fields, validation), the values
        # are still remembered, so the text of ``data`` gets scrubbed.
        changes = {}
        for field in dataclasses.fields(data):
            value = getattr(data, field.name, None)
            if self.masked(field.name):
                remember(value)
                changes[field.name] = MASK
            else:
                value_shown, value_changed = self.walk(value)
                if value_changed:
                    changes[field.name] = value_shown
        if not changes:
            return data, False
        try:
            return dataclasses.replace(data, **changes), True
        except Exception:
            return data, True

    def _set(self, data: Any) -> tuple[Any, bool]:
        shown, changed = self._items(data)
        if not changed:
            return data, False
        try:
            return type(data)(shown) if type(data) in (set, frozenset) else set(shown), True
        except TypeError:
            return MASK, True
