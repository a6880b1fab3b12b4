"""The project-wide memory of taskflow's secrets (see :mod:`taskflow.secrets`).

One job: what is masked and what is remembered, and scrubbing text of it.
It holds the masked keys, the texts to scrub (values given to
``hide_values()`` and values learned under masked keys, least recently seen
dropped first), and whether masking is on at all (``memory.active``, read
without a lock on hot paths).  The walks that find values are in
``_secrets_walk``; the public API is ``taskflow.secrets``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import numbers
import os
import threading
import uuid
from collections.abc import Callable, Container, Iterator
from typing import Any

#: What a hidden value is shown as (the original formatter's mask).
MASK = '***'
#: Environment variable with project-wide masked keys (comma or space separated).
ENV_VAR = 'TASKFLOW_MASK_KEYS'
#: Learned texts shorter than this are not searched for in free text.
MIN_LEARNED_LENGTH = 6
#: Learned texts kept at most (least recently seen dropped first).
MAX_LEARNED_VALUES = 1024

# Bounds of the walk that learns secrets from a failure's stack frames: it
# only feeds the memory, so it may stop early, but never hang on huge data.
LEARN_NODE_BUDGET = 20000
LEARN_MAX_FRAMES = 200


def keys_from_env() -> frozenset[str]:
    """The keys named in ``TASKFLOW_MASK_KEYS`` (commas and/or spaces between)."""
    raw = os.environ.get(ENV_VAR, '')
    return frozenset(key for key in raw.replace(',', ' ').split() if key)


class Memory:
    """The project-wide state; ``active`` is read on hot paths without the lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()   # a hook or a log record made under it may re-enter
        self.keys: frozenset[str] = keys_from_env()
        self.hidden: dict[str, None] = {}    # given to hide_values(): kept
        self.learned: dict[str, None] = {}   # insertion order = recency
        self.longest_first: tuple[str, ...] = ()
        self.active = bool(self.keys)
        self.hooks: list[Callable[[], None]] = []

    def set_keys(self, keys: frozenset[str]) -> None:
        with self.lock:
            self.keys = keys
            self.changed()

    def hide(self, texts: set[str]) -> None:
        with self.lock:
            self.hidden.update(dict.fromkeys(text for text in texts if text))
            self.changed()

    def reset(self) -> None:
        with self.lock:
            self.keys = keys_from_env()
            self.hidden.clear()
            self.learned.clear()
            self.changed()

    def changed(self) -> None:
        """Recompute the derived state (call with the lock held)."""
        texts = set(self.hidden)
        texts.update(self.learned)
        self.longest_first = tuple(sorted(texts, key=len, reverse=True))
        was_active = self.active
        self.active = bool(self.keys or texts)
        if self.active and not was_active:
            hooks, self.hooks = self.hooks, []
            for hook in hooks:
                hook()


memory = Memory()


def activation_hook(hook: Callable[[], None]) -> None:
    """Call ``hook`` once: now if masking is on, else when it is first switched on."""
    with memory.lock:
        if memory.active:
            hook()
        else:
            memory.hooks.append(hook)


def texts_of(value: Any) -> set[str]:
    """How ``value`` appears in text: its ``str``, and escaped as in ``repr``/JSON."""
    if isinstance(value, str):
        return {value, repr(value)[1:-1], json.dumps(value)[1:-1]}
    if isinstance(value, (bytes, bytearray)):
        texts = {repr(bytes(value))[2:-1]}
        try:
            texts |= texts_of(bytes(value).decode('utf-8'))
        except UnicodeDecodeError:
            pass
        return texts
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, (numbers.Number, uuid.UUID)):
        return {str(value), repr(value)}
    return set()   # an object's text can not be known without calling it


def leaves(value: Any, budget: int = LEARN_NODE_BUDGET) -> Iterator[Any]:
    """The scalar values inside ``value`` (itself when it is not a container)."""
    stack = [value]
    seen: set[int] = set()
    while stack and budget > 0:
        budget -= 1
        item = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            yield item
        elif isinstance(item, (collections.abc.Mapping, list, tuple, set, frozenset)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, collections.abc.Mapping):
                stack.extend(item.values())
            else:
                stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name, None) for f in dataclasses.fields(item))
        else:
            yield item


def remember(value: Any) -> None:
    """Remember the texts of a value found under a masked key."""
    texts = [text for leaf in leaves(value) for text in texts_of(leaf)
             if len(text) >= MIN_LEARNED_LENGTH]
    if not texts:
        return
    with memory.lock:
        learned = memory.learned
        fresh = False
        for text in texts:
            if text in learned:
                del learned[text]   # move to the most recent end
            else:
                fresh = True
            learned[text] = None
        while len(learned) > MAX_LEARNED_VALUES:
            del learned[next(iter(learned))]
            fresh = True
        if fresh:
            memory.changed()


class KeyTest:
    """Is a key masked: project-wide, or in a listener's own container."""

    __slots__ = ('project', 'local')

    def __init__(self, local: Container[Any] = ()) -> None:
        self.project = memory.keys
        self.local = local

    def __bool__(self) -> bool:
        return bool(self.project) or bool(self.local)

    def __call__(self, key: Any) -> bool:
        try:
            if key in self.project:
                return True
        except TypeError:   # unhashable: can not be a masked key
            return False
        try:
            # As given, as the original does: a string matches its substrings.
            return key in self.local
        except TypeError:
            return False


def scrub(text: str) -> str:
    """``text`` with every remembered value replaced by ``'***'``."""
    values = memory.longest_first
    if not values or not text:
        return text
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text
