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

import logging
import numbers
import traceback
from collections.abc import Container
from typing import Any

from taskflow import _secrets_memory as _mem
from taskflow import _secrets_walk as _walk
from taskflow._secrets_memory import ENV_VAR as ENV_VAR
from taskflow._secrets_memory import MASK as MASK
from taskflow._secrets_memory import MAX_LEARNED_VALUES as MAX_LEARNED_VALUES
from taskflow._secrets_memory import MIN_LEARNED_LENGTH as MIN_LEARNED_LENGTH
from taskflow._secrets_memory import scrub as scrub

__all__ = ['ENV_VAR', 'MASK', 'MAX_LEARNED_VALUES', 'MIN_LEARNED_LENGTH',
           'RedactingFilter', 'hide_values', 'is_active', 'learn', 'learn_from_failure',
           'mask_keys', 'masked_keys', 'redact', 'redact_exception', 'redact_failure',
           'redact_record', 'reset', 'safe_for_display', 'safe_traceback', 'scrub', 'unmask_keys']

_memory = _mem.memory


# -- configuration -------------------------------------------------------------

def mask_keys(*keys: str) -> None:
    """Mask the values of ``keys`` everywhere taskflow shows, logs or stores text.

    Adds to the project-wide set (which starts with ``TASKFLOW_MASK_KEYS``).
    Keys match exactly (``'password'`` does not mask ``'Password'``).
    """
    with _memory.lock:
        _memory.set_keys(_memory.keys | frozenset(keys))


def unmask_keys(*keys: str) -> None:
    """Remove ``keys`` from the project-wide set (values already learned stay hidden)."""
    with _memory.lock:
        _memory.set_keys(_memory.keys - frozenset(keys))


def masked_keys() -> frozenset[str]:
    """The project-wide masked keys."""
    return _memory.keys


def hide_values(*values: Any) -> None:
    """Never show these values (e.g. a token read from a vault) in any text.

    Unlike learned values, these are kept until :func:`reset` and may be of
    any length.
    """
    _memory.hide({text for value in values for text in _mem.texts_of(value)})


def reset() -> None:
    """Forget remembered values and go back to the keys of ``TASKFLOW_MASK_KEYS``."""
    _memory.reset()


def is_active() -> bool:
    """Whether any key is masked project-wide or any value is remembered."""
    return _memory.active


# -- remembering and redacting ----------------------------------------------------

def learn(data: Any, keys: Container[Any] = ()) -> None:
    """Remember the values under masked keys in ``data``, without copying it.

    :param keys: masked keys besides the project-wide ones.

    Listeners that show values call this with the flow's inputs before they
    show anything, so a result or message that *quotes* an input (``'logged
    in with %s' % password``) gets scrubbed too.
    """
    masked = _mem.KeyTest(keys)
    if masked:
        _walk.learn_under_keys(data, masked, [_mem.LEARN_NODE_BUDGET])


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
    masked = _mem.KeyTest(keys)
    if not masked and not _memory.longest_first and not plain:
        return data
    try:
        shown, _changed = _walk.Redactor(masked, plain).walk(data)
    except RecursionError:
        return MASK   # nested too deep to show safely
    return shown


def _is_failure(value: Any) -> bool:
    # Imported late: taskflow.types.failure imports this module.
    from taskflow.types import failure as failure_module

    return isinstance(value, failure_module.Failure)


def safe_for_display(value: Any, keys: Container[Any] = ()) -> Any:
    """``value`` ready for ``'%s'`` in a message: redacted, then scrubbed.

    Returns ``value`` itself when nothing needs hiding (so output stays the
    original's), a redacted copy when a masked key was found, a failure
    with scrubbed texts (:func:`redact_failure`), or the scrubbed ``str()``
    when the text quotes a remembered value.
    """
    masked = _mem.KeyTest(keys)
    if not masked and not _memory.longest_first:
        return value
    if _is_failure(value):
        return redact_failure(value, keys)   # still a Failure, its texts scrubbed
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


def redact_exception(value: BaseException, tb: Any, exception_str: str,
                     exc_args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """What a failure keeps of an exception: ``(exception_str, exc_args)``, redacted.

    First remembers what the exception met under project-wide masked keys
    (see :func:`learn_from_failure`), then masks the args and scrubs the
    message.  Used by :class:`~taskflow.types.failure.Failure` when masking
    is on.
    """
    masked = _mem.KeyTest()
    if masked:
        _walk.learn_from_exception(value, tb, exc_args, masked, [_mem.LEARN_NODE_BUDGET])
    return scrub(exception_str), redact(exc_args)


def learn_from_failure(fail: Any, keys: Container[Any] = ()) -> None:
    """Remember the values under ``keys`` (and project-wide keys) that ``fail`` met.

    For the failure and each of its causes: the frames of the traceback,
    the exception's args and attributes (just the args when the failure
    has no live exception).  Listeners with their own masked keys call this
    before showing a failure, so its message and traceback get scrubbed of
    those values too.
    """
    masked = _mem.KeyTest(keys)
    if not masked:
        return
    budget = [_mem.LEARN_NODE_BUDGET]
    for item in (fail,) + tuple(fail.causes):
        exc_info = item.exc_info
        if exc_info is None:
            _walk.learn_under_keys(item.exception_args, masked, budget)
        else:
            args = tuple(getattr(exc_info[1], 'args', ()))
            _walk.learn_from_exception(exc_info[1], exc_info[2], args, masked, budget)


def redact_failure(fail: Any, keys: Container[Any] = ()) -> Any:
    """``fail`` (a :class:`~taskflow.types.failure.Failure`) with its texts scrubbed.

    Returns ``fail`` itself when there is nothing to hide; otherwise an
    equal-looking failure (same type names, same live ``exc_info`` so
    ``reraise()`` still works) whose message, args, traceback text and
    causes are redacted.
    """
    from taskflow.types import failure as failure_module

    if not _mem.KeyTest(keys) and not _memory.longest_first:
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

def redact_record(record: logging.LogRecord) -> None:
    """Mask and scrub a log record in place: its arguments, message, traceback, stack.

    The message is formatted (and replaced by scrubbed text) only when it
    quotes a remembered value; a traceback quoting one is kept as scrubbed
    ``exc_text``, which formatters print instead of formatting ``exc_info``.
    """
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
            redact_record(record)
        return True

