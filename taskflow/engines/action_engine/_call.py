"""The one place where the engine calls user code.

Every function returns ``(ok, value)``: ``(True, result)`` when the user code
returned, ``(False, Failure)`` when it raised -- or returned a ``Failure``,
which the original also counts as failing.  Nothing here touches storage
or notifiers, so these functions can run on any thread (or, for tasks whose
objects pickle, in another process).
"""

from __future__ import annotations

from typing import Any

from taskflow import retry as retry_module
from taskflow.types import failure as failure_module

Outcome = tuple  # (ok: bool, value: result or Failure)


def _returned(value: Any) -> Outcome:
    return not isinstance(value, failure_module.Failure), value


def execute_task(task: Any, arguments: dict) -> Outcome:
    """``pre_execute()``, ``execute(**arguments)``, then always ``post_execute()``."""
    try:
        task.pre_execute()
        try:
            return _returned(task.execute(**arguments))
        finally:
            task.post_execute()
    except Exception:
        return False, failure_module.Failure()


def revert_task(task: Any, arguments: dict, result: Any, flow_failures: dict) -> Outcome:
    """``revert(**arguments, result=..., flow_failures=...)`` between its hooks."""
    try:
        task.pre_revert()
        try:
            return _returned(task.revert(result=result, flow_failures=flow_failures,
                                         **arguments))
        finally:
            task.post_revert()
    except Exception:
        return False, failure_module.Failure()


def execute_retry(retry: Any, arguments: dict, history: retry_module.History) -> Outcome:
    try:
        retry.pre_execute()
        try:
            return _returned(retry.execute(history=history, **arguments))
        finally:
            retry.post_execute()
    except Exception:
        return False, failure_module.Failure()


def revert_retry(retry: Any, arguments: dict, history: retry_module.History,
                 flow_failures: dict) -> Outcome:
    try:
        retry.pre_revert()
        try:
            return _returned(retry.revert(history=history, flow_failures=flow_failures,
                                          **arguments))
        finally:
            retry.post_revert()
    except Exception:
        return False, failure_module.Failure()


def ask_retry(retry: Any, arguments: dict, history: retry_module.History) -> Outcome:
    """``on_failure(**arguments, history=...)``: what the retry decides."""
    try:
        return True, retry.on_failure(history=history, **arguments)
    except Exception:
        return False, failure_module.Failure()


def ask_decider(decider: Any, history: dict) -> Outcome:
    """``decider(history=...)``: whether the linked atom may run."""
    try:
        return True, decider(history=history)
    except Exception:
        return False, failure_module.Failure()


def retry_delay(retry: Any, history: retry_module.History) -> Outcome:
    """``delay_for(history)``: seconds to wait before the retry runs again."""
    try:
        delay_for = getattr(retry, 'delay_for', None)
        return True, float(delay_for(history)) if delay_for is not None else 0.0
    except Exception:
        return False, failure_module.Failure()
