"""The one place where the engine calls user code.

Every function returns an :class:`Outcome`: ``(True, result)`` when the user
code returned, ``(False, Failure)`` when it raised -- or returned a
``Failure``, which the original also counts as failing.  Nothing here
touches storage or notifiers, so these functions can run on any thread (or,
for tasks whose objects pickle, in another process).

A task's execution or reversion travels to a runner as a :class:`Call`:
plain data, so a runner may also send it elsewhere (another process, a
remote worker) and run it there with :func:`run_task`.

Methods written as ``async def`` have twins here (``run_task_async``,
``execute_retry_async``...) that await them; which one applies is known when
the flow is compiled (``Node.coroutines``), so the synchronous functions
never look at what user code returned.  Hooks (``pre_execute``...) are
plain calls in both.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from taskflow import retry as retry_module
from taskflow.types import failure as failure_module

EXECUTE = 'execute'
REVERT = 'revert'


class Outcome(NamedTuple):
    """What calling user code gave: a result, or the ``Failure`` it raised."""

    ok: bool
    value: Any


class Call(NamedTuple):
    """One execution (or reversion) of a task, as handed to a runner."""

    kind: str                  # EXECUTE or REVERT
    atom: Any                  # the task
    arguments: dict[str, Any]  # its execute()/revert() arguments
    result: Any = None         # REVERT: what execute returned (or its Failure)
    flow_failures: dict[str, failure_module.Failure] | None = None  # REVERT
    coroutine: bool = False    # the method called is ``async def``: run_task_async()


def _returned(value: Any) -> Outcome:
    return Outcome(not isinstance(value, failure_module.Failure), value)


def run_task(call: Call) -> Outcome:
    """Run ``call``: ``execute(**arguments)`` or ``revert(**arguments, result=...,
    flow_failures=...)``, between the task's pre/post hooks (post always runs)."""
    task = call.atom
    try:
        if call.kind == EXECUTE:
            task.pre_execute()
            try:
                return _returned(task.execute(**call.arguments))
            finally:
                task.post_execute()
        task.pre_revert()
        try:
            return _returned(task.revert(result=call.result,
                                         flow_failures=call.flow_failures,
                                         **call.arguments))
        finally:
            task.post_revert()
    except Exception:
        return Outcome(False, failure_module.Failure())


async def run_task_async(call: Call) -> Outcome:
    """:func:`run_task` for a ``call`` whose method is ``async def``: awaits it.

    A cancellation (``CancelledError``) is not a failure of the task: it
    propagates (after ``post_execute``/``post_revert``) to whoever cancelled.
    """
    task = call.atom
    try:
        if call.kind == EXECUTE:
            task.pre_execute()
            try:
                return _returned(await task.execute(**call.arguments))
            finally:
                task.post_execute()
        task.pre_revert()
        try:
            return _returned(await task.revert(result=call.result,
                                               flow_failures=call.flow_failures,
                                               **call.arguments))
        finally:
            task.post_revert()
    except Exception:
        return Outcome(False, failure_module.Failure())


def execute_retry(retry: Any, arguments: dict[str, Any],
                  history: retry_module.History) -> Outcome:
    try:
        retry.pre_execute()
        try:
            return _returned(retry.execute(history=history, **arguments))
        finally:
            retry.post_execute()
    except Exception:
        return Outcome(False, failure_module.Failure())


def revert_retry(retry: Any, arguments: dict[str, Any], history: retry_module.History,
                 flow_failures: dict[str, failure_module.Failure]) -> Outcome:
    try:
        retry.pre_revert()
        try:
            return _returned(retry.revert(history=history, flow_failures=flow_failures,
                                          **arguments))
        finally:
            retry.post_revert()
    except Exception:
        return Outcome(False, failure_module.Failure())


async def execute_retry_async(retry: Any, arguments: dict[str, Any],
                              history: retry_module.History) -> Outcome:
    try:
        retry.pre_execute()
        try:
            return _returned(await retry.execute(history=history, **arguments))
        finally:
            retry.post_execute()
    except Exception:
        return Outcome(False, failure_module.Failure())


async def revert_retry_async(retry: Any, arguments: dict[str, Any],
                             history: retry_module.History,
                             flow_failures: dict[str, failure_module.Failure]) -> Outcome:
    try:
        retry.pre_revert()
        try:
            return _returned(await retry.revert(history=history, flow_failures=flow_failures,
                                                **arguments))
        finally:
            retry.post_revert()
    except Exception:
        return Outcome(False, failure_module.Failure())


def ask_retry(retry: Any, arguments: dict[str, Any],
              history: retry_module.History) -> Outcome:
    """``on_failure(**arguments, history=...)``: what the retry decides."""
    try:
        return Outcome(True, retry.on_failure(history=history, **arguments))
    except Exception:
        return Outcome(False, failure_module.Failure())


async def ask_retry_async(retry: Any, arguments: dict[str, Any],
                          history: retry_module.History) -> Outcome:
    """:func:`ask_retry` for an ``async def on_failure``."""
    try:
        return Outcome(True, await retry.on_failure(history=history, **arguments))
    except Exception:
        return Outcome(False, failure_module.Failure())


def ask_decider(decider: Any, history: dict[str, Any]) -> Outcome:
    """``decider(history=...)``: whether the linked atom may run."""
    try:
        return Outcome(True, decider(history=history))
    except Exception:
        return Outcome(False, failure_module.Failure())


def retry_delay(retry: Any, history: retry_module.History) -> Outcome:
    """``delay_for(history)``: seconds to wait before the retry runs again."""
    try:
        delay_for = getattr(retry, 'delay_for', None)
        return Outcome(True, float(delay_for(history)) if delay_for is not None else 0.0)
    except Exception:
        return Outcome(False, failure_module.Failure())
