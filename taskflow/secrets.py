"""Secrets: keys whose values taskflow never shows, and the values it learned that way.

The model, in three parts:

* **Masked keys.** A value stored under a masked key (in a dict or any
  mapping, at any depth of dicts, lists, tuples, sets and mappings) is
  shown as ``'***'``.  Keys come from the project-wide set (the
  ``TASKFLOW_MASK_KEYS`` environment variable, read at import, plus
  :func:`mask_keys`) and, for one listener or formatter, from its own
  ``mask_inputs_keys``/``mask_outputs_keys``.  An argument or local
  variable *named* like a masked key counts as a value under it.
* **Remembered values.** Every value found under a masked key is
  remembered (its text, as ``str``, ``repr`` and JSON would write it), as
  is anything given to :func:`hide_values`.  :func:`scrub` replaces them in
  free text: an exception message, a traceback, a log line that quotes the
  secret without its key.  Learned texts shorter than
  :data:`MIN_LEARNED_LENGTH` are not remembered (a short value would turn
  every matching piece of every message into ``'***'``); at most
  :data:`MAX_LEARNED_VALUES` learned texts are kept, the least recently
  seen dropped first.
* **Where it applies.** With nothing configured nothing changes: output is
  byte for byte the original's.  Once a key is masked (or a value
  remembered): listeners and the failure formatter mask and scrub what they
  show; failures (:class:`~taskflow.types.failure.Failure`) mask and scrub
  the text and arguments they keep, so stored and re-raised failure text
  is clean; and records of the ``taskflow`` loggers are masked and scrubbed
  as they are created, at every level (a log record factory, installed the
  first time masking is switched on).  :class:`RedactingFilter` does the
  same for any handler you attach it to.

What is never changed: results and inputs *stored* for the flow to use
(tasks need the real values), and your own exception objects, which
``run()`` re-raises as they were raised (``Failure.exception``).

See ``docs/secrets.md``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import logging
import numbers
import os
import threading
import traceback
import uuid
from collections.abc import Callable, Container, Iterable, Iterator
from typing import Any, cast

__all__ = ['ENV_VAR', 'MASK', 'MAX_LEARNED_VALUES', 'MIN_LEARNED_LENGTH',
           'RedactingFilter', 'hide_values', 'is_active', 'learn', 'learn_from_failure',
           'mask_keys',
           'masked_keys', 'redact', 'redact_exception', 'redact_failure',
           'reset', 'safe_for_display', 'safe_traceback', 'scrub',
           'unmask_keys']

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
_LEARN_NODE_BUDGET = 20000
_LEARN_MAX_FRAMES = 200


def _keys_from_env() -> frozenset[str]:
    raw = os.environ.get(ENV_VAR, '')
    return frozenset(key for key in raw.replace(',', ' ').split() if key)


class _Memory:
    """The project-wide state; ``active`` is read on hot paths without the lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: frozenset[str] = _keys_from_env()
        self.hidden: dict[str, None] = {}    # given to hide_values(): kept
        self.learned: dict[str, None] = {}   # insertion order = recency
        self.longest_first: tuple[str, ...] = ()
        self.active = bool(self.keys)
        self.hooks: list[Callable[[], None]] = []

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


_memory = _Memory()


def _activation_hook(hook: Callable[[], None]) -> None:
    """Call ``hook`` once: now if masking is on, else when it is first switched on."""
    with _memory.lock:
        if _memory.active:
            hook()
        else:
            _memory.hooks.append(hook)


# -- configuration -------------------------------------------------------------

def mask_keys(*keys: str) -> None:
    """Mask the values of ``keys`` everywhere taskflow shows, logs or stores text.

    Adds to the project-wide set (which starts with ``TASKFLOW_MASK_KEYS``).
    Keys match exactly (``'password'`` does not mask ``'Password'``).
    """
    with _memory.lock:
        _memory.keys = _memory.keys | frozenset(keys)
        _memory.changed()


def unmask_keys(*keys: str) -> None:
    """Remove ``keys`` from the project-wide set (values already learned stay hidden)."""
    with _memory.lock:
        _memory.keys = _memory.keys - frozenset(keys)
        _memory.changed()


def masked_keys() -> frozenset[str]:
    """The project-wide masked keys."""
    return _memory.keys


def hide_values(*values: Any) -> None:
    """Never show these values (e.g. a token read from a vault) in any text.

    Unlike learned values, these are kept until :func:`reset` and may be of
    any length.
    """
    with _memory.lock:
        for value in values:
            for text in _texts_of(value):
                if text:
                    _memory.hidden[text] = None
        _memory.changed()


def reset() -> None:
    """Forget remembered values and go back to the keys of ``TASKFLOW_MASK_KEYS``."""
    with _memory.lock:
        _memory.keys = _keys_from_env()
        _memory.hidden.clear()
        _memory.learned.clear()
        _memory.changed()


def is_active() -> bool:
    """Whether any key is masked project-wide or any value is remembered."""
    return _memory.active


# -- remembering -------------------------------------------------------------

def _texts_of(value: Any) -> set[str]:
    """How ``value`` appears in text: its ``str``, and escaped as in ``repr``/JSON."""
    if isinstance(value, str):
        return {value, repr(value)[1:-1], json.dumps(value)[1:-1]}
    if isinstance(value, (bytes, bytearray)):
        texts = {repr(bytes(value))[2:-1]}
        try:
            texts |= _texts_of(bytes(value).decode('utf-8'))
        except UnicodeDecodeError:
            pass
        return texts
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, (numbers.Number, uuid.UUID)):
        return {str(value), repr(value)}
    return set()   # an object's text can not be known without calling it


def _leaves(value: Any, budget: int = _LEARN_NODE_BUDGET) -> Iterator[Any]:
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


def _learn(value: Any) -> None:
    """Remember the texts of a value found under a masked key."""
    texts = [text for leaf in _leaves(value) for text in _texts_of(leaf)
             if len(text) >= MIN_LEARNED_LENGTH]
    if not texts:
        return
    with _memory.lock:
        learned = _memory.learned
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
            _memory.changed()


class _KeyTest:
    """Is a key masked: project-wide, or in a listener's own container."""

    __slots__ = ('project', 'local')

    def __init__(self, local: Container[Any] = ()) -> None:
        self.project = _memory.keys
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


def _keyed_items(item: Any) -> list[tuple[Any, Any]] | None:
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


def _learn_under_keys(data: Any, masked: _KeyTest, budget: list[int]) -> None:
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
        pairs = _keyed_items(item)
        if pairs is None:
            stack.extend(cast(Iterable[Any], item))
            continue
        for key, value in pairs:
            if masked(key):
                _learn(value)
            else:
                stack.append(value)


def _learn_from_traceback(tb: Any, masked: _KeyTest, budget: list[int]) -> None:
    """Remember values of masked names (and under masked keys) in ``tb``'s frames.

    This is how a failure learns the password its task was called with
    (``def execute(self, password)``, or the engine's ``arguments`` dict)
    before it keeps the exception's message.
    """
    frames = 0
    while tb is not None and frames < _LEARN_MAX_FRAMES and budget[0] > 0:
        frames += 1
        try:
            local_vars = dict(tb.tb_frame.f_locals)
        except Exception:
            local_vars = {}
        for name, value in local_vars.items():
            if masked(name):
                _learn(value)
            else:
                _learn_under_keys(value, masked, budget)
        tb = tb.tb_next


def learn(data: Any, keys: Container[Any] = ()) -> None:
    """Remember the values under masked keys in ``data``, without copying it.

    :param keys: masked keys besides the project-wide ones.

    Listeners that show values call this with the flow's inputs before they
    show anything, so a result or message that *quotes* an input (``'logged
    in with %s' % password``) gets scrubbed too.
    """
    masked = _KeyTest(keys)
    if masked:
        _learn_under_keys(data, masked, [_LEARN_NODE_BUDGET])


# -- redacting data and text ---------------------------------------------------

def scrub(text: str) -> str:
    """``text`` with every remembered value replaced by ``'***'``."""
    values = _memory.longest_first
    if not values or not text:
        return text
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


class _Redactor:
    """Copies data with masked values replaced (see :func:`redact`)."""

    def __init__(self, masked: _KeyTest, plain: bool) -> None:
        self.masked = masked
        self.plain = plain
        self.path: set[int] = set()

    def walk(self, data: Any) -> tuple[Any, bool]:
        """Return ``(shown, changed)``: ``changed`` when something was masked."""
        if isinstance(data, str):
            # Checked each time: a value masked earlier in this walk counts.
            if _memory.longest_first:
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
                _learn(value)
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
                    _learn(value)
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
                _learn(value)
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


def redact(data: Any, keys: Container[Any] = (), *, plain: bool = False) -> Any:
    """A copy of ``data`` to show: values under masked keys become ``'***'``.

    :param keys: masked keys besides the project-wide ones (tested with
        ``in``, so a string matches its substrings, as the original does).
    :param plain: rebuild every dict and list as a plain ``dict``/``list``
        even when nothing in it is masked (how the original formatter shows
        values); otherwise containers are copied only when something inside
        them is masked, and ``data`` itself is returned when nothing is.

    Walks mappings, lists, tuples (a namedtuple keeps its type), sets and
    frozensets at any depth.  Strings have remembered values scrubbed.
    The masked values are remembered (see :func:`scrub`).
    """
    masked = _KeyTest(keys)
    if not masked and not _memory.longest_first and not plain:
        return data
    try:
        shown, _changed = _Redactor(masked, plain).walk(data)
    except RecursionError:
        return MASK   # nested too deep to show safely
    return shown


def safe_for_display(value: Any, keys: Container[Any] = ()) -> Any:
    """``value`` ready for ``'%s'`` in a message: redacted, then scrubbed.

    Returns ``value`` itself when nothing needs hiding (so output stays the
    original's), a redacted copy when a masked key was found, or the
    scrubbed ``str()`` when the text quotes a remembered value.
    """
    masked = _KeyTest(keys)
    if not masked and not _memory.longest_first:
        return value
    shown = redact(value, keys)
    if _memory.longest_first and not isinstance(shown, (bool, numbers.Number)):
        try:
            text = str(shown)
        except Exception:
            return shown
        clean = scrub(text)
        if clean != text:
            return clean
    return shown


def safe_traceback(exc_info: Any) -> str | None:
    """Scrubbed traceback text of ``exc_info``, or ``None`` when it hides nothing.

    ``None`` means "print or log ``exc_info`` as usual"; otherwise use the
    returned text (``traceback.format_exception`` output, scrubbed) instead.
    """
    if not _memory.longest_first or not exc_info or exc_info[0] is None:
        return None
    try:
        text = ''.join(traceback.format_exception(*exc_info))
    except Exception:
        return None
    clean = scrub(text)
    return clean if clean != text else None


def _learn_from_exception(value: Any, tb: Any, args: Any, masked: _KeyTest,
                          budget: list[int]) -> None:
    """Remember what an exception met under masked names and keys.

    Looks in the frames of its traceback ``tb`` (this is how a failure
    learns the password its task was called with: ``def execute(self,
    password)``, or the engine's ``arguments`` dict), its ``args`` and its
    attributes.
    """
    _learn_from_traceback(tb, masked, budget)
    _learn_under_keys(args, masked, budget)
    attributes = getattr(value, '__dict__', None)
    if attributes:
        _learn_under_keys(dict(attributes), masked, budget)


def redact_exception(value: BaseException, tb: Any, exception_str: str,
                     exc_args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """What a failure keeps of an exception: ``(exception_str, exc_args)``, redacted.

    First remembers what the exception met under project-wide masked keys
    (see :func:`learn_from_failure`), then masks the args and scrubs the
    message.  Used by :class:`~taskflow.types.failure.Failure` when masking
    is on.
    """
    masked = _KeyTest()
    if masked:
        _learn_from_exception(value, tb, exc_args, masked, [_LEARN_NODE_BUDGET])
    return scrub(exception_str), redact(exc_args)


def learn_from_failure(fail: Any, keys: Container[Any] = ()) -> None:
    """Remember the values under ``keys`` (and project-wide keys) that ``fail`` met.

    For the failure and each of its causes: the frames of the traceback,
    the exception's args and attributes (just the args when the failure
    has no live exception).  Listeners with their own masked keys call this
    before showing a failure, so its message and traceback get scrubbed of
    those values too.
    """
    masked = _KeyTest(keys)
    if not masked:
        return
    budget = [_LEARN_NODE_BUDGET]
    for item in (fail,) + tuple(fail.causes):
        exc_info = item.exc_info
        if exc_info is None:
            _learn_under_keys(item.exception_args, masked, budget)
        else:
            _learn_from_exception(exc_info[1], exc_info[2],
                                  tuple(getattr(exc_info[1], 'args', ())), masked, budget)


def redact_failure(fail: Any, keys: Container[Any] = ()) -> Any:
    """``fail`` (a :class:`~taskflow.types.failure.Failure`) with its texts scrubbed.

    Returns ``fail`` itself when there is nothing to hide; otherwise an
    equal-looking failure (same type names, same live ``exc_info`` so
    ``reraise()`` still works) whose message, args, traceback text and
    causes are redacted.
    """
    from taskflow.types import failure as failure_module

    if not _KeyTest(keys) and not _memory.longest_first:
        return fail
    exception_str = scrub(fail.exception_str)
    exc_args = redact(fail.exception_args, keys)
    traceback_str = fail.traceback_str
    if traceback_str:
        traceback_str = scrub(traceback_str)
    causes = tuple(redact_failure(cause, keys) for cause in fail.causes)
    if (exception_str == fail.exception_str and exc_args is fail.exception_args
            and traceback_str == fail.traceback_str
            and all(a is b for a, b in zip(causes, fail.causes))):
        return fail
    return failure_module.Failure(
        exc_info=fail.exc_info, exception_str=exception_str,
        exc_type_names=list(fail), traceback_str=traceback_str,
        exc_args=exc_args, causes=causes)


# -- log records ---------------------------------------------------------------

def _redact_record(record: logging.LogRecord) -> None:
    """Mask and scrub a log record in place (its message, args and traceback)."""
    if _memory.keys:
        if record.args:
            record.args = redact(record.args)
        if not isinstance(record.msg, str):
            record.msg = redact(record.msg)
    if not _memory.longest_first:
        return
    try:
        message = record.getMessage()
    except Exception:
        return   # a broken format: logging reports it when the record is emitted
    clean = scrub(message)
    if clean != message:
        record.msg = clean
        record.args = None
    if record.exc_info and not record.exc_text:
        text = safe_traceback(record.exc_info)
        if text is not None:
            # Formatters print ``exc_text`` when it is set, instead of
            # formatting ``exc_info`` again.
            record.exc_text = text.rstrip('\n')
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


class RedactingFilter(logging.Filter):
    """A logging filter that masks and scrubs every record it sees.

    Taskflow already does this for records of its own loggers; add this
    filter to a handler to extend it to every record the handler emits
    (other libraries, your own code)::

        handler.addFilter(taskflow.secrets.RedactingFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _memory.active:
            _redact_record(record)
        return True


def _is_taskflow_record(name: str) -> bool:
    return name == 'taskflow' or name.startswith('taskflow.')
